//! Authentication plus authorisation, as a request pays for them: look the bearer token up in
//! the SQLite directory (constant-time hash check, principal loaded), then a Cedar decision
//! against the starter policy set. Prints p50/p99 of single calls as well as criterion's mean.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::hint::black_box;
use std::time::Instant;

use criterion::{Criterion, criterion_group, criterion_main};
use sov_policy::store::now_ms;
use sov_policy::{Action, Directory, NewPrincipal, Policies, PrincipalKind, Resource};

fn setup() -> (tempfile::TempDir, Directory, Policies, String) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = Directory::open(&tmp.path().join("identity.db")).unwrap();
    // A directory of realistic size: 1,000 principals, one token each.
    for i in 0..1000 {
        let p = NewPrincipal {
            name: format!("user{i}"),
            kind: PrincipalKind::Person,
            roles: BTreeSet::from(["analyst".to_owned()]),
            attrs: BTreeMap::from([("clearance".to_owned(), "2".to_owned())]),
        };
        dir.add_principal(&p, "bench").unwrap();
        dir.issue_token(&p.name, None, None, "bench").unwrap();
    }
    let (token, _) = dir.issue_token("user500", None, None, "bench").unwrap();
    let policies = Policies::starter().unwrap();
    (tmp, dir, policies, token.secret().to_owned())
}

fn once(dir: &Directory, policies: &Policies, token: &str, model: &Resource) -> bool {
    let caller = dir.authenticate(Some(token), now_ms()).unwrap().unwrap();
    policies
        .decide(caller.principal(), Action::Infer, model)
        .is_allowed()
}

fn bench(c: &mut Criterion) {
    let (_tmp, dir, policies, token) = setup();
    let model = Resource::Model("smollm2-135m-instruct".into());
    assert!(once(&dir, &policies, &token, &model));

    let mut samples: Vec<u128> = (0..20_000)
        .map(|_| {
            let t = Instant::now();
            black_box(once(&dir, &policies, &token, &model));
            t.elapsed().as_nanos()
        })
        .collect();
    samples.sort_unstable();
    let pct = |p: f64| samples[((samples.len() as f64 * p) as usize).min(samples.len() - 1)];
    println!(
        "authenticate + authorise, 20,000 calls: p50 {:.1} us, p99 {:.1} us, p99.9 {:.1} us",
        pct(0.50) as f64 / 1000.0,
        pct(0.99) as f64 / 1000.0,
        pct(0.999) as f64 / 1000.0
    );

    let mut g = c.benchmark_group("auth");
    g.bench_function("authenticate", |b| {
        b.iter(|| black_box(dir.authenticate(Some(&token), now_ms()).unwrap()))
    });
    let caller = dir.authenticate(Some(&token), now_ms()).unwrap().unwrap();
    g.bench_function("authorise (Cedar, starter set)", |b| {
        b.iter(|| black_box(policies.decide(caller.principal(), Action::Infer, &model)))
    });
    g.bench_function("authenticate + authorise", |b| {
        b.iter(|| black_box(once(&dir, &policies, &token, &model)))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
