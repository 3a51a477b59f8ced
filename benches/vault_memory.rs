//! Constant memory: streams 1 GiB through `VaultWriter` into a temp file and
//! back through `VaultReader`, generating and checking the data on the fly,
//! then prints the throughput and the peak resident memory (VmHWM), which
//! must stay under 64 MiB. Run with `cargo bench --bench vault_memory`.

use std::fs;
use std::io::{Read, Write};
use std::process::ExitCode;
use std::time::Instant;

use rand::rngs::StdRng;
use rand::{RngCore, SeedableRng};
use sfs::vault::{FileId, FileKey, VaultReader, VaultWriter, DEFAULT_CHUNK_SIZE};

const TOTAL: u64 = 1 << 30;
const BLOCK: usize = 1 << 20;
const LIMIT_MIB: u64 = 64;

/// Block `k` of the stream: random bytes, stamped with `k` so blocks differ.
fn block(base: &[u8], k: u64, out: &mut [u8]) {
    out.copy_from_slice(base);
    out[..8].copy_from_slice(&k.to_le_bytes());
}

/// Peak resident set size in KiB, from /proc/self/status.
fn peak_rss_kib() -> Option<u64> {
    let status = fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn mb_per_s(bytes: u64, secs: f64) -> f64 {
    bytes as f64 / 1e6 / secs
}

fn main() -> ExitCode {
    let mut base = vec![0u8; BLOCK];
    StdRng::seed_from_u64(1).fill_bytes(&mut base);
    let mut buf = vec![0u8; BLOCK];
    let mut expect = vec![0u8; BLOCK];
    let key = FileKey::generate();
    let file = tempfile::NamedTempFile::new().expect("temp file");

    let start = Instant::now();
    let mut w = VaultWriter::new(
        file.reopen().expect("reopen"),
        &key,
        FileId::generate(),
        DEFAULT_CHUNK_SIZE,
    )
    .expect("writer");
    for k in 0..TOTAL / BLOCK as u64 {
        block(&base, k, &mut buf);
        w.write_all(&buf).expect("write");
    }
    let (out, len) = w.finish().expect("finish");
    let write_secs = start.elapsed().as_secs_f64();
    out.sync_all().expect("sync");
    let synced_secs = start.elapsed().as_secs_f64();
    let stored = file.as_file().metadata().expect("metadata").len();

    let start = Instant::now();
    let mut r = VaultReader::open(file.reopen().expect("reopen"), &key).expect("open");
    assert_eq!(r.len(), len);
    for k in 0..TOTAL / BLOCK as u64 {
        r.read_exact(&mut buf).expect("read");
        block(&base, k, &mut expect);
        assert!(buf == expect, "block {k} differs");
    }
    assert_eq!(r.read(&mut buf).expect("read at EOF"), 0);
    let read_secs = start.elapsed().as_secs_f64();

    let peak = peak_rss_kib();
    let overhead = (stored - len) as f64 * 100.0 / len as f64;
    println!(
        "vault_memory: {len} bytes plaintext, {stored} stored ({overhead:.3}% overhead), \
         chunk {DEFAULT_CHUNK_SIZE}"
    );
    println!(
        "  write (VaultWriter -> file): {:.0} MB/s, {:.0} MB/s including fsync",
        mb_per_s(len, write_secs),
        mb_per_s(len, synced_secs)
    );
    println!(
        "  read  (file -> VaultReader, checked): {:.0} MB/s",
        mb_per_s(len, read_secs)
    );
    match peak {
        Some(kib) => {
            let ok = kib < LIMIT_MIB * 1024;
            println!(
                "  peak RSS (VmHWM): {:.1} MiB — {} the {LIMIT_MIB} MiB limit",
                kib as f64 / 1024.0,
                if ok { "under" } else { "OVER" }
            );
            if ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        None => {
            println!("  peak RSS: unavailable (no /proc/self/status)");
            ExitCode::SUCCESS
        }
    }
}
