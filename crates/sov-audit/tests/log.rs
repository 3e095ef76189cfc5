//! The log's normal life: append, read, receipts, checkpoints, reopen, locking, export.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::mpsc;

use base64::Engine as _;
use common::{Env, NODE, ORIGIN, config, draft, verify_all, vkeys};
use sov_audit::{AuditError, AuditLog, Draft, Kind, LogConfig, LogReader, Outcome};
use sov_audit_core::checkpoint::{require_all, verify_checkpoint};
use sov_audit_core::entry::Entry;
use sov_audit_core::hash::leaf_hash;
use sov_audit_core::merkle::verify_consistency;
use sov_audit_core::receipt::TlogProof;
use sov_audit_core::verify::verify_log;
use sov_keys::LogKey;

#[test]
fn append_read_round_trip() {
    let env = Env::new();
    let (log, rec) = env.open();
    assert_eq!((rec.size, rec.truncated_bytes, rec.unclean), (0, 0, false));
    assert!(rec.entry.is_none());
    // An empty log has a signed checkpoint too.
    assert_eq!(LogReader::open(&env.dir).unwrap().checkpoint().1.size, 0);
    verify_all(&env.dir);

    let mut appended = Vec::new();
    for i in 0..600u64 {
        let a = log.append(draft(i)).unwrap();
        assert_eq!(a.index, i);
        appended.push(a);
    }
    assert_eq!(log.sign_now().unwrap(), 600);
    let reader = log.reader().unwrap();
    assert_eq!(reader.checkpoint().1.size, 600);
    let mut prev = [0u8; 32];
    let mut time = 0;
    for (i, a) in appended.iter().enumerate() {
        let bytes = reader.entry(a.index).unwrap();
        assert_eq!(leaf_hash(&bytes), a.leaf, "entry {i}");
        let e = Entry::decode(&bytes).unwrap();
        let want = draft(a.index);
        assert_eq!(e.index, a.index);
        assert_eq!(e.prev, prev);
        assert!(e.time_ms >= time);
        assert_eq!(e.kind, want.kind);
        assert_eq!(e.principal, want.principal);
        assert_eq!(e.resource, want.resource);
        assert_eq!(e.outcome, want.outcome);
        assert_eq!(e.reason, want.reason);
        assert_eq!(e.input, want.input);
        assert_eq!(e.attrs, want.attrs);
        assert_eq!(e.node, NODE);
        prev = a.leaf;
        time = e.time_ms;
    }
    assert!(matches!(
        reader.entry(600),
        Err(AuditError::NotCovered {
            index: 600,
            size: 600
        })
    ));
    let leaves = verify_all(&env.dir);
    assert_eq!(leaves, appended.iter().map(|a| a.leaf).collect::<Vec<_>>());
    // Full tiles and the partial ones for 600 = 2 * 256 + 88.
    for p in [
        "tile/0/000",
        "tile/0/001",
        "tile/0/002.p/88",
        "tile/entries/000",
        "tile/entries/001",
        "tile/entries/002.p/88",
        "tile/1/000.p/2",
    ] {
        assert!(env.dir.join(p).is_file(), "{p}");
    }
    log.close().unwrap();
}

#[test]
fn receipts_verify_with_core() {
    let env = Env::new();
    let (log, _) = env.open();
    let appended: Vec<_> = (0..300).map(|i| log.append(draft(i)).unwrap()).collect();
    log.sign_now().unwrap();
    let reader = log.reader().unwrap();
    let keys = vkeys(&env.dir);
    for &i in &[0u64, 1, 2, 127, 255, 256, 257, 298, 299] {
        let receipt = reader.receipt(i).unwrap();
        assert_eq!(receipt.index, i);
        let leaf = leaf_hash(receipt.extra.as_deref().unwrap());
        assert_eq!(leaf, appended[i as usize].leaf);
        let verified = receipt.verify(&leaf, &keys).unwrap();
        assert_eq!(verified.checkpoint.size, 300);
        // The serialized receipt verifies on its own.
        let parsed = TlogProof::parse(&receipt.to_bytes()).unwrap();
        assert_eq!(parsed, receipt);
        parsed.verify(&leaf, &keys).unwrap();
        // Another entry's leaf does not.
        let other = appended[((i + 1) % 300) as usize].leaf;
        assert!(
            receipt.verify(&other, &keys).is_err(),
            "receipt {i} with another leaf"
        );
        // Nor does it verify for a different index.
        let mut moved = receipt.clone();
        moved.index = (i + 1) % 300;
        assert!(moved.verify(&leaf, &keys).is_err());
    }
    assert!(matches!(
        reader.receipt(300),
        Err(AuditError::NotCovered { .. })
    ));
    // Keys of another log do not verify it.
    let other = Env::new();
    let (other_log, _) = other.open();
    other_log.close().unwrap();
    let other_keys = vkeys(&other.dir);
    let receipt = reader.receipt(5).unwrap();
    assert!(receipt.verify(&appended[5].leaf, &other_keys).is_err());
    log.close().unwrap();
}

#[test]
fn checkpoints_verify_and_signed_is_persisted() {
    let env = Env::new();
    let (log, _) = env.open();
    for i in 0..10 {
        log.append(draft(i)).unwrap();
    }
    assert_eq!(log.sign_now().unwrap(), 10);
    let reader = log.reader().unwrap();
    let (note, cp) = reader.checkpoint();
    let keys = vkeys(&env.dir);
    let verified = verify_checkpoint(note, &keys).unwrap();
    assert_eq!(verified.verified_by.len(), 2);
    let text = std::str::from_utf8(note).unwrap();
    assert!(text.starts_with(&format!("{ORIGIN}\n10\n")), "{text}");
    assert_eq!(
        text.matches("\n— sovereign.test/audit ").count(),
        2,
        "{text}"
    );
    // vkeys are the log key's, named after the origin.
    let key = env.key();
    assert_eq!(
        keys[0].encode(),
        sov_audit_core::note::Vkey::from_ed25519(ORIGIN, key.ed25519_public()).encode()
    );
    assert_eq!(
        keys[1].encode(),
        sov_audit_core::note::Vkey::from_mldsa44(ORIGIN, key.mldsa44_public()).encode()
    );
    // `signed` = size and root of the checkpoint.
    let signed = std::fs::read_to_string(env.dir.join("signed")).unwrap();
    assert_eq!(
        signed,
        format!(
            "10\n{}\n",
            base64::engine::general_purpose::STANDARD.encode(cp.root)
        )
    );
    // A flipped bit anywhere in the note is rejected (when both keys are required: a flip in
    // a key name turns that signature into an unknown one, which signed-note ignores).
    for i in (0..note.len()).step_by(7) {
        let mut bad = note.to_vec();
        bad[i] ^= 0x01;
        let ok = verify_checkpoint(&bad, &keys).and_then(|v| require_all(&v, &keys));
        assert!(ok.is_err(), "byte {i}");
    }
    // Consistency between two checkpoints.
    let old_root = cp.root;
    for i in 10..700 {
        log.append(draft(i)).unwrap();
    }
    assert_eq!(log.sign_now().unwrap(), 700);
    let newer = log.reader().unwrap();
    let new_root = newer.checkpoint().1.root;
    let proof = newer.consistency(10).unwrap();
    verify_consistency(10, 700, &old_root, &new_root, &proof).unwrap();
    assert!(verify_consistency(10, 700, &new_root, &new_root, &proof).is_err());
    assert!(newer.consistency(701).is_err());
    // Nothing new: sign_now does not re-sign.
    let before = std::fs::read(env.dir.join("checkpoint")).unwrap();
    assert_eq!(log.sign_now().unwrap(), 700);
    assert_eq!(std::fs::read(env.dir.join("checkpoint")).unwrap(), before);
    log.close().unwrap();
    verify_all(&env.dir);
}

#[test]
fn checkpoint_follows_within_the_interval() {
    let env = Env::new();
    let mut cfg = config();
    cfg.checkpoint_interval = std::time::Duration::from_millis(100);
    let (log, _) = AuditLog::open(&env.dir, env.key(), cfg).unwrap();
    for i in 0..5 {
        log.append(draft(i)).unwrap();
    }
    let start = std::time::Instant::now();
    loop {
        if LogReader::open(&env.dir).unwrap().checkpoint().1.size == 5 {
            break;
        }
        assert!(
            start.elapsed() < std::time::Duration::from_secs(2),
            "no checkpoint"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    log.close().unwrap();
}

#[test]
fn reopen_continues_the_chain() {
    let env = Env::new();
    let (log, _) = env.open();
    let mut last = None;
    for i in 0..300 {
        last = Some(log.append(draft(i)).unwrap());
    }
    let last = last.unwrap();
    log.close().unwrap();
    assert!(!env.dir.join("running").exists());
    assert!(matches!(log.append(draft(0)), Err(AuditError::Closed)));
    let (tx, rx) = mpsc::channel();
    log.submit(draft(0), move |r| tx.send(r).unwrap());
    assert!(matches!(rx.recv().unwrap(), Err(AuditError::Closed)));
    assert!(matches!(log.sign_now(), Err(AuditError::Closed)));
    log.close().unwrap(); // closing twice is fine

    let (log, rec) = env.open();
    assert_eq!(
        (rec.size, rec.truncated_bytes, rec.unclean),
        (300, 0, false)
    );
    assert!(rec.entry.is_none(), "a clean reopen records no recovery");
    let a = log.append(draft(300)).unwrap();
    assert_eq!(a.index, 300);
    log.sign_now().unwrap();
    let e = Entry::decode(&log.reader().unwrap().entry(300).unwrap()).unwrap();
    assert_eq!(e.prev, last.leaf);
    log.close().unwrap();
    verify_all(&env.dir);
}

#[test]
fn second_writer_refused() {
    let env = Env::new();
    let (log, _) = env.open();
    let err = AuditLog::open(&env.dir, env.key(), config()).unwrap_err();
    assert!(matches!(err, AuditError::Locked { .. }), "{err}");
    assert!(err.to_string().contains("already open"), "{err}");
    // The refused open changed nothing; the writer goes on.
    log.append(draft(0)).unwrap();
    // A reader needs no lock.
    log.sign_now().unwrap();
    assert_eq!(LogReader::open(&env.dir).unwrap().checkpoint().1.size, 1);
    log.close().unwrap();
    let (log, _) = env.open();
    log.close().unwrap();
}

#[test]
fn clones_share_one_writer_and_drop_closes() {
    let env = Env::new();
    let (log, _) = env.open();
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let log = log.clone();
            std::thread::spawn(move || {
                (0..50)
                    .map(|i| log.append(draft(t * 1000 + i)).unwrap().index)
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let mut all: Vec<u64> = threads
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect();
    all.sort_unstable();
    assert_eq!(all, (0..200).collect::<Vec<_>>());
    drop(log);
    // Dropping the last handle closes the log cleanly.
    assert!(!env.dir.join("running").exists());
    let (log, rec) = env.open();
    assert_eq!((rec.size, rec.unclean), (200, false));
    log.close().unwrap();
    verify_all(&env.dir);
}

#[test]
fn bad_draft_consumes_no_index() {
    let env = Env::new();
    let (log, _) = env.open();
    log.append(draft(0)).unwrap();
    let mut big = draft(1);
    big.reason = "x".repeat(70_000);
    assert!(matches!(log.append(big), Err(AuditError::Entry(_))));
    let mut dup = draft(1);
    dup.attrs = vec![("a".into(), "1".into()), ("a".into(), "2".into())];
    assert!(matches!(log.append(dup), Err(AuditError::Entry(_))));
    let mut control = draft(1);
    control.principal = "bad\u{7}".into();
    assert!(matches!(log.append(control), Err(AuditError::Entry(_))));
    // Unsorted attributes are sorted.
    let mut unsorted = draft(1);
    unsorted.attrs = vec![("z".into(), "1".into()), ("a".into(), "2".into())];
    let a = log.append(unsorted).unwrap();
    assert_eq!(a.index, 1);
    log.sign_now().unwrap();
    let e = Entry::decode(&log.reader().unwrap().entry(1).unwrap()).unwrap();
    assert_eq!(e.attrs[0].0, "a");
    log.close().unwrap();
    verify_all(&env.dir);
}

#[test]
fn origin_key_and_config_checked() {
    let env = Env::new();
    let (log, _) = env.open();
    log.append(draft(0)).unwrap();
    log.close().unwrap();
    let err = AuditLog::open(
        &env.dir,
        env.key(),
        LogConfig::new("other.example/log", NODE),
    )
    .unwrap_err();
    assert!(matches!(err, AuditError::OriginMismatch { .. }), "{err}");
    let other_key = LogKey::init_or_load(&env.tmp.path().join("other-keys")).unwrap();
    let err = AuditLog::open(&env.dir, other_key, config()).unwrap_err();
    assert!(matches!(err, AuditError::KeyMismatch { .. }), "{err}");
    for cfg in [
        LogConfig::new("has space", NODE),
        LogConfig::new("a+b", NODE),
        LogConfig::new("", NODE),
        LogConfig::new(ORIGIN, ""),
        LogConfig::new(ORIGIN, "bad\nnode"),
        LogConfig {
            max_batch: 0,
            ..config()
        },
    ] {
        let err = AuditLog::open(&env.dir, env.key(), cfg).unwrap_err();
        assert!(matches!(err, AuditError::Config { .. }), "{err}");
    }
    // None of that touched the log.
    let (log, rec) = env.open();
    assert_eq!((rec.size, rec.unclean), (1, false));
    log.close().unwrap();
}

#[test]
fn files_served_and_paths_checked() {
    let env = Env::new();
    let (log, _) = env.open();
    for i in 0..100 {
        log.append(draft(i)).unwrap();
    }
    log.sign_now().unwrap();
    let old = log.reader().unwrap();
    assert_eq!(
        old.file("checkpoint").unwrap(),
        std::fs::read(env.dir.join("checkpoint")).unwrap()
    );
    assert_eq!(
        old.file("vkeys").unwrap(),
        std::fs::read(env.dir.join("vkeys")).unwrap()
    );
    let partial = old.file("tile/0/000.p/100").unwrap();
    assert_eq!(partial.len(), 100 * 32);
    let bundle = old.file("tile/entries/000.p/100").unwrap();
    for bad in [
        "origin",
        "entries.wal",
        "signed",
        "lock",
        "../etc/passwd",
        "tile/0/../../signed",
        "tile/0/000.p/0",
        "tile/0/0",
        "/tile/0/000",
        "tile/entries/000.p/256",
    ] {
        let err = old.file(bad).unwrap_err();
        assert!(matches!(err, AuditError::BadPath { .. }), "{bad}: {err}");
    }
    assert!(matches!(
        old.file("tile/0/005"),
        Err(AuditError::NotFound { .. })
    ));

    // Grow past the tile: the partial tiles for 100 go once the full tiles are durable; a
    // reader holding the old checkpoint falls back to the full tile's prefix.
    for i in 100..600 {
        log.append(draft(i)).unwrap();
    }
    log.sign_now().unwrap();
    assert!(
        !env.dir.join("tile/0/000.p").exists(),
        "old partials removed"
    );
    assert!(!env.dir.join("tile/entries/000.p").exists());
    assert_eq!(old.file("tile/0/000.p/100").unwrap(), partial);
    assert_eq!(old.file("tile/entries/000.p/100").unwrap(), bundle);
    let keys = vkeys(&env.dir);
    for i in [0, 50, 99] {
        let r = old.receipt(i).unwrap();
        r.verify(&leaf_hash(r.extra.as_deref().unwrap()), &keys)
            .unwrap();
        assert_eq!(r.checkpoint, old.checkpoint().0);
    }
    // A partial tile whose full tile is gone falls back to a wider partial.
    let newer = log.reader().unwrap();
    log.close().unwrap();
    assert_eq!(newer.checkpoint().1.size, 600);
    let p88 = newer.file("tile/0/002.p/88").unwrap();
    std::fs::create_dir_all(env.dir.join("tile/0/002.p")).unwrap();
    std::fs::remove_file(env.dir.join("tile/0/002.p/88")).unwrap();
    let mut wider = p88.clone();
    wider.extend_from_slice(&[7u8; 32 * 3]);
    std::fs::write(env.dir.join("tile/0/002.p/91"), &wider).unwrap();
    assert_eq!(newer.file("tile/0/002.p/88").unwrap(), p88);
}

#[test]
fn export_is_a_verifiable_static_copy() {
    let env = Env::new();
    let (log, _) = env.open();
    for i in 0..1000 {
        log.append(draft(i)).unwrap();
    }
    log.close().unwrap();
    let reader = LogReader::open(&env.dir).unwrap();
    let dest = env.tmp.path().join("export");
    assert_eq!(reader.export(&dest).unwrap(), 1000);
    let mut files = Vec::new();
    let mut stack = vec![dest.clone()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                files.push(
                    p.strip_prefix(&dest)
                        .unwrap()
                        .to_string_lossy()
                        .into_owned(),
                );
            }
        }
    }
    files.sort();
    let mut want = vec![
        "checkpoint".to_string(),
        "vkeys".into(),
        "tile/0/000".into(),
        "tile/0/001".into(),
        "tile/0/002".into(),
        "tile/0/003.p/232".into(),
        "tile/1/000.p/3".into(),
        "tile/entries/000".into(),
        "tile/entries/001".into(),
        "tile/entries/002".into(),
        "tile/entries/003.p/232".into(),
    ];
    want.sort();
    assert_eq!(files, want);
    let keys = vkeys(&dest);
    let report = verify_log(&mut common::DirFiles(dest.clone()), &keys).unwrap();
    assert_eq!(report.size, 1000);
    // Export refuses a non-empty destination.
    let err = reader.export(&dest).unwrap_err();
    assert!(matches!(err, AuditError::ExportDest { .. }), "{err}");
    // An empty existing directory is fine.
    let empty = env.tmp.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    assert_eq!(reader.export(&empty).unwrap(), 1000);
}

#[test]
fn recovery_kind_helper_types() {
    // Draft::new fills only what it is given.
    let d = Draft::new(Kind::ModelLoad, "alice", "model/x", Outcome::Ok);
    assert!(d.reason.is_empty() && d.attrs.is_empty() && d.model.is_none());
    let c = LogConfig::new(ORIGIN, NODE);
    assert_eq!(c.checkpoint_interval, std::time::Duration::from_secs(1));
    assert_eq!(c.max_batch, 4096);
}

#[test]
fn a_panicking_callback_does_not_stop_the_writer() {
    let env = Env::new();
    let (log, _) = env.open();
    log.submit(draft(0), |_| panic!("callback panics"));
    let a = log.append(draft(1)).unwrap();
    assert_eq!(a.index, 1);
    log.close().unwrap();
    verify_all(&env.dir);
}

#[test]
fn last_handle_dropped_inside_a_callback() {
    let env = Env::new();
    let (log, _) = env.open();
    let inner = log.clone();
    let (go_tx, go_rx) = mpsc::channel::<()>();
    log.submit(draft(0), move |r| {
        r.unwrap();
        go_rx.recv().unwrap();
        drop(inner); // the last handle, dropped on the writer's own thread
    });
    drop(log);
    go_tx.send(()).unwrap();
    // The writer closes itself: the lock is released and the log was closed cleanly.
    let start = std::time::Instant::now();
    let (log, rec) = loop {
        match AuditLog::open(&env.dir, env.key(), config()) {
            Ok(x) => break x,
            Err(AuditError::Locked { .. }) if start.elapsed().as_secs() < 10 => {
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            Err(e) => panic!("{e}"),
        }
    };
    assert_eq!((rec.size, rec.unclean), (1, false));
    log.close().unwrap();
}
