//! Exact dense search: every vector of a corpus in one contiguous `Vec<f32>`, loaded at open,
//! scanned with a dot product per readable chunk.
//!
//! Memory: `dims x 4` bytes per chunk, so 100,000 chunks of all-MiniLM-L6-v2 (384 dimensions)
//! take 153.6 MB. The scan reads them once per query; see `benches/search.rs` for the time.

use std::collections::{HashMap, HashSet};

use rusqlite::Connection;

use crate::db;
use crate::manifest::{CorpusManifest, sha256_hex};

/// Where one vector comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Row {
    /// The chunk's database key.
    pub(crate) chunk: i64,
    /// Its document's database key.
    pub(crate) doc_key: i64,
    /// Its document's position in the manifest.
    pub(crate) doc: usize,
    /// Its position in the document.
    pub(crate) idx: usize,
}

/// The vectors of a corpus and whose they are.
#[derive(Debug, Clone)]
pub(crate) struct Dense {
    dims: usize,
    vectors: Vec<f32>,
    rows: Vec<Row>,
    /// Chunk key -> position in `rows`.
    by_chunk: HashMap<i64, usize>,
}

impl Dense {
    /// Reads every chunk, checking each against the manifest: it belongs to a listed document,
    /// comes at its place, its text hashes to the digest the manifest lists there, and its
    /// vector has the corpus's length. The outer error is the database's, the inner one what
    /// does not match.
    pub(crate) fn load(
        conn: &Connection,
        manifest: &CorpusManifest,
        keys: &[i64],
    ) -> rusqlite::Result<Result<Self, String>> {
        let dims = usize::try_from(manifest.embedder.dims).unwrap_or(0);
        let position: HashMap<i64, usize> = keys.iter().enumerate().map(|(i, k)| (*k, i)).collect();
        let mut next = vec![0usize; keys.len()];
        let mut dense = Self {
            dims,
            vectors: Vec::new(),
            rows: Vec::new(),
            by_chunk: HashMap::new(),
        };
        let walked = db::for_each_chunk(conn, |row| {
            let doc = *position
                .get(&row.doc)
                .ok_or_else(|| format!("chunk {} belongs to no listed document", row.key))?;
            let entry = manifest
                .documents
                .get(doc)
                .ok_or_else(|| "a document position is out of range".to_owned())?;
            let idx = usize::try_from(row.idx).unwrap_or(usize::MAX);
            let expected = next
                .get_mut(doc)
                .ok_or("a document position is out of range")?;
            if idx != *expected {
                return Err(format!("chunk {idx} of `{}` is out of place", entry.id));
            }
            *expected += 1;
            let actual = sha256_hex(row.text.as_bytes());
            if entry.chunks.get(idx) != Some(&actual) || row.sha256 != actual {
                return Err(format!(
                    "the text of chunk {idx} of `{}` does not match its digest",
                    entry.id
                ));
            }
            if row.vector.len() != dims * 4 {
                return Err(format!(
                    "the vector of chunk {idx} of `{}` has {} bytes, not {}",
                    entry.id,
                    row.vector.len(),
                    dims * 4
                ));
            }
            dense.vectors.extend(
                row.vector
                    .chunks_exact(4)
                    .map(|b| <[u8; 4]>::try_from(b).map_or(f32::NAN, f32::from_le_bytes)),
            );
            dense.rows.push(Row {
                chunk: row.key,
                doc_key: row.doc,
                doc,
                idx,
            });
            Ok(())
        })?;
        if let Err(reason) = walked {
            return Ok(Err(reason));
        }
        for (entry, found) in manifest.documents.iter().zip(&next) {
            if *found != entry.chunks.len() {
                return Ok(Err(format!(
                    "`{}` has {found} chunks in the index, {} in the manifest",
                    entry.id,
                    entry.chunks.len()
                )));
            }
        }
        dense.index();
        Ok(Ok(dense))
    }

    fn index(&mut self) {
        self.by_chunk = self
            .rows
            .iter()
            .enumerate()
            .map(|(i, r)| (r.chunk, i))
            .collect();
    }

    /// The row of chunk `key`.
    pub(crate) fn row(&self, key: i64) -> Option<&Row> {
        self.rows.get(*self.by_chunk.get(&key)?)
    }

    /// Vector length.
    pub(crate) fn dims(&self) -> usize {
        self.dims
    }

    /// Number of vectors.
    pub(crate) fn len(&self) -> usize {
        self.rows.len()
    }

    /// The `depth` rows of readable documents (`allowed[doc]`) most similar to `query`, best
    /// first; equal scores in row order.
    pub(crate) fn top(&self, query: &[f32], allowed: &[bool], depth: usize) -> Vec<(Row, f32)> {
        let mut scored: Vec<(f32, u32)> = Vec::new();
        for (i, (row, v)) in self
            .rows
            .iter()
            .zip(self.vectors.chunks_exact(self.dims.max(1)))
            .enumerate()
        {
            if allowed.get(row.doc).copied().unwrap_or(false) {
                scored.push((dot(query, v), u32::try_from(i).unwrap_or(u32::MAX)));
            }
        }
        let order = |a: &(f32, u32), b: &(f32, u32)| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1));
        if scored.len() > depth && depth > 0 {
            scored.select_nth_unstable_by(depth - 1, order);
            scored.truncate(depth);
        }
        scored.sort_unstable_by(order);
        scored
            .into_iter()
            .take(depth)
            .filter_map(|(score, i)| {
                Some((self.rows.get(usize::try_from(i).ok()?).cloned()?, score))
            })
            .collect()
    }

    /// Drops the vectors of documents `gone` (database keys), appends `new` ones, and sets
    /// every row's document position from `position` (database key -> manifest position).
    pub(crate) fn update(
        &mut self,
        gone: &HashSet<i64>,
        new: Vec<(Row, Vec<f32>)>,
        position: &HashMap<i64, usize>,
    ) {
        let dims = self.dims.max(1);
        let mut vectors = Vec::with_capacity(self.vectors.len());
        let mut rows = Vec::with_capacity(self.rows.len());
        for (row, v) in self.rows.drain(..).zip(self.vectors.chunks_exact(dims)) {
            if !gone.contains(&row.doc_key) {
                vectors.extend_from_slice(v);
                rows.push(row);
            }
        }
        for (row, v) in new {
            vectors.extend_from_slice(&v);
            rows.push(row);
        }
        for row in &mut rows {
            row.doc = position.get(&row.doc_key).copied().unwrap_or(usize::MAX);
        }
        self.vectors = vectors;
        self.rows = rows;
        self.index();
    }
}

/// Dot product, eight lanes at a time (the compiler vectorises the fixed-width loop).
pub(crate) fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut lanes = [0f32; 8];
    let (a8, a_rest) = a.as_chunks::<8>();
    let (b8, b_rest) = b.as_chunks::<8>();
    for (x, y) in a8.iter().zip(b8) {
        for ((l, p), q) in lanes.iter_mut().zip(x).zip(y) {
            *l += p * q;
        }
    }
    let tail: f32 = a_rest.iter().zip(b_rest).map(|(p, q)| p * q).sum();
    lanes.iter().sum::<f32>() + tail
}
