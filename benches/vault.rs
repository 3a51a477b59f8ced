//! Vault throughput against its references, and the chunk-size trade-off.
//!
//! - `throughput`: 64 MiB through the vault, through the `fernet` crate in
//!   one token, and through the bare primitives (AES-128-CBC + HMAC-SHA256,
//!   the same crates), which bound what any Fernet-based format can do.
//! - `chunk_size`: encrypt+decrypt of 16 MiB through a file, and 4 KiB
//!   random reads, at several chunk sizes; `DEFAULT_CHUNK_SIZE` is chosen
//!   from these.

use std::fs::File;
use std::hint::black_box;
use std::io::{self, Cursor, Read, Write};
use std::time::Duration;

use aes::cipher::block_padding::Pkcs7;
use aes::cipher::{BlockDecryptMut, BlockEncryptMut, KeyIvInit};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use hmac::{Hmac, Mac};
use rand::rngs::StdRng;
use rand::{Rng, RngCore, SeedableRng};
use sfs::vault::{stored_len, FileId, FileKey, VaultReader, VaultWriter, DEFAULT_CHUNK_SIZE};
use sha2::Sha256;

const MIB: usize = 1024 * 1024;

fn random(len: usize) -> Vec<u8> {
    let mut data = vec![0u8; len];
    StdRng::seed_from_u64(1).fill_bytes(&mut data);
    data
}

fn vault_encrypt(key: &FileKey, chunk: u32, data: &[u8], out: &mut Vec<u8>) {
    out.clear();
    let mut w = VaultWriter::new(&mut *out, key, FileId::generate(), chunk).unwrap();
    w.write_all(data).unwrap();
    w.finish().unwrap();
}

fn vault_decrypt(key: &FileKey, blob: &[u8], out: &mut [u8]) {
    let mut r = VaultReader::open(Cursor::new(blob), key).unwrap();
    r.read_exact(out).unwrap();
}

fn seal(key: &FileKey, chunk: u32, data: &[u8]) -> Vec<u8> {
    let mut blob = Vec::with_capacity(stored_len(data.len() as u64, chunk) as usize);
    vault_encrypt(key, chunk, data, &mut blob);
    blob
}

fn throughput(c: &mut Criterion) {
    let data = random(64 * MIB);
    let key = FileKey::generate();
    let blob = seal(&key, DEFAULT_CHUNK_SIZE, &data);
    let mut out = Vec::with_capacity(blob.len());
    let mut plain = vec![0u8; data.len()];

    let mut g = c.benchmark_group("throughput_64MiB");
    g.sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5))
        .throughput(Throughput::Bytes(data.len() as u64));

    g.bench_function("vault_encrypt", |b| {
        b.iter(|| vault_encrypt(&key, DEFAULT_CHUNK_SIZE, &data, &mut out))
    });
    g.bench_function("vault_decrypt", |b| {
        b.iter(|| vault_decrypt(&key, &blob, &mut plain))
    });
    // The vault writer into io::sink, to show the Vec copy costs nothing.
    g.bench_function("vault_encrypt_to_sink", |b| {
        b.iter(|| {
            let mut w =
                VaultWriter::new(io::sink(), &key, FileId::generate(), DEFAULT_CHUNK_SIZE).unwrap();
            w.write_all(&data).unwrap();
            w.finish().unwrap()
        })
    });

    let fernet = fernet::Fernet::new(&key.to_text()).unwrap();
    let token = fernet.encrypt(&data);
    g.bench_function("fernet_crate_encrypt", |b| {
        b.iter(|| black_box(fernet.encrypt(&data)))
    });
    g.bench_function("fernet_crate_decrypt", |b| {
        b.iter(|| black_box(fernet.decrypt(&token).unwrap()))
    });

    // The primitive limit: what Fernet costs without base64, framing or
    // token structure. Both sides copy the data once, as the vault must.
    let enc_key = [7u8; 16];
    let mac_key = [9u8; 16];
    let iv = [3u8; 16];
    let mut buf = vec![0u8; data.len() + 16];
    buf[..data.len()].copy_from_slice(&data);
    let tag = primitive_encrypt(&enc_key, &mac_key, &iv, &mut buf, data.len());
    let ciphertext = buf.clone();
    g.bench_function("primitives_aes_cbc_encrypt+hmac", |b| {
        b.iter(|| {
            buf[..data.len()].copy_from_slice(&data);
            black_box(primitive_encrypt(
                &enc_key,
                &mac_key,
                &iv,
                &mut buf,
                data.len(),
            ))
        })
    });
    g.bench_function("primitives_hmac_verify+aes_cbc_decrypt", |b| {
        b.iter(|| {
            buf.copy_from_slice(&ciphertext);
            let mut mac = Hmac::<Sha256>::new_from_slice(&mac_key).unwrap();
            mac.update(&buf);
            mac.verify_slice(&tag).unwrap();
            let plain = cbc::Decryptor::<aes::Aes128>::new(&enc_key.into(), &iv.into())
                .decrypt_padded_mut::<Pkcs7>(&mut buf)
                .unwrap();
            black_box(plain.len())
        })
    });
    g.finish();
}

/// AES-128-CBC (PKCS7) of `buf[..len]` in place, then HMAC-SHA256 over the
/// ciphertext; returns the tag.
fn primitive_encrypt(
    enc_key: &[u8; 16],
    mac_key: &[u8; 16],
    iv: &[u8; 16],
    buf: &mut [u8],
    len: usize,
) -> [u8; 32] {
    let ct = cbc::Encryptor::<aes::Aes128>::new(enc_key.into(), iv.into())
        .encrypt_padded_mut::<Pkcs7>(buf, len)
        .unwrap();
    let mut mac = Hmac::<Sha256>::new_from_slice(mac_key).unwrap();
    mac.update(ct);
    mac.finalize().into_bytes().into()
}

fn chunk_sizes(c: &mut Criterion) {
    let data = random(16 * MIB);
    let key = FileKey::generate();
    let sizes = [16 * 1024, 64 * 1024, 256 * 1024, 1024 * 1024];

    // Through a real (page-cached) file, as the store uses it: one write or
    // read call per token, so per-chunk syscall costs show up here.
    let dir = tempfile::tempdir().unwrap();
    let mut g = c.benchmark_group("chunk_size_16MiB_file_encrypt+decrypt");
    g.sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .throughput(Throughput::Bytes(2 * data.len() as u64));
    for &size in &sizes {
        let path = dir.path().join(kib(size));
        let mut plain = vec![0u8; data.len()];
        g.bench_with_input(BenchmarkId::from_parameter(kib(size)), &size, |b, &size| {
            b.iter(|| {
                let file = File::create(&path).unwrap();
                let mut w = VaultWriter::new(file, &key, FileId::generate(), size).unwrap();
                w.write_all(&data).unwrap();
                w.finish().unwrap();
                let mut r = VaultReader::open(File::open(&path).unwrap(), &key).unwrap();
                r.read_exact(&mut plain).unwrap();
            })
        });
    }
    g.finish();

    let mut g = c.benchmark_group("chunk_size_random_4KiB_read_at");
    g.sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .throughput(Throughput::Bytes(4096));
    for &size in &sizes {
        let blob = seal(&key, size, &data);
        let mut r = VaultReader::open(Cursor::new(blob), &key).unwrap();
        let mut rng = StdRng::seed_from_u64(2);
        let mut buf = vec![0u8; 4096];
        g.bench_with_input(BenchmarkId::from_parameter(kib(size)), &size, |b, _| {
            b.iter(|| {
                let at = rng.gen_range(0..data.len() as u64 - 4096);
                r.read_at(at, &mut buf).unwrap()
            })
        });
    }
    g.finish();
}

fn kib(size: u32) -> String {
    format!("{}KiB", size / 1024)
}

criterion_group!(benches, throughput, chunk_sizes);
criterion_main!(benches);
