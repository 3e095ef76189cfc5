//! The store and corpora on disk: create, add (added, replaced, relabelled, unchanged), all
//! or nothing, links, embedders, removal.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::{Path, PathBuf};

use common::{HashEmbedder, fixture, owner, store, write_files};
use rusqlite::Connection;
use sov_knowledge::{AddOptions, Corpus, IngestError, KnowledgeError, KnowledgeStore};

/// A folder with one document of each type, one skipped file and one hidden.
fn docs() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (name, to) in [
        ("handbook.md", "handbook.md"),
        ("intranet.html", "intranet.html"),
        ("canteen.txt", "site/canteen.txt"),
        ("plain.pdf", "finance/expenses.pdf"),
        ("handbook.docx", "safety.docx"),
    ] {
        let bytes = std::fs::read(fixture(name)).unwrap();
        write_files(dir.path(), &[(to, &bytes)]);
    }
    write_files(
        dir.path(),
        &[("notes.xyz", b"x"), (".draft.md", b"# d\n\nd\n")],
    );
    dir
}

/// Counts of documents, chunks and text-index rows, read from the database itself.
fn rows(corpus_dir: &Path) -> (i64, i64, i64) {
    let db = Connection::open(corpus_dir.join("corpus.db")).unwrap();
    db.query_row(
        "SELECT (SELECT count(*) FROM documents), (SELECT count(*) FROM chunks),
                (SELECT count(*) FROM chunks_fts)",
        [],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    )
    .unwrap()
}

fn blobs(corpus_dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(corpus_dir.join("blobs/sha256"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// The state an all-or-nothing test compares before and after.
fn state(store: &KnowledgeStore, corpus: &Corpus) -> (String, (i64, i64, i64), Vec<String>) {
    let dir = store.root().join(corpus.name());
    (corpus.manifest_sha256().to_owned(), rows(&dir), blobs(&dir))
}

fn root_cause(err: &dyn std::error::Error) -> String {
    let mut out = err.to_string();
    let mut e = err.source();
    while let Some(s) = e {
        out.push_str(": ");
        out.push_str(&s.to_string());
        e = s.source();
    }
    out
}

#[test]
fn a_corpus_is_created_filled_listed_reopened_and_removed() {
    let (_t, store) = store();
    let (_k, keys) = owner();
    let e = HashEmbedder::default();
    let mut corpus = store.create("hr", &HashEmbedder::id_of(), &keys).unwrap();
    assert!(matches!(
        store.create("hr", &HashEmbedder::id_of(), &keys),
        Err(KnowledgeError::Exists { .. })
    ));
    assert!(matches!(
        store.create("Bad/Name", &HashEmbedder::id_of(), &keys),
        Err(KnowledgeError::InvalidName { .. })
    ));
    let folder = docs();
    let change = corpus
        .add(
            &[folder.path().to_path_buf()],
            &AddOptions::default(),
            &e,
            &keys,
        )
        .unwrap();
    assert_eq!(
        change.added,
        [
            "finance/expenses.pdf",
            "handbook.md",
            "intranet.html",
            "safety.docx",
            "site/canteen.txt"
        ]
    );
    let skipped: Vec<&str> = change.skipped.iter().map(|s| s.reason.as_str()).collect();
    assert_eq!(skipped, ["hidden", ".xyz files are not read"]);
    assert_eq!(change.manifest_sha256, corpus.manifest_sha256());
    assert_eq!(change.chunks_added, corpus.chunk_count());
    let listed = store.list().unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].documents, 5);
    assert_eq!(listed[0].chunks, corpus.chunk_count());
    assert_eq!(listed[0].manifest_sha256, corpus.manifest_sha256());
    let doc = corpus.manifest().document("finance/expenses.pdf").unwrap();
    assert_eq!(doc.media_type, "application/pdf");
    assert_eq!(doc.title, "Expense policy");
    let original = corpus.original_path(doc);
    assert_eq!(
        std::fs::read(&original).unwrap(),
        std::fs::read(fixture("plain.pdf")).unwrap()
    );
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&original).unwrap().permissions().mode() & 0o777,
        0o444
    );
    // Reopened, the same.
    let again = store.open_corpus("hr", &keys.public()).unwrap();
    assert_eq!(again.manifest_sha256(), corpus.manifest_sha256());
    assert_eq!(again.signed_manifest(), corpus.signed_manifest());
    assert_eq!(again.documents(), corpus.documents());
    // Removing a document removes its blob and keeps the rest verifiable.
    let change = corpus
        .remove_document("finance/expenses.pdf", &keys)
        .unwrap();
    assert_eq!(change.removed, ["finance/expenses.pdf"]);
    assert!(!original.exists());
    assert!(matches!(
        corpus.remove_document("finance/expenses.pdf", &keys),
        Err(KnowledgeError::NoDocument { .. })
    ));
    let again = store.open_corpus("hr", &keys.public()).unwrap();
    assert_eq!(again.documents().len(), 4);
    store.remove("hr").unwrap();
    assert!(store.list().unwrap().is_empty());
    assert!(matches!(
        store.open_corpus("hr", &keys.public()),
        Err(KnowledgeError::NotFound { .. })
    ));
}

#[test]
fn re_adding_does_only_the_work_that_changed() {
    let (_t, store) = store();
    let (_k, keys) = owner();
    let e = HashEmbedder::default();
    let mut corpus = store.create("hr", &HashEmbedder::id_of(), &keys).unwrap();
    let folder = docs();
    let paths = [folder.path().to_path_buf()];
    corpus
        .add(&paths, &AddOptions::default(), &e, &keys)
        .unwrap();
    let before = corpus.manifest_sha256().to_owned();
    let embedded = e.texts.get();
    // The same bytes: unchanged, no embedding, the same manifest.
    let change = corpus
        .add(&paths, &AddOptions::default(), &e, &keys)
        .unwrap();
    assert_eq!(change.unchanged.len(), 5);
    assert!(change.added.is_empty() && change.replaced.is_empty());
    assert_eq!(change.manifest_sha256, before);
    assert_eq!(e.texts.get(), embedded);
    // One file changed: only its chunks are replaced; every other chunk row is untouched.
    let dir = store.root().join("hr");
    let others = |db: &Connection| -> Vec<(i64, i64, i64, String)> {
        let mut stmt = db
            .prepare(
                "SELECT c.key, c.doc, c.idx, c.sha256 FROM chunks c JOIN documents d ON d.key = c.doc
                 WHERE d.id != 'handbook.md' ORDER BY c.key",
            )
            .unwrap();
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    };
    let untouched = others(&Connection::open(dir.join("corpus.db")).unwrap());
    let old_blob = corpus
        .manifest()
        .document("handbook.md")
        .unwrap()
        .sha256
        .clone();
    std::fs::write(
        folder.path().join("handbook.md"),
        "# Leave policy\n\n## Parental leave\n\nSixteen weeks.\n",
    )
    .unwrap();
    let change = corpus
        .add(&paths, &AddOptions::default(), &e, &keys)
        .unwrap();
    assert_eq!(change.replaced, ["handbook.md"]);
    assert_eq!(change.unchanged.len(), 4);
    assert_eq!(change.chunks_added, 1);
    assert_ne!(change.manifest_sha256, before);
    assert_eq!(
        others(&Connection::open(dir.join("corpus.db")).unwrap()),
        untouched
    );
    assert!(
        !blobs(&dir).contains(&old_blob),
        "the old bytes' blob is removed"
    );
    // The same bytes with a clearance: relabelled, its chunks untouched too.
    let chunks_before = rows(&dir).1;
    let labelled = AddOptions {
        clearance: Some(2),
        attributes: vec![("dept".into(), "hr".into()), ("a".into(), "1".into())],
        ..AddOptions::default()
    };
    let change = corpus
        .add(&[folder.path().join("handbook.md")], &labelled, &e, &keys)
        .unwrap();
    assert_eq!(change.relabelled, ["handbook.md"]);
    assert_eq!(change.chunks_added, 0);
    assert_eq!(rows(&dir).1, chunks_before);
    let entry = corpus.manifest().document("handbook.md").unwrap();
    assert_eq!(entry.clearance, Some(2));
    assert_eq!(entry.attributes, ["a=1", "dept=hr"]);
    let reopened = store.open_corpus("hr", &keys.public()).unwrap();
    assert_eq!(reopened.manifest_sha256(), corpus.manifest_sha256());
}

#[test]
fn any_bad_file_refuses_the_whole_add_and_changes_nothing() {
    let (_t, store) = store();
    let (_k, keys) = owner();
    let e = HashEmbedder::default();
    let mut corpus = store.create("hr", &HashEmbedder::id_of(), &keys).unwrap();
    let good = docs();
    corpus
        .add(
            &[good.path().join("handbook.md")],
            &AddOptions::default(),
            &e,
            &keys,
        )
        .unwrap();
    let before = state(&store, &corpus);
    let encrypted = std::fs::read(fixture("encrypted.pdf")).unwrap();
    let pdf = std::fs::read(fixture("plain.pdf")).unwrap();
    let cases: [(&str, &[u8], &str); 5] = [
        ("empty.md", b"", "it is empty"),
        (
            "big.txt",
            &[b'a'; 2000],
            "2000 bytes, over the limit of 1000 bytes",
        ),
        ("binary.md", &pdf, "is not: it is not UTF-8 text"),
        ("locked.pdf", &encrypted, "the PDF is encrypted"),
        (
            "blank.html",
            b"<script>only()</script>",
            "no text was found",
        ),
    ];
    for (name, bytes, why) in cases {
        let folder = docs();
        write_files(folder.path(), &[(name, bytes)]);
        let options = AddOptions {
            max_file_bytes: if name == "big.txt" { 1000 } else { 100_000 },
            ..AddOptions::default()
        };
        let err = corpus
            .add(&[folder.path().to_path_buf()], &options, &e, &keys)
            .unwrap_err();
        let msg = root_cause(&err);
        assert!(msg.contains(name) && msg.contains(why), "{name}: {msg}");
        assert_eq!(state(&store, &corpus), before, "{name} changed the corpus");
    }
    // An embedder that fails part-way through.
    let failing = HashEmbedder {
        fail_after: Some(3),
        ..HashEmbedder::default()
    };
    let err = corpus
        .add(
            &[docs().path().to_path_buf()],
            &AddOptions::default(),
            &failing,
            &keys,
        )
        .unwrap_err();
    assert!(matches!(err, KnowledgeError::Embed { .. }), "{err:?}");
    assert_eq!(state(&store, &corpus), before);
    // A corpus changed by another process after this one opened it: the second change is
    // refused, and the blobs it wrote are removed again.
    let mut other = store.open_corpus("hr", &keys.public()).unwrap();
    other
        .add(
            &[good.path().join("intranet.html")],
            &AddOptions::default(),
            &e,
            &keys,
        )
        .unwrap();
    let after_other = state(&store, &other);
    let err = corpus
        .add(
            &[good.path().join("site")],
            &AddOptions::default(),
            &e,
            &keys,
        )
        .unwrap_err();
    assert!(matches!(err, KnowledgeError::Changed { .. }), "{err:?}");
    assert_eq!(state(&store, &other), after_other);
    let reopened = store.open_corpus("hr", &keys.public()).unwrap();
    assert_eq!(reopened.manifest_sha256(), other.manifest_sha256());
}

#[test]
fn symbolic_links_stay_inside_the_folder() {
    use std::os::unix::fs::symlink;
    let (_t, store) = store();
    let (_k, keys) = owner();
    let e = HashEmbedder::default();
    let mut corpus = store.create("hr", &HashEmbedder::id_of(), &keys).unwrap();
    let outside = tempfile::tempdir().unwrap();
    write_files(outside.path(), &[("secret.md", b"# s\n\nsecret\n")]);
    let folder = tempfile::tempdir().unwrap();
    write_files(folder.path(), &[("real.md", b"# r\n\nreal\n")]);
    // Inside the folder: followed, under the link's own path.
    symlink(
        folder.path().join("real.md"),
        folder.path().join("alias.md"),
    )
    .unwrap();
    let change = corpus
        .add(
            &[folder.path().to_path_buf()],
            &AddOptions::default(),
            &e,
            &keys,
        )
        .unwrap();
    assert_eq!(change.added, ["alias.md", "real.md"]);
    let before = state(&store, &corpus);
    let cases: [(Option<PathBuf>, PathBuf, &str); 4] = [
        (
            Some(outside.path().join("secret.md")),
            PathBuf::from("leak.md"),
            "outside the folder",
        ),
        (
            Some(outside.path().to_path_buf()),
            PathBuf::from("out"),
            "outside the folder",
        ),
        (
            None,
            PathBuf::from("dir"),
            "links to folders are not followed",
        ),
        (
            Some(PathBuf::from("/nonexistent/x.md")),
            PathBuf::from("dangling.md"),
            "could not be read",
        ),
    ];
    for (target, link, why) in cases {
        let f = tempfile::tempdir().unwrap();
        write_files(
            f.path(),
            &[("ok.md", b"# o\n\nok\n"), ("sub/in.md", b"# i\n\nin\n")],
        );
        let target = target.unwrap_or_else(|| f.path().join("sub"));
        symlink(&target, f.path().join(&link)).unwrap();
        let err = corpus
            .add(&[f.path().to_path_buf()], &AddOptions::default(), &e, &keys)
            .unwrap_err();
        let msg = root_cause(&err);
        assert!(
            msg.contains(&link.display().to_string()) && msg.contains(why),
            "{msg}"
        );
        assert_eq!(state(&store, &corpus), before);
    }
    // A link named itself is refused.
    let err = corpus
        .add(
            &[folder.path().join("alias.md")],
            &AddOptions::default(),
            &e,
            &keys,
        )
        .unwrap_err();
    assert!(matches!(
        err,
        KnowledgeError::Ingest {
            source: IngestError::Symlink,
            ..
        }
    ));
    // Two paths giving one id are refused.
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    write_files(a.path(), &[("same.md", b"# a\n\na\n")]);
    write_files(b.path(), &[("same.md", b"# b\n\nb\n")]);
    let err = corpus
        .add(
            &[a.path().join("same.md"), b.path().join("same.md")],
            &AddOptions::default(),
            &e,
            &keys,
        )
        .unwrap_err();
    assert!(matches!(err, KnowledgeError::DuplicateId { .. }), "{err:?}");
    // Bad attributes.
    let bad = AddOptions {
        attributes: vec![("Dept".into(), "x".into())],
        ..AddOptions::default()
    };
    let err = corpus
        .add(&[a.path().to_path_buf()], &bad, &e, &keys)
        .unwrap_err();
    assert!(matches!(err, KnowledgeError::InvalidAttribute { .. }));
}

#[test]
fn a_corpus_refuses_another_embedder() {
    let (_t, store) = store();
    let (_k, keys) = owner();
    let mut corpus = store.create("hr", &HashEmbedder::id_of(), &keys).unwrap();
    struct Other;
    impl sov_knowledge::Embedder for Other {
        fn id(&self) -> sov_knowledge::EmbedderId {
            sov_knowledge::EmbedderId {
                dims: 384,
                ..HashEmbedder::id_of()
            }
        }
        fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, sov_knowledge::EmbedError> {
            Ok(texts.iter().map(|_| vec![1.0; 384]).collect())
        }
    }
    let err = corpus
        .add(
            &[fixture("canteen.txt")],
            &AddOptions::default(),
            &Other,
            &keys,
        )
        .unwrap_err();
    assert!(matches!(err, KnowledgeError::EmbedderMismatch { .. }));
    assert!(
        err.to_string().contains("384 dimensions") && err.to_string().contains("64 dimensions")
    );
}

#[test]
fn the_same_content_gives_the_same_manifest_hash() {
    let (_k, keys) = owner();
    let folder = docs();
    let mut digests = Vec::new();
    for _ in 0..2 {
        let (_t, store) = store();
        let mut corpus = store.create("hr", &HashEmbedder::id_of(), &keys).unwrap();
        corpus
            .add(
                &[folder.path().to_path_buf()],
                &AddOptions::default(),
                &HashEmbedder::default(),
                &keys,
            )
            .unwrap();
        digests.push(corpus.manifest_sha256().to_owned());
    }
    assert_eq!(digests[0], digests[1]);
}
