//! Reciprocal rank fusion against hand-computed orders, the FTS query builder against hostile
//! input, and hybrid search with permits made by a real guard.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::PathBuf;

use common::{DIMS, HashEmbedder, Policy, hash_vector, owner, store, write_files};
use sha2::{Digest, Sha256};
use sov_knowledge::search::{Fused, RRF_K, fts_query, rrf};
use sov_knowledge::{AddOptions, Corpus, Readable};

fn fused(key: &str, score: f64, bm25: Option<usize>, dense: Option<usize>) -> Fused<String> {
    Fused {
        key: key.into(),
        score,
        bm25_rank: bm25,
        dense_rank: dense,
    }
}

fn keys(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

#[test]
fn rrf_matches_a_hand_computed_fusion() {
    // bm25: a b c; dense: c a d.
    //   a: 1/61 + 1/62 = 0.032522...   c: 1/63 + 1/61 = 0.032266...
    //   b: 1/62        = 0.016129...   d: 1/63        = 0.015873...
    let got = rrf(&keys(&["a", "b", "c"]), &keys(&["c", "a", "d"]));
    assert_eq!(
        got,
        [
            fused("a", 1.0 / 61.0 + 1.0 / 62.0, Some(1), Some(2)),
            fused("c", 1.0 / 63.0 + 1.0 / 61.0, Some(3), Some(1)),
            fused("b", 1.0 / 62.0, Some(2), None),
            fused("d", 1.0 / 63.0, None, Some(3)),
        ]
    );
    assert_eq!(RRF_K, 60.0);
    assert!((got[0].score - 0.032_522_474_881_015_34).abs() < 1e-15);
}

#[test]
fn rrf_breaks_ties_by_key_and_counts_a_repeat_once() {
    // y: 1/61 + 1/62, x: 1/62 + 1/61: the same score, so key order.
    let got = rrf(&keys(&["y", "x"]), &keys(&["x", "y"]));
    assert_eq!(got[0].key, "x");
    assert_eq!(got[1].key, "y");
    assert_eq!(got[0].score, got[1].score);
    // A key repeated in one list counts at its first rank only.
    let got = rrf(&keys(&["a", "a", "b"]), &[]);
    assert_eq!(
        got,
        [
            fused("a", 1.0 / 61.0, Some(1), None),
            fused("b", 1.0 / 63.0, Some(3), None)
        ]
    );
    assert!(rrf::<String>(&[], &[]).is_empty());
    // One list alone keeps its order.
    let got: Vec<String> = rrf(&[], &keys(&["q", "p", "r"]))
        .into_iter()
        .map(|f| f.key)
        .collect();
    assert_eq!(got, ["q", "p", "r"]);
}

#[test]
fn the_fts_query_quotes_every_word_and_passes_no_syntax() {
    let cases: [(&str, Option<&str>); 9] = [
        ("sick leave", Some(r#""sick" OR "leave""#)),
        (
            r#""quoted" NEAR(a b) * - ( ) ^ col:x AND NOT OR"#,
            Some(r#""quoted" OR "near" OR "a" OR "b" OR "col" OR "x" OR "and" OR "not" OR "or""#),
        ),
        (r#"a" OR "b"#, Some(r#""a" OR "or" OR "b""#)),
        ("Leave LEAVE leave", Some(r#""leave""#)),
        (
            "Müller Straße café",
            Some(r#""müller" OR "straße" OR "café""#),
        ),
        ("休暇 規程", Some(r#""休暇" OR "規程""#)),
        ("-*()\"^:", None),
        ("", None),
        ("\u{0}\u{1b}[31m", Some(r#""31m""#)),
    ];
    for (input, want) in cases {
        assert_eq!(fts_query(input).as_deref(), want, "input {input:?}");
    }
    // At most 32 terms, none longer than 64 characters.
    let many: String = (0..100).map(|i| format!("w{i} ")).collect();
    assert_eq!(fts_query(&many).unwrap().matches(" OR ").count(), 31);
    let long = format!("{} ok", "z".repeat(65));
    assert_eq!(fts_query(&long).as_deref(), Some(r#""ok""#));
}

fn corpus_with(files: &[(&str, &[u8])], options: &AddOptions) -> (Vec<tempfile::TempDir>, Corpus) {
    let (t1, store) = store();
    let (t2, keys) = owner();
    let docs = tempfile::tempdir().unwrap();
    write_files(docs.path(), files);
    let mut corpus = store
        .create("handbook", &HashEmbedder::id_of(), &keys)
        .unwrap();
    corpus
        .add(
            &[docs.path().to_path_buf()],
            options,
            &HashEmbedder::default(),
            &keys,
        )
        .unwrap();
    (vec![t1, t2, docs], corpus)
}

fn everything(corpus: &Corpus) -> Readable {
    Policy::new().readable("cleo", corpus)
}

#[test]
fn hostile_queries_search_without_error() {
    let (_t, corpus) = corpus_with(
        &[(
            "a.md",
            b"# Notes\n\nThe NEAR operator and \"quotes\" (here).\n",
        )],
        &AddOptions::default(),
    );
    let readable = everything(&corpus);
    let v = hash_vector("x", DIMS);
    for q in [
        "\"",
        "\"\"\"",
        "NEAR(",
        "a*",
        "-a",
        "(((",
        ")",
        "^x",
        "x:y",
        "AND",
        "OR OR",
        "NOT a",
        "{a b}",
        "a + b",
        "'",
        "\u{feff}",
        "é\u{301}",
        "🙂",
        "a\"b",
        "NEAR(\"a\" \"b\", 2)",
    ] {
        let hits = corpus.search(q, &v, &readable, 3);
        assert!(hits.is_ok(), "{q:?}: {hits:?}");
    }
    let hits = corpus.search("NEAR \"quotes\"", &v, &readable, 3).unwrap();
    assert_eq!(hits[0].bm25_rank, Some(1));
}

#[test]
fn hybrid_search_finds_the_section_and_cites_it() {
    let handbook = std::fs::read(common::fixture("handbook.md")).unwrap();
    let canteen = std::fs::read(common::fixture("canteen.txt")).unwrap();
    let (_t, corpus) = corpus_with(
        &[("hr/handbook.md", &handbook), ("canteen.txt", &canteen)],
        &AddOptions::default(),
    );
    let readable = everything(&corpus);
    let q = "doctor note sick leave";
    let hits = corpus
        .search(q, &hash_vector(q, DIMS), &readable, 3)
        .unwrap();
    let top = &hits[0];
    assert_eq!(top.rank, 1);
    assert_eq!(top.document, "hr/handbook.md");
    assert_eq!(top.title, "Leave policy");
    assert_eq!(top.heading, "Leave policy > Sick leave");
    assert!(top.text.contains("doctor's note"));
    assert_eq!(top.bm25_rank, Some(1));
    assert!(top.dense_rank.is_some());
    assert_eq!(
        top.chunk_sha256,
        hex::encode(Sha256::digest(top.text.as_bytes()))
    );
    let entry = corpus.manifest().document("hr/handbook.md").unwrap();
    assert_eq!(entry.chunks[top.chunk], top.chunk_sha256);
    // Scores fall with rank; ranks are 1, 2, 3.
    assert_eq!(hits.iter().map(|h| h.rank).collect::<Vec<_>>(), [1, 2, 3]);
    assert!(hits.windows(2).all(|w| w[0].score >= w[1].score));
    // Stemming and diacritics: "refunds" finds "refunded", "cafe" finds "café".
    let (_t2, c2) = corpus_with(
        &[(
            "m.md",
            b"# M\n\nMeals are refunded.\n\n## Caf\xc3\xa9\n\nThe caf\xc3\xa9 opens.\n",
        )],
        &AddOptions::default(),
    );
    let r2 = everything(&c2);
    let refunds = c2
        .search("refunds", &hash_vector("zzz", DIMS), &r2, 5)
        .unwrap();
    assert!(
        refunds
            .iter()
            .any(|h| h.bm25_rank == Some(1) && h.text.contains("refunded"))
    );
    let cafe = c2
        .search("cafe", &hash_vector("zzz", DIMS), &r2, 5)
        .unwrap();
    assert!(
        cafe.iter()
            .any(|h| h.bm25_rank == Some(1) && h.text.contains("café"))
    );
}

#[test]
fn a_query_vector_must_fit_the_corpus() {
    let (_t, corpus) = corpus_with(&[("a.txt", b"words here")], &AddOptions::default());
    let readable = everything(&corpus);
    let err = corpus.search("words", &[1.0; 3], &readable, 3).unwrap_err();
    assert!(
        format!("{err}: {}", std::error::Error::source(&err).unwrap()).contains("3 dimensions")
    );
    let err = corpus
        .search("words", &vec![0.0; DIMS as usize], &readable, 3)
        .unwrap_err();
    assert!(
        std::error::Error::source(&err)
            .unwrap()
            .to_string()
            .contains("all zeros")
    );
    assert!(
        corpus
            .search("words", &hash_vector("w", DIMS), &readable, 0)
            .unwrap()
            .is_empty()
    );
}

/// The code word of the cleared document: in its text only.
const CODE: &str = "QUIXOTIC PELICAN";

fn classified() -> (Vec<tempfile::TempDir>, Corpus, sov_keys::OwnerKeys, PathBuf) {
    let (t1, store) = store();
    let (t2, keys) = owner();
    let docs = tempfile::tempdir().unwrap();
    let open = docs.path().join("open");
    let secret = docs.path().join("secret");
    write_files(
        &open,
        &[("plan.md", b"# Plan\n\nThe plan is to ship in spring.\n")],
    );
    let text = format!("# Plan\n\nThe real plan is called {CODE}: ship in winter.\n");
    write_files(&secret, &[("plan-secret.md", text.as_bytes())]);
    let mut corpus = store
        .create("plans", &HashEmbedder::id_of(), &keys)
        .unwrap();
    let e = HashEmbedder::default();
    corpus
        .add(&[open], &AddOptions::default(), &e, &keys)
        .unwrap();
    let cleared = AddOptions {
        clearance: Some(3),
        ..AddOptions::default()
    };
    corpus
        .add(std::slice::from_ref(&secret), &cleared, &e, &keys)
        .unwrap();
    (vec![t1, t2, docs], corpus, keys, secret)
}

#[test]
fn a_document_above_the_callers_clearance_never_appears() {
    let (_t, corpus, _, _) = classified();
    let policy = Policy::new();
    let q_vec = hash_vector(CODE, DIMS);
    for query in [
        CODE,
        "quixotic",
        "pelican",
        "plan",
        "real plan winter",
        "ship",
    ] {
        for who in ["ana", "nobody"] {
            let readable = policy.readable(who, &corpus);
            let hits = corpus.search(query, &q_vec, &readable, 10).unwrap();
            for hit in &hits {
                assert_eq!(hit.document, "plan.md", "{who} got {hit:?}");
                assert!(!hit.text.to_lowercase().contains("quixotic"));
            }
            if who == "nobody" {
                assert!(hits.is_empty());
            }
        }
    }
    let readable = policy.readable("cleo", &corpus);
    let hits = corpus.search(CODE, &q_vec, &readable, 10).unwrap();
    assert_eq!(hits[0].document, "plan-secret.md");
    assert!(hits[0].text.contains(CODE));
    assert_eq!(hits[0].bm25_rank, Some(1));
    assert!(hits[0].dense_rank.is_some());
}

#[test]
fn permits_for_anything_else_read_nothing() {
    let (_t, mut corpus, keys, secret) = classified();
    let policy = Policy::new();
    let cleo = policy.readable("cleo", &corpus);
    assert_eq!(cleo.len(), 2);
    let q = hash_vector(CODE, DIMS);
    // Permits are for this corpus: another corpus of the same documents reads nothing.
    let caller = policy.guard.local("cleo", "t").unwrap();
    let elsewhere = corpus.document_resources().into_iter().filter_map(|r| {
        let sov_policy::Resource::Document {
            id,
            clearance,
            attrs,
            ..
        } = r
        else {
            return None;
        };
        let other = sov_policy::Resource::Document {
            id,
            corpus: Some("other".into()),
            clearance,
            attrs,
        };
        policy
            .guard
            .decide(&caller, sov_policy::Action::ReadCorpus, &other, None)
            .into_permit()
            .ok()
    });
    let elsewhere = Readable::from_permits(corpus.name(), elsewhere);
    assert!(elsewhere.is_empty());
    assert!(corpus.search(CODE, &q, &elsewhere, 10).unwrap().is_empty());
    // A permit decided before the document's clearance changed no longer covers it.
    let relabel = AddOptions {
        clearance: Some(4),
        ..AddOptions::default()
    };
    let change = corpus
        .add(&[secret], &relabel, &HashEmbedder::default(), &keys)
        .unwrap();
    assert_eq!(change.relabelled, ["plan-secret.md"]);
    let hits = corpus.search(CODE, &q, &cleo, 10).unwrap();
    assert!(hits.iter().all(|h| h.document == "plan.md"), "{hits:?}");
    // Decided again, it does.
    let cleo = policy.readable("cleo", &corpus);
    let hits = corpus.search(CODE, &q, &cleo, 10).unwrap();
    assert_eq!(hits[0].document, "plan-secret.md");
}

#[test]
fn a_corpus_changed_by_another_process_refuses_to_search_until_reopened() {
    let (_t, store) = store();
    let (_k, keys) = owner();
    let e = HashEmbedder::default();
    let docs = tempfile::tempdir().unwrap();
    write_files(docs.path(), &[("open.md", b"# Open\n\nThe open plan.\n")]);
    let mut writer = store
        .create("plans", &HashEmbedder::id_of(), &keys)
        .unwrap();
    writer
        .add(
            &[docs.path().join("open.md")],
            &AddOptions::default(),
            &e,
            &keys,
        )
        .unwrap();
    let server = store.open_corpus("plans", &keys.public()).unwrap();
    let readable = everything(&server);
    let q = hash_vector("plan", DIMS);
    assert_eq!(server.search("plan", &q, &readable, 5).unwrap().len(), 1);
    // Another process replaces the document by a cleared one.
    writer.remove_document("open.md", &keys).unwrap();
    write_files(
        docs.path(),
        &[(
            "open.md",
            format!("# Open\n\nThe {CODE} plan.\n").as_bytes(),
        )],
    );
    let cleared = AddOptions {
        clearance: Some(9),
        ..AddOptions::default()
    };
    writer
        .add(&[docs.path().join("open.md")], &cleared, &e, &keys)
        .unwrap();
    let err = server.search("plan", &q, &readable, 5).unwrap_err();
    assert!(
        matches!(err, sov_knowledge::KnowledgeError::Changed { .. }),
        "{err:?}"
    );
    // Reopened, the old permit (no clearance) covers nothing.
    let server = store.open_corpus("plans", &keys.public()).unwrap();
    assert!(server.search("plan", &q, &readable, 5).unwrap().is_empty());
}

#[test]
fn terms_in_half_the_chunks_or_more_are_left_out_of_bm25() {
    let (_t, corpus) = corpus_with(
        &[
            ("a.txt", b"policy on sick leave"),
            ("b.txt", b"policy on travel"),
            ("c.txt", b"policy on meals"),
            ("d.txt", b"policy on parking"),
        ],
        &AddOptions::default(),
    );
    let readable = everything(&corpus);
    let v = hash_vector("unrelated", DIMS);
    // "policy" and "on" are in every chunk: only "sick" is asked of the index.
    let hits = corpus.search("policy on sick", &v, &readable, 4).unwrap();
    let bm25: Vec<&str> = hits
        .iter()
        .filter(|h| h.bm25_rank.is_some())
        .map(|h| h.document.as_str())
        .collect();
    assert_eq!(bm25, ["a.txt"]);
    // A query of common terms only keeps them all.
    let hits = corpus.search("policy", &v, &readable, 4).unwrap();
    assert_eq!(hits.iter().filter(|h| h.bm25_rank.is_some()).count(), 4);
}
