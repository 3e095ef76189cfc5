//! Durable append benchmarks for the audit log.
//!
//! * `append/throughput_16_threads`: 16 threads submit entries (each keeping up to 256 in
//!   flight, as a server with many concurrent requests does) and wait for every one to be
//!   durable. Criterion reports entries/s.
//! * `append/one_blocking`: one `append` at a time (latency of an unloaded log).
//!
//! Besides criterion's output it prints, for docs/benchmarks.md:
//! * throughput with 16 threads (windowed `submit`, and blocking `append` per thread),
//! * latency percentiles at a paced 1,000 entries/s (submit to durable acknowledgement),
//! * the time to reopen (recover and validate) the log written by the run.
//!
//! Run with `cargo bench -p sov-audit --bench append`; set `SOV_AUDIT_BENCH_DIR` to put the log
//! on another filesystem (default: a temporary directory).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use sov_audit::{AuditLog, Draft, Kind, LogConfig, Outcome};
use sov_keys::LogKey;

const THREADS: u64 = 16;
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

struct Bench {
    _tmp: Option<tempfile::TempDir>,
    dir: PathBuf,
    keys: PathBuf,
}

fn setup() -> Bench {
    let (tmp, base) = match std::env::var_os("SOV_AUDIT_BENCH_DIR") {
        Some(d) => {
            let base = PathBuf::from(d).join(format!("sov-audit-bench-{}", std::process::id()));
            (None, base)
        }
        None => {
            let t = tempfile::tempdir().unwrap();
            let p = t.path().to_path_buf();
            (Some(t), p)
        }
    };
    let keys = base.join("keys");
    LogKey::init_or_load(&keys).unwrap();
    Bench {
        _tmp: tmp,
        dir: base.join("audit"),
        keys,
    }
}

fn open(b: &Bench) -> AuditLog {
    open_with(b, Duration::from_secs(1))
}

fn open_with(b: &Bench, interval: Duration) -> AuditLog {
    let key = LogKey::init_or_load(&b.keys).unwrap();
    let mut config = LogConfig::new("bench.sovereign/audit", "bench-node");
    config.checkpoint_interval = interval;
    AuditLog::open(&b.dir, key, config).unwrap().0
}

/// `total` entries from 16 threads; each keeps up to `window` in flight (1 = blocking
/// `append`). Returns the time until the last one is durable.
fn run_threads(log: &AuditLog, total: u64, window: usize) -> Duration {
    let start = Instant::now();
    std::thread::scope(|s| {
        for t in 0..THREADS {
            let log = log.clone();
            let n = total / THREADS + u64::from(t < total % THREADS);
            s.spawn(move || {
                if window <= 1 {
                    for i in 0..n {
                        log.append(draft(t << 32 | i)).unwrap();
                    }
                    return;
                }
                let (tx, rx) = mpsc::channel();
                let mut in_flight = 0;
                for i in 0..n {
                    if in_flight >= window {
                        rx.recv().unwrap();
                        in_flight -= 1;
                    }
                    let tx = tx.clone();
                    log.submit(draft(t << 32 | i), move |r| {
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
    start.elapsed()
}

/// Submit-to-durable latency at a paced `rate` per second for `secs` seconds (one submitter,
/// absolute schedule, so a slow acknowledgement does not slow the pace).
fn paced_latency(log: &AuditLog, rate: u64, secs: u64) -> Vec<(Duration, Duration)> {
    let samples = Arc::new(Mutex::new(Vec::with_capacity((rate * secs) as usize)));
    let (tx, rx) = mpsc::channel();
    let period = Duration::from_nanos(1_000_000_000 / rate);
    let start = Instant::now();
    let total = rate * secs;
    for i in 0..total {
        let due = start + period * i as u32;
        while Instant::now() < due {
            let left = due.saturating_duration_since(Instant::now());
            if left > Duration::from_micros(200) {
                std::thread::sleep(left - Duration::from_micros(100));
            } else {
                std::hint::spin_loop();
            }
        }
        let sent = Instant::now();
        let samples = Arc::clone(&samples);
        let tx = tx.clone();
        log.submit(draft(i), move |r| {
            r.unwrap();
            samples
                .lock()
                .unwrap()
                .push((sent.elapsed(), sent.duration_since(start)));
            let _ = tx.send(());
        });
    }
    for _ in 0..total {
        rx.recv().unwrap();
    }
    let mut v = std::mem::take(&mut *samples.lock().unwrap());
    v.sort_unstable();
    v
}

fn print_latency(what: &str, samples: &[(Duration, Duration)]) {
    let lat: Vec<Duration> = samples.iter().map(|s| s.0).collect();
    println!(
        "RESULT append latency at 1,000 entries/s, {what} ({} samples): p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, p99.9 {:.2} ms, max {:.2} ms",
        lat.len(),
        pct(&lat, 0.50),
        pct(&lat, 0.90),
        pct(&lat, 0.99),
        pct(&lat, 0.999),
        pct(&lat, 1.0)
    );
    if std::env::var_os("SOV_AUDIT_BENCH_SLOW").is_some() {
        for (l, at) in samples.iter().rev().take(30) {
            println!(
                "  slow: {:.2} ms at {:.3} s",
                l.as_secs_f64() * 1e3,
                at.as_secs_f64()
            );
        }
    }
}

fn pct(v: &[Duration], p: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    let i = ((v.len() as f64 * p).ceil() as usize).clamp(1, v.len()) - 1;
    v[i].as_secs_f64() * 1e3
}

fn report(b: &Bench) {
    let log = open(b);
    // Warm up.
    run_threads(&log, 20_000, WINDOW);
    let n = 200_000;
    let t = run_threads(&log, n, WINDOW);
    println!(
        "RESULT durable append, 16 threads x {WINDOW} in flight (submit): {:.0} entries/s ({n} entries in {:.2} s)",
        n as f64 / t.as_secs_f64(),
        t.as_secs_f64()
    );
    let n = 30_000;
    let t = run_threads(&log, n, 1);
    println!(
        "RESULT durable append, 16 threads x blocking append: {:.0} entries/s ({n} entries in {:.2} s)",
        n as f64 / t.as_secs_f64(),
        t.as_secs_f64()
    );
    print_latency("checkpoint every 1 s", &paced_latency(&log, 1000, 10));
    log.close().unwrap();
    // The same with no checkpoint during the run: the WAL's fdatasync alone.
    let log = open_with(b, Duration::from_secs(3600));
    print_latency("no checkpoint", &paced_latency(&log, 1000, 10));
    log.close().unwrap();
    reopen_time(b);
}

fn reopen_time(b: &Bench) {
    let start = Instant::now();
    let log = open(b);
    let t = start.elapsed();
    let size = log.sign_now().unwrap();
    log.close().unwrap();
    let wal = std::fs::metadata(b.dir.join("entries.wal")).unwrap().len();
    println!(
        "RESULT reopen (validate the whole WAL, check every tile, sign): {size} entries ({} MiB) in {:.2} s = {:.0} entries/s",
        wal >> 20,
        t.as_secs_f64(),
        size as f64 / t.as_secs_f64()
    );
}

fn benches(c: &mut Criterion) {
    let b = setup();
    report(&b);
    let log = open(&b);
    let mut group = c.benchmark_group("append");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(10));
    let per_iter = 10_000u64;
    group.throughput(Throughput::Elements(per_iter));
    group.bench_function("throughput_16_threads", |bn| {
        bn.iter_custom(|iters| {
            (0..iters)
                .map(|_| run_threads(&log, per_iter, WINDOW))
                .sum()
        });
    });
    group.throughput(Throughput::Elements(1));
    group.sample_size(50);
    group.measurement_time(Duration::from_secs(5));
    let mut i = 0u64;
    group.bench_function("one_blocking", |bn| {
        bn.iter(|| {
            i += 1;
            log.append(draft(i)).unwrap()
        });
    });
    group.finish();
    log.close().unwrap();
    if std::env::var_os("SOV_AUDIT_BENCH_DIR").is_some() {
        let _ = std::fs::remove_dir_all(b.dir.parent().unwrap_or(Path::new("/nonexistent")));
    }
}

criterion_group!(append, benches);
criterion_main!(append);
