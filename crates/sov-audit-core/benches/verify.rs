//! Full verification of a log: a synthetic log of 200,000 realistic entries (about 200 bytes
//! each) built in memory, with a checkpoint signed by Ed25519 and ML-DSA-44, verified end to
//! end by `verify_log` (decode every entry, recompute every leaf hash, check the chain, every
//! tile at every level, the root and both signatures). Throughput is in entries per second.
//!
//! `cargo bench -p sov-audit-core --bench verify`
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::collections::BTreeMap;
use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use ed25519_dalek::Signer as _;
use ml_dsa::signature::Keypair as _;
use sov_audit_core::checkpoint::{Checkpoint, mldsa_cosigned_message};
use sov_audit_core::entry::{Entry, Kind, Outcome, commitment};
use sov_audit_core::hash::{Hash, leaf_hash};
use sov_audit_core::merkle::{MemoryTree, SubtreeSource};
use sov_audit_core::note::{Note, NoteSignature, Vkey};
use sov_audit_core::tile::{self, Tile, TileKind};
use sov_audit_core::verify::{verify_log, verify_log_threads};

const N: u64 = 200_000;
const ORIGIN: &str = "bench.example/sovereign";

fn entry(index: u64, prev: Hash) -> Entry {
    let kind = match index % 10 {
        0 => Kind::Refusal,
        1 => Kind::PolicyDecision,
        _ => Kind::Inference,
    };
    let salt = [(index % 251) as u8; 32];
    Entry {
        index,
        time_ms: 1_795_000_000_000 + index * 3,
        prev,
        kind,
        node: "node-7f3a".into(),
        principal: format!("user-{}@example.org", index % 97),
        resource: "llama-3.2-3b-instruct-q4_k_m".into(),
        outcome: if kind == Kind::Refusal {
            Outcome::Denied
        } else {
            Outcome::Ok
        },
        reason: String::new(),
        model: Some([0x5a; 32]),
        input: Some(commitment("input", &salt, &index.to_be_bytes())),
        output: Some(commitment("output", &salt, &index.to_be_bytes())),
        attrs: vec![
            ("route".into(), "/v1/chat/completions".into()),
            ("tokens".into(), (index % 4096).to_string()),
        ],
    }
}

/// The log's files, and its verifier keys.
fn build() -> (BTreeMap<String, Vec<u8>>, Vec<Vkey>, usize) {
    let mut files = BTreeMap::new();
    let mut entries: Vec<Vec<u8>> = Vec::with_capacity(N as usize);
    let mut tree = MemoryTree::new();
    let mut prev = [0u8; 32];
    for i in 0..N {
        let bytes = entry(i, prev).encode().unwrap();
        prev = leaf_hash(&bytes);
        tree.push(prev);
        entries.push(bytes);
    }
    let total: usize = entries.iter().map(Vec::len).sum();
    for b in Tile::entry_bundles_for_size(N) {
        let start = (b.index * 256) as usize;
        let items: Vec<&[u8]> = entries[start..start + usize::from(b.width)]
            .iter()
            .map(Vec::as_slice)
            .collect();
        files.insert(b.path(), tile::encode_bundle(&items).unwrap());
    }
    let mut levels: BTreeMap<u8, Vec<Hash>> = BTreeMap::new();
    for t in Tile::hash_tiles_for_size(N) {
        let TileKind::Hash { level } = t.kind else {
            continue;
        };
        let hashes = levels.entry(level).or_insert_with(|| {
            (0..N >> (8 * u32::from(level)))
                .map(|i| tree.subtree(8 * level, i).unwrap())
                .collect()
        });
        let start = (t.index * 256) as usize;
        let bytes: Vec<u8> = hashes[start..start + usize::from(t.width)]
            .iter()
            .flatten()
            .copied()
            .collect();
        files.insert(t.path(), bytes);
    }
    let root = tree.root();
    let text = Checkpoint {
        origin: ORIGIN.into(),
        size: N,
        root,
        extensions: vec![],
    }
    .to_text();
    let ed = ed25519_dalek::SigningKey::from_bytes(&[9; 32]);
    let ml = ml_dsa::SigningKey::<ml_dsa::MlDsa44>::from_seed(&[8; 32].into());
    let ed_vkey = Vkey::from_ed25519(ORIGIN, ed.verifying_key());
    let ml_vkey = Vkey::from_mldsa44(ORIGIN, ml.verifying_key());
    let ts = 1_795_000_000u64;
    let msg = mldsa_cosigned_message(ORIGIN, ts, ORIGIN, 0, N, &root).unwrap();
    let mut ml_sig = ts.to_be_bytes().to_vec();
    ml_sig.extend_from_slice(
        &ml.expanded_key()
            .sign_deterministic(&msg, &[])
            .unwrap()
            .encode(),
    );
    let note = Note {
        signatures: vec![
            NoteSignature {
                name: ORIGIN.into(),
                key_id: ed_vkey.key_id,
                signature: ed.sign(text.as_bytes()).to_bytes().to_vec(),
            },
            NoteSignature {
                name: ORIGIN.into(),
                key_id: ml_vkey.key_id,
                signature: ml_sig,
            },
        ],
        text,
    };
    files.insert("checkpoint".into(), note.to_bytes());
    (files, vec![ed_vkey, ml_vkey], total / N as usize)
}

fn bench(c: &mut Criterion) {
    let (files, keys, avg) = build();
    // Sanity: the log verifies.
    let mut f = files.clone();
    let report = verify_log(&mut f, &keys).unwrap();
    assert_eq!(report.size, N);
    eprintln!("verify_log bench: {N} entries, {avg} bytes each on average");

    let mut g = c.benchmark_group("verify_log");
    g.sample_size(10);
    g.throughput(Throughput::Elements(N));
    // (Reading a file from the map copies it, as reading it from disk would.)
    g.bench_function("200k entries, all cores", |b| {
        b.iter(|| black_box(verify_log(&mut f, &keys).unwrap()))
    });
    g.bench_function("200k entries, 1 thread", |b| {
        b.iter(|| black_box(verify_log_threads(&mut f, &keys, 1).unwrap()))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
