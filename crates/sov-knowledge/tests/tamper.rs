//! Opening a corpus is refused when its manifest, its index or its blobs were tampered with.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::Path;

use common::{HashEmbedder, fixture, owner, store};
use rusqlite::Connection;
use sov_knowledge::{AddOptions, KnowledgeError, KnowledgeStore};

/// A corpus with two documents, closed; returns its folder.
fn closed_corpus() -> (
    tempfile::TempDir,
    KnowledgeStore,
    sov_keys::OwnerKeys,
    tempfile::TempDir,
) {
    let (t, store) = store();
    let (k, keys) = owner();
    let mut corpus = store.create("hr", &HashEmbedder::id_of(), &keys).unwrap();
    corpus
        .add(
            &[fixture("handbook.md"), fixture("canteen.txt")],
            &AddOptions::default(),
            &HashEmbedder::default(),
            &keys,
        )
        .unwrap();
    (t, store, keys, k)
}

#[test]
fn tampering_with_the_manifest_or_the_index_refuses_to_open() {
    type Tamper = fn(&Connection, &Path);
    let cases: [(&str, Tamper, &str); 8] = [
        (
            "a changed title in the manifest",
            |db, _| {
                db.execute("UPDATE meta SET value = CAST(replace(CAST(value AS TEXT), 'Leave policy', 'Leave pol1cy') AS BLOB) WHERE key = 'manifest'", []).unwrap();
            },
            "signature is not valid",
        ),
        (
            "the manifest re-encoded",
            |db, _| {
                let bytes: Vec<u8> = db
                    .query_row("SELECT value FROM meta WHERE key = 'manifest'", [], |r| {
                        r.get(0)
                    })
                    .unwrap();
                let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
                db.execute(
                    "UPDATE meta SET value = ?1 WHERE key = 'manifest'",
                    [serde_json::to_vec_pretty(&v).unwrap()],
                )
                .unwrap();
            },
            "not in its canonical encoding",
        ),
        (
            "a chunk's text",
            |db, _| {
                db.execute(
                    "UPDATE chunks SET text = text || ' (edited)' WHERE idx = 1",
                    [],
                )
                .unwrap();
            },
            "does not match its digest",
        ),
        (
            "a chunk removed",
            |db, _| {
                db.execute(
                    "DELETE FROM chunks WHERE key = (SELECT max(key) FROM chunks)",
                    [],
                )
                .unwrap();
            },
            "chunks in the index",
        ),
        (
            "a document's clearance",
            |db, _| {
                db.execute(
                    "UPDATE documents SET clearance = 9 WHERE id = 'canteen.txt'",
                    [],
                )
                .unwrap();
            },
            "differs from the manifest",
        ),
        (
            "a vector cut short",
            |db, _| {
                db.execute(
                    "UPDATE chunks SET vector = substr(vector, 1, 8) WHERE idx = 0",
                    [],
                )
                .unwrap();
            },
            "has 8 bytes",
        ),
        (
            "a text-index row removed",
            |db, _| {
                db.execute(
                    "DELETE FROM chunks_fts WHERE rowid = (SELECT min(key) FROM chunks)",
                    [],
                )
                .unwrap();
            },
            "text index has",
        ),
        (
            "a blob removed",
            |_, dir| {
                let first = std::fs::read_dir(dir.join("blobs/sha256")).unwrap().next();
                std::fs::remove_file(first.unwrap().unwrap().path()).unwrap();
            },
            "is missing",
        ),
    ];
    for (what, tamper, why) in cases {
        let (_t, store, keys, _k) = closed_corpus();
        let dir = store.root().join("hr");
        tamper(&Connection::open(dir.join("corpus.db")).unwrap(), &dir);
        let err = store.open_corpus("hr", &keys.public()).unwrap_err();
        assert!(err.to_string().contains(why), "{what}: {err}");
    }
    // Another owner's key; a corpus folder copied under another name.
    let (_t, store, keys, _k) = closed_corpus();
    let (_k2, stranger) = owner();
    assert!(matches!(
        store.open_corpus("hr", &stranger.public()),
        Err(KnowledgeError::ManifestSignature { .. })
    ));
    std::fs::rename(store.root().join("hr"), store.root().join("finance")).unwrap();
    let err = store.open_corpus("finance", &keys.public()).unwrap_err();
    assert!(err.to_string().contains("describes corpus `hr`"), "{err}");
}
