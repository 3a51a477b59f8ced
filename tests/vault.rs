//! Behaviour of the vault container: round trips, random access, tamper
//! detection, Fernet compatibility (the `fernet` crate and Python's
//! `cryptography`), clock skew, keys, and the test vector in FORMAT.md.

use std::fs;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE;
use base64::Engine;
use rand::rngs::StdRng;
use rand::{Rng, RngCore, SeedableRng};
use sfs::vault::format::{self, token_len};
use sfs::vault::{
    read_header, stored_len, FileId, FileKey, Header, VaultError, VaultReader, VaultWriter,
    DEFAULT_CHUNK_SIZE, HEADER_LEN,
};
use tempfile::TempDir;

const SMALL: u32 = 1024;

fn random_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut data = vec![0u8; len];
    StdRng::seed_from_u64(seed).fill_bytes(&mut data);
    data
}

/// Writes `data` through a VaultWriter into `path`, `piece` bytes per write.
fn write_file(path: &Path, key: &FileKey, id: FileId, chunk: u32, data: &[u8], piece: usize) {
    let file = fs::File::create(path).unwrap();
    let mut w = VaultWriter::new(file, key, id, chunk).unwrap();
    for part in data.chunks(piece.max(1)) {
        w.write_all(part).unwrap();
    }
    assert_eq!(w.plaintext_len(), data.len() as u64);
    let (_, len) = w.finish().unwrap();
    assert_eq!(len, data.len() as u64);
}

fn seal(key: &FileKey, id: FileId, chunk: u32, data: &[u8]) -> Vec<u8> {
    let mut w = VaultWriter::new(Vec::new(), key, id, chunk).unwrap();
    w.write_all(data).unwrap();
    w.finish().unwrap().0
}

/// Opens `blob` (via a real file) and reads it all: the result a user would see.
fn open_and_read(dir: &TempDir, blob: &[u8], key: &FileKey) -> Result<Vec<u8>, VaultError> {
    let path = dir.path().join("blob");
    fs::write(&path, blob).unwrap();
    let mut r = VaultReader::open(fs::File::open(&path).unwrap(), key)?;
    let mut out = vec![0u8; r.len() as usize];
    let n = r.read_at(0, &mut out)?;
    assert_eq!(n, out.len());
    Ok(out)
}

/// Splits a blob into its header and tokens, by the offsets FORMAT.md gives.
fn split(blob: &[u8]) -> (Vec<u8>, Vec<Vec<u8>>) {
    let chunk = u32::from_be_bytes(blob[12..16].try_into().unwrap());
    let t = token_len(u64::from(chunk)) as usize;
    let tokens = blob[HEADER_LEN..].chunks(t).map(<[u8]>::to_vec).collect();
    (blob[..HEADER_LEN].to_vec(), tokens)
}

fn join(header: &[u8], tokens: &[Vec<u8>]) -> Vec<u8> {
    let mut blob = header.to_vec();
    for t in tokens {
        blob.extend_from_slice(t);
    }
    blob
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[test]
fn round_trips_at_edge_sizes_and_write_patterns() {
    let dir = TempDir::new().unwrap();
    let key = FileKey::generate();
    for chunk in [SMALL, DEFAULT_CHUNK_SIZE] {
        let c = chunk as usize;
        for size in [0, 1, c - 1, c, c + 1, 2 * c, 3 * 1024 * 1024 + 123] {
            let data = random_bytes(size, size as u64);
            // Byte-at-a-time writes of the 3 MiB file add time, not coverage.
            let pieces = if size > 2 * c {
                vec![7, c + 5, size]
            } else {
                vec![1, 7, c + 5, size]
            };
            for piece in pieces {
                let id = FileId::generate();
                let path = dir.path().join(format!("{chunk}-{size}-{piece}"));
                write_file(&path, &key, id, chunk, &data, piece);
                let stored = fs::metadata(&path).unwrap().len();
                assert_eq!(stored, stored_len(size as u64, chunk), "size {size}");

                let mut r = VaultReader::open(fs::File::open(&path).unwrap(), &key).unwrap();
                assert_eq!((r.len(), r.id(), r.chunk_size()), (size as u64, id, chunk));
                assert_eq!(r.is_empty(), size == 0);
                let mut back = Vec::new();
                r.read_to_end(&mut back).unwrap();
                assert!(back == data, "chunk {chunk} size {size} piece {piece}");
                fs::remove_file(&path).unwrap();
            }
        }
    }
}

#[test]
fn large_files_stay_within_one_percent() {
    for chunk in [16 * 1024, DEFAULT_CHUNK_SIZE] {
        let len = 100 * 1024 * 1024;
        let overhead = stored_len(len, chunk) - len;
        assert!(
            overhead * 100 < len,
            "chunk {chunk}: {overhead} bytes overhead"
        );
    }
    assert_eq!(stored_len(0, SMALL), 32 + 89);
    assert_eq!(stored_len(u64::MAX, SMALL), u64::MAX);
}

#[test]
fn read_at_random_offsets_matches_plaintext() {
    let dir = TempDir::new().unwrap();
    let key = FileKey::generate();
    let mut rng = StdRng::seed_from_u64(7);
    for (chunk, size) in [
        (SMALL, 10 * 1024 + 77),
        (DEFAULT_CHUNK_SIZE, 300 * 1024 + 5),
    ] {
        let data = random_bytes(size, 1);
        let path = dir.path().join(format!("r{chunk}"));
        write_file(&path, &key, FileId::generate(), chunk, &data, size);
        let mut r = VaultReader::open(fs::File::open(&path).unwrap(), &key).unwrap();
        for _ in 0..300 {
            let offset = rng.gen_range(0..size + 100);
            let len = rng.gen_range(0..2 * chunk as usize + 10);
            let mut buf = vec![0u8; len];
            let n = r.read_at(offset as u64, &mut buf).unwrap();
            let expect = &data[offset.min(size)..(offset + len).min(size)];
            assert_eq!(n, expect.len(), "offset {offset} len {len}");
            assert!(&buf[..n] == expect, "offset {offset} len {len}");
        }
        let mut buf = [0u8; 10];
        assert_eq!(r.read_at(size as u64, &mut buf).unwrap(), 0);
        assert_eq!(r.read_at(size as u64 + 1, &mut buf).unwrap(), 0);
        assert_eq!(r.read_at(u64::MAX, &mut buf).unwrap(), 0);
        assert_eq!(r.read_at(size as u64 - 3, &mut buf).unwrap(), 3);
    }
}

#[test]
fn seek_and_read() {
    let dir = TempDir::new().unwrap();
    let key = FileKey::generate();
    let data = random_bytes(5000, 3);
    let path = dir.path().join("s");
    write_file(&path, &key, FileId::generate(), SMALL, &data, 999);
    let mut r = VaultReader::open(fs::File::open(&path).unwrap(), &key).unwrap();
    let mut buf = [0u8; 100];

    assert_eq!(r.seek(SeekFrom::Start(1000)).unwrap(), 1000);
    r.read_exact(&mut buf).unwrap();
    assert_eq!(&buf[..], &data[1000..1100]);
    assert_eq!(r.stream_position().unwrap(), 1100);
    assert_eq!(r.seek(SeekFrom::Current(-600)).unwrap(), 500);
    r.read_exact(&mut buf).unwrap();
    assert_eq!(&buf[..], &data[500..600]);
    assert_eq!(r.seek(SeekFrom::End(-50)).unwrap(), 4950);
    assert_eq!(r.read(&mut buf).unwrap(), 50);
    assert_eq!(&buf[..50], &data[4950..]);
    assert_eq!(r.read(&mut buf).unwrap(), 0);
    assert_eq!(r.seek(SeekFrom::End(10)).unwrap(), 5010);
    assert_eq!(r.read(&mut buf).unwrap(), 0);
    assert!(r.seek(SeekFrom::Current(-6000)).is_err());
    assert_eq!(r.stream_position().unwrap(), 5010);
    r.rewind().unwrap();
    let mut all = Vec::new();
    r.read_to_end(&mut all).unwrap();
    assert_eq!(all, data);
}

/// A file of 5 full small chunks and a partial one, plus a helper to check
/// that a tampered copy gives an error and never wrong plaintext.
struct Tamper {
    dir: TempDir,
    key: FileKey,
    data: Vec<u8>,
    blob: Vec<u8>,
}

impl Tamper {
    fn new() -> Tamper {
        let key = FileKey::generate();
        let data = random_bytes(5 * SMALL as usize + 300, 11);
        let blob = seal(&key, FileId::generate(), SMALL, &data);
        Tamper {
            dir: TempDir::new().unwrap(),
            key,
            data,
            blob,
        }
    }

    /// Asserts `blob` is rejected, returns the error.
    fn rejects(&self, blob: &[u8], what: &str) -> VaultError {
        match open_and_read(&self.dir, blob, &self.key) {
            Ok(plain) => panic!(
                "{what}: accepted (plaintext {})",
                if plain == self.data {
                    "intact"
                } else {
                    "WRONG"
                }
            ),
            Err(e) => e,
        }
    }

    fn rejects_corrupt(&self, blob: &[u8], what: &str, says: &str) {
        match self.rejects(blob, what) {
            VaultError::Corrupt(msg) => assert!(msg.contains(says), "{what}: {msg}"),
            e => panic!("{what}: {e:?}"),
        }
    }
}

#[test]
fn intact_tamper_fixture_opens() {
    let t = Tamper::new();
    assert_eq!(open_and_read(&t.dir, &t.blob, &t.key).unwrap(), t.data);
    assert_eq!(split(&t.blob).1.len(), 6);
}

#[test]
fn reordered_dropped_and_duplicated_chunks_are_detected() {
    let t = Tamper::new();
    let (header, tokens) = split(&t.blob);

    let mut swapped = tokens.clone();
    swapped.swap(1, 2);
    t.rejects_corrupt(&join(&header, &swapped), "swap", "out of place");

    let mut first_last = tokens.clone();
    first_last.swap(0, 4);
    t.rejects_corrupt(&join(&header, &first_last), "swap 0 and 4", "out of place");

    let mut dropped = tokens.clone();
    dropped.remove(2);
    t.rejects_corrupt(&join(&header, &dropped), "drop", "out of place");

    let mut duplicated = tokens.clone();
    duplicated.insert(3, tokens[2].clone());
    t.rejects_corrupt(&join(&header, &duplicated), "duplicate", "out of place");
}

#[test]
fn truncation_is_detected_at_open() {
    let t = Tamper::new();
    let (header, tokens) = split(&t.blob);
    let path = t.dir.path().join("trunc");
    for keep in 1..tokens.len() {
        let blob = join(&header, &tokens[..keep]);
        t.rejects_corrupt(&blob, "truncate at token boundary", "not marked final");
        fs::write(&path, &blob).unwrap();
        assert!(VaultReader::open(fs::File::open(&path).unwrap(), &t.key).is_err());
    }
    t.rejects_corrupt(&header, "header only", "no chunks");
    for cut in [1, 15, 16, 17, 32, 100, 200, 1000, 1100] {
        let blob = &t.blob[..t.blob.len() - cut];
        fs::write(&path, blob).unwrap();
        let err = VaultReader::open(fs::File::open(&path).unwrap(), &t.key);
        assert!(
            matches!(err, Err(VaultError::Corrupt(_))),
            "cut {cut}: {err:?}"
        );
    }
    for len in [0, 5, 8, 20, 31] {
        let e = t.rejects(&t.blob[..len], "short header");
        assert!(
            matches!(e, VaultError::NotAVault | VaultError::Corrupt(_)),
            "{len}: {e:?}"
        );
    }
}

#[test]
fn appended_tokens_and_bytes_are_detected() {
    let t = Tamper::new();
    let (header, tokens) = split(&t.blob);

    let mut again = tokens.clone();
    again.push(tokens[5].clone());
    t.rejects_corrupt(&join(&header, &again), "append last token", "");
    let mut full = tokens.clone();
    full.push(tokens[2].clone());
    t.rejects_corrupt(&join(&header, &full), "append a full token", "");

    // A file ending on a full chunk: the appended copy of the (full-length)
    // final token lands exactly on a token boundary.
    let data = random_bytes(3 * SMALL as usize, 5);
    let blob = seal(&t.key, FileId::generate(), SMALL, &data);
    let (h, mut toks) = split(&blob);
    toks.push(toks[2].clone());
    t.rejects_corrupt(&join(&h, &toks), "append final token on boundary", "");
    toks.pop();
    toks.push(toks[1].clone());
    t.rejects_corrupt(&join(&h, &toks), "append middle token on boundary", "");

    for junk in [1usize, 16, 57, 89, 100, 5000] {
        let mut blob = t.blob.clone();
        blob.extend(std::iter::repeat_n(0xa5u8, junk));
        t.rejects_corrupt(&blob, "append junk", "");
    }
}

#[test]
fn chunk_from_another_file_with_the_same_key_is_detected() {
    let t = Tamper::new();
    let other = seal(&t.key, FileId::generate(), SMALL, &t.data);
    let (header, mut tokens) = split(&t.blob);
    let (_, other_tokens) = split(&other);

    tokens[2] = other_tokens[2].clone();
    t.rejects_corrupt(&join(&header, &tokens), "splice middle", "another file");
    let (_, mut tokens) = split(&t.blob);
    tokens[5] = other_tokens[5].clone();
    t.rejects_corrupt(&join(&header, &tokens), "splice last", "another file");
    let (_, mut tokens) = split(&t.blob);
    tokens[0] = other_tokens[0].clone();
    t.rejects_corrupt(&join(&header, &tokens), "splice first", "another file");
    // The other file's header with our tokens: every chunk has the wrong id.
    let (other_header, _) = split(&other);
    let (_, tokens) = split(&t.blob);
    t.rejects_corrupt(&join(&other_header, &tokens), "swap header", "another file");
}

#[test]
fn every_single_bit_flip_is_detected() {
    let t = Tamper::new();
    let mut positions: Vec<(usize, u8)> = Vec::new();
    // Every bit of the header, and of the first token's fixed fields.
    for i in 0..HEADER_LEN + 57 {
        for bit in 0..8 {
            positions.push((i, bit));
        }
    }
    // A spread over the rest, including the last token's MAC.
    positions.extend(
        (HEADER_LEN + 57..t.blob.len())
            .step_by(13)
            .map(|i| (i, (i % 8) as u8)),
    );
    positions.extend((t.blob.len() - 40..t.blob.len()).map(|i| (i, 0)));
    for (i, bit) in positions {
        let mut blob = t.blob.clone();
        blob[i] ^= 1 << bit;
        t.rejects(&blob, &format!("flip byte {i} bit {bit}"));
    }
}

#[test]
fn header_errors_are_specific() {
    let t = Tamper::new();
    let mut blob = t.blob.clone();
    blob[0] = b'S';
    assert!(matches!(t.rejects(&blob, "magic"), VaultError::NotAVault));
    let mut blob = t.blob.clone();
    blob[8] = 2;
    assert!(matches!(
        t.rejects(&blob, "version"),
        VaultError::UnsupportedVersion(2)
    ));
    let mut blob = t.blob.clone();
    blob[12..16].copy_from_slice(&1000u32.to_be_bytes());
    assert!(matches!(
        t.rejects(&blob, "chunk size"),
        VaultError::BadChunkSize(1000)
    ));
    assert!(matches!(t.rejects(b"", "empty"), VaultError::NotAVault));
    let h = read_header(&t.blob[..]).unwrap();
    assert_eq!((h.version, h.chunk_size), (1, SMALL));
    assert!(matches!(
        read_header(&b"not a vault at all, just some text"[..]),
        Err(VaultError::NotAVault)
    ));
}

#[test]
fn wrong_key_is_reported_at_open() {
    let t = Tamper::new();
    let other = FileKey::generate();
    let path = t.dir.path().join("wk");
    fs::write(&path, &t.blob).unwrap();
    assert!(matches!(
        VaultReader::open(fs::File::open(&path).unwrap(), &other),
        Err(VaultError::WrongKey)
    ));
    let single = seal(&t.key, FileId::generate(), SMALL, b"tiny");
    fs::write(&path, &single).unwrap();
    assert!(matches!(
        VaultReader::open(fs::File::open(&path).unwrap(), &other),
        Err(VaultError::WrongKey)
    ));
    // With the right key, a damaged chunk 0 is damage, not a wrong key.
    let mut blob = t.blob.clone();
    blob[HEADER_LEN + 100] ^= 4;
    t.rejects_corrupt(&blob, "damaged chunk 0", "chunk 0 fails authentication");
}

#[test]
fn errors_through_read_are_invalid_data_wrapping_vault_error() {
    let t = Tamper::new();
    let (header, mut tokens) = split(&t.blob);
    tokens.swap(2, 3);
    let blob = join(&header, &tokens);
    let mut r = VaultReader::open(io::Cursor::new(blob), &t.key).unwrap();
    let err = r.read_to_end(&mut Vec::new()).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    let inner = err.get_ref().unwrap().downcast_ref::<VaultError>().unwrap();
    assert!(matches!(inner, VaultError::Corrupt(m) if m.contains("chunk 2")));
}

#[test]
fn writer_validates_chunk_size_and_poisons_on_io_error() {
    let key = FileKey::generate();
    for bad in [0, 512, 1000, 3000, 65535, 32 << 20] {
        assert!(matches!(
            VaultWriter::new(Vec::new(), &key, FileId::generate(), bad),
            Err(VaultError::BadChunkSize(b)) if b == bad
        ));
    }

    /// Accepts `room` bytes, then fails.
    struct Full {
        room: usize,
    }
    impl Write for Full {
        fn write(&mut self, b: &[u8]) -> io::Result<usize> {
            if self.room == 0 {
                return Err(io::Error::other("disk full"));
            }
            let n = b.len().min(self.room);
            self.room -= n;
            Ok(n)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }
    let mut w = VaultWriter::new(Full { room: 1500 }, &key, FileId::generate(), SMALL).unwrap();
    // More than one batch of chunks, so sealing (and the error) happens
    // during the writes.
    let data = random_bytes(20 * SMALL as usize, 2);
    assert!(w.write_all(&data).is_err());
    assert!(w.write_all(&data).is_err());
    assert!(w.finish().is_err());
}

#[test]
fn every_token_opens_with_the_fernet_crate() {
    let key = FileKey::generate();
    let id = FileId::generate();
    let data = random_bytes(19 * SMALL as usize + 10, 4);
    let blob = seal(&key, id, SMALL, &data);
    let fernet = fernet::Fernet::new(&key.to_text()).unwrap();
    let (_, tokens) = split(&blob);
    let mut joined = Vec::new();
    for (i, token) in tokens.iter().enumerate() {
        let plain = fernet.decrypt(&URL_SAFE.encode(token)).unwrap();
        assert_eq!(&plain[..16], &id.0);
        assert_eq!(&plain[16..24], &(i as u64).to_be_bytes());
        assert_eq!(plain[24], u8::from(i == tokens.len() - 1));
        joined.extend_from_slice(&plain[25..]);
    }
    assert_eq!(joined, data);
}

#[test]
fn clock_set_back_still_opens() {
    let dir = TempDir::new().unwrap();
    let key = FileKey::generate();
    let data = random_bytes(2 * SMALL as usize + 1, 9);
    let path = dir.path().join("future");
    let mut w = VaultWriter::new(
        fs::File::create(&path).unwrap(),
        &key,
        FileId::generate(),
        SMALL,
    )
    .unwrap()
    .stamped(now() + 86_400);
    w.write_all(&data).unwrap();
    w.finish().unwrap();

    let blob = fs::read(&path).unwrap();
    let mut r = VaultReader::open(fs::File::open(&path).unwrap(), &key).unwrap();
    let mut back = Vec::new();
    r.read_to_end(&mut back).unwrap();
    assert_eq!(back, data);

    // The pitfall is real: the fernet crate refuses tokens from the future.
    let fernet = fernet::Fernet::new(&key.to_text()).unwrap();
    let (_, tokens) = split(&blob);
    let stamp = u64::from_be_bytes(tokens[0][1..9].try_into().unwrap());
    assert!(stamp.abs_diff(now() + 86_400) < 10, "stamp {stamp}");
    for token in &tokens {
        assert!(fernet.decrypt(&URL_SAFE.encode(token)).is_err());
    }

    // And a blob stamped at the epoch (clock far ahead of it) opens too.
    let old = {
        let mut w = VaultWriter::new(Vec::new(), &key, FileId::generate(), SMALL)
            .unwrap()
            .stamped(0);
        w.write_all(&data).unwrap();
        w.finish().unwrap().0
    };
    assert_eq!(open_and_read(&dir, &old, &key).unwrap(), data);
}

#[test]
fn file_key_text_round_trips_and_interoperates() {
    let key = FileKey::generate();
    let text = key.to_text();
    assert_eq!(text.len(), 44);
    assert!(text.ends_with('='));
    assert!(fernet::Fernet::new(&text).is_some());
    let again = FileKey::parse(&text).unwrap();
    assert_eq!(*again.to_text(), *text);
    // Surrounding whitespace and a missing pad are fine.
    let padded = format!("  {}\n", &*text);
    assert_eq!(*FileKey::parse(&padded).unwrap().to_text(), *text);
    assert_eq!(*FileKey::parse(&text[..43]).unwrap().to_text(), *text);
    // A key from the fernet crate parses.
    let from_crate = fernet::Fernet::generate_key();
    assert_eq!(*FileKey::parse(&from_crate).unwrap().to_text(), from_crate);
    // Keys differ.
    assert_ne!(*FileKey::generate().to_text(), *text);
}

#[test]
fn bad_key_text_is_rejected_without_echo() {
    let garbage = [
        "",
        "hunter2-secret-password",
        "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8==",
        "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh", // 42 characters
        "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh+=", // standard alphabet
        "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh9=", // stray low bits
        "AAECAwQFBgcICQoLDA0ODx AREhMUFRYXGBkaGxwdHh8=",
        "ÄAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
    ];
    for g in garbage {
        let err = FileKey::parse(g).unwrap_err();
        assert!(matches!(err, VaultError::BadKey), "{g:?}");
        let shown = format!("{err} {err:?}");
        assert!(g.is_empty() || !shown.contains(g), "{shown}");
        assert!(!shown.contains("hunter2"));
    }
}

#[test]
fn debug_never_shows_a_key() {
    let key = FileKey::generate();
    let shown = format!("{key:?} {:?}", Some(key.clone()));
    assert!(shown.contains("FileKey(<redacted>)"));
    assert!(!shown.contains(&key.to_text()[..20]));
}

#[test]
fn file_id_hex() {
    let id = FileId::generate();
    assert_eq!(id.to_hex().len(), 32);
    assert_eq!(id.to_string(), id.to_hex());
    assert_eq!(FileId::from_hex(&id.to_hex()), Some(id));
    assert_eq!(FileId::from_hex(&id.to_hex().to_uppercase()), Some(id));
    for bad in [
        "",
        "abc",
        &id.to_hex()[..31],
        &format!("{}0", id.to_hex()),
        "zz",
    ] {
        assert_eq!(FileId::from_hex(bad), None, "{bad}");
    }
    assert_ne!(FileId::generate(), id);
}

// The test vector in FORMAT.md (generated independently with Python's
// cryptography, `Fernet._encrypt_from_parts`).
const VECTOR_KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
const VECTOR_BLOB: &str = "7366737661756c740100000000000400a0a1a2a3a4a5a6a7a8a9aaabacadaeaf\
80000000006553f100404142434445464748494a4b4c4d4e4f\
b61dac076626446e6ff321a21780be98f0c859eb31dd05c4fcafd2fe6224fbbc\
b1ca4c747dc754e1e8cd2fe56c46dd472cfd8725eafc8ac0abc4f72795ccc18f\
64783549e8a5982fff88adb30acb3c01";

#[test]
fn format_md_test_vector() {
    let key = FileKey::parse(VECTOR_KEY).unwrap();
    let id = FileId::from_hex("a0a1a2a3a4a5a6a7a8a9aaabacadaeaf").unwrap();
    let iv: [u8; 16] = std::array::from_fn(|i| 0x40 + i as u8);
    let header = Header {
        version: 1,
        chunk_size: SMALL,
        id,
    };
    let mut blob = header.encode().to_vec();
    blob.extend(format::seal_chunk(
        &key,
        id,
        0,
        true,
        b"hello, vault\n",
        1_700_000_000,
        iv,
    ));
    assert_eq!(hex::encode(&blob), VECTOR_BLOB);
    assert_eq!(blob.len() as u64, stored_len(13, SMALL));

    let mut r = VaultReader::open(io::Cursor::new(blob), &key).unwrap();
    let mut text = String::new();
    r.read_to_string(&mut text).unwrap();
    assert_eq!(text, "hello, vault\n");
    assert_eq!(r.id(), id);

    // FORMAT.md carries the same vector.
    let spec = fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("FORMAT.md")).unwrap();
    let spec_hex: String = spec.split_whitespace().collect();
    assert!(spec_hex.contains(VECTOR_BLOB), "FORMAT.md lacks the vector");
    assert!(spec.contains(VECTOR_KEY));
}

/// Whether python3 with the cryptography package is here. Under CI it must be.
fn python_fernet_available() -> bool {
    let probe = Command::new("python3")
        .args(["-c", "import cryptography.fernet"])
        .output();
    if matches!(probe, Ok(ref o) if o.status.success()) {
        return true;
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "python3 with the cryptography package is required under CI"
    );
    eprintln!("skipped: python3 with the cryptography package is not available");
    false
}

/// Runs tests/fernet_interop.py on `blob`: (exit status ok, its output).
fn python_fernet(dir: &Path, key: &FileKey, blob: &[u8], plain: &[u8]) -> (bool, String) {
    let paths: Vec<PathBuf> = ["key", "blob", "plain"]
        .iter()
        .map(|n| dir.join(n))
        .collect();
    fs::write(&paths[0], format!("{}\n", &*key.to_text())).unwrap();
    fs::write(&paths[1], blob).unwrap();
    fs::write(&paths[2], plain).unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fernet_interop.py");
    let out = Command::new("python3")
        .arg(script)
        .args(&paths)
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

#[test]
fn python_cryptography_decrypts_blobs() {
    if !python_fernet_available() {
        return;
    }
    let dir = TempDir::new().unwrap();
    let key = FileKey::generate();
    let cases = [
        (SMALL, 0),
        (SMALL, 1),
        (SMALL, SMALL as usize),
        (SMALL, 4 * SMALL as usize + 17),
        (DEFAULT_CHUNK_SIZE, 3 * DEFAULT_CHUNK_SIZE as usize + 1000),
    ];
    for (chunk, size) in cases {
        let data = random_bytes(size, 21);
        let blob = seal(&key, FileId::generate(), chunk, &data);
        let (ok, out) = python_fernet(dir.path(), &key, &blob, &data);
        assert!(ok, "chunk {chunk} size {size}: {out}");
        // And Python notices tampering too: swap the first two chunks.
        if size > chunk as usize {
            let (header, mut tokens) = split(&blob);
            tokens.swap(0, 1);
            let (ok, out) = python_fernet(dir.path(), &key, &join(&header, &tokens), &data);
            assert!(!ok, "python accepted swapped chunks: {out}");
        }
    }
    // The FORMAT.md vector.
    let key = FileKey::parse(VECTOR_KEY).unwrap();
    let blob = hex::decode(VECTOR_BLOB).unwrap();
    let (ok, out) = python_fernet(dir.path(), &key, &blob, b"hello, vault\n");
    assert!(ok, "{out}");
}
