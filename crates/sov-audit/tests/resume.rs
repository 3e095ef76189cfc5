//! The signed resume point (`resume`): a cleanly closed log reopens reading only the end of its
//! WAL; after a crash the WAL after the last resume point is scanned and recovered; a resume
//! file that is damaged, forged, stale or contradicted by the WAL is never trusted (open falls
//! back to the full scan, whose checks then decide).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::io::Write as _;
use std::sync::mpsc;

use base64::Engine as _;
use common::{Env, draft, verify_all, wal_records};
use sov_audit::{AuditError, AuditLog, Kind, LogReader, RESUME_FILE, Recovery};
use sov_audit_core::entry::Entry;
use sov_keys::LogKey;

/// What the resume signature covers before the file's body (see `src/resume.rs`).
const DOMAIN: &[u8] = b"sovereign/audit-resume/v1\0";

/// Appends `n` entries, `burst` at a time in flight (so batches hold many entries).
fn fill(log: &AuditLog, from: u64, n: u64, burst: u64) {
    let mut i = from;
    while i < from + n {
        let k = burst.min(from + n - i);
        let (tx, rx) = mpsc::channel();
        for j in i..i + k {
            let tx = tx.clone();
            log.submit(draft(j), move |r| {
                tx.send(r.map(|a| a.index)).unwrap();
            });
        }
        for _ in 0..k {
            rx.recv().unwrap().unwrap();
        }
        i += k;
    }
}

/// A closed log of `n` entries.
fn log_with(n: u64) -> Env {
    let env = Env::new();
    let (log, rec) = env.open();
    assert_eq!(rec.resumed_at, None, "a new log has no resume point");
    fill(&log, 0, n, 64);
    log.close().unwrap();
    env
}

fn wal_len(env: &Env) -> u64 {
    std::fs::metadata(env.wal()).unwrap().len()
}

fn resume_path(env: &Env) -> std::path::PathBuf {
    env.dir.join(RESUME_FILE)
}

fn try_open(env: &Env) -> Result<(AuditLog, Recovery), AuditError> {
    AuditLog::open(&env.dir, env.key(), common::config())
}

/// Everything `sov audit verify` checks: the core's whole-log verifier (inside `verify_all`) and
/// the WAL against the published bundles.
fn verify_everything(env: &Env) {
    verify_all(&env.dir);
    let reader = LogReader::open(&env.dir).unwrap();
    let report = reader.verify_wal().unwrap();
    assert_eq!(report.compared, reader.checkpoint().1.size);
    assert_eq!(report.torn_tail_bytes, 0);
}

/// The resume file split into its body (what is signed, after the domain) and signature.
fn split(bytes: &[u8]) -> (String, String) {
    let text = String::from_utf8(bytes.to_vec()).unwrap();
    let at = text.rfind("signature ").unwrap();
    (text[..at].to_owned(), text[at..].to_owned())
}

fn sign_with(key: &LogKey, body: &str) -> Vec<u8> {
    let mut msg = DOMAIN.to_vec();
    msg.extend_from_slice(body.as_bytes());
    let sig = key.sign_ed25519(&msg);
    format!(
        "{body}signature {}\n",
        base64::engine::general_purpose::STANDARD.encode(sig)
    )
    .into_bytes()
}

fn field(bytes: &[u8], name: &str) -> u64 {
    let text = std::str::from_utf8(bytes).unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        .unwrap()
        .parse()
        .unwrap()
}

/// A bound on what a resumed open of a closed log may read: the entries of one tile.
fn one_tile_bound(env: &Env) -> u64 {
    let wal = std::fs::read(env.wal()).unwrap();
    let max_record = wal_records(&wal)
        .iter()
        .filter_map(|(_, b)| b.as_ref().map(|b| b.len() as u64 + 4))
        .max()
        .unwrap();
    256 * max_record
}

#[test]
fn a_cleanly_closed_log_resumes_reading_only_its_last_tile() {
    let mut read = Vec::new();
    for n in [300u64, 3_000] {
        let env = log_with(n);
        assert!(resume_path(&env).is_file(), "close wrote a resume point");
        let len = wal_len(&env);
        let (log, rec) = env.open();
        assert_eq!(rec.resumed_at, Some(n), "{:?}", rec.resume_fallback);
        assert_eq!(rec.resume_fallback, None);
        assert_eq!((rec.size, rec.truncated_bytes, rec.unclean), (n, 0, false));
        assert!(rec.entry.is_none());
        assert!(rec.wal_bytes_read > 0, "the last entries were re-read");
        assert!(
            rec.wal_bytes_read <= one_tile_bound(&env),
            "{} bytes read of {len}",
            rec.wal_bytes_read
        );
        read.push((n, rec.wal_bytes_read, len));
        // Appends continue the chain and the tiles from the resume point.
        fill(&log, n, 700, 50);
        log.close().unwrap();
        verify_everything(&env);
        let reader = LogReader::open(&env.dir).unwrap();
        assert_eq!(reader.checkpoint().1.size, n + 700);
        let e = Entry::decode(&reader.entry(n).unwrap()).unwrap();
        assert_eq!(e.index, n);

        // Without the resume file the same log opens with the full scan: the whole WAL, twice.
        std::fs::remove_file(resume_path(&env)).unwrap();
        let len = wal_len(&env);
        let (log, rec) = env.open();
        assert_eq!(rec.resumed_at, None);
        assert!(
            rec.resume_fallback
                .as_deref()
                .unwrap()
                .contains("no resume file")
        );
        assert_eq!(rec.wal_bytes_read, 2 * len);
        assert!(
            rec.entry.is_none(),
            "a clean stop appends no recovery entry"
        );
        log.close().unwrap();
        assert!(resume_path(&env).is_file(), "written again");
        let (log, rec) = env.open();
        assert_eq!(rec.resumed_at, Some(n + 700));
        log.close().unwrap();
        verify_everything(&env);
    }
    // Ten times the entries, not more bytes read: bounded by one tile either way.
    let (small, big) = (read[0], read[1]);
    assert!(big.2 > 8 * small.2, "{read:?}");
    assert!(big.1 < big.2 / 4, "{read:?}");
}

#[test]
fn after_a_crash_the_wal_after_the_resume_point_is_scanned_and_recovered() {
    let env = Env::new();
    let (log, _) = env.open();
    fill(&log, 0, 400, 64);
    log.sign_now().unwrap();
    let old_resume = std::fs::read(resume_path(&env)).unwrap();
    assert_eq!(field(&old_resume, "size"), 400);
    let old_len = field(&old_resume, "wal_len");
    fill(&log, 400, 90, 16);
    log.close().unwrap();
    let good_len = wal_len(&env);
    // The state a crash leaves: the last resume point behind the WAL (here with signed and
    // checkpoint ahead of it), `running` still there, a torn batch at the end.
    std::fs::write(resume_path(&env), &old_resume).unwrap();
    std::fs::write(env.dir.join("running"), b"").unwrap();
    let torn = vec![0x01, 0x20, 0xAB, 0xCD];
    std::fs::OpenOptions::new()
        .append(true)
        .open(env.wal())
        .unwrap()
        .write_all(&torn)
        .unwrap();

    let (log, rec) = env.open();
    assert_eq!(rec.resumed_at, Some(400), "{:?}", rec.resume_fallback);
    assert_eq!(rec.size, 490);
    assert!(rec.unclean);
    assert_eq!(rec.truncated_bytes, torn.len() as u64);
    // What was read: the re-read tile before the point, and the WAL after it (scan + replay).
    let after = good_len + torn.len() as u64 - old_len;
    assert!(rec.wal_bytes_read >= 2 * after - torn.len() as u64);
    assert!(rec.wal_bytes_read < 2 * after + one_tile_bound(&env));
    let entry = rec.entry.unwrap();
    assert_eq!(entry.index, 490);
    log.close().unwrap();
    let reader = LogReader::open(&env.dir).unwrap();
    let e = Entry::decode(&reader.entry(490).unwrap()).unwrap();
    assert_eq!(e.kind, Kind::Recovery);
    assert_eq!(e.attr("resumed"), Some("true"));
    assert_eq!(e.attr("resumed_from"), Some("400"));
    assert_eq!(e.attr("unclean"), Some("true"));
    assert_eq!(e.attr("truncated_bytes"), Some("4"));
    verify_everything(&env);

    // A crash where the resume point is older than the signed head and the WAL's tail is damaged
    // beyond a torn batch: the scan after the point finds it and refuses, as the full scan does.
    let (log, _) = env.open();
    log.close().unwrap();
    let point = std::fs::read(resume_path(&env)).unwrap();
    let (log, _) = env.open();
    fill(&log, 491, 30, 1);
    log.close().unwrap();
    std::fs::write(resume_path(&env), &point).unwrap();
    let wal = std::fs::read(env.wal()).unwrap();
    let records = wal_records(&wal);
    let entries: Vec<usize> = records
        .iter()
        .filter(|(_, b)| b.is_some())
        .map(|(o, _)| *o)
        .collect();
    let at = entries[entries.len() - 20];
    let mut bad = wal.clone();
    bad[at + 2 + 3 + 7] ^= 0x02; // the index of an entry after the resume point
    std::fs::write(env.wal(), &bad).unwrap();
    let err = try_open(&env).unwrap_err();
    assert!(
        matches!(err, AuditError::Corrupt { offset, .. } if offset == at as u64),
        "{err}"
    );
    assert_eq!(std::fs::read(env.wal()).unwrap(), bad, "nothing changed");
    std::fs::write(env.wal(), &wal).unwrap();
    let (log, rec) = env.open();
    assert!(rec.resumed_at.is_some());
    log.close().unwrap();
    verify_everything(&env);
}

/// Opens after `damage`; the resume point must not be used, and the open either succeeds through
/// the full scan (returning the reason) or fails.
fn not_resumed(env: &Env, what: &str) -> Result<String, AuditError> {
    match try_open(env) {
        Ok((log, rec)) => {
            assert_eq!(rec.resumed_at, None, "{what}: resumed from a bad point");
            let reason = rec.resume_fallback.clone().unwrap();
            assert_eq!(rec.wal_bytes_read, 2 * wal_len(env), "{what}: full scan");
            log.close().unwrap();
            Ok(reason)
        }
        Err(e) => Err(e),
    }
}

#[test]
fn damaged_forged_or_contradicted_resume_points_are_never_trusted() {
    let env = log_with(300);
    let good = std::fs::read(resume_path(&env)).unwrap();
    let (body, sig) = split(&good);
    let restore = |env: &Env| std::fs::write(resume_path(env), &good).unwrap();

    // Sanity: the body re-signed with the log key is the same file, and resumes.
    assert_eq!(sign_with(&env.key(), &body), good);
    let (log, rec) = env.open();
    assert_eq!(rec.resumed_at, Some(300));
    log.close().unwrap();
    restore(&env);

    // Each byte flipped in turn in several places: never resumed, the full scan opens the
    // (intact) log.
    for at in [0, 10, body.len() / 2, body.len() - 3, good.len() - 10] {
        let mut bad = good.clone();
        bad[at] ^= 0x01;
        std::fs::write(resume_path(&env), &bad).unwrap();
        let reason = not_resumed(&env, &format!("flip at {at}")).unwrap();
        assert!(
            reason.contains("malformed") || reason.contains("signature"),
            "{reason}"
        );
        restore(&env);
    }
    // A changed number that still parses: the signature no longer verifies.
    let size = field(&good, "last_time");
    let forged = format!(
        "{}{sig}",
        body.replace(
            &format!("last_time {size}"),
            &format!("last_time {}", size + 1)
        )
    );
    std::fs::write(resume_path(&env), forged).unwrap();
    let reason = not_resumed(&env, "changed last_time").unwrap();
    assert!(reason.contains("signature"), "{reason}");
    restore(&env);

    // Signed by another key (the same body, or a changed one).
    let other = LogKey::init_or_load(&env.tmp.path().join("other-keys")).unwrap();
    for b in [
        body.clone(),
        body.replace("origin sovereign.test/audit", "origin other.test/audit"),
    ] {
        std::fs::write(resume_path(&env), sign_with(&other, &b)).unwrap();
        let reason = not_resumed(&env, "another key").unwrap();
        assert!(
            reason.contains("signature") || reason.contains("origin"),
            "{reason}"
        );
        restore(&env);
    }
    // Signed with the right key but for another origin.
    let b = body.replace("origin sovereign.test/audit", "origin other.test/audit");
    std::fs::write(resume_path(&env), sign_with(&env.key(), &b)).unwrap();
    let reason = not_resumed(&env, "another origin").unwrap();
    assert!(reason.contains("origin"), "{reason}");
    restore(&env);

    // Validly signed (the test holds the log key) but not matching the WAL: every claim is
    // checked against the entries re-read. A wrong upper tile hash gives another root; a wrong
    // last leaf or offset does not match the WAL's record.
    let line = |name: &str| {
        body.lines()
            .find(|l| l.starts_with(&format!("{name} ")))
            .unwrap()
            .to_owned()
    };
    let zero = base64::engine::general_purpose::STANDARD.encode([7u8; 32]);
    for (name, new) in [
        ("tiles", format!("tiles {zero}")),
        ("last_leaf", format!("last_leaf {zero}")),
        ("root", format!("root {zero}")),
    ] {
        let b = body.replace(&line(name), &new);
        std::fs::write(resume_path(&env), sign_with(&env.key(), &b)).unwrap();
        not_resumed(&env, name).unwrap();
        restore(&env);
    }
    let len = field(&good, "wal_len");
    let last = field(&good, "last_offset");
    let b = body
        .replace(&line("wal_len"), &format!("wal_len {}", len - 1))
        .replace(&line("last_offset"), &format!("last_offset {}", last - 1));
    std::fs::write(resume_path(&env), sign_with(&env.key(), &b)).unwrap();
    not_resumed(&env, "shifted offsets").unwrap();
    restore(&env);

    // Ahead of `signed` (a signed head older than the point, e.g. `signed` restored from a
    // backup): not trusted; the full scan then checks `signed` against the WAL (here the old
    // head is a prefix of the log, so it opens).
    let signed = std::fs::read(env.dir.join("signed")).unwrap();
    let cp = std::fs::read(env.dir.join("checkpoint")).unwrap();
    let (log, _) = env.open();
    fill(&log, 300, 20, 20);
    log.close().unwrap();
    let newer = std::fs::read(resume_path(&env)).unwrap();
    std::fs::write(env.dir.join("signed"), &signed).unwrap();
    std::fs::write(env.dir.join("checkpoint"), &cp).unwrap();
    let reason = not_resumed(&env, "ahead of signed").unwrap();
    assert!(reason.contains("older than the resume point"), "{reason}");
    // Restore the state with the newer point for the WAL cases below.
    std::fs::write(resume_path(&env), &newer).unwrap();
    let (log, rec) = env.open();
    assert_eq!(rec.resumed_at, Some(320));
    log.close().unwrap();
    verify_everything(&env);
}

#[test]
fn a_wal_that_contradicts_the_resume_point_is_never_resumed() {
    let env = log_with(300);
    let point = std::fs::read(resume_path(&env)).unwrap();
    let wal = std::fs::read(env.wal()).unwrap();
    let last = field(&point, "last_offset") as usize;

    // Shorter than the resume point: the full scan finds the WAL behind `signed`.
    std::fs::write(env.wal(), &wal[..wal.len() / 2]).unwrap();
    let err = not_resumed(&env, "short WAL").unwrap_err();
    assert!(
        matches!(
            err,
            AuditError::Inconsistent {
                signed_size: 300,
                ..
            } | AuditError::Corrupt { .. }
        ),
        "{err}"
    );
    assert_eq!(std::fs::read(env.wal()).unwrap(), &wal[..wal.len() / 2]);

    // The record just before the resume point altered: in its content (still decodes: another
    // leaf hash), in its version byte (no longer decodes), in its index.
    for (what, delta) in [("content", 2 + 60), ("version", 2), ("index", 2 + 3 + 7)] {
        let mut bad = wal.clone();
        bad[last + delta] ^= 0x01;
        std::fs::write(env.wal(), &bad).unwrap();
        let err = not_resumed(&env, what).unwrap_err();
        assert!(
            matches!(
                err,
                AuditError::Inconsistent { .. } | AuditError::Corrupt { .. }
            ),
            "{what}: {err}"
        );
        assert_eq!(std::fs::read(env.wal()).unwrap(), bad, "{what}: untouched");
    }
    // An entry earlier in the resume point's last tile (re-read and chained at open).
    let entries: Vec<usize> = wal_records(&wal)
        .iter()
        .filter(|(_, b)| b.is_some())
        .map(|(o, _)| *o)
        .collect();
    let mut bad = wal.clone();
    bad[entries[270] + 2 + 60] ^= 0x01;
    std::fs::write(env.wal(), &bad).unwrap();
    let err = not_resumed(&env, "in the last tile").unwrap_err();
    assert!(matches!(err, AuditError::Corrupt { .. }), "{err}");

    // Intact again: resumes.
    std::fs::write(env.wal(), &wal).unwrap();
    let (log, rec) = env.open();
    assert_eq!(rec.resumed_at, Some(300));
    log.close().unwrap();
    verify_everything(&env);
}

#[test]
fn what_a_resumed_open_no_longer_checks_verification_still_finds() {
    let env = log_with(600);
    let wal = std::fs::read(env.wal()).unwrap();
    let entries: Vec<usize> = wal_records(&wal)
        .iter()
        .filter(|(_, b)| b.is_some())
        .map(|(o, _)| *o)
        .collect();
    // An entry in the prefix (before the resume point's last tile) altered, and an old full tile
    // removed: the resumed open reads neither (documented in `# Recovery`)...
    let mut bad = wal.clone();
    bad[entries[10] + 2 + 60] ^= 0x01;
    std::fs::write(env.wal(), &bad).unwrap();
    let tile = env.dir.join("tile/0/000");
    let t0 = std::fs::read(&tile).unwrap();
    std::fs::remove_file(&tile).unwrap();
    let (log, rec) = env.open();
    assert_eq!(rec.resumed_at, Some(600));
    log.close().unwrap();
    assert!(!tile.exists(), "old tiles are not checked when resuming");
    // ...but the verification `sov audit verify` runs finds both.
    let err = sov_audit::verify_wal(&env.dir).unwrap_err();
    assert!(
        matches!(err, AuditError::Corrupt { offset, .. } if offset == entries[11] as u64),
        "{err}"
    );
    let keys = common::vkeys(&env.dir);
    assert!(
        sov_audit_core::verify::verify_log(&mut common::DirFiles(env.dir.clone()), &keys).is_err()
    );
    // And an open without the resume point does the whole check.
    std::fs::remove_file(resume_path(&env)).unwrap();
    let err = try_open(&env).unwrap_err();
    assert!(matches!(err, AuditError::Corrupt { .. }), "{err}");
    std::fs::write(env.wal(), &wal).unwrap();
    let (log, rec) = env.open();
    assert_eq!(rec.resumed_at, None);
    log.close().unwrap();
    assert_eq!(
        std::fs::read(&tile).unwrap(),
        t0,
        "the full scan repaired it"
    );
    verify_everything(&env);
}

#[test]
#[ignore = "writes fuzz/corpus/resume; run by hand when the resume format changes"]
fn write_fuzz_corpus() {
    let dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/resume");
    std::fs::create_dir_all(&dir).unwrap();
    // Sizes with an empty tree, one partial tile, two levels, and three levels with an empty
    // middle partial tile.
    for n in [0u64, 5, 300, 65_600] {
        let env = log_with(n);
        let bytes = std::fs::read(resume_path(&env)).unwrap();
        assert!(bytes.len() < 64 * 1024, "seeds stay small");
        assert_eq!(field(&bytes, "size"), n);
        std::fs::write(dir.join(format!("resume-{n}")), &bytes).unwrap();
    }
}

/// What the `resume` fuzz target checks, over every one-byte change and every cut of a real
/// resume file: no panic; anything accepted is canonical; only the untouched file verifies.
#[test]
fn the_resume_parser_takes_any_bytes() {
    let env = log_with(300);
    let good = std::fs::read(resume_path(&env)).unwrap();
    let key = env.key().ed25519_public().to_bytes();
    let (again, verified) = sov_audit::parse_resume_bytes(&good, &key).unwrap();
    assert_eq!(again, good);
    assert!(verified);
    let other = [0u8; 32];
    assert!(!sov_audit::parse_resume_bytes(&good, &other).unwrap().1);
    let mut inputs: Vec<Vec<u8>> = (0..=good.len()).map(|n| good[..n].to_vec()).collect();
    for at in 0..good.len() {
        for mask in [0x01u8, 0x20, 0x80] {
            let mut b = good.clone();
            b[at] ^= mask;
            inputs.push(b);
        }
    }
    for b in inputs {
        if let Ok((again, verified)) = sov_audit::parse_resume_bytes(&b, &key) {
            assert_eq!(again, b, "accepted, so canonical");
            assert!(!verified || b == good, "a changed file verified");
        }
    }
}

#[test]
fn a_fallback_after_a_crash_is_recorded_in_the_recovery_entry() {
    let env = log_with(20);
    let good = std::fs::read(resume_path(&env)).unwrap();
    let text = String::from_utf8(good).unwrap();
    // A huge, bad field: the reason stays bounded so the recovery entry still encodes.
    let bad = text.replace("size 20\n", &format!("size 2{}x\n", "0".repeat(100_000)));
    std::fs::write(resume_path(&env), bad).unwrap();
    std::fs::write(env.dir.join("running"), b"").unwrap();
    let (log, rec) = env.open();
    assert_eq!(rec.resumed_at, None);
    assert!(rec.unclean);
    let entry = rec.entry.unwrap();
    log.close().unwrap();
    let reader = LogReader::open(&env.dir).unwrap();
    let e = Entry::decode(&reader.entry(entry.index).unwrap()).unwrap();
    assert_eq!(e.attr("resumed"), Some("false"));
    let why = e.attr("resume_fallback").unwrap();
    assert!(why.contains("malformed") && why.len() <= 300, "{why}");
    assert!(e.attr("resumed_from").is_none());
    verify_everything(&env);
}
