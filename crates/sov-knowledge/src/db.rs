//! The corpus database: documents, chunks, the FTS5 index, the vectors and the signed manifest.
//!
//! ```sql
//! meta(key TEXT PRIMARY KEY, value BLOB)          'schema' = 1, 'manifest' = signed bytes
//! documents(key INTEGER PRIMARY KEY AUTOINCREMENT, id UNIQUE, title, sha256, size, media_type,
//!           clearance, attributes)                attributes: JSON array of "k=v"
//! chunks(key INTEGER PRIMARY KEY AUTOINCREMENT, doc -> documents.key, idx, heading, text, sha256,
//!        vector BLOB)                             vector: dims x f32, little-endian
//! chunks_fts USING fts5(body, content='', contentless_delete=1,
//!                       tokenize='porter unicode61 remove_diacritics 2')
//!                                                 rowid = chunks.key; body = indexed text
//! ```
//!
//! Keys are `AUTOINCREMENT`, never reused: a process holding a corpus open since before another
//! process changed it never finds another chunk under a key it knows (it also notices the
//! change, through `PRAGMA data_version`, and refuses to search until reopened).

use std::path::Path;
use std::rc::Rc;

use rusqlite::types::Value;
use rusqlite::{Connection, OpenFlags, OptionalExtension, Transaction, params};

use crate::chunk::Chunk;
use crate::manifest::DocumentEntry;

/// The database's file name in a corpus folder.
pub(crate) const DB_FILE: &str = "corpus.db";
const SCHEMA_VERSION: i64 = 1;

const SCHEMA: &str = "
CREATE TABLE meta (key TEXT PRIMARY KEY, value ANY NOT NULL) STRICT;
CREATE TABLE documents (
    key INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    title TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    size INTEGER NOT NULL,
    media_type TEXT NOT NULL,
    clearance INTEGER,
    attributes TEXT NOT NULL
) STRICT;
CREATE TABLE chunks (
    key INTEGER PRIMARY KEY AUTOINCREMENT,
    doc INTEGER NOT NULL REFERENCES documents(key),
    idx INTEGER NOT NULL,
    heading TEXT NOT NULL,
    text TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    vector BLOB NOT NULL,
    UNIQUE (doc, idx)
) STRICT;
CREATE VIRTUAL TABLE chunks_fts USING fts5(
    body, content='', contentless_delete=1,
    tokenize='porter unicode61 remove_diacritics 2'
);
";

fn configure(conn: &Connection) -> rusqlite::Result<()> {
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    rusqlite::vtab::array::load_module(conn)
}

/// Creates a new database at `path` holding the empty corpus's manifest.
pub(crate) fn create(path: &Path, manifest: &[u8]) -> rusqlite::Result<Connection> {
    let mut conn = Connection::open(path)?;
    configure(&conn)?;
    let tx = conn.transaction()?;
    tx.execute_batch(SCHEMA)?;
    tx.execute(
        "INSERT INTO meta (key, value) VALUES ('schema', ?1)",
        params![SCHEMA_VERSION],
    )?;
    write_manifest(&tx, manifest)?;
    tx.commit()?;
    Ok(conn)
}

/// Opens an existing database.
pub(crate) fn open(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    configure(&conn)?;
    Ok(conn)
}

/// Opens an existing database, read-write or (`read_only`) immutable: read without locks or
/// any file written, for a reader that knows nothing writes it meanwhile.
pub(crate) fn open_as(path: &Path, read_only: bool) -> rusqlite::Result<Connection> {
    if !read_only {
        return open(path);
    }
    let mut uri = String::from("file:");
    for c in path.display().to_string().chars() {
        match c {
            '%' => uri.push_str("%25"),
            '?' => uri.push_str("%3f"),
            '#' => uri.push_str("%23"),
            c => uri.push(c),
        }
    }
    uri.push_str("?immutable=1");
    let conn = Connection::open_with_flags(
        uri,
        OpenFlags::SQLITE_OPEN_READ_ONLY
            | OpenFlags::SQLITE_OPEN_URI
            | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    rusqlite::vtab::array::load_module(&conn)?;
    Ok(conn)
}

/// The stored signed manifest.
pub(crate) fn read_manifest(conn: &Connection) -> rusqlite::Result<Option<Vec<u8>>> {
    conn.query_row("SELECT value FROM meta WHERE key = 'manifest'", [], |r| {
        r.get(0)
    })
    .optional()
}

/// Replaces the stored signed manifest.
pub(crate) fn write_manifest(tx: &Transaction<'_>, manifest: &[u8]) -> rusqlite::Result<()> {
    tx.execute(
        "INSERT INTO meta (key, value) VALUES ('manifest', ?1)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        params![manifest],
    )?;
    Ok(())
}

/// A document row: its key and what the manifest says of it (without the chunk digests).
#[derive(Debug, Clone)]
pub(crate) struct DocRow {
    pub(crate) key: i64,
    pub(crate) entry: DocumentEntry,
}

/// Every document row, by id. Attributes that do not parse come back as one `?` attribute,
/// which no manifest holds.
pub(crate) fn documents(conn: &Connection) -> rusqlite::Result<Vec<DocRow>> {
    let mut stmt = conn.prepare(
        "SELECT key, id, title, sha256, size, media_type, clearance, attributes
         FROM documents ORDER BY id",
    )?;
    let rows = stmt.query_map([], |r| {
        let attributes: String = r.get(7)?;
        let size: i64 = r.get(4)?;
        Ok(DocRow {
            key: r.get(0)?,
            entry: DocumentEntry {
                id: r.get(1)?,
                title: r.get(2)?,
                sha256: r.get(3)?,
                size: u64::try_from(size).unwrap_or(u64::MAX),
                media_type: r.get(5)?,
                clearance: r.get(6)?,
                attributes: serde_json::from_str(&attributes).unwrap_or_else(|_| vec!["?".into()]),
                chunks: Vec::new(),
            },
        })
    })?;
    rows.collect()
}

/// One chunk row as read at open.
#[derive(Debug)]
pub(crate) struct ChunkRow {
    pub(crate) key: i64,
    pub(crate) doc: i64,
    pub(crate) idx: i64,
    pub(crate) text: String,
    pub(crate) sha256: String,
    pub(crate) vector: Vec<u8>,
}

/// Calls `f` with every chunk, ordered by document key and index.
pub(crate) fn for_each_chunk(
    conn: &Connection,
    mut f: impl FnMut(ChunkRow) -> Result<(), String>,
) -> rusqlite::Result<Result<(), String>> {
    let mut stmt =
        conn.prepare("SELECT key, doc, idx, text, sha256, vector FROM chunks ORDER BY doc, idx")?;
    let mut rows = stmt.query([])?;
    while let Some(r) = rows.next()? {
        let row = ChunkRow {
            key: r.get(0)?,
            doc: r.get(1)?,
            idx: r.get(2)?,
            text: r.get(3)?,
            sha256: r.get(4)?,
            vector: r.get(5)?,
        };
        if let Err(reason) = f(row) {
            return Ok(Err(reason));
        }
    }
    Ok(Ok(()))
}

/// Number of rows in the FTS index.
pub(crate) fn fts_rows(conn: &Connection) -> rusqlite::Result<i64> {
    conn.query_row("SELECT count(*) FROM chunks_fts", [], |r| r.get(0))
}

/// Inserts or updates (keeping its key) the row of `entry`; returns its key.
pub(crate) fn put_document(
    tx: &Transaction<'_>,
    existing: Option<i64>,
    entry: &DocumentEntry,
) -> rusqlite::Result<i64> {
    let attributes = serde_json::to_string(&entry.attributes).unwrap_or_default();
    let size = i64::try_from(entry.size).unwrap_or(i64::MAX);
    match existing {
        Some(key) => {
            tx.execute(
                "UPDATE documents SET title = ?2, sha256 = ?3, size = ?4, media_type = ?5,
                 clearance = ?6, attributes = ?7 WHERE key = ?1",
                params![
                    key,
                    entry.title,
                    entry.sha256,
                    size,
                    entry.media_type,
                    entry.clearance,
                    attributes
                ],
            )?;
            Ok(key)
        }
        None => {
            tx.execute(
                "INSERT INTO documents (id, title, sha256, size, media_type, clearance, attributes)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![
                    entry.id,
                    entry.title,
                    entry.sha256,
                    size,
                    entry.media_type,
                    entry.clearance,
                    attributes
                ],
            )?;
            Ok(tx.last_insert_rowid())
        }
    }
}

/// Deletes a document's chunks and their index rows; returns the chunk keys deleted.
pub(crate) fn delete_chunks(tx: &Transaction<'_>, doc: i64) -> rusqlite::Result<Vec<i64>> {
    let keys: Vec<i64> = {
        let mut stmt = tx.prepare("SELECT key FROM chunks WHERE doc = ?1")?;
        let rows = stmt.query_map(params![doc], |r| r.get(0))?;
        rows.collect::<rusqlite::Result<_>>()?
    };
    {
        let mut fts = tx.prepare("DELETE FROM chunks_fts WHERE rowid = ?1")?;
        for key in &keys {
            fts.execute(params![key])?;
        }
    }
    tx.execute("DELETE FROM chunks WHERE doc = ?1", params![doc])?;
    Ok(keys)
}

/// Deletes a document row (its chunks first, with [`delete_chunks`]).
pub(crate) fn delete_document(tx: &Transaction<'_>, doc: i64) -> rusqlite::Result<()> {
    tx.execute("DELETE FROM documents WHERE key = ?1", params![doc])?;
    Ok(())
}

/// Inserts a chunk, its vector and its index row; returns its key.
pub(crate) fn insert_chunk(
    tx: &Transaction<'_>,
    doc: i64,
    idx: usize,
    chunk: &Chunk,
    sha256: &str,
    indexed: &str,
    vector: &[f32],
) -> rusqlite::Result<i64> {
    let blob: Vec<u8> = vector.iter().flat_map(|x| x.to_le_bytes()).collect();
    tx.prepare_cached(
        "INSERT INTO chunks (doc, idx, heading, text, sha256, vector) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![
        doc,
        i64::try_from(idx).unwrap_or(i64::MAX),
        chunk.heading,
        chunk.text,
        sha256,
        blob
    ])?;
    let key = tx.last_insert_rowid();
    tx.prepare_cached("INSERT INTO chunks_fts (rowid, body) VALUES (?1, ?2)")?
        .execute(params![key, indexed])?;
    Ok(key)
}

/// The best `limit` chunks for an FTS5 `query` by BM25, among chunks of the documents `docs`,
/// best first: `(chunk key, bm25)` (lower scores are better; ties by key).
pub(crate) fn bm25(
    conn: &Connection,
    query: &str,
    docs: &[i64],
    limit: usize,
) -> rusqlite::Result<Vec<(i64, f64)>> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let docs: Rc<Vec<Value>> = Rc::new(docs.iter().copied().map(Value::from).collect());
    let mut stmt = conn.prepare_cached(
        "SELECT c.key, bm25(chunks_fts) AS s FROM chunks_fts f JOIN chunks c ON c.key = f.rowid
         WHERE chunks_fts MATCH ?1 AND c.doc IN rarray(?2)
         ORDER BY s, c.key LIMIT ?3",
    )?;
    stmt.query_map(params![query, docs, limit], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect()
}

/// The best `limit` chunks of the whole corpus for an FTS5 `query` by BM25, best first:
/// `(chunk key, bm25)`, for a caller who may read every document.
pub(crate) fn bm25_all(
    conn: &Connection,
    query: &str,
    limit: usize,
) -> rusqlite::Result<Vec<(i64, f64)>> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let mut stmt = conn.prepare_cached(
        "SELECT rowid, bm25(chunks_fts) AS s FROM chunks_fts WHERE chunks_fts MATCH ?1
         ORDER BY s, rowid LIMIT ?2",
    )?;
    stmt.query_map(params![query, limit], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect()
}

/// How many chunks match an FTS5 `query`.
pub(crate) fn matches(conn: &Connection, query: &str) -> rusqlite::Result<i64> {
    conn.prepare_cached("SELECT count(*) FROM chunks_fts WHERE chunks_fts MATCH ?1")?
        .query_row(params![query], |r| r.get(0))
}

/// The heading path and text of chunk `key`, if it is chunk `idx` of document `doc`.
pub(crate) fn chunk_text(
    conn: &Connection,
    key: i64,
    doc: i64,
    idx: usize,
) -> rusqlite::Result<Option<(String, String)>> {
    conn.prepare_cached(
        "SELECT heading, text FROM chunks WHERE key = ?1 AND doc = ?2 AND idx = ?3",
    )?
    .query_row(
        params![key, doc, i64::try_from(idx).unwrap_or(i64::MAX)],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
    .optional()
}

/// SQLite's `PRAGMA data_version`: changes when another connection commits a change.
pub(crate) fn data_version(conn: &Connection) -> rusqlite::Result<i64> {
    conn.query_row("PRAGMA data_version", [], |r| r.get(0))
}
