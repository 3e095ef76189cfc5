//! A read-only check of `entries.wal`: the scan that recovery runs at open, and a comparison
//! with the published entry bundles, for `sov audit verify`.
//!
//! The published files (tiles, checkpoint) are derived from the WAL; a log whose WAL is damaged
//! verifies from its tiles but will not open. Checking only the tiles would say "OK" about a
//! record the server refuses to start on.

use std::path::Path;

use sov_audit_core::hash::{Hash, hash_to_base64, leaf_hash};
use sov_audit_core::tile::{Tile, TileKind, parse_bundle};

use crate::tiles::read_tile;
use crate::{AuditError, ENTRIES_FILE, LogReader, wal};

/// What a read-only check of `entries.wal` found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WalReport {
    /// Entries in complete, valid batches.
    pub entries: u64,
    /// Bytes those batches take (where the next open keeps the file up to).
    pub valid_bytes: u64,
    /// Bytes after them: a torn last write (at most one batch after an unclean stop, or a batch
    /// being written by a running server), which the next open cuts. Not corruption.
    pub torn_tail_bytes: u64,
    /// The Merkle root of the valid entries.
    pub root: Hash,
    /// How many entries were compared with the published entry bundles (0 for [`verify_wal`]).
    pub compared: u64,
}

/// Checks `entries.wal` in the log directory `dir` exactly as [`crate::AuditLog::open`] does
/// (every entry decodes, its index is its position, its `prev` chains, its time never goes
/// back), modifying nothing and taking no lock.
///
/// Fails with [`AuditError::Corrupt`] naming the byte offset where the open would fail; a torn
/// tail is reported in [`WalReport::torn_tail_bytes`], not as an error.
pub fn verify_wal(dir: &Path) -> Result<WalReport, AuditError> {
    wal::scan(&dir.join(ENTRIES_FILE), &[]).map(report)
}

/// [`verify_wal`] over the bytes of an `entries.wal` file, for the fuzz target (`fuzz/`): the
/// same scan, reading from memory. Errors name the file as `entries.wal`.
#[doc(hidden)]
pub fn verify_wal_bytes(bytes: &[u8]) -> Result<WalReport, AuditError> {
    let len = u64::try_from(bytes.len()).unwrap_or(u64::MAX);
    wal::scan_from(bytes, len, Path::new(ENTRIES_FILE), &[]).map(report)
}

fn report(scan: wal::Scan) -> WalReport {
    WalReport {
        entries: scan.chain.size,
        valid_bytes: scan.good_len,
        torn_tail_bytes: scan.file_len.saturating_sub(scan.good_len),
        root: scan.chain.range.root(),
        compared: 0,
    }
}

impl LogReader {
    /// [`verify_wal`], then checks that the WAL holds at least the checkpoint's entries and that
    /// each of them is byte for byte the entry in the published bundles.
    ///
    /// Fails with [`AuditError::Corrupt`] (the WAL does not scan) or [`AuditError::WalMismatch`]
    /// naming the first entry that differs or is missing, and its byte offset.
    pub fn verify_wal(&self) -> Result<WalReport, AuditError> {
        let dir = self.dir();
        let path = dir.join(ENTRIES_FILE);
        let mut report = verify_wal(dir)?;
        let size = self.checkpoint().1.size;
        let mut bundle: (Option<u64>, Vec<Vec<u8>>) = (None, Vec::new());
        let mut index = 0u64;
        wal::replay(&path, report.valid_bytes, |offset, bytes, leaf| {
            let i = index;
            index = index.saturating_add(1);
            if i >= size {
                return Ok(());
            }
            let n = i / 256;
            if bundle.0 != Some(n) {
                bundle = (Some(n), read_bundle(dir, n, size)?);
            }
            let published = bundle
                .1
                .get(usize::try_from(i % 256).unwrap_or(usize::MAX))
                .map(Vec::as_slice);
            if published != Some(bytes) {
                return Err(AuditError::WalMismatch {
                    path: path.clone(),
                    index: i,
                    offset,
                    reason: match published {
                        Some(p) => format!(
                            "its leaf hash is {}, the entry bundle's {}",
                            hash_to_base64(&leaf),
                            hash_to_base64(&leaf_hash(p))
                        ),
                        None => "the entry bundle does not hold it".into(),
                    },
                });
            }
            report.compared = report.compared.saturating_add(1);
            Ok(())
        })?;
        if report.entries < size {
            return Err(AuditError::WalMismatch {
                path,
                index: report.entries,
                offset: report.valid_bytes,
                reason: format!(
                    "the WAL holds {} valid entries, but the checkpoint covers {size}",
                    report.entries
                ),
            });
        }
        Ok(report)
    }
}

/// The entries of bundle `n` of the tree of `size`.
fn read_bundle(dir: &Path, n: u64, size: u64) -> Result<Vec<Vec<u8>>, AuditError> {
    let width = size.saturating_sub(n.saturating_mul(256)).min(256);
    let tile = Tile {
        kind: TileKind::Entries,
        index: n,
        width: u16::try_from(width).unwrap_or(256),
    };
    let bytes = read_tile(dir, &tile)?;
    let entries = parse_bundle(&bytes, &tile).map_err(|e| AuditError::Malformed {
        path: dir.join(tile.path()),
        reason: e.to_string(),
    })?;
    Ok(entries.into_iter().map(<[u8]>::to_vec).collect())
}
