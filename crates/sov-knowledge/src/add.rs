//! Changing a corpus: adding files and removing documents, each all or nothing.
//!
//! An add reads, parses, chunks and embeds every file before anything is written; then it
//! writes the new blobs, and one SQLite transaction changes the index and stores the new
//! signed manifest. If any step fails, the transaction rolls back, the blobs it wrote are
//! removed, and the corpus is as it was. Blobs no document uses any more are removed after
//! the commit.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;

use rusqlite::{Transaction, TransactionBehavior};
use sov_keys::OwnerKeys;

use crate::chunk::{Chunk, chunk};
use crate::dense::Row;
use crate::embed::embed_all;
use crate::ingest::{self, read_limited};
use crate::manifest::{self, DocumentEntry, sha256_hex};
use crate::{Corpus, Embedder, KnowledgeError, blob, db};

/// Largest file an add takes by default: 64 MiB.
pub const DEFAULT_MAX_FILE_BYTES: u64 = 64 * 1024 * 1024;

/// How an add labels its documents, and its limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddOptions {
    /// The clearance level of every document added (Cedar's `resource.clearance`).
    pub clearance: Option<i64>,
    /// Their attributes, `(key, value)`: keys `[a-z0-9_.-]{1,64}`, unique.
    pub attributes: Vec<(String, String)>,
    /// Largest file taken, in bytes; a larger one refuses the add.
    pub max_file_bytes: u64,
}

impl Default for AddOptions {
    fn default() -> Self {
        Self {
            clearance: None,
            attributes: Vec::new(),
            max_file_bytes: DEFAULT_MAX_FILE_BYTES,
        }
    }
}

/// A file inside a folder that an add left out, and why (hidden, or of a type not read).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    /// The file.
    pub path: PathBuf,
    /// Why.
    pub reason: String,
}

/// What an add or a removal did, by document id.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Change {
    /// New documents.
    pub added: Vec<String>,
    /// Documents whose bytes changed: their chunks were replaced.
    pub replaced: Vec<String>,
    /// Documents with the same bytes and a new clearance or new attributes (chunks untouched).
    pub relabelled: Vec<String>,
    /// Documents with the same bytes and labels: no work was done for them.
    pub unchanged: Vec<String>,
    /// Documents removed.
    pub removed: Vec<String>,
    /// Files of the folders given that were left out.
    pub skipped: Vec<Skipped>,
    /// Chunks written.
    pub chunks_added: usize,
    /// SHA-256 of the signed manifest now in force (the same as before if nothing changed).
    pub manifest_sha256: String,
}

/// A document to write.
struct Prepared {
    entry: DocumentEntry,
    /// `None` for a relabelled document (its chunks stay).
    content: Option<(Vec<u8>, Vec<Chunk>)>,
    vectors: Vec<Vec<f32>>,
}

impl Corpus {
    /// Adds the files `paths` name (files, or folders walked; see the crate docs for ids and
    /// rules), labelled by `options`, embedded by `embedder` (which must be the corpus's),
    /// the new manifest signed by `signer`. All or nothing: any file that cannot be taken
    /// refuses the whole add, and the corpus is left exactly as it was.
    pub fn add(
        &mut self,
        paths: &[PathBuf],
        options: &AddOptions,
        embedder: &dyn Embedder,
        signer: &OwnerKeys,
    ) -> Result<Change, KnowledgeError> {
        let actual = embedder.id();
        if actual != self.manifest.embedder {
            return Err(KnowledgeError::EmbedderMismatch {
                corpus: self.name.clone(),
                expected: Box::new(self.manifest.embedder.clone()),
                actual: Box::new(actual),
            });
        }
        let attributes = manifest::attributes(&options.attributes)?;
        let mut change = Change::default();
        let sources = ingest::collect(paths, &mut change.skipped)?;
        let mut prepared = Vec::new();
        for source in sources {
            let bytes = read_limited(&source.path, options.max_file_bytes)?;
            let sha256 = sha256_hex(&bytes);
            let existing = self.manifest.document(&source.id);
            if let Some(old) = existing.filter(|old| old.sha256 == sha256) {
                if old.clearance == options.clearance && old.attributes == attributes {
                    change.unchanged.push(source.id);
                } else {
                    let mut entry = old.clone();
                    entry.clearance = options.clearance;
                    entry.attributes.clone_from(&attributes);
                    change.relabelled.push(source.id);
                    prepared.push(Prepared {
                        entry,
                        content: None,
                        vectors: Vec::new(),
                    });
                }
                continue;
            }
            let parsed =
                ingest::parse(source.media, &bytes).map_err(|e| KnowledgeError::Ingest {
                    path: source.path.clone(),
                    source: e,
                })?;
            let chunks = chunk(&parsed);
            let title = parsed.title.clone().unwrap_or_else(|| {
                source
                    .id
                    .rsplit('/')
                    .next()
                    .unwrap_or(&source.id)
                    .to_owned()
            });
            let entry = DocumentEntry {
                id: source.id.clone(),
                title,
                sha256,
                size: bytes.len() as u64,
                media_type: source.media.as_str().to_owned(),
                clearance: options.clearance,
                attributes: attributes.clone(),
                chunks: chunks
                    .iter()
                    .map(|c| sha256_hex(c.text.as_bytes()))
                    .collect(),
            };
            if existing.is_some() {
                change.replaced.push(source.id);
            } else {
                change.added.push(source.id);
            }
            prepared.push(Prepared {
                entry,
                content: Some((bytes, chunks)),
                vectors: Vec::new(),
            });
        }
        if prepared.is_empty() {
            change.manifest_sha256 = self.digest.clone();
            return Ok(change);
        }
        let dims = self.dense.dims();
        for p in &mut prepared {
            if let Some((_, chunks)) = &p.content {
                let texts: Vec<String> = chunks
                    .iter()
                    .map(|c| c.indexed_text(&p.entry.title))
                    .collect();
                p.vectors =
                    embed_all(embedder, &texts, dims).map_err(|source| KnowledgeError::Embed {
                        document: p.entry.id.clone(),
                        source,
                    })?;
                change.chunks_added += chunks.len();
            }
        }
        let mut next = self.manifest.clone();
        let mut docs: BTreeMap<String, DocumentEntry> = next
            .documents
            .drain(..)
            .map(|d| (d.id.clone(), d))
            .collect();
        for p in &prepared {
            docs.insert(p.entry.id.clone(), p.entry.clone());
        }
        next.documents = docs.into_values().collect();
        let (signed, digest) = manifest::sign(&next, signer)?;

        let mut written: Vec<String> = Vec::new();
        let mut result = Ok((Vec::new(), Vec::new()));
        for p in &prepared {
            if let Some((bytes, _)) = &p.content
                && !written.contains(&p.entry.sha256)
            {
                match blob::write(&self.dir, &p.entry.sha256, bytes) {
                    Ok(true) => written.push(p.entry.sha256.clone()),
                    Ok(false) => {}
                    Err(e) => {
                        result = Err(e);
                        break;
                    }
                }
            }
        }
        if result.is_ok() {
            result = self.commit(&signed, |tx, keys| write_prepared(tx, keys, &prepared));
        }
        let (new_keys, new_rows) = match result {
            Ok(written) => written,
            Err(e) => {
                for sha256 in &written {
                    let _ = blob::remove(&self.dir, sha256);
                }
                return Err(e);
            }
        };
        let gone: HashSet<i64> = prepared
            .iter()
            .filter(|p| p.content.is_some())
            .filter_map(|p| self.key_of(&p.entry.id))
            .collect();
        let old_blobs: Vec<String> = prepared
            .iter()
            .filter_map(|p| self.manifest.document(&p.entry.id))
            .map(|d| d.sha256.clone())
            .collect();
        self.install(next, signed, digest, &gone, &new_keys, new_rows);
        self.remove_unused_blobs(&old_blobs);
        change.manifest_sha256 = self.digest.clone();
        Ok(change)
    }

    /// Removes document `id`, its chunks and (if no other document has the same bytes) its
    /// blob; the new manifest is signed by `signer`.
    pub fn remove_document(
        &mut self,
        id: &str,
        signer: &OwnerKeys,
    ) -> Result<Change, KnowledgeError> {
        let Some(entry) = self.manifest.document(id).cloned() else {
            return Err(KnowledgeError::NoDocument {
                corpus: self.name.clone(),
                id: id.to_owned(),
            });
        };
        let key = self.key_of(id);
        let mut next = self.manifest.clone();
        next.documents.retain(|d| d.id != id);
        let (signed, digest) = manifest::sign(&next, signer)?;
        self.commit(&signed, |tx, _| {
            if let Some(key) = key {
                db::delete_chunks(tx, key)?;
                db::delete_document(tx, key)?;
            }
            Ok(())
        })?;
        let gone: HashSet<i64> = key.into_iter().collect();
        self.install(next, signed, digest, &gone, &[], Vec::new());
        self.remove_unused_blobs(&[entry.sha256]);
        Ok(Change {
            removed: vec![id.to_owned()],
            manifest_sha256: self.digest.clone(),
            ..Change::default()
        })
    }

    fn key_of(&self, id: &str) -> Option<i64> {
        let i = self
            .manifest
            .documents
            .binary_search_by(|d| d.id.as_str().cmp(id))
            .ok()?;
        self.keys.get(i).copied()
    }

    /// Runs `f` and stores `signed` in one immediate transaction, after checking that the
    /// stored manifest is still the one this corpus was opened with.
    fn commit<T>(
        &self,
        signed: &[u8],
        f: impl FnOnce(&Transaction<'_>, &HashMap<String, i64>) -> rusqlite::Result<T>,
    ) -> Result<T, KnowledgeError> {
        let keys: HashMap<String, i64> = self
            .manifest
            .documents
            .iter()
            .zip(&self.keys)
            .map(|(d, k)| (d.id.clone(), *k))
            .collect();
        let mut conn = self.lock();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(self.db_err("begin a change"))?;
        let stored = db::read_manifest(&tx).map_err(self.db_err("read the manifest"))?;
        if stored.as_deref() != Some(self.signed.as_slice()) {
            return Err(KnowledgeError::Changed {
                corpus: self.name.clone(),
            });
        }
        let out = f(&tx, &keys).map_err(self.db_err("write the change"))?;
        db::write_manifest(&tx, signed).map_err(self.db_err("store the manifest"))?;
        tx.commit().map_err(self.db_err("commit the change"))?;
        Ok(out)
    }

    /// Takes the committed state into memory.
    fn install(
        &mut self,
        next: manifest::CorpusManifest,
        signed: Vec<u8>,
        digest: String,
        gone: &HashSet<i64>,
        new_keys: &[(String, i64)],
        new_rows: Vec<(Row, Vec<f32>)>,
    ) {
        let mut by_id: HashMap<String, i64> = self
            .manifest
            .documents
            .iter()
            .zip(&self.keys)
            .map(|(d, k)| (d.id.clone(), *k))
            .collect();
        by_id.extend(new_keys.iter().cloned());
        self.keys = next
            .documents
            .iter()
            .map(|d| by_id.get(&d.id).copied().unwrap_or(-1))
            .collect();
        let position: HashMap<i64, usize> =
            self.keys.iter().enumerate().map(|(i, k)| (*k, i)).collect();
        self.dense.update(gone, new_rows, &position);
        match self.df.get_mut() {
            Ok(df) => df.clear(),
            Err(poisoned) => poisoned.into_inner().clear(),
        }
        self.manifest = next;
        self.signed = signed;
        self.digest = digest;
    }

    /// Removes the blobs of `candidates` that no document uses any more. A failure leaves a
    /// stray file, never a missing one, so it is not an error of the change.
    fn remove_unused_blobs(&self, candidates: &[String]) {
        for sha256 in candidates {
            if !self.manifest.documents.iter().any(|d| &d.sha256 == sha256) {
                let _ = blob::remove(&self.dir, sha256);
            }
        }
    }
}

/// The documents' keys and the new vectors with their rows.
type Written = (Vec<(String, i64)>, Vec<(Row, Vec<f32>)>);

/// Writes the prepared documents.
fn write_prepared(
    tx: &Transaction<'_>,
    keys: &HashMap<String, i64>,
    prepared: &[Prepared],
) -> rusqlite::Result<Written> {
    let mut rows = Vec::new();
    let mut doc_keys = Vec::with_capacity(prepared.len());
    for p in prepared {
        let existing = keys.get(&p.entry.id).copied();
        let key = db::put_document(tx, existing, &p.entry)?;
        doc_keys.push((p.entry.id.clone(), key));
        let Some((_, chunks)) = &p.content else {
            continue;
        };
        if let Some(old) = existing {
            db::delete_chunks(tx, old)?;
        }
        for (idx, (c, v)) in chunks.iter().zip(&p.vectors).enumerate() {
            let sha256 = p.entry.chunks.get(idx).map_or("", String::as_str);
            let chunk =
                db::insert_chunk(tx, key, idx, c, sha256, &c.indexed_text(&p.entry.title), v)?;
            rows.push((
                Row {
                    chunk,
                    doc_key: key,
                    doc: usize::MAX,
                    idx,
                },
                v.clone(),
            ));
        }
    }
    Ok((doc_keys, rows))
}
