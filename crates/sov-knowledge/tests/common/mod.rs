//! Shared by the integration tests: a simple real embedder, owner keys, permits made by a real
//! guard, fixture paths.
//!
//! The embedder here hashes words into a vector: real enough to test the mechanics (vectors
//! stored, normalised, compared; documents sharing words come closer), nothing more. The
//! kernel's tests run the real model (all-MiniLM-L6-v2 through llama.cpp) on corpora.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::cell::Cell;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use sha2::{Digest, Sha256};
use sov_keys::OwnerKeys;
use sov_knowledge::{Corpus, EmbedError, Embedder, EmbedderId, KnowledgeStore, Readable};
use sov_policy::{Action, Directory, Guard, NewPrincipal, Policies, PrincipalKind};

/// Dimensions of the test embedder.
pub const DIMS: u32 = 64;

/// Words (lowercased runs of letters and digits), each hashed to a signed unit in one of
/// `dims` places, plus a small constant so no text has the zero vector.
pub fn hash_vector(text: &str, dims: u32) -> Vec<f32> {
    let dims = dims as usize;
    let mut v = vec![0f32; dims];
    for word in text
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
    {
        let h = Sha256::digest(word.to_lowercase().as_bytes());
        let n = u64::from_le_bytes(h[..8].try_into().unwrap());
        let sign = if n >> 63 == 0 { 1.0 } else { -1.0 };
        v[(n % dims as u64) as usize] += sign;
    }
    v[dims - 1] += 0.01;
    v
}

/// The test embedder; counts the texts it embedded.
#[derive(Debug, Default)]
pub struct HashEmbedder {
    pub texts: Cell<usize>,
    /// Fail on the call after this many texts were embedded (`None`: never).
    pub fail_after: Option<usize>,
}

impl HashEmbedder {
    pub fn id_of() -> EmbedderId {
        EmbedderId {
            name: "test-hash-embedder".into(),
            sha256: hex::encode(Sha256::digest(b"test-hash-embedder v1")),
            dims: DIMS,
        }
    }
}

impl Embedder for HashEmbedder {
    fn id(&self) -> EmbedderId {
        Self::id_of()
    }
    fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, EmbedError> {
        if self.fail_after.is_some_and(|n| self.texts.get() >= n) {
            return Err(EmbedError::Engine(
                "the test embedder was told to fail".into(),
            ));
        }
        self.texts.set(self.texts.get() + texts.len());
        Ok(texts.iter().map(|t| hash_vector(t, DIMS)).collect())
    }
}

/// A fresh owner key, in its own folder.
pub fn owner() -> (tempfile::TempDir, OwnerKeys) {
    let dir = tempfile::tempdir().unwrap();
    OwnerKeys::init(dir.path()).unwrap();
    let keys = OwnerKeys::load(dir.path()).unwrap();
    (dir, keys)
}

/// A store in a temporary folder.
pub fn store() -> (tempfile::TempDir, KnowledgeStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = KnowledgeStore::open(&dir.path().join("corpora")).unwrap();
    (dir, store)
}

pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// A guard with the starter policies and principals `ana` (analyst, clearance 2), `cleo`
/// (analyst, clearance 5) and `nobody` (no role).
pub struct Policy {
    _dir: tempfile::TempDir,
    pub guard: Guard,
}

impl Policy {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let directory = Directory::open(&dir.path().join("identity.db")).unwrap();
        for (name, roles, clearance) in [
            ("ana", vec!["analyst"], Some("2")),
            ("cleo", vec!["analyst"], Some("5")),
            ("nobody", vec![], None),
        ] {
            let mut attrs = BTreeMap::new();
            if let Some(c) = clearance {
                attrs.insert("clearance".to_owned(), c.to_owned());
            }
            let new = NewPrincipal {
                name: name.into(),
                kind: PrincipalKind::Person,
                roles: roles.into_iter().map(str::to_owned).collect(),
                attrs,
            };
            directory.add_principal(&new, "local:test").unwrap();
        }
        let guard = Guard::new(Arc::new(directory), Policies::starter().unwrap(), None);
        Self { _dir: dir, guard }
    }

    /// What `who` may read of `corpus`: each document decided by the guard, the permits of
    /// the allowed ones.
    pub fn readable(&self, who: &str, corpus: &Corpus) -> Readable {
        let caller = self.guard.local(who, "tester").unwrap();
        let permits = corpus.document_resources().into_iter().filter_map(|r| {
            self.guard
                .decide(&caller, Action::ReadCorpus, &r, None)
                .into_permit()
                .ok()
        });
        Readable::from_permits(corpus.name(), permits)
    }
}

/// Writes `files` (relative path, content) under `dir`.
pub fn write_files(dir: &Path, files: &[(&str, &[u8])]) {
    for (rel, content) in files {
        let path = dir.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, content).unwrap();
    }
}
