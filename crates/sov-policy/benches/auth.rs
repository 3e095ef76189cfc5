//! Authentication plus authorisation, as a request pays for them: look the bearer token up in
//! the SQLite directory (constant-time hash check, principal loaded), then a Cedar decision
//! against the starter policy set. Prints p50/p99/p99.9 of single calls as well as criterion's
//! mean, for each directory size in `SOV_BENCH_PRINCIPALS` (comma-separated principal counts,
//! one token each; default `1000`, so `cargo bench` stays quick):
//!
//! ```text
//! SOV_BENCH_PRINCIPALS=1000,1000000 cargo bench --release -p sov-policy --bench auth
//! ```
//!
//! The first 1,000 principals of each directory are added one call at a time through
//! [`Directory::add_principal`] and [`Directory::issue_token`] (one transaction, so one
//! `fsync`, per call: the rate is printed), the rest in [`Directory::batch`]es of 10,000. The
//! directory is then closed and opened again (the time is printed), so the calls start from a
//! cold SQLite cache. Each size measures:
//! - `hot`: the same token every call (its pages stay in SQLite's cache);
//! - `spread`: 1,000 tokens spread evenly over the directory, in shuffled order, so a lookup
//!   walks B-tree pages that a 1,000,000-principal directory cannot keep in SQLite's cache;
//! - `session`: resuming a session (its token read again, [`Guard::resume`]), spread likewise;
//! - the admin lookups `token(id)` and `tokens(Some(principal))`.
//!
//! Then, for each count in `SOV_BENCH_SESSIONS` (default `1000`), with that many sessions open
//! (one principal, no per-principal bound), the cost of signing in (`Guard::open_session`) and of
//! a request through a session (`Guard::resume`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use sov_policy::store::now_ms;
use sov_policy::{
    Action, Directory, Guard, NewPrincipal, Policies, PrincipalKind, Resource, SessionLimits,
};

/// Principals added one call at a time (the rest in batches).
const ONE_BY_ONE: usize = 1000;
/// Principals per batch.
const BATCH: usize = 10_000;
/// Tokens sampled evenly over the directory for the `spread` runs.
const SAMPLES: usize = 1000;

fn sizes() -> Vec<usize> {
    let raw = std::env::var("SOV_BENCH_PRINCIPALS").unwrap_or_else(|_| "1000".into());
    raw.split(',')
        .map(|s| {
            s.trim()
                .replace('_', "")
                .parse()
                .expect("SOV_BENCH_PRINCIPALS: comma-separated counts")
        })
        .collect()
}

fn principal(i: usize) -> NewPrincipal {
    NewPrincipal {
        name: format!("user{i}"),
        kind: PrincipalKind::Person,
        roles: BTreeSet::from(["analyst".to_owned()]),
        attrs: BTreeMap::from([("clearance".to_owned(), "2".to_owned())]),
    }
}

struct Node {
    _tmp: tempfile::TempDir,
    guard: Guard,
    policies: Policies,
    /// The secret of every `n / SAMPLES`-th principal's token, in shuffled order.
    tokens: Vec<String>,
    /// The principals of `tokens`, in the same order.
    names: Vec<String>,
}

/// A directory of `n` principals with one token each.
fn build(n: usize) -> Node {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("identity.db");
    let dir = Directory::open(&path).unwrap();
    let every = (n / SAMPLES).max(1);
    let mut tokens = Vec::new();
    let mut names = Vec::new();
    let mut keep = |i: usize, secret: &str| {
        if i.is_multiple_of(every) {
            tokens.push(secret.to_owned());
            names.push(format!("user{i}"));
        }
    };

    let first = n.min(ONE_BY_ONE);
    let t = Instant::now();
    for i in 0..first {
        dir.add_principal(&principal(i), "bench").unwrap();
        let (token, _) = dir
            .issue_token(&format!("user{i}"), None, None, "bench")
            .unwrap();
        keep(i, token.secret());
    }
    let one = t.elapsed();
    let t = Instant::now();
    let mut i = first;
    while i < n {
        let end = (i + BATCH).min(n);
        dir.batch("bench", |b| {
            for j in i..end {
                b.add_principal(&principal(j))?;
                let (token, _) = b.issue_token(&format!("user{j}"), None, None)?;
                keep(j, token.secret());
            }
            Ok(())
        })
        .unwrap();
        i = end;
    }
    let batched = t.elapsed();
    drop(dir);
    let size = std::fs::metadata(&path).map_or(0, |m| m.len());

    println!(
        "[{n} principals] built: {first} one by one in {:.2} s ({:.2} ms per principal + token, \
         two commits), {} in batches of {BATCH} in {:.1} s ({:.1} us per principal + token); \
         identity.db {:.1} MB",
        one.as_secs_f64(),
        one.as_secs_f64() * 1000.0 / first as f64,
        n - first,
        batched.as_secs_f64(),
        if n > first {
            batched.as_secs_f64() * 1e6 / (n - first) as f64
        } else {
            0.0
        },
        size as f64 / 1e6
    );

    // A fresh open: what a starting server pays, and a cold SQLite cache for what follows.
    let t = Instant::now();
    let dir = Directory::open(&path).unwrap();
    let opened = t.elapsed();
    let policies = Policies::starter().unwrap();
    let guard = Guard::new(Arc::new(dir), policies.clone(), None);
    println!(
        "[{n} principals] Directory::open + Guard::new: {:.2} ms",
        opened.as_secs_f64() * 1000.0
    );

    // Shuffle (xorshift; the order only has to defeat locality, not be random).
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    for k in (1..tokens.len()).rev() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let j = (x % (k as u64 + 1)) as usize;
        tokens.swap(k, j);
        names.swap(k, j);
    }
    Node {
        _tmp: tmp,
        guard,
        policies,
        tokens,
        names,
    }
}

fn once(node: &Node, token: &str, model: &Resource) -> bool {
    let caller = node
        .guard
        .directory()
        .authenticate(Some(token), now_ms())
        .unwrap()
        .unwrap();
    node.policies
        .decide(caller.principal(), Action::Infer, model)
        .is_allowed()
}

/// Nanoseconds this thread has waited for a CPU (Linux's `/proc/thread-self/schedstat`, second
/// field; 0 where it is not there). On a busy machine a call's wall time includes waits while
/// another process runs; subtracting them leaves the time the calls themselves took.
fn run_delay_ns() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse().ok())
        .unwrap_or(0)
}

/// Times `calls` calls of `f(k)` and prints p50/p99/p99.9 of the wall time, and the mean with
/// the time spent waiting for a CPU taken out.
fn percentiles(label: &str, what: &str, calls: usize, mut f: impl FnMut(usize)) {
    let waited = run_delay_ns();
    let start = Instant::now();
    let mut samples: Vec<Duration> = (0..calls)
        .map(|k| {
            let t = Instant::now();
            f(k);
            t.elapsed()
        })
        .collect();
    let wall = start.elapsed().as_nanos() as f64;
    let waited = run_delay_ns().saturating_sub(waited) as f64;
    samples.sort_unstable();
    let pct = |p: f64| {
        samples[((samples.len() as f64 * p) as usize).min(samples.len() - 1)].as_secs_f64() * 1e6
    };
    println!(
        "[{label}] {what}, {calls} calls: p50 {:.1} us, p99 {:.1} us, p99.9 {:.1} us; \
         mean {:.1} us, {:.1} us on CPU",
        pct(0.50),
        pct(0.99),
        pct(0.999),
        wall / calls as f64 / 1000.0,
        (wall - waited).max(0.0) / calls as f64 / 1000.0
    );
}

fn bench(c: &mut Criterion) {
    let model = Resource::Model("smollm2-135m-instruct".into());
    for n in sizes() {
        let label = format!("{n} principals");
        let node = build(n);
        let hot = node.tokens[0].clone();
        assert!(once(&node, &hot, &model));
        let spread = |k: usize| &node.tokens[k % node.tokens.len()];

        // The spread run first: the cache is cold from the fresh open.
        percentiles(&label, "authenticate + authorise, spread", 20_000, |k| {
            black_box(once(&node, spread(k), &model));
        });
        percentiles(&label, "authenticate + authorise, hot", 20_000, |_| {
            black_box(once(&node, &hot, &model));
        });
        let sessions: Vec<String> = node
            .tokens
            .iter()
            .map(|t| {
                let caller = node.guard.authenticate(Ok(Some(t))).unwrap().unwrap();
                let (_, opened) = node.guard.open_session(caller).unwrap();
                opened.secret.to_string()
            })
            .collect();
        percentiles(&label, "session resume + authorise, spread", 20_000, |k| {
            let caller = node
                .guard
                .resume(&sessions[k % sessions.len()])
                .unwrap()
                .unwrap();
            black_box(
                node.policies
                    .decide(caller.principal(), Action::Infer, &model)
                    .is_allowed(),
            );
        });
        let dir = node.guard.directory();
        let ids: Vec<String> = node.tokens.iter().map(|t| t[4..16].to_owned()).collect();
        percentiles(&label, "admin: token(id)", 200, |k| {
            black_box(dir.token(&ids[k % ids.len()]).unwrap().unwrap());
        });
        percentiles(&label, "admin: tokens(Some(principal))", 200, |k| {
            let list = dir.tokens(Some(&node.names[k % node.names.len()])).unwrap();
            assert_eq!(black_box(list).len(), 1);
        });

        let mut g = c.benchmark_group(format!("auth/{n}"));
        g.bench_function("authenticate", |b| {
            b.iter(|| black_box(dir.authenticate(Some(&hot), now_ms()).unwrap()))
        });
        let caller = dir.authenticate(Some(&hot), now_ms()).unwrap().unwrap();
        g.bench_function("authorise (Cedar, starter set)", |b| {
            b.iter(|| {
                black_box(
                    node.policies
                        .decide(caller.principal(), Action::Infer, &model),
                )
            })
        });
        g.bench_function("authenticate + authorise", |b| {
            b.iter(|| black_box(once(&node, &hot, &model)))
        });
        g.finish();
    }
}

/// Sign-in and session use with `held` sessions open.
fn sessions(held: usize) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = Directory::open(&tmp.path().join("identity.db")).unwrap();
    dir.add_principal(&principal(0), "bench").unwrap();
    let (token, _) = dir.issue_token("user0", None, None, "bench").unwrap();
    let limits = SessionLimits {
        per_principal: usize::MAX,
        max: usize::MAX,
        ..SessionLimits::default()
    };
    let guard =
        Guard::new(Arc::new(dir), Policies::starter().unwrap(), None).with_session_limits(limits);
    let open = || {
        let caller = guard
            .authenticate(Ok(Some(token.secret())))
            .unwrap()
            .unwrap();
        guard.open_session(caller).unwrap().1.secret.to_string()
    };
    let secrets: Vec<String> = (0..held).map(|_| open()).collect();
    let label = format!("{held} sessions");
    percentiles(&label, "sign in (open_session)", 200, |_| {
        black_box(open());
    });
    percentiles(&label, "resume", 20_000, |k| {
        black_box(guard.resume(&secrets[k % held]).unwrap().unwrap());
    });
}

fn session_bench(_: &mut Criterion) {
    let raw = std::env::var("SOV_BENCH_SESSIONS").unwrap_or_else(|_| "1000".into());
    for held in raw.split(',') {
        sessions(
            held.trim()
                .parse()
                .expect("SOV_BENCH_SESSIONS: comma-separated counts"),
        );
    }
}

criterion_group!(benches, bench, session_bench);
criterion_main!(benches);
