//! The one error type of the audit log.

use std::path::PathBuf;

use sov_audit_core::entry::EntryError;
use sov_keys::KeyError;

/// Everything that can go wrong while opening, writing or reading the audit log.
///
/// Each variant names the file, byte offset or index involved.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// A file or directory operation failed.
    #[error("audit log I/O failed on `{}`", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A file's content is damaged beyond what recovery may repair.
    #[error("audit log file `{}` is corrupt at byte {offset}: {reason}", path.display())]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// Where the damage starts.
        offset: u64,
        /// What is wrong.
        reason: String,
    },
    /// The entries on disk do not extend the tree the log last signed: opening would let the log
    /// sign a checkpoint inconsistent with one it already signed.
    #[error(
        "refusing to open the audit log: `{}` records a signed tree of size {signed_size} with root {signed_root}, but {found}; the log must never sign two inconsistent checkpoints",
        path.display()
    )]
    Inconsistent {
        /// The file holding the signed tree head (`signed` or `checkpoint`).
        path: PathBuf,
        /// The signed size.
        signed_size: u64,
        /// The signed root, base64.
        signed_root: String,
        /// What the write-ahead log gives instead.
        found: String,
    },
    /// `entries.wal` and the published entry bundles disagree, or the WAL holds fewer entries
    /// than the checkpoint covers.
    #[error(
        "`{}` does not match the published log at entry {index} (byte {offset}): {reason}",
        path.display()
    )]
    WalMismatch {
        /// The WAL.
        path: PathBuf,
        /// The first entry that differs (or the first one missing).
        index: u64,
        /// Its byte offset in the WAL (or the end of the WAL's valid part).
        offset: u64,
        /// What differs.
        reason: String,
    },
    /// Another writer holds the log's lock.
    #[error(
        "audit log `{}` is already open for writing (lock `{}` is held by another process or handle)",
        dir.display(),
        path.display()
    )]
    Locked {
        /// The log directory.
        dir: PathBuf,
        /// The lock file.
        path: PathBuf,
    },
    /// The log was closed; no more entries are accepted.
    #[error("audit log is closed")]
    Closed,
    /// A write failed: the entry was not recorded, and the log refuses entries until it has
    /// recovered, which it retries by itself (see [`crate::AuditLog::health`]).
    #[error(
        "audit log is not accepting entries after a write failure (it retries by itself): {reason}"
    )]
    Failed {
        /// The failure.
        reason: String,
    },
    /// A draft could not be encoded as an entry (it consumed no index).
    #[error("audit entry could not be encoded: {0}")]
    Entry(#[from] EntryError),
    /// An encoded entry exceeds what a bundle can hold.
    #[error("audit entry is {size} bytes; at most {max} are allowed")]
    TooLarge {
        /// The entry's size.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// An index or size beyond the checkpoint.
    #[error("index {index} is not covered by the checkpoint (tree size {size})")]
    NotCovered {
        /// The index (or tree size) asked for.
        index: u64,
        /// The checkpoint's size.
        size: u64,
    },
    /// The log directory belongs to another origin.
    #[error(
        "audit log `{}` has origin {found:?}, but {configured:?} is configured",
        path.display()
    )]
    OriginMismatch {
        /// The `origin` file.
        path: PathBuf,
        /// The origin on disk.
        found: String,
        /// The configured origin.
        configured: String,
    },
    /// The log's published verifier keys are not those of the key it was opened with.
    #[error(
        "audit log verifier keys in `{}` do not match the log key given; refusing to sign with another key",
        path.display()
    )]
    KeyMismatch {
        /// The `vkeys` file.
        path: PathBuf,
    },
    /// The configuration is unusable.
    #[error("invalid audit log configuration: {reason}")]
    Config {
        /// What is wrong.
        reason: String,
    },
    /// Signing a checkpoint failed.
    #[error("signing the audit checkpoint failed")]
    Key(#[from] KeyError),
    /// A file the log wrote does not parse.
    #[error("audit log file `{}` is malformed: {reason}", path.display())]
    Malformed {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A file (checkpoint, vkeys, tile, bundle) is not there.
    #[error("audit log file `{path}` not found")]
    NotFound {
        /// The path, relative to the log directory.
        path: String,
    },
    /// A requested path is not one the log serves.
    #[error("`{path}` is not an audit log path: {reason}")]
    BadPath {
        /// The path asked for.
        path: String,
        /// Why it is refused.
        reason: String,
    },
    /// An export destination that exists and is not an empty directory.
    #[error("export destination `{}` exists and is not an empty directory", path.display())]
    ExportDest {
        /// The destination.
        path: PathBuf,
    },
    /// A proof could not be computed from the stored tiles.
    #[error("audit proof for {what} failed: {reason}")]
    Proof {
        /// What was being proved.
        what: String,
        /// Why it failed.
        reason: String,
    },
    /// A lock inside the log was poisoned by a panicking thread.
    #[error("audit log internal state is poisoned ({what})")]
    Poisoned {
        /// Which lock.
        what: &'static str,
    },
    /// A writer thread could not be started or ended abnormally.
    #[error("audit log writer thread failed: {reason}")]
    Thread {
        /// What happened.
        reason: String,
    },
}

impl AuditError {
    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> AuditError {
        let path = path.into();
        move |source| AuditError::Io { path, source }
    }

    /// The error and all its sources, joined with `: `.
    pub(crate) fn chain(&self) -> String {
        let mut out = self.to_string();
        let mut cur = std::error::Error::source(self);
        while let Some(e) = cur {
            let s = e.to_string();
            if !out.contains(&s) {
                out.push_str(": ");
                out.push_str(&s);
            }
            cur = e.source();
        }
        out
    }
}
