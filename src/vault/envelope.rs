//! Envelopes: a file key sealed with age (age-encryption.org/v1) to SSH
//! public keys, so that only the holders of the matching private keys can
//! open it — `age -d -i ~/.ssh/id_ed25519 NAME.key.age` prints the key. The
//! server makes and keeps envelopes and can open none of them. FORMAT.md
//! spells the format out.
//!
//! The payload is the key's text and a newline: exactly what a user types
//! to unlock the file. Nothing inside names the file; what ties an envelope
//! to its file and account is where the server keeps it, and a key moved to
//! another file opens nothing there (every token of a file is authenticated
//! under its own key and file id).
//!
//! Only `ssh-ed25519` and `ssh-rsa` keys (RSA of 2048 bits or more) can be
//! sealed to: age has no recipient type for the others (ECDSA, security
//! keys).

// age marks its SSH recipients deprecated in favour of post-quantum ones;
// an SSH key is what users hold and what the envelope must open with.
#![allow(deprecated)]

use std::io::Write;
use std::str::FromStr;

use age::ssh::{ParseRecipientKeyError, Recipient};

use super::FileKey;

/// Why an envelope could not be made. No variant holds key material.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EnvelopeError {
    #[error("there is no SSH key to seal it to")]
    NoRecipient,
    #[error("{kind} keys cannot be sealed to: use an ed25519 or RSA key")]
    UnsupportedKey { kind: String },
    #[error("RSA keys shorter than 2048 bits cannot be sealed to")]
    WeakKey,
    #[error("not an SSH public key")]
    NotAKey,
    #[error("sealing the key failed: {0}")]
    Seal(String),
}

/// One SSH public key an envelope is sealed to.
#[derive(Clone, Debug)]
pub struct SealTo(Recipient);

impl SealTo {
    /// Parses the OpenSSH one-line form (`ssh-ed25519 AAAA… comment`).
    pub fn parse(openssh_line: &str) -> Result<SealTo, EnvelopeError> {
        // age reads the type and the key and stops there: a comment is fine.
        match Recipient::from_str(openssh_line.trim()) {
            Ok(recipient) => Ok(SealTo(recipient)),
            Err(ParseRecipientKeyError::Unsupported(kind)) => {
                Err(EnvelopeError::UnsupportedKey { kind })
            }
            Err(ParseRecipientKeyError::Ignore) => Err(EnvelopeError::UnsupportedKey {
                kind: key_type(openssh_line),
            }),
            Err(ParseRecipientKeyError::RsaModulusTooSmall) => Err(EnvelopeError::WeakKey),
            Err(ParseRecipientKeyError::RsaModulusTooLarge) => Err(EnvelopeError::UnsupportedKey {
                kind: "very large RSA".to_string(),
            }),
            Err(_) => Err(EnvelopeError::NotAKey),
        }
    }
}

/// The first word of an OpenSSH public key line, for the refusal.
fn key_type(openssh_line: &str) -> String {
    openssh_line
        .split_whitespace()
        .next()
        .unwrap_or("these")
        .chars()
        .take(64)
        .collect()
}

/// Seals `key` to every key in `to`, one age recipient stanza each: any one
/// of their private keys opens it.
pub fn seal(key: &FileKey, to: &[SealTo]) -> Result<Vec<u8>, EnvelopeError> {
    if to.is_empty() {
        return Err(EnvelopeError::NoRecipient);
    }
    let recipients = to.iter().map(|r| &r.0 as &dyn age::Recipient);
    let encryptor = age::Encryptor::with_recipients(recipients)
        .map_err(|e| EnvelopeError::Seal(e.to_string()))?;
    let mut payload = key.to_text();
    payload.push('\n');
    let mut sealed = Vec::with_capacity(512 * to.len() + 256);
    let mut writer = encryptor
        .wrap_output(&mut sealed)
        .map_err(|e| EnvelopeError::Seal(e.to_string()))?;
    writer
        .write_all(payload.as_bytes())
        .and_then(|()| writer.finish().map(drop))
        .map_err(|e| EnvelopeError::Seal(e.to_string()))?;
    Ok(sealed)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Test keys only, made for these tests with `ssh-keygen`; they guard
    /// nothing.
    const ED25519_PUBLIC: &str = include_str!("../../tests/data/envelope/id_ed25519.pub");
    const ED25519_PRIVATE: &str = include_str!("../../tests/data/envelope/id_ed25519");
    const RSA_PUBLIC: &str = include_str!("../../tests/data/envelope/id_rsa.pub");
    const RSA_PRIVATE: &str = include_str!("../../tests/data/envelope/id_rsa");
    /// The test vector: FORMAT.md's envelope example, sealed to both keys.
    const VECTOR: &[u8] = include_bytes!("../../tests/data/envelope/vector.key.age");
    const VECTOR_KEY: &str = "c2ZzIGVudmVsb3BlIHRlc3QgdmVjdG9yIGtleSAhISE=\n";

    fn open(envelope: &[u8], private: &str) -> Result<String, String> {
        let identity =
            age::ssh::Identity::from_buffer(private.as_bytes(), None).map_err(|e| e.to_string())?;
        let opened = age::decrypt(&identity, envelope).map_err(|e| e.to_string())?;
        String::from_utf8(opened).map_err(|e| e.to_string())
    }

    #[test]
    fn each_key_it_was_sealed_to_opens_it_to_the_key_text() {
        let key = FileKey::generate();
        let to = [
            SealTo::parse(ED25519_PUBLIC).expect("ed25519"),
            SealTo::parse(RSA_PUBLIC).expect("rsa"),
        ];
        let envelope = seal(&key, &to).expect("sealed");
        for private in [ED25519_PRIVATE, RSA_PRIVATE] {
            let text = open(&envelope, private).expect("opens");
            assert_eq!(text.trim_end(), key.to_text().as_str());
            assert!(text.ends_with('\n'));
        }
        let only_ed25519 = seal(&key, &to[..1]).expect("sealed");
        assert!(
            open(&only_ed25519, RSA_PRIVATE).is_err(),
            "not sealed to RSA"
        );
    }

    #[test]
    fn the_vector_opens_with_either_test_key() {
        for private in [ED25519_PRIVATE, RSA_PRIVATE] {
            assert_eq!(open(VECTOR, private).expect("opens"), VECTOR_KEY);
        }
        assert!(FileKey::parse(VECTOR_KEY).is_ok(), "a Fernet key");
    }

    #[test]
    fn keys_age_cannot_seal_to_are_refused_by_name() {
        let ecdsa = "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBEmKSENjQEezOmxkZMy7opKgwFB9nkt5YRrYMjNuG5N87uRgg6CLrbo5wAdT/y6v0mKV0U2w0WZ2YB/++Tpockg= test";
        match SealTo::parse(ecdsa) {
            Err(EnvelopeError::UnsupportedKey { kind }) => {
                assert_eq!(kind, "ecdsa-sha2-nistp256")
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            SealTo::parse("not a key").err(),
            Some(EnvelopeError::NotAKey)
        );
        assert_eq!(
            seal(&FileKey::generate(), &[]).err(),
            Some(EnvelopeError::NoRecipient)
        );
    }
}
