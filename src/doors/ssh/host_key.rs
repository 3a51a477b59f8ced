//! The server's Ed25519 host key: generated into `host_key_dir` on first
//! start (mode 0600) and reused after, so clients' known_hosts stay valid.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use anyhow::Context;
use rand::RngCore;
use russh::keys::ssh_key::private::{Ed25519Keypair, KeypairData};
use russh::keys::ssh_key::LineEnding;
use russh::keys::{HashAlg, PrivateKey};
use zeroize::Zeroize;

const FILE_NAME: &str = "ssh_host_ed25519_key";

/// Loads the host key, creating it if there is none.
pub fn load_or_create(dir: &Path) -> anyhow::Result<PrivateKey> {
    let path = dir.join(FILE_NAME);
    if path.exists() {
        let key = PrivateKey::read_openssh_file(&path)
            .with_context(|| format!("cannot read host key {}", path.display()))?;
        tracing::info!(path = %path.display(), fingerprint = %key.fingerprint(HashAlg::Sha256), "host key loaded");
        return Ok(key);
    }
    fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let mut seed = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut seed);
    let keypair = Ed25519Keypair::from_seed(&seed);
    seed.zeroize();
    let key = PrivateKey::new(KeypairData::Ed25519(keypair), "sfs host key")?;
    let text = key.to_openssh(LineEnding::LF)?;
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .with_context(|| format!("cannot create host key {}", path.display()))?;
    file.write_all(text.as_bytes())?;
    file.sync_all()?;
    tracing::info!(path = %path.display(), fingerprint = %key.fingerprint(HashAlg::Sha256), "host key generated");
    Ok(key)
}
