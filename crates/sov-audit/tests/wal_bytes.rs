//! `verify_wal_bytes` (the WAL scan over bytes in memory, fuzzed by `fuzz/`'s `wal` target) agrees
//! with the scan of the file; and the `wal` target's seed corpus, written from a real log by
//! `cargo test -p sov-audit --test wal_bytes -- --ignored`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::PathBuf;

use common::{Env, draft, wal_records};
use sov_audit::{AuditError, WalReport, verify_wal, verify_wal_bytes};

/// A log with `n` entries, each appended on its own (so each is its own batch), closed.
fn log_with(n: u64) -> Env {
    let env = Env::new();
    let (log, _) = env.open();
    for i in 0..n {
        log.append(draft(i)).unwrap();
    }
    log.close().unwrap();
    env
}

/// The scan of `bytes` in memory and, written as the log's WAL, of the file.
fn both(env: &Env, bytes: &[u8]) -> [Result<WalReport, AuditError>; 2] {
    std::fs::write(env.wal(), bytes).unwrap();
    [verify_wal_bytes(bytes), verify_wal(&env.dir)]
}

fn corrupt_offset(r: &Result<WalReport, AuditError>) -> u64 {
    match r {
        Err(AuditError::Corrupt { offset, .. }) => *offset,
        other => panic!("expected Corrupt, got {other:?}"),
    }
}

#[test]
fn the_bytes_scan_is_the_file_scan() {
    let env = log_with(12);
    let wal = std::fs::read(env.wal()).unwrap();
    let records = wal_records(&wal);

    let [mem, file] = both(&env, &wal);
    let mem = mem.unwrap();
    assert_eq!(mem, file.unwrap());
    assert_eq!((mem.entries, mem.torn_tail_bytes), (12, 0));
    assert_eq!(mem.valid_bytes, wal.len() as u64);

    // A torn tail: half of the last batch.
    let last = records.iter().rev().find(|(_, b)| b.is_some()).unwrap().0;
    let cut = last + (wal.len() - last) / 2;
    let [mem, file] = both(&env, &wal[..cut]);
    let mem = mem.unwrap();
    assert_eq!(mem, file.unwrap());
    assert_eq!((mem.entries, mem.valid_bytes), (11, last as u64));
    assert_eq!(mem.torn_tail_bytes, (cut - last) as u64);

    // Damage inside the log fails at the same offset, in memory and on disk.
    let (at, _) = records.iter().filter(|(_, b)| b.is_some()).nth(5).unwrap();
    let mut bad = wal.clone();
    bad[at + 2 + 3 + 7] ^= 0x02;
    let [mem, file] = both(&env, &bad);
    assert_eq!(corrupt_offset(&mem), *at as u64);
    assert_eq!(corrupt_offset(&file), *at as u64);

    // Empty: no entries, nothing torn.
    let [mem, file] = both(&env, &[]);
    assert_eq!(mem.unwrap(), file.unwrap());
}

fn corpus_dir() -> PathBuf {
    let d = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/wal");
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
#[ignore = "writes fuzz/corpus/wal; run by hand when the WAL format changes"]
fn write_fuzz_corpus() {
    let env = log_with(5);
    let wal = std::fs::read(env.wal()).unwrap();
    let put = |name: &str, bytes: &[u8]| {
        assert!(bytes.len() < 64 * 1024, "{name}: seeds stay small");
        std::fs::write(corpus_dir().join(name), bytes).unwrap();
    };
    put("wal-5-batches", &wal);
    let records = wal_records(&wal);
    let first_end = records.iter().find(|(_, b)| b.is_none()).unwrap().0 + 2;
    put("wal-1", &wal[..first_end]);

    // The same five entries as one batch: the terminators between them dropped.
    let mut one = Vec::new();
    for (_, body) in records
        .iter()
        .filter_map(|(o, b)| b.as_ref().map(|b| (o, b)))
    {
        one.extend_from_slice(&(body.len() as u16).to_be_bytes());
        one.extend_from_slice(body);
    }
    one.extend_from_slice(&[0, 0]);
    assert_eq!(verify_wal_bytes(&one).unwrap().entries, 5);
    put("wal-1-batch", &one);

    // A torn tail: the last batch cut in half.
    let last = records.iter().rev().find(|(_, b)| b.is_some()).unwrap().0;
    let torn = &wal[..last + (wal.len() - last) / 2];
    assert_eq!(
        verify_wal_bytes(torn).unwrap().torn_tail_bytes,
        (torn.len() - last) as u64
    );
    put("wal-torn", torn);
}
