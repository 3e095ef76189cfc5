//! Recovery at open: torn tails, corruption, the signed tree head, tile repair.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::io::Write as _;

use common::{Env, draft, verify_all, wal_records};
use sov_audit::{AuditError, Kind, LogReader, MAX_BATCH_BYTES};
use sov_audit_core::entry::{Entry, Outcome};
use sov_audit_core::hash::leaf_hash;

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

fn append_raw(env: &Env, bytes: &[u8]) {
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(env.wal())
        .unwrap();
    f.write_all(bytes).unwrap();
}

fn wal_len(env: &Env) -> u64 {
    std::fs::metadata(env.wal()).unwrap().len()
}

/// The entry that would come next, validly chained, as a WAL record (length prefix + bytes).
fn next_record(env: &Env) -> Vec<u8> {
    let reader = LogReader::open(&env.dir).unwrap();
    let size = reader.checkpoint().1.size;
    let last = Entry::decode(&reader.entry(size - 1).unwrap()).unwrap();
    let e = Entry {
        index: size,
        time_ms: last.time_ms,
        prev: leaf_hash(&reader.entry(size - 1).unwrap()),
        kind: Kind::Inference,
        node: common::NODE.into(),
        principal: "p".into(),
        resource: "r".into(),
        outcome: Outcome::Ok,
        reason: String::new(),
        model: None,
        input: None,
        output: None,
        attrs: Vec::new(),
    };
    let bytes = e.encode().unwrap();
    let mut rec = (bytes.len() as u16).to_be_bytes().to_vec();
    rec.extend_from_slice(&bytes);
    rec
}

fn check_recovered(env: &Env, size: u64, tail: u64) {
    let before = wal_len(env);
    let (log, rec) = env.open();
    assert_eq!(rec.size, size);
    assert_eq!(rec.truncated_bytes, tail);
    assert!(!rec.unclean);
    let entry = rec.entry.expect("a recovery entry");
    assert_eq!(entry.index, size);
    log.close().unwrap();
    let reader = LogReader::open(&env.dir).unwrap();
    let e = Entry::decode(&reader.entry(size).unwrap()).unwrap();
    assert_eq!(e.kind, Kind::Recovery);
    assert_eq!(e.attr("truncated_bytes"), Some(tail.to_string().as_str()));
    assert_eq!(e.attr("recovered_size"), Some(size.to_string().as_str()));
    assert_eq!(e.attr("unclean"), Some("false"));
    assert_eq!(leaf_hash(&reader.entry(size).unwrap()), entry.leaf);
    // The tail is gone, the recovery entry follows as one batch.
    let wal = std::fs::read(env.wal()).unwrap();
    let recs = wal_records(&wal);
    let n = recs.iter().filter(|(_, b)| b.is_some()).count() as u64;
    assert_eq!(n, size + 1);
    assert!(wal_len(env) < before - tail + 70_000);
    verify_all(&env.dir);
}

#[test]
fn torn_tails_are_truncated_and_recorded() {
    let env = log_with(20);
    type Case = Box<dyn Fn(&Env) -> Vec<u8>>;
    let cases: Vec<Case> = vec![
        // one byte of a length prefix
        Box::new(|_| vec![0x01]),
        // a length prefix and half the entry
        Box::new(|env| {
            let r = next_record(env);
            r[..r.len() / 2].to_vec()
        }),
        // a whole valid next entry, but no terminator
        Box::new(next_record),
        // a valid entry and the start of another
        Box::new(|env| {
            let mut r = next_record(env);
            let again = r.clone();
            r.extend_from_slice(&again[..10]);
            r
        }),
        // zeros, as a filesystem may leave after a crash
        Box::new(|_| vec![0u8; 4096]),
        // random garbage
        Box::new(|_| {
            (0..3000u32)
                .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
                .collect()
        }),
    ];
    // Each case adds one entry: the recovery entry.
    for (size, (i, case)) in (20..).zip(cases.iter().enumerate()) {
        let tail = case(&env);
        append_raw(&env, &tail);
        println!("case {i}: {} bytes", tail.len());
        check_recovered(&env, size, tail.len() as u64);
    }
}

#[test]
fn unclean_stop_is_recorded() {
    let env = log_with(5);
    std::fs::write(env.dir.join("running"), b"").unwrap();
    let (log, rec) = env.open();
    assert_eq!((rec.size, rec.truncated_bytes, rec.unclean), (5, 0, true));
    let a = rec.entry.unwrap();
    assert_eq!(a.index, 5);
    log.close().unwrap();
    let reader = LogReader::open(&env.dir).unwrap();
    let e = Entry::decode(&reader.entry(5).unwrap()).unwrap();
    assert_eq!(e.kind, Kind::Recovery);
    assert_eq!(e.attr("unclean"), Some("true"));
    assert_eq!(e.principal, "system");
    verify_all(&env.dir);
}

/// Offsets of the entry records in the WAL.
fn entry_offsets(env: &Env) -> Vec<usize> {
    let wal = std::fs::read(env.wal()).unwrap();
    wal_records(&wal)
        .into_iter()
        .filter(|(_, b)| b.is_some())
        .map(|(o, _)| o)
        .collect()
}

fn flip(env: &Env, offset: usize, mask: u8) {
    let mut wal = std::fs::read(env.wal()).unwrap();
    wal[offset] ^= mask;
    std::fs::write(env.wal(), wal).unwrap();
}

#[test]
fn corruption_in_the_middle_refuses_to_open() {
    let env = log_with(40);
    let offsets = entry_offsets(&env);
    // Entry layout: 2-byte length, then version(1) kind(2) index(8) time(8) prev(32) ...
    // (what, byte to flip, the record where the chain breaks)
    for (what, delta, mask, breaks) in [
        ("version byte", 2usize, 0x01u8, 17usize),
        ("index", 2 + 3 + 7, 0x02, 17),
        ("prev hash", 2 + 19 + 5, 0x80, 17),
        // a time far in the future: the next entry's time goes backwards
        ("time", 2 + 11, 0x40, 18),
    ] {
        let at = offsets[17] + delta;
        flip(&env, at, mask);
        let before = std::fs::read(env.wal()).unwrap();
        let err = sov_audit::AuditLog::open(&env.dir, env.key(), common::config()).unwrap_err();
        match &err {
            AuditError::Corrupt { offset, .. } => {
                assert_eq!(*offset, offsets[breaks] as u64, "{what}: {err}")
            }
            other => panic!("{what}: expected Corrupt, got {other}"),
        }
        assert!(err.to_string().contains("entries.wal"), "{err}");
        // Nothing was changed.
        assert_eq!(std::fs::read(env.wal()).unwrap(), before);
        flip(&env, at, mask);
    }
    // A damaged length prefix breaks the framing: still refused (the signed tree head covers
    // the entries that would be lost).
    flip(&env, offsets[17], 0x40);
    let err = sov_audit::AuditLog::open(&env.dir, env.key(), common::config()).unwrap_err();
    assert!(
        matches!(
            err,
            AuditError::Corrupt { .. } | AuditError::Inconsistent { .. }
        ),
        "{err}"
    );
    flip(&env, offsets[17], 0x40);
    // Undamaged again: opens.
    let (log, rec) = env.open();
    assert_eq!(rec.size, 40);
    log.close().unwrap();
}

#[test]
fn a_bad_region_longer_than_a_batch_is_corruption() {
    let env = log_with(3);
    let len = wal_len(&env);
    append_raw(&env, &vec![0xAB; MAX_BATCH_BYTES + 10]);
    let err = sov_audit::AuditLog::open(&env.dir, env.key(), common::config()).unwrap_err();
    match &err {
        AuditError::Corrupt { offset, .. } => assert_eq!(*offset, len, "{err}"),
        other => panic!("expected Corrupt, got {other}"),
    }
    assert_eq!(
        wal_len(&env),
        len + MAX_BATCH_BYTES as u64 + 10,
        "untouched"
    );
}

#[test]
fn signed_ahead_of_the_wal_refuses() {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD;
    let env = log_with(30);
    let signed_path = env.dir.join("signed");
    let good = std::fs::read_to_string(&signed_path).unwrap();
    let root = good.lines().nth(1).unwrap().to_owned();

    // Larger size than the WAL holds.
    std::fs::write(&signed_path, format!("35\n{root}\n")).unwrap();
    let err = sov_audit::AuditLog::open(&env.dir, env.key(), common::config()).unwrap_err();
    assert!(
        matches!(
            err,
            AuditError::Inconsistent {
                signed_size: 35,
                ..
            }
        ),
        "{err}"
    );
    let msg = err.to_string();
    assert!(
        msg.contains("35") && msg.contains("30") && msg.contains("signed"),
        "{msg}"
    );

    // Same size, another root.
    std::fs::write(&signed_path, format!("30\n{}\n", b64.encode([9u8; 32]))).unwrap();
    let err = sov_audit::AuditLog::open(&env.dir, env.key(), common::config()).unwrap_err();
    assert!(
        matches!(
            err,
            AuditError::Inconsistent {
                signed_size: 30,
                ..
            }
        ),
        "{err}"
    );

    // A smaller signed size whose root does not match the prefix.
    std::fs::write(&signed_path, format!("10\n{root}\n")).unwrap();
    let err = sov_audit::AuditLog::open(&env.dir, env.key(), common::config()).unwrap_err();
    assert!(
        matches!(
            err,
            AuditError::Inconsistent {
                signed_size: 10,
                ..
            }
        ),
        "{err}"
    );

    // The WAL lost its last entries (cut at a batch boundary): the signed head is ahead.
    std::fs::write(&signed_path, &good).unwrap();
    let offsets = entry_offsets(&env);
    let wal = std::fs::read(env.wal()).unwrap();
    std::fs::write(env.wal(), &wal[..offsets[25]]).unwrap();
    let err = sov_audit::AuditLog::open(&env.dir, env.key(), common::config()).unwrap_err();
    assert!(
        matches!(
            err,
            AuditError::Inconsistent {
                signed_size: 30,
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(
        std::fs::read(env.wal()).unwrap(),
        &wal[..offsets[25]],
        "untouched"
    );
    std::fs::write(env.wal(), &wal).unwrap();

    // A malformed `signed` is an error too, not ignored.
    std::fs::write(&signed_path, "thirty\n").unwrap();
    let err = sov_audit::AuditLog::open(&env.dir, env.key(), common::config()).unwrap_err();
    assert!(matches!(err, AuditError::Malformed { .. }), "{err}");

    // Restored: opens.
    std::fs::write(&signed_path, &good).unwrap();
    let (log, rec) = env.open();
    assert_eq!(rec.size, 30);
    log.close().unwrap();
}

#[test]
fn missing_or_damaged_tiles_are_rebuilt() {
    let env = log_with(600);
    let t0 = std::fs::read(env.dir.join("tile/0/000")).unwrap();
    let b1 = std::fs::read(env.dir.join("tile/entries/001")).unwrap();
    std::fs::remove_file(env.dir.join("tile/0/000")).unwrap();
    let mut bad = b1.clone();
    bad[100] ^= 1;
    std::fs::write(env.dir.join("tile/entries/001"), &bad).unwrap();
    std::fs::remove_dir_all(env.dir.join("tile/1")).unwrap();
    // Tiles are checked and repaired by the full scan; a resumed open no longer reads the old
    // full tiles (tests/resume.rs), so this one goes without the resume point.
    std::fs::remove_file(env.dir.join(sov_audit::RESUME_FILE)).unwrap();
    let (log, rec) = env.open();
    assert_eq!(rec.size, 600);
    assert_eq!(rec.resumed_at, None);
    assert!(rec.entry.is_none());
    log.close().unwrap();
    assert_eq!(std::fs::read(env.dir.join("tile/0/000")).unwrap(), t0);
    assert_eq!(std::fs::read(env.dir.join("tile/entries/001")).unwrap(), b1);
    verify_all(&env.dir);
}

#[test]
fn verify_wal_runs_the_open_scan_without_changing_anything() {
    let env = log_with(40);
    let reader = LogReader::open(&env.dir).unwrap();
    let root = reader.checkpoint().1.root;
    let clean = sov_audit::verify_wal(&env.dir).unwrap();
    assert_eq!(
        (
            clean.entries,
            clean.torn_tail_bytes,
            clean.root,
            clean.compared
        ),
        (40, 0, root, 0)
    );
    assert_eq!(clean.valid_bytes, wal_len(&env));
    assert_eq!(reader.verify_wal().unwrap().compared, 40);

    // A torn tail is reported, not an error, and left alone.
    let half = next_record(&env);
    append_raw(&env, &half[..half.len() / 2]);
    let before = std::fs::read(env.wal()).unwrap();
    let torn = sov_audit::verify_wal(&env.dir).unwrap();
    assert_eq!(torn.entries, 40);
    assert_eq!(torn.torn_tail_bytes, (half.len() / 2) as u64);
    assert_eq!(reader.verify_wal().unwrap().compared, 40);
    assert_eq!(std::fs::read(env.wal()).unwrap(), before);
    std::fs::write(env.wal(), &before[..clean.valid_bytes as usize]).unwrap();

    // Damage inside the log: the offset the open names.
    let offsets = entry_offsets(&env);
    flip(&env, offsets[17] + 2 + 3 + 7, 0x02);
    let before = std::fs::read(env.wal()).unwrap();
    for err in [
        sov_audit::verify_wal(&env.dir).unwrap_err(),
        reader.verify_wal().unwrap_err(),
    ] {
        assert!(
            matches!(err, AuditError::Corrupt { offset, .. } if offset == offsets[17] as u64),
            "{err}"
        );
    }
    assert_eq!(std::fs::read(env.wal()).unwrap(), before);
    flip(&env, offsets[17] + 2 + 3 + 7, 0x02);

    // A WAL that lost its last batch scans clean but holds less than the checkpoint.
    let whole = std::fs::read(env.wal()).unwrap();
    std::fs::write(env.wal(), &whole[..offsets[39]]).unwrap();
    let err = reader.verify_wal().unwrap_err();
    assert!(
        matches!(err, AuditError::WalMismatch { index: 39, offset, .. } if offset == offsets[39] as u64),
        "{err}"
    );
    std::fs::write(env.wal(), &whole).unwrap();

    // A bundle that differs from the WAL: named by index and WAL offset.
    let bundle = env.dir.join("tile/entries/000.p/40");
    let mut bytes = std::fs::read(&bundle).unwrap();
    let mut at = 0;
    for _ in 0..17 {
        at += 2 + usize::from(u16::from_be_bytes([bytes[at], bytes[at + 1]]));
    }
    bytes[at + 40] ^= 0x01;
    std::fs::write(&bundle, &bytes).unwrap();
    let err = reader.verify_wal().unwrap_err();
    assert!(
        matches!(err, AuditError::WalMismatch { index: 17, offset, .. } if offset == offsets[17] as u64),
        "{err}"
    );
    assert!(err.to_string().contains("entry 17"), "{err}");
}
