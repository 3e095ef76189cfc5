//! Hybrid search over generated corpora of 10,000 and 100,000 chunks (`SOV_BENCH_CHUNKS`,
//! comma-separated, changes the sizes): criterion's timing, then p50/p99 over 200 queries and
//! the memory the vectors take.
//!
//! The corpora are synthetic: documents of sections of about 150 words drawn from a
//! 5,000-word vocabulary (Zipf-like), one chunk per section, 384-dimension vectors (the size of
//! all-MiniLM-L6-v2's) from a hashing embedder. Every document is readable, so both lists
//! consider every chunk: the worst case for the scan. Building the 100,000-chunk corpus takes
//! a minute or two on a small machine; the search is what is measured.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use sov_keys::OwnerKeys;
use sov_knowledge::{
    AddOptions, Corpus, EmbedError, Embedder, EmbedderId, KnowledgeStore, Readable,
};
use sov_policy::{Action, Directory, Guard, NewPrincipal, Policies, PrincipalKind};

const DIMS: usize = 384;
const CHUNKS_PER_DOC: usize = 100;

struct Lcg(u64);
impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
}

fn vector(text: &str) -> Vec<f32> {
    let mut v = vec![0f32; DIMS];
    for word in text
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
    {
        let mut h: u64 = 0xcbf29ce484222325;
        for b in word.bytes() {
            h = (h ^ u64::from(b)).wrapping_mul(0x100000001b3);
        }
        v[(h % DIMS as u64) as usize] += if h >> 63 == 0 { 1.0 } else { -1.0 };
    }
    v[DIMS - 1] += 0.01;
    v
}

struct Bench;
impl Embedder for Bench {
    fn id(&self) -> EmbedderId {
        EmbedderId {
            name: "bench-hash".into(),
            sha256: "0".repeat(64),
            dims: DIMS as u32,
        }
    }
    fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, EmbedError> {
        Ok(texts.iter().map(|t| vector(t)).collect())
    }
}

fn vocabulary() -> Vec<String> {
    let mut rng = Lcg(7);
    (0..5000)
        .map(|i| {
            let len = 3 + (rng.next() % 8) as usize;
            let mut w: String = (0..len)
                .map(|_| (b'a' + (rng.next() % 26) as u8) as char)
                .collect();
            w.push_str(&i.to_string());
            w
        })
        .collect()
}

fn word<'a>(vocab: &'a [String], rng: &mut Lcg) -> &'a str {
    // Zipf-like: small indices far more often.
    let r = (rng.next() % 1_000_000) as f64 / 1_000_000.0;
    let i = ((vocab.len() as f64).powf(r) as usize).saturating_sub(1);
    &vocab[i.min(vocab.len() - 1)]
}

struct Fixture {
    _dirs: Vec<tempfile::TempDir>,
    corpus: Corpus,
    readable: Readable,
    /// Every other document only (the permission filter in SQL).
    half: Readable,
    queries: Vec<(String, Vec<f32>)>,
}

fn build(chunks: usize) -> Fixture {
    let vocab = vocabulary();
    let mut rng = Lcg(chunks as u64);
    let docs = tempfile::tempdir().unwrap();
    for d in 0..chunks.div_ceil(CHUNKS_PER_DOC) {
        let mut text = format!("# Document {d}\n\n");
        for s in 0..CHUNKS_PER_DOC.min(chunks - d * CHUNKS_PER_DOC) {
            text.push_str(&format!("## Section {s}\n\n"));
            for w in 0..150 {
                text.push_str(word(&vocab, &mut rng));
                text.push_str(if w % 15 == 14 { ". " } else { " " });
            }
            text.push_str("\n\n");
        }
        std::fs::write(docs.path().join(format!("doc-{d:05}.md")), text).unwrap();
    }
    let keys_dir = tempfile::tempdir().unwrap();
    OwnerKeys::init(keys_dir.path()).unwrap();
    let keys = OwnerKeys::load(keys_dir.path()).unwrap();
    let home = tempfile::tempdir().unwrap();
    let store = KnowledgeStore::open(&home.path().join("corpora")).unwrap();
    let mut corpus = store.create("bench", &Bench.id(), &keys).unwrap();
    let started = Instant::now();
    corpus
        .add(
            &[docs.path().to_path_buf()],
            &AddOptions::default(),
            &Bench,
            &keys,
        )
        .unwrap();
    eprintln!(
        "built {} chunks in {} documents in {:.1} s",
        corpus.chunk_count(),
        corpus.documents().len(),
        started.elapsed().as_secs_f64()
    );
    let started = Instant::now();
    let corpus = store.open_corpus("bench", &keys.public()).unwrap();
    eprintln!(
        "opened (signature, every chunk's digest, vectors loaded) in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let directory = Directory::open(&home.path().join("identity.db")).unwrap();
    let analyst = NewPrincipal {
        name: "ana".into(),
        kind: PrincipalKind::Person,
        roles: ["analyst".to_owned()].into(),
        attrs: BTreeMap::new(),
    };
    directory.add_principal(&analyst, "bench").unwrap();
    let guard = Guard::new(Arc::new(directory), Policies::starter().unwrap(), None);
    let caller = guard.local("ana", "bench").unwrap();
    let permits: Vec<_> = corpus
        .document_resources()
        .into_iter()
        .filter_map(|r| {
            guard
                .decide(&caller, Action::ReadCorpus, &r, None)
                .into_permit()
                .ok()
        })
        .collect();
    let half = Readable::from_permits("bench", permits.iter().step_by(2).cloned());
    let readable = Readable::from_permits("bench", permits);
    let queries = (0..200)
        .map(|_| {
            let q: Vec<&str> = (0..4).map(|_| word(&vocab, &mut rng)).collect();
            let q = q.join(" ");
            let v = vector(&q);
            (q, v)
        })
        .collect();
    Fixture {
        _dirs: vec![docs, keys_dir, home],
        corpus,
        readable,
        half,
        queries,
    }
}

/// p50 and p99 of `k = 10` searches over the fixture's queries, in ms; `text: false` leaves
/// the query text out (vectors only: no BM25 list).
fn percentiles(f: &Fixture, readable: &Readable, text: bool) -> (f64, f64) {
    let mut times: Vec<Duration> = f
        .queries
        .iter()
        .map(|(q, v)| {
            let q = if text { q.as_str() } else { "" };
            let t = Instant::now();
            let hits = f.corpus.search(q, v, readable, 10).unwrap();
            let elapsed = t.elapsed();
            assert_eq!(hits.len(), 10);
            elapsed
        })
        .collect();
    times.sort();
    let at = |p: f64| times[((times.len() as f64 * p) as usize).min(times.len() - 1)];
    (at(0.50).as_secs_f64() * 1e3, at(0.99).as_secs_f64() * 1e3)
}

fn report(f: &Fixture) {
    let n = f.corpus.chunk_count();
    // The first pass counts each term once (cold cache); the second is warm.
    let (c50, c99) = percentiles(f, &f.readable, true);
    let (p50, p99) = percentiles(f, &f.readable, true);
    let (h50, h99) = percentiles(f, &f.half, true);
    let (d50, d99) = percentiles(f, &f.readable, false);
    eprintln!(
        "{n} chunks, k=10, {} queries: hybrid cold p50 {c50:.2} ms p99 {c99:.2} ms; warm p50 {p50:.2} ms p99 {p99:.2} ms; half the documents readable p50 {h50:.2} ms p99 {h99:.2} ms; vectors only p50 {d50:.2} ms p99 {d99:.2} ms; vectors {:.1} MB ({:.1} MB per 100,000 chunks)",
        f.queries.len(),
        (n * DIMS * 4) as f64 / 1e6,
        (DIMS * 4 * 100_000) as f64 / 1e6,
    );
}

fn search(c: &mut Criterion) {
    let sizes = std::env::var("SOV_BENCH_CHUNKS").unwrap_or_else(|_| "10000,100000".into());
    for size in sizes
        .split(',')
        .filter_map(|s| s.trim().parse::<usize>().ok())
    {
        let f = build(size);
        report(&f);
        let mut group = c.benchmark_group("hybrid_search");
        group
            .sample_size(20)
            .measurement_time(Duration::from_secs(5));
        let mut i = 0;
        group.bench_function(format!("{size}_chunks_k10"), |b| {
            b.iter(|| {
                let (q, v) = &f.queries[i % f.queries.len()];
                i += 1;
                f.corpus.search(q, v, &f.readable, 10).unwrap()
            })
        });
        group.finish();
    }
}

criterion_group!(benches, search);
criterion_main!(benches);
