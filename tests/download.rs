//! Downloads with read-ahead: whatever order a front door reads in
//! (sequential pieces, jumps back and forth, reads across batches, past the
//! end), it gets exactly the file's bytes; a damaged chunk is an error for
//! the reads that touch it and leaves the rest of the file readable.

use std::fs;
use std::io::Write;
use std::path::Path;

use rand::rngs::StdRng;
use rand::{Rng, RngCore, SeedableRng};
use sfs::core::download::Download;
use sfs::core::{ErrorKind, FilesError};
use sfs::vault::format::token_len;
use sfs::vault::{FileId, FileKey, VaultReader, VaultWriter, HEADER_LEN};
use tempfile::TempDir;

fn random_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut data = vec![0u8; len];
    StdRng::seed_from_u64(seed).fill_bytes(&mut data);
    data
}

fn store(path: &Path, key: &FileKey, chunk: u32, data: &[u8]) {
    let mut w = VaultWriter::new(
        fs::File::create(path).unwrap(),
        key,
        FileId::generate(),
        chunk,
    )
    .unwrap();
    w.write_all(data).unwrap();
    w.finish().unwrap();
}

fn open(path: &Path, key: &FileKey) -> Download {
    let open_file = sfs::core::budgets::OpenFiles::new(1).take().unwrap();
    Download::new(
        VaultReader::open(
            Box::new(fs::File::open(path).unwrap()) as Box<dyn sfs::storage::BlobReader>,
            key,
        )
        .unwrap(),
        open_file,
    )
}

async fn check(download: &mut Download, data: &[u8], offset: usize, len: usize) {
    let got = download.read_at(offset as u64, len).await.unwrap();
    let end = offset
        .saturating_add(len)
        .min(data.len())
        .max(offset.min(data.len()));
    assert!(
        got == data[offset.min(data.len())..end],
        "read of {len} at {offset}: {} bytes back",
        got.len()
    );
}

#[tokio::test]
async fn every_read_order_returns_the_files_bytes() {
    let dir = TempDir::new().unwrap();
    let key = FileKey::generate();
    for chunk in [1024u32, 64 * 1024] {
        let data = random_bytes(1_000_003, u64::from(chunk));
        let path = dir.path().join(format!("blob-{chunk}"));
        store(&path, &key, chunk, &data);

        // Sequential, as sftp, scp and `get` read.
        let mut download = open(&path, &key);
        let mut offset = 0;
        while offset < data.len() {
            check(&mut download, &data, offset, 32 * 1024).await;
            offset += 32 * 1024;
        }
        check(&mut download, &data, data.len(), 10).await;

        // Jumps: back to the start, ahead past the read-ahead, a read that
        // spans several batches, the last byte, and past the end.
        let mut download = open(&path, &key);
        for (offset, len) in [
            (0, 100),
            (500_000, 70_000),
            (0, 10),
            (10, 5),
            (900_000, 100_003),
            (1, 400_000),
            (data.len() - 1, 1),
            (data.len() + 5, 1),
            (300_000, 0),
        ] {
            check(&mut download, &data, offset, len).await;
        }

        // Seeded random reads, each checked.
        let mut rng = StdRng::seed_from_u64(9);
        let mut download = open(&path, &key);
        for _ in 0..300 {
            let offset = rng.gen_range(0..data.len() + 100);
            let len = rng.gen_range(0..200_000);
            check(&mut download, &data, offset, len).await;
        }
    }
}

#[tokio::test]
async fn a_damaged_chunk_fails_only_the_reads_that_touch_it() {
    let dir = TempDir::new().unwrap();
    let key = FileKey::generate();
    let chunk = 1024usize;
    let data = random_bytes(600 * chunk + 17, 3);
    let path = dir.path().join("blob");
    store(&path, &key, chunk as u32, &data);
    // Flip a byte inside chunk 300 (neither the first nor the last chunk,
    // which opening checks).
    let mut blob = fs::read(&path).unwrap();
    blob[HEADER_LEN + 300 * token_len(chunk as u64) as usize + 40] ^= 1;
    fs::write(&path, &blob).unwrap();

    // Everything up to the damage reads, although the read-ahead batches
    // that cover the damaged chunk fail.
    let mut download = open(&path, &key);
    check(&mut download, &data, 0, 100 * chunk).await;
    check(&mut download, &data, 100 * chunk, 200 * chunk).await;
    let mut download = open(&path, &key);
    check(&mut download, &data, 250 * chunk, 50 * chunk).await;
    match download.read_at(299 * chunk as u64, 2 * chunk).await {
        Err(e @ FilesError::Damaged(_)) => {
            assert_eq!(e.kind(), ErrorKind::Internal);
            assert!(e.to_string().contains("damaged"), "{e}");
        }
        other => panic!("corruption expected, got {other:?}"),
    }
    // The rest of the file stays readable, before and after the damage.
    check(&mut download, &data, 310 * chunk, 100 * chunk).await;
    check(&mut download, &data, 5, 1000).await;
}
