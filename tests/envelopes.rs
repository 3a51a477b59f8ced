//! Envelopes against the reference tool: what sfs seals, Debian's `age`
//! opens with the user's own private key (ed25519, RSA, either of two), and
//! nothing else opens it. The private keys are made here, outside any server.

use crate::harness;

use std::path::Path;
use std::process::Command;

use sfs::vault::envelope::{seal, EnvelopeError, SealTo};
use sfs::vault::FileKey;

/// A fresh key pair of `kind` in `dir`; returns the public line.
fn key_pair(dir: &Path, name: &str, kind: &[&str]) -> String {
    let path = dir.join(name);
    let made = Command::new("ssh-keygen")
        .args(["-q", "-N", "", "-C", name, "-f"])
        .arg(&path)
        .args(kind)
        .status()
        .expect("ssh-keygen");
    assert!(made.success());
    std::fs::read_to_string(path.with_extension("pub")).expect("public key")
}

/// `age -d -i dir/identity` on `envelope`.
fn age_open(dir: &Path, envelope: &[u8], identity: &str) -> Result<String, String> {
    harness::age_open(dir, envelope, &dir.join(identity))
}

#[test]
fn age_opens_what_sfs_seals_with_each_key_and_only_those() {
    if !harness::have("age") || !harness::have("ssh-keygen") {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let ed25519 = key_pair(dir.path(), "bob_ed25519", &["-t", "ed25519"]);
    let rsa = key_pair(dir.path(), "carol_rsa", &["-t", "rsa", "-b", "3072"]);
    key_pair(dir.path(), "eve_ed25519", &["-t", "ed25519"]);
    let key = FileKey::generate();
    let line = format!("{}\n", key.to_text().as_str());

    // One key each, then one envelope for two keys: any of them opens it.
    for (public, private) in [(&ed25519, "bob_ed25519"), (&rsa, "carol_rsa")] {
        let envelope = seal(&key, &[SealTo::parse(public).expect("parse")]).expect("seal");
        assert_eq!(
            age_open(dir.path(), &envelope, private).as_deref(),
            Ok(line.as_str())
        );
        let refused = age_open(dir.path(), &envelope, "eve_ed25519").expect_err("not eve's");
        assert!(refused.contains("no identity matched"), "{refused}");
    }
    let both = [&ed25519, &rsa].map(|public| SealTo::parse(public).expect("parse"));
    let envelope = seal(&key, &both).expect("seal");
    for private in ["bob_ed25519", "carol_rsa"] {
        let opened = age_open(dir.path(), &envelope, private).expect("opens");
        assert_eq!(opened, line);
        assert!(FileKey::parse(&opened).is_ok_and(|k| k == key));
    }
    assert!(age_open(dir.path(), &envelope, "eve_ed25519").is_err());
    // The envelope holds no trace of the key's text.
    let text = key.to_text();
    assert!(!envelope.windows(text.len()).any(|w| w == text.as_bytes()));
}

#[test]
fn keys_age_cannot_seal_to_are_refused_with_a_sentence() {
    if !harness::have("ssh-keygen") {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let ecdsa = key_pair(dir.path(), "dan_ecdsa", &["-t", "ecdsa"]);
    let weak = key_pair(dir.path(), "dan_rsa1024", &["-t", "rsa", "-b", "1024"]);
    let refused = SealTo::parse(&ecdsa).expect_err("ecdsa");
    assert_eq!(
        refused.to_string(),
        "ecdsa-sha2-nistp256 keys cannot be sealed to: use an ed25519 or RSA key"
    );
    assert_eq!(SealTo::parse(&weak).err(), Some(EnvelopeError::WeakKey));
}
