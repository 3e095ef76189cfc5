//! How long `AuditLog::open` takes on a cleanly closed log, with its signed resume point
//! (`open/resume/<n>`: reads the last tile's entries only) and without (`open/full/<n>`: the
//! resume file is deleted before every open, so the whole WAL is validated and replayed and every
//! tile checked), at 10,000 and 1,000,000 entries. Each measured open includes signing the
//! checkpoint it publishes; the close after it is not measured.
//!
//! The two logs are built once per run (the big one takes a while). Besides criterion's output it
//! prints, per case, the WAL bytes open read (`Recovery::wal_bytes_read`).
//!
//! Run with `cargo bench -p sov-audit --bench open`; set `SOV_AUDIT_BENCH_DIR` to put the logs on
//! another filesystem (default: a temporary directory), and `SOV_AUDIT_BENCH_OPEN_SIZES` (e.g.
//! `10000,1000000`) to pick the sizes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, SamplingMode, criterion_group, criterion_main};
use sov_audit::{AuditLog, Draft, Kind, LogConfig, Outcome, RESUME_FILE, Recovery};
use sov_keys::LogKey;

const THREADS: u64 = 8;
const WINDOW: usize = 256;

fn draft(i: u64) -> Draft {
    let mut d = Draft::new(
        Kind::Inference,
        "api-key:4f2a9c",
        "model/qwen2.5-7b-instruct-q4_k_m",
        Outcome::Ok,
    );
    d.model = Some([7; 32]);
    d.input = Some([i as u8; 32]);
    d.output = Some([(i >> 8) as u8; 32]);
    d.attrs = vec![
        ("route".into(), "/v1/chat/completions".into()),
        ("tokens_in".into(), (i % 900).to_string()),
        ("tokens_out".into(), (i % 300).to_string()),
    ];
    d
}

struct Log {
    dir: PathBuf,
    keys: PathBuf,
    size: u64,
}

fn open(log: &Log) -> (AuditLog, Recovery) {
    let key = LogKey::init_or_load(&log.keys).unwrap();
    let config = LogConfig::new("bench.sovereign/audit", "bench-node");
    AuditLog::open(&log.dir, key, config).unwrap()
}

/// A cleanly closed log of `n` entries under `base`.
fn build(base: &Path, n: u64) -> Log {
    let log = Log {
        dir: base.join(format!("audit-{n}")),
        keys: base.join("keys"),
        size: n,
    };
    LogKey::init_or_load(&log.keys).unwrap();
    let start = Instant::now();
    let (w, _) = open(&log);
    std::thread::scope(|s| {
        for t in 0..THREADS {
            let w = w.clone();
            let count = n / THREADS + u64::from(t < n % THREADS);
            s.spawn(move || {
                let (tx, rx) = mpsc::channel();
                let mut in_flight = 0;
                for i in 0..count {
                    if in_flight >= WINDOW {
                        rx.recv().unwrap();
                        in_flight -= 1;
                    }
                    let tx = tx.clone();
                    w.submit(draft(t << 32 | i), move |r| {
                        r.unwrap();
                        let _ = tx.send(());
                    });
                    in_flight += 1;
                }
                for _ in 0..in_flight {
                    rx.recv().unwrap();
                }
            });
        }
    });
    w.close().unwrap();
    let wal = std::fs::metadata(log.dir.join("entries.wal"))
        .unwrap()
        .len();
    println!(
        "RESULT built a log of {n} entries ({} MiB of WAL) in {:.1} s",
        wal >> 20,
        start.elapsed().as_secs_f64()
    );
    log
}

/// One open (timed) and close (not timed); `full` deletes the resume file first.
fn open_once(log: &Log, full: bool) -> (Duration, Recovery) {
    if full {
        std::fs::remove_file(log.dir.join(RESUME_FILE)).unwrap();
    }
    let start = Instant::now();
    let (w, rec) = open(log);
    let took = start.elapsed();
    assert_eq!(rec.size, log.size);
    assert_eq!(rec.resumed_at.is_some(), !full, "{:?}", rec.resume_fallback);
    w.close().unwrap();
    (took, rec)
}

fn benches(c: &mut Criterion) {
    let (_tmp, base) = match std::env::var_os("SOV_AUDIT_BENCH_DIR") {
        Some(d) => (
            None,
            PathBuf::from(d).join(format!("sov-audit-open-{}", std::process::id())),
        ),
        None => {
            let t = tempfile::tempdir().unwrap();
            let p = t.path().to_path_buf();
            (Some(t), p)
        }
    };
    let sizes: Vec<u64> = std::env::var("SOV_AUDIT_BENCH_OPEN_SIZES")
        .unwrap_or_else(|_| "10000,1000000".into())
        .split(',')
        .map(|s| s.trim().parse().unwrap())
        .collect();
    let logs: Vec<Log> = sizes.iter().map(|&n| build(&base, n)).collect();
    for log in &logs {
        for full in [false, true] {
            let (t, rec) = open_once(log, full);
            println!(
                "RESULT open {} of {} entries: {:.3} s, {} WAL bytes read",
                if full { "full scan" } else { "resumed" },
                log.size,
                t.as_secs_f64(),
                rec.wal_bytes_read
            );
        }
    }
    let mut group = c.benchmark_group("open");
    group.sampling_mode(SamplingMode::Flat);
    group.sample_size(10);
    group.warm_up_time(Duration::from_millis(500));
    group.measurement_time(Duration::from_secs(3));
    for log in &logs {
        for (name, full) in [("resume", false), ("full", true)] {
            group.bench_with_input(BenchmarkId::new(name, log.size), log, |b, log| {
                b.iter_custom(|iters| (0..iters).map(|_| open_once(log, full).0).sum());
            });
        }
    }
    group.finish();
    if std::env::var_os("SOV_AUDIT_BENCH_DIR").is_some() {
        let _ = std::fs::remove_dir_all(&base);
    }
}

criterion_group!(open_benches, benches);
criterion_main!(open_benches);
