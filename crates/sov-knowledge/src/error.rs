//! Typed errors: [`KnowledgeError`] for the store and corpora, [`IngestError`] for one file.

use std::path::PathBuf;

use crate::EmbedderId;
use crate::embed::EmbedError;

/// Everything that can go wrong with a corpus.
///
/// A manifest whose signature does not verify is opaque ([`KnowledgeError::ManifestSignature`]).
/// A problem with one file of an add names the file ([`KnowledgeError::Ingest`]) and its cause.
#[derive(Debug, thiserror::Error)]
pub enum KnowledgeError {
    /// A directory or file could not be created, read, written or removed.
    #[error("failed to {action} `{}`", path.display())]
    Io {
        /// What we were doing, e.g. "create directory".
        action: &'static str,
        /// The path involved.
        path: PathBuf,
        /// The underlying I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The corpus database failed.
    #[error("failed to {action} in corpus `{corpus}`")]
    Database {
        /// The corpus.
        corpus: String,
        /// What we were doing.
        action: &'static str,
        /// SQLite's error.
        #[source]
        source: rusqlite::Error,
    },
    /// A corpus name is not of the form `[a-z0-9][a-z0-9._-]{{0,63}}`.
    #[error("failed to use corpus name `{name}`: {reason}")]
    InvalidName {
        /// The rejected name (at most 80 characters of it).
        name: String,
        /// Why.
        reason: &'static str,
    },
    /// A corpus of that name exists already.
    #[error("failed to create corpus `{name}`: a corpus of that name exists")]
    Exists {
        /// The name.
        name: String,
    },
    /// No corpus of that name.
    #[error("failed to find corpus `{name}`")]
    NotFound {
        /// The name.
        name: String,
    },
    /// The stored manifest is not one the owner signed. Opaque on purpose.
    #[error("failed to open corpus `{corpus}`: its manifest's signature is not valid")]
    ManifestSignature {
        /// The corpus.
        corpus: String,
    },
    /// The index, the blobs or the manifest do not agree with the signed manifest.
    #[error("failed to open corpus `{corpus}`: it does not match its signed manifest: {reason}")]
    Inconsistent {
        /// The corpus.
        corpus: String,
        /// What does not match.
        reason: String,
    },
    /// Signing the new manifest failed.
    #[error("failed to sign the manifest of corpus `{corpus}`")]
    Sign {
        /// The corpus.
        corpus: String,
        /// Why.
        #[source]
        source: sov_keys::KeyError,
    },
    /// The embedder is not the one the corpus was built with.
    #[error(
        "failed to use embedder `{}` (sha256 {}, {} dimensions) with corpus `{corpus}`: it was built with `{}` (sha256 {}, {} dimensions)",
        actual.name, actual.sha256, actual.dims, expected.name, expected.sha256, expected.dims
    )]
    EmbedderMismatch {
        /// The corpus.
        corpus: String,
        /// The embedder in the corpus's manifest.
        expected: Box<EmbedderId>,
        /// The embedder given.
        actual: Box<EmbedderId>,
    },
    /// The embedder id given to [`KnowledgeStore::create`](crate::KnowledgeStore::create) is not usable.
    #[error("failed to use embedder `{name}`: {reason}")]
    InvalidEmbedder {
        /// Its name.
        name: String,
        /// Why.
        reason: &'static str,
    },
    /// Embedding the chunks of a document failed.
    #[error("failed to embed the chunks of `{document}`")]
    Embed {
        /// The document id.
        document: String,
        /// Why.
        #[source]
        source: EmbedError,
    },
    /// One file of an add could not be taken; nothing was added.
    #[error("failed to add `{}`", path.display())]
    Ingest {
        /// The file (or folder).
        path: PathBuf,
        /// Why.
        #[source]
        source: IngestError,
    },
    /// Two files of one add would have the same document id.
    #[error(
        "failed to add `{}`: its document id `{id}` is also that of `{}`",
        second.display(), first.display()
    )]
    DuplicateId {
        /// The id.
        id: String,
        /// The first file with it.
        first: PathBuf,
        /// The second.
        second: PathBuf,
    },
    /// No document of that id in the corpus.
    #[error("failed to find document `{id}` in corpus `{corpus}`")]
    NoDocument {
        /// The corpus.
        corpus: String,
        /// The id.
        id: String,
    },
    /// Another process changed the corpus after this one opened it: changing or searching it
    /// is refused until it is opened again.
    #[error(
        "failed to use corpus `{corpus}`: another process changed it since it was opened; open it again"
    )]
    Changed {
        /// The corpus.
        corpus: String,
    },
    /// A document attribute is not `key=value` with a valid key.
    #[error("failed to use document attribute `{attr}`: {reason}")]
    InvalidAttribute {
        /// The attribute (at most 80 characters of it).
        attr: String,
        /// Why.
        reason: &'static str,
    },
    /// The query vector does not fit the corpus.
    #[error("failed to search corpus `{corpus}` with the query vector")]
    QueryVector {
        /// The corpus.
        corpus: String,
        /// Why.
        #[source]
        source: EmbedError,
    },
}

/// Why one file cannot be added.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// It could not be read.
    #[error("it could not be read")]
    Read(#[source] std::io::Error),
    /// It is empty.
    #[error("it is empty")]
    Empty,
    /// It is larger than the add's limit.
    #[error("it is {size} bytes, over the limit of {max} bytes")]
    TooLarge {
        /// Its size.
        size: u64,
        /// The limit (`AddOptions::max_file_bytes`).
        max: u64,
    },
    /// It is a symbolic link given by name.
    #[error("it is a symbolic link; name the file it points to")]
    Symlink,
    /// A symbolic link inside a folder points outside it.
    #[error("it is a symbolic link to `{}`, outside the folder `{}`", target.display(), folder.display())]
    Outside {
        /// Where it resolves to.
        target: PathBuf,
        /// The folder given.
        folder: PathBuf,
    },
    /// A symbolic link inside a folder points to a folder.
    #[error("it is a symbolic link to a folder; links to folders are not followed")]
    LinkedFolder,
    /// Neither a regular file nor a folder.
    #[error("it is neither a regular file nor a folder")]
    NotAFile,
    /// Its name is not UTF-8, so it cannot be a document id.
    #[error("its name is not valid UTF-8")]
    Name,
    /// A file named explicitly has an extension Sovereign does not read.
    #[error(
        "`{ext}` files are not supported (.md, .markdown, .txt, .text, .html, .htm, .pdf, .docx are)"
    )]
    Unsupported {
        /// The extension, with its dot, or "extension-less".
        ext: String,
    },
    /// The content is not what the extension says.
    #[error("it is named as {media} but is not: {why}")]
    NotWhatItSays {
        /// The media type its extension gave.
        media: &'static str,
        /// What is wrong.
        why: String,
    },
    /// The PDF is encrypted (even with an empty password).
    #[error(
        "the PDF is encrypted; remove the encryption first (e.g. `qpdf --decrypt in.pdf out.pdf`)"
    )]
    EncryptedPdf,
    /// The PDF does not parse.
    #[error("the PDF could not be read: {0}")]
    Pdf(String),
    /// The PDF text extractor panicked on it (caught; nothing else happened).
    #[error("the PDF text extractor failed on it (it panicked)")]
    PdfPanicked,
    /// The DOCX does not parse.
    #[error("the DOCX could not be read: {0}")]
    Docx(String),
    /// No text came out of it.
    #[error("no text was found in it (a scanned PDF needs text recognition first)")]
    NoText,
}
