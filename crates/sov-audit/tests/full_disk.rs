//! A really full disk (a small tmpfs filled up): the log degrades, refuses entries, and recovers
//! by itself once space is freed, without losing or duplicating an entry and without a restart
//! (issue 12, finding 3).
//!
//! Mounting needs root: without it these tests print a skip line, unless `CI=true`, where they
//! fail.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::{ORIGIN, draft, verify_all};
use sov_audit::{AuditError, AuditLog, Health, LogConfig, LogReader};
use sov_audit_core::entry::Entry;
use sov_keys::LogKey;

/// A 512 KiB tmpfs, unmounted on drop.
struct Tmpfs {
    dir: PathBuf,
}

impl Tmpfs {
    fn mount(dir: &Path) -> Option<Tmpfs> {
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        let root = status
            .lines()
            .find(|l| l.starts_with("Uid:"))
            .is_some_and(|l| l.split_whitespace().nth(2) == Some("0"));
        if !root {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "the full-disk tests need root (to mount a tmpfs), and CI=true"
            );
            println!("SKIPPED: the full-disk tests need root to mount a tmpfs");
            return None;
        }
        std::fs::create_dir_all(dir).unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=512k", "tmpfs"])
            .arg(dir)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "mount: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Some(Tmpfs {
            dir: dir.to_path_buf(),
        })
    }

    /// Fills the file system with `filler` until it refuses with ENOSPC.
    fn fill(&self) -> PathBuf {
        let path = self.dir.join("filler");
        let mut f = std::fs::File::create(&path).unwrap();
        let chunk = [0xa5u8; 512];
        loop {
            match f.write_all(&chunk) {
                Ok(()) => {}
                Err(e) if e.raw_os_error() == Some(28) => break,
                Err(e) => panic!("filling the tmpfs: {e}"),
            }
        }
        path
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.dir).status();
    }
}

struct Setup {
    _tmp: tempfile::TempDir,
    fs: Tmpfs,
    keys: PathBuf,
    dir: PathBuf,
}

fn setup() -> Option<Setup> {
    let tmp = tempfile::tempdir().unwrap();
    let fs = Tmpfs::mount(&tmp.path().join("mnt"))?;
    let keys = tmp.path().join("keys");
    LogKey::init_or_load(&keys).unwrap();
    let dir = fs.dir.join("audit");
    Some(Setup {
        _tmp: tmp,
        fs,
        keys,
        dir,
    })
}

impl Setup {
    /// Opens the log with checkpoints only on request, so the test decides which part meets the
    /// full disk first.
    fn open(&self) -> (AuditLog, sov_audit::Recovery) {
        let mut config = LogConfig::new(ORIGIN, common::NODE);
        config.checkpoint_interval = Duration::from_secs(3600);
        AuditLog::open(&self.dir, LogKey::init_or_load(&self.keys).unwrap(), config).unwrap()
    }
}

/// Appends drafts named `n`, `n+1`, ... until one fails; returns the acknowledged (resource,
/// index) pairs and the failed resource.
fn append_until_refused(
    log: &AuditLog,
    n: &mut u64,
    acked: &mut Vec<(String, u64)>,
) -> (String, AuditError) {
    for _ in 0..5000 {
        let d = draft(*n);
        let resource = d.resource.clone();
        *n += 1;
        match log.append(d) {
            Ok(a) => acked.push((resource, a.index)),
            Err(e) => return (resource, e),
        }
    }
    panic!("5000 appends on a full disk all succeeded");
}

fn wait_for_ok(log: &AuditLog, within: Duration) {
    let start = Instant::now();
    while log.health() != Health::Ok {
        assert!(
            start.elapsed() < within,
            "still {:?} {within:?} after the space was freed",
            log.health()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The resources of the entries the published checkpoint covers, in index order.
fn logged_resources(dir: &Path) -> Vec<String> {
    let reader = LogReader::open(dir).unwrap();
    (0..reader.checkpoint().1.size)
        .map(|i| Entry::decode(&reader.entry(i).unwrap()).unwrap().resource)
        .collect()
}

#[test]
fn full_disk_recovers_without_restart() {
    let Some(s) = setup() else { return };
    let (log, _) = s.open();
    let mut n = 0;
    let mut acked = Vec::new();
    for _ in 0..20 {
        let d = draft(n);
        n += 1;
        let resource = d.resource.clone();
        acked.push((resource, log.append(d).unwrap().index));
    }

    let filler = s.fs.fill();
    let mut failed = Vec::new();
    let (resource, err) = append_until_refused(&log, &mut n, &mut acked);
    failed.push(resource);
    assert!(
        matches!(&err, AuditError::Failed { reason } if reason.contains("No space left on device")
            && reason.contains("entries.wal")),
        "{err}"
    );
    // Refused at once while degraded, with the reason.
    for _ in 0..3 {
        let d = draft(n);
        n += 1;
        failed.push(d.resource.clone());
        assert!(matches!(log.append(d), Err(AuditError::Failed { .. })));
    }
    assert!(matches!(log.sign_now(), Err(AuditError::Failed { .. })));
    std::thread::sleep(Duration::from_millis(1500));
    match log.health() {
        Health::Degraded {
            reason,
            since_ms,
            failures,
        } => {
            assert!(reason.contains("No space left on device"), "{reason}");
            assert!(since_ms > 0);
            assert!(failures >= 2, "the retries fail too while the disk is full");
        }
        Health::Ok => panic!("healthy on a full disk"),
    }
    assert!(log.counters().write_failures >= 2);
    assert_eq!(log.counters().recoveries, 0);

    // Space comes back: the log recovers by itself.
    std::fs::remove_file(&filler).unwrap();
    wait_for_ok(&log, Duration::from_secs(15));
    for _ in 0..10 {
        let d = draft(n);
        n += 1;
        let resource = d.resource.clone();
        acked.push((resource, log.append(d).unwrap().index));
    }
    // No gap, no duplicate.
    let indices: Vec<u64> = acked.iter().map(|(_, i)| *i).collect();
    assert_eq!(indices, (0..acked.len() as u64).collect::<Vec<_>>());
    // The checkpoint covers everything acknowledged, and nothing refused is in the log.
    assert_eq!(log.sign_now().unwrap(), acked.len() as u64);
    let logged = logged_resources(&s.dir);
    let want: Vec<String> = acked.iter().map(|(r, _)| r.clone()).collect();
    assert_eq!(logged, want);
    for r in &failed {
        assert!(!logged.contains(r), "{r} was refused but is in the log");
    }
    verify_all(&s.dir);
    let counters = log.counters();
    assert_eq!(counters.entries_appended, acked.len() as u64);
    assert!(counters.recoveries >= 1);

    // It closes cleanly, and a reopen finds nothing to recover.
    log.close().unwrap();
    assert!(!s.dir.join("running").exists());
    let (log, rec) = s.open();
    assert_eq!(rec.size, acked.len() as u64);
    assert!(!rec.unclean);
    assert_eq!(rec.truncated_bytes, 0);
    assert_eq!(rec.entry, None);
    log.close().unwrap();
    assert_eq!(logged_resources(&s.dir), want);
}

#[test]
fn close_after_an_unrecovered_failure_fails_and_reopen_recovers() {
    let Some(s) = setup() else { return };
    let (log, _) = s.open();
    let mut n = 0;
    let mut acked = Vec::new();
    for _ in 0..5 {
        let d = draft(n);
        n += 1;
        let resource = d.resource.clone();
        acked.push((resource, log.append(d).unwrap().index));
    }
    let filler = s.fs.fill();
    let (refused, _) = append_until_refused(&log, &mut n, &mut acked);
    let start = Instant::now();
    assert!(log.close().is_err(), "close on a still full disk");
    assert!(start.elapsed() < Duration::from_secs(10));
    assert!(s.dir.join("running").exists());
    drop(log);

    std::fs::remove_file(&filler).unwrap();
    let (log, rec) = s.open();
    assert_eq!(rec.size, acked.len() as u64);
    assert!(rec.unclean);
    // The refused batch was cut from the WAL while the log was still running (the disk took the
    // truncation, not the probe), not left for the next open to find.
    assert_eq!(rec.truncated_bytes, 0);
    assert_eq!(rec.entry.unwrap().index, acked.len() as u64);
    log.close().unwrap();
    let logged = logged_resources(&s.dir);
    let want: Vec<String> = acked.iter().map(|(r, _)| r.clone()).collect();
    assert_eq!(logged[..acked.len()], want[..]);
    assert_eq!(logged.len(), acked.len() + 1, "the recovery entry follows");
    assert!(!logged.contains(&refused));
}

#[test]
fn full_disk_while_publishing_recovers_without_restart() {
    let Some(s) = setup() else { return };
    let (log, _) = s.open();
    let mut n = 0;
    let mut acked = Vec::new();
    // Enough for full tiles to be pending when the disk fills.
    for _ in 0..300 {
        let d = draft(n);
        n += 1;
        let resource = d.resource.clone();
        acked.push((resource, log.append(d).unwrap().index));
    }
    let filler = s.fs.fill();
    let err = log.sign_now().unwrap_err();
    assert!(
        err.to_string().contains("No space left on device")
            || format!("{:?}", err).contains("StorageFull"),
        "{err:?}"
    );
    match log.health() {
        Health::Degraded { reason, .. } => assert!(reason.starts_with("publishing: "), "{reason}"),
        Health::Ok => panic!("healthy after a failed checkpoint"),
    }
    let d = draft(n);
    n += 1;
    let refused = d.resource.clone();
    assert!(matches!(log.append(d), Err(AuditError::Failed { .. })));

    std::fs::remove_file(&filler).unwrap();
    wait_for_ok(&log, Duration::from_secs(15));
    for _ in 0..10 {
        let d = draft(n);
        n += 1;
        let resource = d.resource.clone();
        acked.push((resource, log.append(d).unwrap().index));
    }
    let indices: Vec<u64> = acked.iter().map(|(_, i)| *i).collect();
    assert_eq!(indices, (0..acked.len() as u64).collect::<Vec<_>>());
    assert_eq!(log.sign_now().unwrap(), acked.len() as u64);
    let logged = logged_resources(&s.dir);
    let want: Vec<String> = acked.iter().map(|(r, _)| r.clone()).collect();
    assert_eq!(logged, want);
    assert!(!logged.contains(&refused));
    verify_all(&s.dir);
    log.close().unwrap();
    let (log, rec) = s.open();
    assert!(!rec.unclean);
    assert_eq!(rec.entry, None);
    log.close().unwrap();
}

#[test]
fn close_recovers_a_log_whose_disk_came_back() {
    let Some(s) = setup() else { return };
    let (log, _) = s.open();
    let mut n = 0;
    let mut acked = Vec::new();
    for _ in 0..5 {
        let d = draft(n);
        n += 1;
        let resource = d.resource.clone();
        acked.push((resource, log.append(d).unwrap().index));
    }
    let filler = s.fs.fill();
    let (refused, _) = append_until_refused(&log, &mut n, &mut acked);
    // Freed before the first retry is due: close itself recovers, then closes cleanly.
    std::fs::remove_file(&filler).unwrap();
    log.close().unwrap();
    assert!(!s.dir.join("running").exists());
    let (log, rec) = s.open();
    assert_eq!(rec.size, acked.len() as u64);
    assert!(!rec.unclean);
    assert_eq!(rec.entry, None);
    log.close().unwrap();
    let logged = logged_resources(&s.dir);
    let want: Vec<String> = acked.iter().map(|(r, _)| r.clone()).collect();
    assert_eq!(logged, want);
    assert!(!logged.contains(&refused));
}
