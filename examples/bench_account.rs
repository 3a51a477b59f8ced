//! Fixture for benchmark scripts: creates an account the way a user does
//! (an emailed code, read from the outbox, proved) and makes it trust a
//! public key, so real OpenSSH clients can log in without a terminal.
//!
//! Usage: bench_account CONFIG EMAIL PUBLIC_KEY_FILE
//! (the config must use the outbox mail transport)

use std::time::{Duration, Instant};

use sfs::config::Config;
use sfs::core::Core;
use sfs::db::NewSshKey;

fn newest_code(outbox: &std::path::Path, before: usize) -> anyhow::Result<Option<String>> {
    let Ok(entries) = std::fs::read_dir(outbox) else {
        return Ok(None); // not created until the first mail
    };
    let mut mails: Vec<_> = entries
        .filter_map(Result::ok)
        .filter(|e| e.path().extension().is_some_and(|x| x == "eml"))
        .filter_map(|e| Some((e.metadata().ok()?.modified().ok()?, e.path())))
        .collect();
    if mails.len() <= before {
        return Ok(None);
    }
    mails.sort();
    let text = std::fs::read_to_string(&mails[mails.len() - 1].1)?;
    let body = text
        .split_once("\r\n\r\n")
        .map_or(text.as_str(), |(_, b)| b);
    Ok(body
        .split(|c: char| !c.is_ascii_digit())
        .find(|w| w.len() == 6)
        .map(str::to_string))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    anyhow::ensure!(
        args.len() == 4,
        "usage: bench_account CONFIG EMAIL PUBLIC_KEY_FILE"
    );
    let config = Config::load(std::path::Path::new(&args[1]))?;
    let outbox = config.mail.outbox_dir.clone();
    let core = Core::start(config).await?;
    let ip = "127.0.0.1".parse()?;
    let before = std::fs::read_dir(&outbox)
        .map(|d| {
            d.filter_map(Result::ok)
                .filter(|e| e.path().extension().is_some_and(|x| x == "eml"))
                .count()
        })
        .unwrap_or(0);
    let mut challenge = core
        .accounts()
        .start_login(&args[2], ip, &[])
        .await
        .map_err(|r| anyhow::anyhow!("{r}"))?;
    let deadline = Instant::now() + Duration::from_secs(20);
    let code = loop {
        if let Some(code) = newest_code(&outbox, before)? {
            break code;
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "no code arrived in {}",
            outbox.display()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let (account, _) = core
        .accounts()
        .verify(&mut challenge, &code, ip, &[])
        .await
        .map_err(|r| anyhow::anyhow!("{r}"))?;
    let public = russh::keys::PublicKey::read_openssh_file(std::path::Path::new(&args[3]))?;
    core.accounts()
        .trust_key(
            &account,
            &NewSshKey {
                fingerprint: public.fingerprint(russh::keys::HashAlg::Sha256).to_string(),
                algorithm: public.algorithm().to_string(),
                public_key: public.to_openssh()?,
                comment: "bench".into(),
            },
        )
        .await
        .map_err(|r| anyhow::anyhow!("{r}"))?;
    core.db().close().await;
    Ok(())
}
