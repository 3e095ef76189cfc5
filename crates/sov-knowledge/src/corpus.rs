//! An open, verified corpus: its manifest, its documents, and hybrid search.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use rusqlite::Connection;
use sov_keys::OwnerPublicKeys;
use sov_policy::Resource;

use crate::bm25::{EXACT_ROWS, Terms};
use crate::dense::Dense;
use crate::embed::normalised;
use crate::manifest::{self, CorpusManifest, DocumentEntry, sha256_hex};
use crate::search::{Hit, Readable, fts_terms, match_expression, rrf};
use crate::{EmbedderId, KnowledgeError, blob, db};

/// Each of the two lists fused holds at least this many candidates (more when `k` is larger).
pub const CANDIDATES: usize = 50;

/// A corpus whose manifest signature and index were checked when it was opened
/// ([`KnowledgeStore::open_corpus`](crate::KnowledgeStore::open_corpus)).
///
/// Searching takes `&self` (it is `Sync`: the database connection is behind a mutex, the
/// vectors are read-only between changes); adding and removing take `&mut self`.
#[derive(Debug)]
pub struct Corpus {
    pub(crate) name: String,
    pub(crate) dir: PathBuf,
    pub(crate) conn: Mutex<Connection>,
    /// `PRAGMA data_version` when opened: another process's commit changes it.
    pub(crate) version: i64,
    /// How many chunks contain each query term seen (cleared at every change).
    pub(crate) df: Mutex<HashMap<String, i64>>,
    pub(crate) manifest: CorpusManifest,
    pub(crate) signed: Vec<u8>,
    pub(crate) digest: String,
    /// The database key of each document, in manifest order.
    pub(crate) keys: Vec<i64>,
    pub(crate) dense: Dense,
}

/// A candidate chunk, ordered by document id then position (the tie-break of the fusion).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Candidate {
    document: String,
    idx: usize,
    chunk: i64,
    doc: usize,
}

impl Corpus {
    /// Opens the corpus in `dir`, checking everything against the signed manifest.
    pub(crate) fn open(
        dir: &Path,
        name: &str,
        owner: &OwnerPublicKeys,
        read_only: bool,
    ) -> Result<Self, KnowledgeError> {
        let dbe = |action| {
            move |source| KnowledgeError::Database {
                corpus: name.to_owned(),
                action,
                source,
            }
        };
        let bad = |reason: String| KnowledgeError::Inconsistent {
            corpus: name.to_owned(),
            reason,
        };
        let path = dir.join(db::DB_FILE);
        if read_only && std::fs::metadata(path.with_extension("db-wal")).is_ok_and(|m| m.len() > 0)
        {
            return Err(bad(
                "its last change is still in the write-ahead log (a writer stopped early): run `sov corpus list` once to recover it".into(),
            ));
        }
        let conn = db::open_as(&path, read_only).map_err(dbe("open the database"))?;
        let signed = db::read_manifest(&conn)
            .map_err(dbe("read the manifest"))?
            .ok_or_else(|| bad("the database holds no manifest".into()))?;
        let manifest = manifest::verify(&signed, owner, name)?;
        let rows = db::documents(&conn).map_err(dbe("read the documents"))?;
        if rows.len() != manifest.documents.len() {
            return Err(bad(format!(
                "the index holds {} documents, the manifest {}",
                rows.len(),
                manifest.documents.len()
            )));
        }
        let mut keys = Vec::with_capacity(rows.len());
        for (row, entry) in rows.iter().zip(&manifest.documents) {
            let mut listed = entry.clone();
            listed.chunks.clear();
            if row.entry != listed {
                return Err(bad(format!(
                    "document `{}` in the index differs from the manifest's `{}`",
                    row.entry.id, entry.id
                )));
            }
            blob::check(dir, &entry.sha256, entry.size)
                .map_err(|r| bad(format!("the original of `{}` {r}", entry.id)))?;
            keys.push(row.key);
        }
        let dense = Dense::load(&conn, &manifest, &keys)
            .map_err(dbe("read the chunks"))?
            .map_err(bad)?;
        let fts = db::fts_rows(&conn).map_err(dbe("count the index rows"))?;
        let version = db::data_version(&conn).map_err(dbe("read the data version"))?;
        if usize::try_from(fts).ok() != Some(dense.len()) {
            return Err(bad(format!(
                "the text index has {fts} rows for {} chunks",
                dense.len()
            )));
        }
        Ok(Self {
            name: name.to_owned(),
            dir: dir.to_path_buf(),
            conn: Mutex::new(conn),
            version,
            df: Mutex::new(HashMap::new()),
            digest: sha256_hex(&signed),
            signed,
            manifest,
            keys,
            dense,
        })
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, Connection> {
        match self.conn.lock() {
            Ok(c) => c,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    pub(crate) fn db_err(
        &self,
        action: &'static str,
    ) -> impl FnOnce(rusqlite::Error) -> KnowledgeError {
        let corpus = self.name.clone();
        move |source| KnowledgeError::Database {
            corpus,
            action,
            source,
        }
    }

    /// The corpus name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The signed manifest in force (verified when opened, or signed here since).
    pub fn manifest(&self) -> &CorpusManifest {
        &self.manifest
    }

    /// The embedding model the corpus was built with.
    pub fn embedder(&self) -> &EmbedderId {
        &self.manifest.embedder
    }

    /// SHA-256 (hex) of the signed manifest's bytes: what provenance entries name.
    pub fn manifest_sha256(&self) -> &str {
        &self.digest
    }

    /// The signed manifest's exact bytes (compact JSON `{"manifest":..,"signatures":..}`),
    /// for export; [`Self::manifest_sha256`] is their digest.
    pub fn signed_manifest(&self) -> &[u8] {
        &self.signed
    }

    /// Every document, sorted by id.
    pub fn documents(&self) -> &[DocumentEntry] {
        &self.manifest.documents
    }

    /// How many chunks the corpus holds.
    pub fn chunk_count(&self) -> usize {
        self.dense.len()
    }

    /// Where the original bytes of a document are kept (`blobs/sha256/<hex>`, read-only).
    pub fn original_path(&self, document: &DocumentEntry) -> PathBuf {
        blob::path(&self.dir, &document.sha256)
    }

    /// The resource of every document, in manifest order, for the kernel to decide
    /// `read-corpus` on; the permits of those it allows make the [`Readable`] of a search.
    pub fn document_resources(&self) -> Vec<Resource> {
        self.manifest
            .documents
            .iter()
            .map(|d| self.resource(d))
            .collect()
    }

    fn resource(&self, d: &DocumentEntry) -> Resource {
        Resource::Document {
            id: d.id.clone(),
            corpus: Some(self.name.clone()),
            clearance: d.clearance,
            attrs: d
                .attributes
                .iter()
                .filter_map(|a| a.split_once('='))
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect(),
        }
    }

    /// Hybrid search among the documents `readable` allows: the best `k` chunks by reciprocal
    /// rank fusion of BM25 over `query_text` and the dot product with `query_vector` (made by
    /// the corpus's embedder from the same query; normalised here). Chunks of other documents
    /// are not candidates of either list, so nothing of them is ranked, scored or returned.
    pub fn search(
        &self,
        query_text: &str,
        query_vector: &[f32],
        readable: &Readable,
        k: usize,
    ) -> Result<Vec<Hit>, KnowledgeError> {
        let dims = self.dense.dims();
        let query = normalised(query_vector.to_vec(), dims, 0).map_err(|source| {
            KnowledgeError::QueryVector {
                corpus: self.name.clone(),
                source,
            }
        })?;
        let allowed: Vec<bool> = self
            .manifest
            .documents
            .iter()
            .map(|d| readable.allows(&self.name, &self.resource(d)))
            .collect();
        if k == 0 || !allowed.contains(&true) {
            return Ok(Vec::new());
        }
        let depth = k.max(CANDIDATES);
        let candidate = |doc: usize, idx: usize, chunk: i64| {
            let document = self.manifest.documents.get(doc)?.id.clone();
            Some(Candidate {
                document,
                idx,
                chunk,
                doc,
            })
        };
        let ranked = self.dense.top(&query, &allowed, depth);
        let similarity: std::collections::HashMap<i64, f32> =
            ranked.iter().map(|(r, s)| (r.chunk, *s)).collect();
        let dense: Vec<Candidate> = ranked
            .into_iter()
            .filter_map(|(r, _)| candidate(r.doc, r.idx, r.chunk))
            .collect();
        // One read transaction for the text index and the texts, in the state this corpus was
        // opened in (or changed to by itself); a change by another process is refused.
        let conn = self.lock();
        let tx = conn
            .unchecked_transaction()
            .map_err(self.db_err("begin a search"))?;
        let bm25 = self.bm25(&tx, query_text, &allowed, depth)?;
        let version = db::data_version(&tx).map_err(self.db_err("read the data version"))?;
        if version != self.version {
            return Err(self.changed());
        }
        let bm25: Vec<Candidate> = bm25
            .into_iter()
            .filter_map(|(chunk, doc, idx)| candidate(doc, idx, chunk))
            .filter(|c| allowed.get(c.doc).copied().unwrap_or(false))
            .collect();
        let mut hits = Vec::with_capacity(k);
        for (i, fused) in rrf(&bm25, &dense).into_iter().take(k).enumerate() {
            let c = fused.key;
            let (entry, key) = match (self.manifest.documents.get(c.doc), self.keys.get(c.doc)) {
                (Some(entry), Some(key)) => (entry, *key),
                _ => return Err(self.changed()),
            };
            let expected = entry.chunks.get(c.idx).ok_or_else(|| self.changed())?;
            // The text returned is the one the signed manifest lists for this place.
            let (heading, text) = db::chunk_text(&tx, c.chunk, key, c.idx)
                .map_err(self.db_err("read a chunk"))?
                .filter(|(_, text)| sha256_hex(text.as_bytes()) == *expected)
                .ok_or_else(|| self.changed())?;
            hits.push(Hit {
                rank: i + 1,
                title: entry.title.clone(),
                document: c.document,
                chunk: c.idx,
                chunk_sha256: expected.clone(),
                heading,
                text,
                score: fused.score,
                bm25_rank: fused.bm25_rank,
                dense_rank: fused.dense_rank,
                similarity: similarity.get(&c.chunk).copied(),
            });
        }
        Ok(hits)
    }

    fn changed(&self) -> KnowledgeError {
        KnowledgeError::Changed {
            corpus: self.name.clone(),
        }
    }

    /// The BM25 list: `(chunk key, document position, chunk index)`, best first, computed as
    /// [`Terms`] explains (the full `OR` query's ranking, scoring few rows when it can).
    fn bm25(
        &self,
        conn: &Connection,
        query_text: &str,
        allowed: &[bool],
        depth: usize,
    ) -> Result<Vec<(i64, usize, usize)>, KnowledgeError> {
        let total = i64::try_from(self.dense.len()).unwrap_or(i64::MAX);
        let mut terms = Vec::new();
        for term in fts_terms(query_text) {
            let df = self.document_frequency(conn, &term)?;
            terms.push((term, df));
        }
        let Some(terms) = Terms::split(&terms, total, EXACT_ROWS) else {
            return Ok(Vec::new());
        };
        let keys = if allowed.iter().all(|a| *a) {
            // Every document readable: the index alone, positions from memory.
            terms.top(depth, EXACT_ROWS, |query, limit| {
                db::bm25_all(conn, query, limit)
            })
        } else {
            let readable: Vec<i64> = self
                .keys
                .iter()
                .zip(allowed)
                .filter(|(_, a)| **a)
                .map(|(k, _)| *k)
                .collect();
            terms.top(depth, EXACT_ROWS, |query, limit| {
                db::bm25(conn, query, &readable, limit)
            })
        }
        .map_err(self.db_err("search the text index"))?;
        Ok(keys
            .into_iter()
            .filter_map(|chunk| {
                let row = self.dense.row(chunk)?;
                Some((chunk, row.doc, row.idx))
            })
            .collect())
    }

    /// How many chunks contain `term`, counted once per corpus state (cached until a change).
    fn document_frequency(&self, conn: &Connection, term: &str) -> Result<i64, KnowledgeError> {
        const MAX_CACHED: usize = 65_536;
        let mut cache = match self.df.lock() {
            Ok(c) => c,
            Err(poisoned) => poisoned.into_inner(),
        };
        if let Some(df) = cache.get(term) {
            return Ok(*df);
        }
        let expression =
            match_expression(std::slice::from_ref(&term.to_owned())).unwrap_or_default();
        let df = db::matches(conn, &expression).map_err(self.db_err("count a term"))?;
        if cache.len() >= MAX_CACHED {
            cache.clear();
        }
        cache.insert(term.to_owned(), df);
        Ok(df)
    }
}
