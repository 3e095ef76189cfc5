//! The knowledge store: one folder per corpus under the home's `corpora/`.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use sov_keys::{OwnerKeys, OwnerPublicKeys};

use crate::manifest::{self, CorpusManifest, check_embedder, validate_name};
use crate::{Corpus, EmbedderId, KnowledgeError, blob, db};

/// Where the corpora are: `<root>/<name>/` each, `<root>/.tmp/` for corpora being created or
/// removed.
#[derive(Debug, Clone)]
pub struct KnowledgeStore {
    root: PathBuf,
    read_only: bool,
}

/// A corpus as listed, from its stored manifest **without** checking the signature (open it
/// with [`KnowledgeStore::open_corpus`] for that).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CorpusSummary {
    /// The corpus name.
    pub name: String,
    /// The embedding model it was built with.
    pub embedder: EmbedderId,
    /// How many documents it lists.
    pub documents: usize,
    /// How many chunks it lists.
    pub chunks: usize,
    /// SHA-256 of its stored signed manifest.
    pub manifest_sha256: String,
}

fn io(action: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> KnowledgeError {
    let path = path.to_path_buf();
    move |source| KnowledgeError::Io {
        action,
        path,
        source,
    }
}

fn unique(what: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("{what}-{}-{nanos}", std::process::id())
}

impl KnowledgeStore {
    /// Opens the store at `dir`, creating it (mode 0700) if missing.
    pub fn open(dir: &Path) -> Result<Self, KnowledgeError> {
        if !dir.exists() {
            fs::create_dir_all(dir).map_err(io("create directory", dir))?;
            fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
                .map_err(io("set permissions of", dir))?;
        }
        Ok(Self {
            root: dir.to_path_buf(),
            read_only: false,
        })
    }

    /// Opens the store at `dir` to read only, as `sov serve` does under its seal (the home is
    /// read-only there): databases are opened immutable, so nothing is written, not even
    /// SQLite's shared-memory index. Only safe while nothing writes the corpora, which the
    /// record's single writer ensures (corpus changes are refused while the server runs). A
    /// corpus whose last change was not checkpointed into its database (a writer that
    /// crashed) is refused: open it once read-write (`sov corpus list`) to recover it.
    pub fn open_read_only(dir: &Path) -> Result<Self, KnowledgeError> {
        Ok(Self {
            root: dir.to_path_buf(),
            read_only: true,
        })
    }

    /// The store's folder.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn corpus_dir(&self, name: &str) -> PathBuf {
        self.root.join(name)
    }

    /// Whether a corpus `name` exists (its database is there; nothing is opened or checked).
    pub fn contains(&self, name: &str) -> bool {
        validate_name(name).is_ok() && self.corpus_dir(name).join(db::DB_FILE).is_file()
    }

    /// Every corpus, sorted by name (see [`CorpusSummary`]: unverified).
    pub fn list(&self) -> Result<Vec<CorpusSummary>, KnowledgeError> {
        let mut out = Vec::new();
        if self.read_only && !self.root.exists() {
            return Ok(out);
        }
        for entry in fs::read_dir(&self.root).map_err(io("list", &self.root))? {
            let entry = entry.map_err(io("list", &self.root))?;
            let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
                continue;
            };
            let db_path = entry.path().join(db::DB_FILE);
            if validate_name(&name).is_err() || !db_path.is_file() {
                continue;
            }
            let conn = db::open_as(&db_path, self.read_only).map_err(|source| {
                KnowledgeError::Database {
                    corpus: name.clone(),
                    action: "open the database",
                    source,
                }
            })?;
            let bytes = db::read_manifest(&conn)
                .map_err(|source| KnowledgeError::Database {
                    corpus: name.clone(),
                    action: "read the manifest",
                    source,
                })?
                .unwrap_or_default();
            let Some(m) = manifest::parse_unverified(&bytes) else {
                return Err(KnowledgeError::Inconsistent {
                    corpus: name,
                    reason: "its manifest does not parse".into(),
                });
            };
            out.push(CorpusSummary {
                name,
                documents: m.documents.len(),
                chunks: m.documents.iter().map(|d| d.chunks.len()).sum(),
                embedder: m.embedder,
                manifest_sha256: manifest::sha256_hex(&bytes),
            });
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// Creates the empty corpus `name`, built with `embedder`, its manifest signed by
    /// `signer`. The folder is made under `.tmp/` and renamed into place, so a corpus is
    /// either whole or absent.
    pub fn create(
        &self,
        name: &str,
        embedder: &EmbedderId,
        signer: &OwnerKeys,
    ) -> Result<Corpus, KnowledgeError> {
        validate_name(name)?;
        check_embedder(embedder).map_err(|reason| KnowledgeError::InvalidEmbedder {
            name: embedder.name.chars().take(80).collect(),
            reason,
        })?;
        let target = self.corpus_dir(name);
        if target.exists() {
            return Err(KnowledgeError::Exists {
                name: name.to_owned(),
            });
        }
        let manifest = CorpusManifest::empty(name, embedder, signer.public().key_id);
        let (signed, _) = manifest::sign(&manifest, signer)?;
        let tmp_root = self.root.join(".tmp");
        fs::create_dir_all(&tmp_root).map_err(io("create directory", &tmp_root))?;
        let tmp = tmp_root.join(unique(name));
        let made = (|| {
            let blobs = blob::dir(&tmp);
            fs::create_dir_all(&blobs).map_err(io("create directory", &blobs))?;
            let conn = db::create(&tmp.join(db::DB_FILE), &signed).map_err(|source| {
                KnowledgeError::Database {
                    corpus: name.to_owned(),
                    action: "create the database",
                    source,
                }
            })?;
            drop(conn);
            if target.exists() {
                return Err(KnowledgeError::Exists {
                    name: name.to_owned(),
                });
            }
            fs::rename(&tmp, &target).map_err(io("move corpus into", &target))?;
            blob::sync_dir(&self.root)
        })();
        if let Err(e) = made {
            let _ = fs::remove_dir_all(&tmp);
            return Err(e);
        }
        Corpus::open(&target, name, &signer.public(), false)
    }

    /// Opens corpus `name`, checking its manifest's signatures against `owner` and the index
    /// and blobs against the manifest.
    pub fn open_corpus(
        &self,
        name: &str,
        owner: &OwnerPublicKeys,
    ) -> Result<Corpus, KnowledgeError> {
        validate_name(name)?;
        let dir = self.corpus_dir(name);
        if !dir.join(db::DB_FILE).is_file() {
            return Err(KnowledgeError::NotFound {
                name: name.to_owned(),
            });
        }
        Corpus::open(&dir, name, owner, self.read_only)
    }

    /// Removes corpus `name` whole: its folder is renamed under `.tmp/` first, so it is gone
    /// at once even if deleting the files is interrupted.
    pub fn remove(&self, name: &str) -> Result<(), KnowledgeError> {
        validate_name(name)?;
        let dir = self.corpus_dir(name);
        if !dir.join(db::DB_FILE).is_file() {
            return Err(KnowledgeError::NotFound {
                name: name.to_owned(),
            });
        }
        let tmp_root = self.root.join(".tmp");
        fs::create_dir_all(&tmp_root).map_err(io("create directory", &tmp_root))?;
        let trash = tmp_root.join(unique(&format!("removed-{name}")));
        fs::rename(&dir, &trash).map_err(io("move away", &dir))?;
        blob::sync_dir(&self.root)?;
        fs::remove_dir_all(&trash).map_err(io("remove", &trash))
    }
}
