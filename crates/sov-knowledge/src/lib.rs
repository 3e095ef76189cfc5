//! The owner's corpora, owned like models: documents stored by content, a signed manifest,
//! structure-aware chunks, and hybrid search (BM25 + vectors) over only what a caller may read.
//!
//! This crate stores, chunks, indexes and searches. It runs no model (the kernel gives it an
//! [`Embedder`]), speaks no HTTP, and writes no audit entries: the kernel records each add,
//! removal and search from what these functions return ([`Change`], [`Hit`],
//! [`Corpus::manifest_sha256`]).
//!
//! # Layout
//!
//! ```text
//! <corpora>/<name>/corpus.db              SQLite: documents, chunks, FTS5, vectors, manifest
//! <corpora>/<name>/blobs/sha256/<hex>     each document's original bytes, 0444
//! <corpora>/<name>/tmp/                   blobs being written
//! <corpora>/.tmp/                         corpora being created or removed
//! ```
//!
//! Names are `[a-z0-9][a-z0-9._-]{0,63}`. The database schema is in `db.rs`.
//!
//! # The manifest
//!
//! [`CorpusManifest`] (format `sovereign.corpus-manifest/v1`) names the corpus, the embedding
//! model ([`EmbedderId`]: name, SHA-256, dimensions) and every document ([`DocumentEntry`]:
//! id, title, SHA-256 and size of its bytes, media type, clearance, sorted `key=value`
//! attributes, and the SHA-256 of each chunk's text in order), sorted by id, and the signing
//! key's id. The owner signs `serde_json::to_vec(&manifest)` (compact JSON, fields in the
//! order of the structs, no maps: deterministic) under the domain
//! `sovereign/corpus-manifest/v1` with both halves of [`sov_keys::OwnerKeys`]. The stored
//! form is the compact JSON `{"manifest":...,"signatures":{"ed25519":..,"ml_dsa_65":..}}`;
//! its SHA-256 is [`Corpus::manifest_sha256`], what provenance entries name, and opening a
//! corpus refuses stored bytes that are not the canonical encoding of what they parse to.
//! Signing is deterministic, so the same content always has the same manifest hash.
//!
//! The current signed manifest is a row of the database, written in the same transaction as
//! the index change it describes, so an add or a removal is one SQLite transaction: all or
//! nothing. [`KnowledgeStore::open_corpus`] checks the signatures against the owner's public
//! keys, then that the index matches the manifest: the same documents with the same fields,
//! every chunk in its place with text hashing to the listed digest, one vector of the right
//! length per chunk, one FTS row per chunk, each blob present with its size. A mismatch is
//! [`KnowledgeError::Inconsistent`]; a bad signature [`KnowledgeError::ManifestSignature`].
//! What is derived and not itself signed: the heading paths, the vectors and the FTS index
//! (a change to them can reorder results or change a heading shown, never the text of a hit,
//! which is hashed); re-adding from the blobs rebuilds them.
//!
//! # Adding documents
//!
//! [`Corpus::add`] takes files and folders. A file named directly has its file name as id; a
//! folder is walked and ids are paths relative to it (`/`-separated); hidden entries and
//! files of types not read are skipped and reported ([`Change::skipped`]). A symbolic link
//! named directly is refused; inside a folder one is followed only to a file inside the
//! folder. Media types come from the extension and are checked against the content
//! ([`ingest`]). An empty file, one over [`AddOptions::max_file_bytes`], one that does not
//! parse or yields no text: the whole add is refused with an error naming the file and why,
//! and nothing changes. A file whose bytes are already there under its id is `unchanged` (no
//! work), or `relabelled` if the clearance or attributes differ; a file with new bytes
//! `replaces` only that document's chunks.
//!
//! # Chunks
//!
//! Sections by heading, then paragraphs and sentences, packed into chunks of at most 200
//! words with about one sentence of overlap ([`chunk`]). Each chunk keeps its heading path
//! (`Leave policy > Sick leave`); what is embedded and indexed is the title, the heading path
//! and the text ([`chunk::Chunk::indexed_text`]); the chunk's digest and what a prompt gets
//! is the text alone ([`Hit::text`]).
//!
//! # Search
//!
//! [`Corpus::search`] fuses two ranked lists by reciprocal rank fusion with k = 60
//! ([`search::rrf`]): BM25 from SQLite FTS5 (tokenizer `porter unicode61 remove_diacritics 2`;
//! the query is the user's words, each quoted, joined by `OR`: [`search::fts_query`]), and an
//! exact dot product with every stored vector (normalised, kept in memory in one contiguous
//! `Vec<f32>`). Each list holds the best `max(k, 50)` candidates. Query terms found in at
//! least half of all chunks are left out of the BM25 query (unless all are): FTS5 clamps their
//! inverse document frequency to 10^-6, so they change no score, and they would make every
//! chunk a match to score (how many chunks hold a term is counted once and cached until the
//! next change). At 100,000 chunks the vector scan takes about 11 ms; BM25 costs about
//! 1-2 µs per matching chunk, so a query whose rarest kept term is in a third of the corpus
//! costs tens of milliseconds (`benches/search.rs`).
//!
//! # Permissions fail closed, before ranking
//!
//! A search takes a [`Readable`], made only from [`sov_policy::Permit`]s: a document is read
//! only when a permit covers `read-corpus` on exactly its [`sov_policy::Resource::Document`]
//! (id, corpus, clearance as the manifest now says). [`Corpus::document_resources`] lists
//! those resources for the kernel to decide. The FTS query is restricted to chunks of
//! readable documents in SQL, and the dense scan skips the others, so nothing of an
//! unreadable document is ranked, scored or returned. Document attributes are stored and
//! listed ([`DocumentEntry::attributes`]) for policies to use once `Resource::Document`
//! carries them.
//!
//! **Residual channel.** FTS5's BM25 uses corpus-wide statistics (the number of chunks, their
//! average length, and how many chunks contain each term), computed over every document,
//! readable or not. An unreadable document therefore shifts BM25 scores, and so possibly
//! the order among readable hits: a caller who can repeat searches and compare orders learns
//! a little about how common a term is in documents they cannot read. The same counts decide
//! which very common terms are left out of the query (see Search). Nothing of those
//! documents (text, id, score, count) is returned. A corpus per clearance level closes it.
//!
//! # Untrusted input
//!
//! Every parser of document bytes is fuzzed (`fuzz/`: markdown, html, pdf, docx, and the FTS
//! query builder). The PDF extractor is a third-party crate that can panic; it runs on its
//! own thread, so a panic there is an error, not a crash (see [`ingest`]).

pub mod chunk;
pub mod ingest;
pub mod search;

mod add;
mod blob;
mod bm25;
mod corpus;
mod db;
mod dense;
mod embed;
mod error;
mod manifest;
mod store;

pub use add::{AddOptions, Change, DEFAULT_MAX_FILE_BYTES, Skipped};
pub use corpus::{CANDIDATES, Corpus};
pub use embed::{EmbedError, Embedder, EmbedderId};
pub use error::{IngestError, KnowledgeError};
pub use manifest::{
    CorpusManifest, DocumentEntry, MANIFEST_DOMAIN, MANIFEST_FORMAT, validate_name,
};
pub use search::{Hit, Readable};
pub use store::{CorpusSummary, KnowledgeStore};
