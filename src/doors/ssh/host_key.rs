//! The server's Ed25519 host key: generated into `host_key_dir` on first
//! start (mode 0600) and reused after, so clients' known_hosts stay valid.

use std::fs;
use std::path::Path;

use anyhow::Context;
use rand::RngCore;
use russh::keys::ssh_key::private::{Ed25519Keypair, KeypairData};
use russh::keys::ssh_key::LineEnding;
use russh::keys::{HashAlg, PrivateKey};
use zeroize::Zeroize;

use crate::private_fs::{create_once, Created};

const FILE_NAME: &str = "ssh_host_ed25519_key";

/// Loads the host key, creating it if there is none. Nodes starting at
/// once on one folder end up with the same key: one of them writes it.
pub fn load_or_create(dir: &Path) -> anyhow::Result<PrivateKey> {
    let path = dir.join(FILE_NAME);
    if !path.exists() {
        fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let mut seed = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut seed);
        let keypair = Ed25519Keypair::from_seed(&seed);
        seed.zeroize();
        let key = PrivateKey::new(KeypairData::Ed25519(keypair), "sfs host key")?;
        let text = key.to_openssh(LineEnding::LF)?;
        let created = create_once(&path, text.as_bytes())
            .with_context(|| format!("cannot create host key {}", path.display()))?;
        if created == Created::Now {
            tracing::info!(path = %path.display(), fingerprint = %key.fingerprint(HashAlg::Sha256), "host key generated");
            return Ok(key);
        }
    }
    let key = PrivateKey::read_openssh_file(&path)
        .with_context(|| format!("cannot read host key {}", path.display()))?;
    tracing::info!(path = %path.display(), fingerprint = %key.fingerprint(HashAlg::Sha256), "host key loaded");
    Ok(key)
}
