//! The Open Audit Record's log on disk: durable group-commit appends, tiles in the C2SP
//! tlog-tiles layout, checkpoints signed with Ed25519 and ML-DSA-44, crash recovery, receipts,
//! proofs and export.
//!
//! Formats (entries, tiles, notes, checkpoints, receipts) live in [`sov_audit_core`]; this crate
//! only stores them. Plain std threads, no async: [`AuditLog::submit`] takes a callback, which
//! an async server can use to fill a oneshot channel.
//!
//! # Directory layout
//!
//! | file | content | written |
//! |---|---|---|
//! | `origin` | the log origin and `\n` | once, at creation; opening with another origin fails |
//! | `entries.wal` | the source of truth, append-only (below) | every batch, fdatasync before acknowledging |
//! | `tile/<L>/<N>[.p/<W>]` | hash tiles, all levels (C2SP) | full ones when complete; partial ones for checkpointed sizes |
//! | `tile/entries/<N>[.p/<W>]` | entry bundles (C2SP) | likewise |
//! | `signed` | `"<size>\n<root base64>\n"`: the last tree head the log signed | before each checkpoint is signed |
//! | `checkpoint` | the latest signed checkpoint note (C2SP tlog-checkpoint) | every `checkpoint_interval` while entries arrive |
//! | `resume` | the signed resume point: where open continues without reading the WAL before it (below) | after each checkpoint, so also at a clean close |
//! | `vkeys` | the log's verifier keys, one signed-note vkey per line (Ed25519, then ML-DSA-44) | at creation; opening with another key fails |
//! | `lock` | `flock`ed exclusively by the writer for its whole life | |
//! | `running` | empty marker: present while a writer has the log open | created at open, removed by [`AuditLog::close`] |
//! | `.write-probe` | scratch file proving the disk takes writes again | only while recovering from a failed write, removed at once |
//!
//! **`entries.wal`**: per batch, each entry as a big-endian `u16` length then the entry's bytes
//! ([`sov_audit_core::entry`]), then the terminator `u16 0x0000` (entries are never empty). A
//! batch holds at most `max_batch` entries and [`MAX_BATCH_BYTES`] (4 MiB) framing included.
//!
//! **Checkpoints**: origin line = origin, no extensions; signed with the log key
//! ([`sov_keys::LogKey`]) as an Ed25519 note signature (type 0x01, key name = origin) over the
//! note text, and as an ML-DSA-44 `subtree/v1` cosignature (type 0x06, cosigner name = origin,
//! start 0, end = size, timestamp = signing time in seconds; the signature bytes are
//! `u64 BE timestamp || ML-DSA-44 signature`). They verify with
//! [`sov_audit_core::checkpoint::verify_checkpoint`] and the keys in `vkeys`.
//!
//! # Threads and write order
//!
//! * The **sequencer** thread owns `entries.wal`. It takes every queued draft (up to
//!   `max_batch`), fills in index, time (`max(now, previous time)` in ms), previous leaf hash and
//!   node, encodes each (a draft that fails to encode gets its error and consumes no index),
//!   writes the batch with one `write`, `fdatasync`s, and only then acknowledges the entries
//!   (group commit: while one batch syncs, the next one queues).
//! * The **publisher** thread receives the acknowledged entries and writes the tiles: full tiles
//!   and bundles as they complete (temporary file + rename, not yet fsynced). At least every
//!   `checkpoint_interval` while the tree grows (and on [`AuditLog::sign_now`] and
//!   [`AuditLog::close`]) it publishes a checkpoint, in this order:
//!   1. write the partial tiles and bundle for the current size;
//!   2. fsync every tile written since the last checkpoint, then their directories;
//!   3. write `signed` (temporary file, fsync, rename, fsync directory);
//!   4. sign, write `checkpoint` (temporary file, fsync, rename, fsync directory);
//!   5. write `resume` for the same size (temporary file, fsync, rename, fsync directory);
//!   6. remove the partial tiles of tiles that are now full (C2SP allows it once the full tile
//!      is available; readers fall back to the full tile).
//!
//! So a published checkpoint only ever refers to durable tiles, and `signed` is never behind a
//! published checkpoint.
//!
//! # Recovery (at every open)
//!
//! Open first tries the **resume point** (`resume`, below), then:
//!
//! 1. Scan `entries.wal` (with a resume point: only the bytes after it), validating every entry:
//!    it decodes, its index is its position, its `prev` is the leaf hash of the entry before
//!    (zeros for the first), its time does not go backwards. Keep everything up to the end of the
//!    last complete valid batch.
//! 2. What follows is a **torn tail** if it is at most one batch long (4 MiB) and no valid entry
//!    can be found after the first bad record by following the framing; anything else (a longer
//!    bad region, or damage with valid entries after it) is **corruption**: open fails with
//!    [`AuditError::Corrupt`] naming the byte offset, and nothing is changed.
//! 3. The recovered tree must extend the tree in `signed` (and in `checkpoint`): at least that
//!    size, and that root at that size. Otherwise open fails with [`AuditError::Inconsistent`],
//!    naming both, because the log must never sign two inconsistent checkpoints.
//! 4. Truncate the torn tail (ftruncate + fsync), rebuild the tiles from the WAL (with a resume
//!    point: from it on; rewrite any full tile that is missing or differs among those rebuilt),
//!    and, if `running` was there (the previous run did not close) or bytes were cut, append a
//!    [`Kind::Recovery`] entry with attributes `recovered_size`, `truncated_bytes`, `unclean`,
//!    `resumed` (`true`/`false`) and `resumed_from` (the resume point's size) or
//!    `resume_fallback` (why the whole WAL was scanned). Then sign a checkpoint (which writes a
//!    new resume point). [`Recovery::resumed_at`], [`Recovery::resume_fallback`] and
//!    [`Recovery::wal_bytes_read`] say which way open went.
//!
//! **The resume point** records, for the tree at the last checkpoint: its size and root, the
//! WAL's byte length at that size, the chain state the sequencer continues from (last leaf hash,
//! last time, the last record's offset), the hashes of the partial tiles of levels 1 and up, and
//! where the entries of the partial level-0 tile start in the WAL. It is signed with the log's
//! Ed25519 key over a domain-separated message that includes the origin (format in
//! `src/resume.rs`). Open uses it only if **all** of these hold, and otherwise logs a warning
//! and scans the whole WAL (never an error by itself):
//!
//! * it parses (strictly, canonical form only), is for this origin, and its signature verifies
//!   with the log key;
//! * it is not ahead of `signed` or `checkpoint`: each is at its size with its root, or larger
//!   (then step 3 checks that head in the part of the WAL after the point). A signed head older
//!   than the point (say `signed` restored from a backup) cannot be checked without the prefix,
//!   so it means the full scan;
//! * the WAL is at least as long as the recorded length, and the entries just before that length
//!   (those of the partial level-0 tile, at most 255, or the last entry if that tile is empty)
//!   are whole records ending in a terminator exactly there, decode, have the right indexes,
//!   chain and do not go back in time, and the last of them is the recorded last entry (offset,
//!   leaf hash, time);
//! * the recorded upper tiles with those entries give the recorded root.
//!
//! So open reads at most 256 records plus the WAL written since the last checkpoint, whatever
//! the log's length. **What a resumed open no longer checks**: the WAL before the resume point's
//! last tile (its entries, their chain, their hashes) and the full tiles and bundles of that
//! part; damage or tampering there is found by [`verify_wal`] / [`LogReader::verify_wal`] and
//! [`sov_audit_core::verify::verify_log`] (`sov audit verify`, sov-verify), which check the whole
//! log as before, and by any open without a resume point (delete `resume` to force it). A
//! resume point cannot be forged or altered without the log key; a genuine older one (an earlier
//! `resume` put back) is safe to use: the WAL after it is scanned and checked against the signed
//! heads. Partial tiles of tiles that became full, left behind by a crash between a checkpoint
//! and their removal, are removed only by an open without a resume point; they stay valid
//! prefixes of the full tiles (C2SP allows keeping them).
//!
//! **Why acknowledged entries survive `kill -9` and power loss**: an entry is acknowledged only
//! after its whole batch, terminator included, was written and fdatasynced, and the next batch
//! is written only after that; so every acknowledged batch lies, complete, before the one batch
//! that can be torn, and the scan keeps it. The tiles and checkpoints are derived from the WAL
//! and are rebuilt from it.
//!
//! A torn tail cannot be told apart from damage to the very last batch (there is no checksum
//! beyond the entries' own structure); such damage older than the last checkpoint is caught by
//! step 3, and any cut is recorded in the recovery entry.
//!
//! # Failures
//!
//! A failed write does not stop the log for good: it **degrades**, refuses entries, and
//! recovers by itself once the disk takes writes again, without a restart, losing no
//! acknowledged entry and never keeping a refused one. Each part is tracked on its own, and
//! appends are accepted only while both are healthy; [`AuditLog::health`] says which part failed,
//! why, since when and how often, and [`AuditLog::counters`] counts entries appended, write
//! failures and recoveries.
//!
//! * **WAL** (writing or fdatasyncing a batch fails): that batch's entries get
//!   [`AuditError::Failed`], and so does every append from then on, at once. The sequencer goes
//!   back to the chain state (next index, last leaf, last time) and WAL length of the last
//!   acknowledged batch. Every 0.5 s (backing off to 5 s) it tries to recover: through a new
//!   file handle, it cuts `entries.wal` back to that length (`set_len` + fsync), reads back the
//!   last acknowledged record and checks its leaf hash, then writes, fsyncs and removes a probe
//!   file (`.write-probe`) to prove the disk takes writes; then it accepts entries again. The
//!   refused batch is cut even while the disk is still full, so it cannot come back at the next
//!   open; a WAL shorter than acknowledged, or a last record that reads back differently, is
//!   [`AuditError::Corrupt`] and the log stays degraded.
//! * **Publishing** (tiles, `signed`, `checkpoint`): acknowledged entries still enter the tile
//!   tree in memory (they are in the WAL); completed tiles wait in memory until written, and
//!   tiles are forgotten by the fsync step only once synced. The whole publication (write order
//!   above) is retried on the same timer, and the failure clears once a checkpoint is written.
//!   [`AuditLog::sign_now`] is refused while degraded.
//!
//! [`AuditLog::close`] on a degraded log keeps trying to recover for about 2 s, so a log whose
//! disk came back closes cleanly (final checkpoint, `running` removed). If it still cannot, close
//! returns the error, publishes what it can and leaves `running`: the next open recovers as
//! after a crash. An acknowledged entry is always kept.
//!
//! Tiles whose fsync failed are not rewritten (the kernel may have dropped their pages): they
//! are derived data, rebuilt from the WAL at the next open (a tile whose fsync failed is never
//! behind a resume point: the resume point is written only after the tiles it covers are
//! synced).
//!
//! Callbacks given to [`AuditLog::submit`] run on the sequencer thread, in index order; they must
//! be quick and must not block on the log. A panicking callback is caught and logged.
//!
//! Partial tiles are kept until the full tile is durable (C2SP: a log must serve the partial
//! tiles of every size it checkpointed, and may delete them once the full tile is available);
//! [`LogReader`] serves a missing partial tile from the full tile, or from a wider partial one.
//!
//! # Reading
//!
//! [`LogReader`] reads only the published files (checkpoint, tiles, bundles), takes no lock, and
//! works beside a running writer in another process. [`verify_wal`] runs the open's WAL scan
//! without changing anything, and [`LogReader::verify_wal`] also checks that every entry the
//! checkpoint covers is in the WAL, byte for byte as in the published bundles.

mod error;
mod fsx;
mod publisher;
mod reader;
mod recover;
mod resume;
mod sequencer;
mod shared;
mod sign;
mod tiles;
mod wal;
mod walcheck;
mod writer;

use std::time::Duration;

pub use error::AuditError;
pub use reader::LogReader;
#[doc(hidden)]
pub use resume::parse_resume_bytes;
pub use shared::{APPEND_BUCKETS_US, Counters, Health, Latency};
pub use sov_audit_core::entry::{Kind, Outcome};
pub use sov_audit_core::hash::Hash;
pub use wal::MAX_BATCH_BYTES;
pub use walcheck::{WalReport, verify_wal, verify_wal_bytes};
pub use writer::AuditLog;

/// File name of the origin file.
pub const ORIGIN_FILE: &str = "origin";
/// File name of the write-ahead log.
pub const ENTRIES_FILE: &str = "entries.wal";
/// File name of the last signed tree head.
pub const SIGNED_FILE: &str = "signed";
/// File name of the latest checkpoint.
pub const CHECKPOINT_FILE: &str = "checkpoint";
/// File name of the verifier keys.
pub const VKEYS_FILE: &str = "vkeys";
/// File name of the signed resume point.
pub const RESUME_FILE: &str = "resume";
/// File name of the writer's lock.
pub const LOCK_FILE: &str = "lock";
/// File name of the "a writer is running" marker.
pub const RUNNING_FILE: &str = "running";

/// How a log is run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogConfig {
    /// The checkpoint origin (a valid key name: no spaces, no `+`, at most 255 bytes), e.g.
    /// `sovereign.example/audit`.
    pub origin: String,
    /// The node id written into every entry (1 to 255 bytes, no control characters).
    pub node: String,
    /// How often a checkpoint is published while entries arrive (default 1 s).
    pub checkpoint_interval: Duration,
    /// The most entries in one WAL batch (default 4096).
    pub max_batch: usize,
}

impl LogConfig {
    /// A configuration with the default interval (1 s) and batch size (4096).
    pub fn new(origin: impl Into<String>, node: impl Into<String>) -> Self {
        Self {
            origin: origin.into(),
            node: node.into(),
            checkpoint_interval: Duration::from_secs(1),
            max_batch: 4096,
        }
    }
}

pub use sov_audit_core::record::{Appended, Draft, Record, RecordError};

/// What [`AuditLog::open`] recovered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recovery {
    /// Entries found in the WAL (before any recovery entry).
    pub size: u64,
    /// Bytes of a torn tail cut from the WAL.
    pub truncated_bytes: u64,
    /// Whether the previous run did not close cleanly (`running` was present).
    pub unclean: bool,
    /// The recovery entry appended, if any (when `unclean` or bytes were cut).
    pub entry: Option<Appended>,
    /// The tree size of the signed resume point open continued from, without reading the WAL
    /// before it; `None` if it validated the whole WAL.
    pub resumed_at: Option<u64>,
    /// Why the resume point was not used (`None` when it was).
    pub resume_fallback: Option<String>,
    /// Bytes of `entries.wal` that open read: with a resume point, the partial tile's entries
    /// before it (at most 256 records) and, twice (scan, then tile rebuild), the WAL after it;
    /// without, the whole file twice.
    pub wal_bytes_read: u64,
}
