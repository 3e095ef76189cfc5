//! The write-ahead log `entries.wal`: framing, and the scan that recovery runs at open.
//!
//! Per batch: each entry as big-endian `u16` length then its bytes, then the terminator `u16 0`
//! (entries are never empty, so a zero length is unambiguous). A batch is written with one
//! `write` and made durable with `fdatasync` before any of its entries is acknowledged, and the
//! next batch is written only after that, so at any moment at most one batch can be incomplete
//! on disk, and only at the end of the file.

use std::fs::File;
use std::io::{BufReader, Read, Seek as _, SeekFrom};
use std::path::Path;

use sov_audit_core::entry::Entry;
use sov_audit_core::hash::{Hash, leaf_hash};
use sov_audit_core::merkle::CompactRange;

use crate::AuditError;

/// The most bytes one batch may take in the WAL, framing included. A torn tail is never longer.
pub const MAX_BATCH_BYTES: usize = 4 << 20;

/// The chain state after a prefix of the log.
#[derive(Debug, Clone, Default)]
pub(crate) struct ChainState {
    /// Entries so far.
    pub size: u64,
    /// Leaf hash of the last entry (zeros when empty).
    pub last_leaf: Hash,
    /// Time of the last entry.
    pub last_time: u64,
    /// Byte offset of the last entry's record (its length prefix) in the file.
    pub last_offset: u64,
    /// Byte offset of the record of the first entry of the current (partial) level-0 tile,
    /// entry `size - size % 256`; meaningless while `size % 256 == 0` (the next push sets it).
    pub tile_offset: u64,
    /// The tree's right edge.
    pub range: CompactRange,
}

impl ChainState {
    /// Checks that `bytes` is the next entry of this chain; returns its leaf hash and time.
    pub(crate) fn check_next(&self, bytes: &[u8]) -> Result<(Hash, u64), String> {
        let entry = Entry::decode(bytes).map_err(|e| format!("entry does not decode: {e}"))?;
        if entry.index != self.size {
            return Err(format!(
                "entry has index {}, but it is entry {} of the log",
                entry.index, self.size
            ));
        }
        if entry.prev != self.last_leaf {
            return Err(format!(
                "entry {}'s prev hash is not the leaf hash of the entry before it",
                entry.index
            ));
        }
        if entry.time_ms < self.last_time {
            return Err(format!(
                "entry {}'s time {} ms is before the previous entry's {} ms",
                entry.index, entry.time_ms, self.last_time
            ));
        }
        Ok((leaf_hash(bytes), entry.time_ms))
    }

    pub(crate) fn push(&mut self, leaf: Hash, time: u64, offset: u64) {
        if self.size.is_multiple_of(256) {
            self.tile_offset = offset;
        }
        self.size = self.size.saturating_add(1);
        self.last_offset = offset;
        self.last_leaf = leaf;
        self.last_time = time;
        self.range.push(leaf);
    }
}

/// What the scan found.
#[derive(Debug)]
pub(crate) struct Scan {
    /// The state after the last complete valid batch.
    pub chain: ChainState,
    /// Byte length of the valid prefix (end of the last complete valid batch).
    pub good_len: u64,
    /// The file's length.
    pub file_len: u64,
    /// The tree root at each requested size that the valid prefix reaches.
    pub roots: Vec<(u64, Hash)>,
}

/// Reads until `buf` is full or the end of the input; returns how many bytes were read.
pub(crate) fn read_full(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut got = 0;
    while let Some(rest) = buf.get_mut(got..) {
        if rest.is_empty() {
            break;
        }
        match r.read(rest) {
            Ok(0) => break,
            Ok(n) => got = got.saturating_add(n),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

pub(crate) fn to_u64(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}

/// Where the scan stopped trusting the file.
struct Bad {
    /// The byte offset of the problem.
    offset: u64,
    reason: String,
    /// Whether framing can be followed after the problem (to look for valid entries beyond).
    resumable: bool,
}

/// Scans the WAL at `path` (absent = empty): validates every entry (decodes, index = position,
/// prev = leaf hash of the previous entry, time never decreasing) and finds the end of the last
/// complete valid batch.
///
/// What follows that end is a torn tail if it is at most [`MAX_BATCH_BYTES`] long and no valid
/// entry can be found after the first bad record; otherwise the file is corrupt and this fails
/// with [`AuditError::Corrupt`] naming the offset. Nothing is modified.
pub(crate) fn scan(path: &Path, check_sizes: &[u64]) -> Result<Scan, AuditError> {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return scan_from(&[][..], 0, path, check_sizes);
        }
        Err(source) => {
            return Err(AuditError::Io {
                path: path.to_path_buf(),
                source,
            });
        }
    };
    let file_len = file.metadata().map_err(AuditError::io(path))?.len();
    scan_from(
        BufReader::with_capacity(1 << 20, file),
        file_len,
        path,
        check_sizes,
    )
}

/// [`scan`] of the part of the WAL after a resume point: `start` is the chain state of the
/// first `start_len` bytes (taken as valid, not read); the scan reads and validates only what
/// follows, with the same rules. The file must be at least `start_len` bytes long.
pub(crate) fn scan_after(
    path: &Path,
    start: &ChainState,
    start_len: u64,
    check_sizes: &[u64],
) -> Result<Scan, AuditError> {
    let mut file = File::open(path).map_err(AuditError::io(path))?;
    let file_len = file.metadata().map_err(AuditError::io(path))?.len();
    if file_len < start_len {
        return Err(AuditError::Corrupt {
            path: path.to_path_buf(),
            offset: file_len,
            reason: format!(
                "the file is shorter than the {start_len} bytes of the resume point (it changed while the log was being opened)"
            ),
        });
    }
    file.seek(SeekFrom::Start(start_len))
        .map_err(AuditError::io(path))?;
    scan_inner(
        BufReader::with_capacity(1 << 20, file),
        start.clone(),
        start_len,
        file_len,
        path,
        check_sizes,
    )
}

/// [`scan`] over the `file_len` bytes that `r` reads; `path` only names the file in errors.
pub(crate) fn scan_from(
    r: impl Read,
    file_len: u64,
    path: &Path,
    check_sizes: &[u64],
) -> Result<Scan, AuditError> {
    scan_inner(r, ChainState::default(), 0, file_len, path, check_sizes)
}

/// The scan itself: `r` reads the file from byte `start_len` on, where the chain state is
/// `start`.
fn scan_inner(
    mut r: impl Read,
    start: ChainState,
    start_len: u64,
    file_len: u64,
    path: &Path,
    check_sizes: &[u64],
) -> Result<Scan, AuditError> {
    let io = AuditError::io;
    let mut roots: Vec<(u64, Hash)> = check_sizes
        .iter()
        .filter(|&&s| s == start.size)
        .map(|&s| (s, start.range.root()))
        .collect();
    let mut committed = start.clone();
    let mut work = start;
    let mut good_len = start_len;
    let mut pos = start_len;
    let mut batch_count = 0usize;
    let mut buf = vec![0u8; usize::from(u16::MAX)];
    let bad: Option<Bad> = loop {
        let mut len_bytes = [0u8; 2];
        let n = read_full(&mut r, &mut len_bytes).map_err(io(path))?;
        if n == 0 {
            if batch_count == 0 {
                break None;
            }
            break Some(Bad {
                offset: pos,
                reason: "the file ends inside a batch (no terminator)".into(),
                resumable: false,
            });
        }
        if n < 2 {
            break Some(Bad {
                offset: pos,
                reason: "the file ends inside a length prefix".into(),
                resumable: false,
            });
        }
        let len = usize::from(u16::from_be_bytes(len_bytes));
        if len == 0 {
            pos = pos.saturating_add(2);
            if batch_count == 0 {
                break Some(Bad {
                    offset: pos.saturating_sub(2),
                    reason: "empty batch (a terminator with no entries before it)".into(),
                    resumable: true,
                });
            }
            committed = work.clone();
            good_len = pos;
            batch_count = 0;
            continue;
        }
        let record = pos;
        let Some(body) = buf.get_mut(..len) else {
            break Some(Bad {
                offset: record,
                reason: "record longer than 65,535 bytes".into(),
                resumable: false,
            });
        };
        let got = read_full(&mut r, body).map_err(io(path))?;
        if got < len {
            break Some(Bad {
                offset: record,
                reason: format!("the file ends inside a {len}-byte entry"),
                resumable: false,
            });
        }
        pos = pos.saturating_add(2).saturating_add(to_u64(len));
        if pos.saturating_sub(good_len).saturating_add(2) > to_u64(MAX_BATCH_BYTES) {
            break Some(Bad {
                offset: record,
                reason: format!(
                    "batch starting at byte {good_len} exceeds {MAX_BATCH_BYTES} bytes"
                ),
                resumable: true,
            });
        }
        match work.check_next(body) {
            Ok((leaf, time)) => {
                work.push(leaf, time, record);
                batch_count = batch_count.saturating_add(1);
                if check_sizes.contains(&work.size) {
                    roots.push((work.size, work.range.root()));
                }
            }
            Err(reason) => {
                break Some(Bad {
                    offset: record,
                    reason,
                    resumable: true,
                });
            }
        }
    };
    if let Some(bad) = bad {
        let tail = file_len.saturating_sub(good_len);
        if tail > to_u64(MAX_BATCH_BYTES) {
            return Err(AuditError::Corrupt {
                path: path.to_path_buf(),
                offset: bad.offset,
                reason: format!(
                    "{}; {tail} bytes follow the last valid batch (which ends at byte {good_len}), more than one torn batch ({MAX_BATCH_BYTES} bytes) can leave",
                    bad.reason
                ),
            });
        }
        if bad.resumable
            && let Some((at, index)) = later_entry(&mut r, pos, committed.size).map_err(io(path))?
        {
            return Err(AuditError::Corrupt {
                path: path.to_path_buf(),
                offset: bad.offset,
                reason: format!(
                    "{}; entry {index} at byte {at} follows, so this is damage inside the log, not a torn tail",
                    bad.reason
                ),
            });
        }
    }
    roots.retain(|(s, _)| *s <= committed.size);
    Ok(Scan {
        chain: committed,
        good_len,
        file_len,
        roots,
    })
}

/// Follows the framing from `pos` to the end, looking for a record that decodes as an entry with
/// index at least `min_index`: evidence of valid data after a damaged region.
fn later_entry(
    r: &mut impl Read,
    mut pos: u64,
    min_index: u64,
) -> std::io::Result<Option<(u64, u64)>> {
    let mut buf = vec![0u8; usize::from(u16::MAX)];
    loop {
        let mut len_bytes = [0u8; 2];
        if read_full(r, &mut len_bytes)? < 2 {
            return Ok(None);
        }
        let len = usize::from(u16::from_be_bytes(len_bytes));
        let record = pos;
        pos = pos.saturating_add(2).saturating_add(to_u64(len));
        if len == 0 {
            continue;
        }
        let Some(body) = buf.get_mut(..len) else {
            return Ok(None);
        };
        if read_full(r, body)? < len {
            return Ok(None);
        }
        if let Ok(entry) = Entry::decode(body)
            && entry.index >= min_index
        {
            return Ok(Some((record, entry.index)));
        }
    }
}

/// Reads the first `len` bytes of the WAL (already validated by [`scan`]) and calls `each` with
/// every entry's record offset, bytes and leaf hash, in order.
pub(crate) fn replay(
    path: &Path,
    len: u64,
    each: impl FnMut(u64, &[u8], Hash) -> Result<(), AuditError>,
) -> Result<u64, AuditError> {
    replay_range(path, 0, len, each)
}

/// [`replay`] of the bytes `from..len` only (`from` must be a record boundary).
pub(crate) fn replay_range(
    path: &Path,
    from: u64,
    len: u64,
    mut each: impl FnMut(u64, &[u8], Hash) -> Result<(), AuditError>,
) -> Result<u64, AuditError> {
    if len <= from {
        return Ok(0);
    }
    let mut file = File::open(path).map_err(AuditError::io(path))?;
    file.seek(SeekFrom::Start(from))
        .map_err(AuditError::io(path))?;
    let mut r = BufReader::with_capacity(1 << 20, file.take(len.saturating_sub(from)));
    let mut buf = vec![0u8; usize::from(u16::MAX)];
    let mut pos = from;
    let mut count = 0u64;
    let corrupt = |offset, reason: &str| AuditError::Corrupt {
        path: path.to_path_buf(),
        offset,
        reason: format!("{reason} (the file changed while the log was being opened)"),
    };
    while pos < len {
        let mut len_bytes = [0u8; 2];
        if read_full(&mut r, &mut len_bytes).map_err(AuditError::io(path))? < 2 {
            return Err(corrupt(pos, "short length prefix"));
        }
        let n = usize::from(u16::from_be_bytes(len_bytes));
        let record = pos;
        pos = pos.saturating_add(2).saturating_add(to_u64(n));
        if n == 0 {
            continue;
        }
        let Some(body) = buf.get_mut(..n) else {
            return Err(corrupt(record, "record too long"));
        };
        if read_full(&mut r, body).map_err(AuditError::io(path))? < n {
            return Err(corrupt(record, "short record"));
        }
        each(record, body, leaf_hash(body))?;
        count = count.saturating_add(1);
    }
    Ok(count)
}
