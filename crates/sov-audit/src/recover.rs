//! Recovery at open: the checks of `origin` and `vkeys`, the WAL scan, the check that the WAL
//! extends every tree the log has signed, cutting a torn tail, rebuilding the tiles, and the
//! recovery entry. The rule is in the crate documentation (`# Recovery`); the writer threads
//! start from what [`recover`] returns.

use std::fs::{self, File, OpenOptions};
use std::path::{Path, PathBuf};

use sov_audit_core::checkpoint::Checkpoint;
use sov_audit_core::entry::{Kind, Outcome};
use sov_audit_core::hash::Hash;
use sov_audit_core::note::Note;
use sov_keys::LogKey;

use crate::resume::{self, Head, WalMark};
use crate::sign::{Signer, b64, read_signed};
use crate::tiles::TileBuilder;
use crate::wal::{self, ChainState, Scan};
use crate::{
    AuditError, CHECKPOINT_FILE, Draft, ENTRIES_FILE, ORIGIN_FILE, RUNNING_FILE, Recovery,
    SIGNED_FILE, VKEYS_FILE, fsx,
};

/// A recovered log directory, ready for the writer threads.
pub(crate) struct Recovered {
    pub signer: Signer,
    /// `entries.wal`, opened for appending, cut to its valid prefix.
    pub wal: File,
    pub wal_path: PathBuf,
    /// The chain state after the valid prefix.
    pub chain: ChainState,
    /// Byte length of the valid prefix (the WAL's length now).
    pub good_len: u64,
    /// The tile tree of every entry in the WAL, its full tiles written and checked (from the
    /// resume point on, when resuming).
    pub tiles: TileBuilder,
    /// What was recovered (`entry` is still `None`: the entry is appended by the running log).
    pub report: Recovery,
    /// Where the WAL ends, for the publisher's resume points.
    pub mark: WalMark,
}

/// Recovers the log in `dir` (already created and locked): checks `origin` and `vkeys` (writing
/// them for a new log), then either continues from the signed resume point (scanning only the
/// WAL after it) or scans the whole WAL, checks that it extends `signed` and `checkpoint`, cuts a
/// torn tail, creates `running` and rebuilds the tiles (from the resume point on, or all).
/// Nothing is modified before the WAL has passed the scan and the consistency check.
pub(crate) fn recover(dir: &Path, key: LogKey, origin: &str) -> Result<Recovered, AuditError> {
    let wal_path = dir.join(ENTRIES_FILE);
    let wal_len = file_len(&wal_path)?;
    check_origin(dir, origin, wal_len)?;
    let signer = Signer::new(key, origin);
    check_vkeys(dir, &signer)?;
    let heads = signed_heads(dir)?;
    let running_path = dir.join(RUNNING_FILE);
    let unclean = fsx::exists(&running_path)?;
    let sizes: Vec<u64> = heads.iter().map(|(_, (s, _))| *s).collect();

    // 0. The resume point, if it passes every check; otherwise the whole WAL is scanned.
    let (resumed, fallback) = match resume::load(dir, &wal_path, &signer, &heads) {
        Ok(r) => (Some(r), None),
        Err(reason) => {
            if wal_len > 0 {
                tracing::warn!(
                    reason = %reason,
                    "not resuming the audit log from its resume point: validating the whole WAL"
                );
            }
            (None, Some(reason))
        }
    };
    // 1. Validate the WAL, or its part after the resume point (nothing is modified yet).
    let scan = match &resumed {
        Some(r) => wal::scan_after(&wal_path, &r.chain, r.point.wal_len, &sizes)?,
        None => wal::scan(&wal_path, &sizes)?,
    };
    // 2. It must extend every tree the log has signed.
    check_extends(&scan, &heads)?;
    // 3. Cut a torn tail.
    let (wal_file, truncated) = cut_torn_tail(dir, &wal_path, &scan, wal_len)?;
    fsx::write_atomic(&running_path, b"", true)?;
    // 4. Rebuild the tiles from the WAL (from the resume point on), repairing what is missing or
    //    wrong.
    let from = resumed.as_ref().map_or(0, |r| r.point.wal_len);
    let scanned = scan.file_len.saturating_sub(from);
    let replayed = scan.good_len.saturating_sub(from);
    let (tiles, reread, resumed_at) = match resumed {
        Some(r) => {
            let at = r.point.size;
            tracing::info!(
                size = at,
                wal_bytes = r.point.wal_len,
                "audit log resumed from its signed resume point"
            );
            (
                rebuild_tiles(r.tiles, &wal_path, &scan, from)?,
                r.bytes_read,
                Some(at),
            )
        }
        None => (
            rebuild_tiles(TileBuilder::new(dir, true), &wal_path, &scan, 0)?,
            0,
            None,
        ),
    };
    Ok(Recovered {
        signer,
        wal: wal_file,
        wal_path,
        report: Recovery {
            size: scan.chain.size,
            truncated_bytes: truncated,
            unclean,
            entry: None,
            resumed_at,
            resume_fallback: fallback,
            wal_bytes_read: reread.saturating_add(scanned).saturating_add(replayed),
        },
        mark: WalMark::new(&scan.chain, scan.good_len),
        chain: scan.chain,
        good_len: scan.good_len,
        tiles,
    })
}

/// The length of the file at `path` (0 if absent).
fn file_len(path: &Path) -> Result<u64, AuditError> {
    match fs::metadata(path) {
        Ok(m) => Ok(m.len()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(0),
        Err(source) => Err(AuditError::Io {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// Checks (or, for a new log, writes) the `origin` file.
fn check_origin(dir: &Path, origin: &str, wal_len: u64) -> Result<(), AuditError> {
    let path = dir.join(ORIGIN_FILE);
    match fsx::read_optional(&path, 4096)? {
        Some(bytes) => {
            let found = String::from_utf8_lossy(&bytes);
            let found = found.strip_suffix('\n').unwrap_or(&found);
            if found != origin {
                return Err(AuditError::OriginMismatch {
                    path,
                    found: found.to_owned(),
                    configured: origin.to_owned(),
                });
            }
            Ok(())
        }
        None if wal_len > 0 => Err(AuditError::Malformed {
            path,
            reason: "missing, but entries.wal holds entries: refusing to guess the origin".into(),
        }),
        None => fsx::write_atomic(&path, format!("{origin}\n").as_bytes(), true),
    }
}

/// Checks (or writes) the `vkeys` file: the log must keep signing with the key it published.
fn check_vkeys(dir: &Path, signer: &Signer) -> Result<(), AuditError> {
    let path = dir.join(VKEYS_FILE);
    let want = signer.vkeys_text();
    match fsx::read_optional(&path, 64 * 1024)? {
        Some(bytes) if bytes == want.as_bytes() => Ok(()),
        Some(_) => Err(AuditError::KeyMismatch { path }),
        None => fsx::write_atomic(&path, want.as_bytes(), true),
    }
}

/// The tree heads the log has signed, each with the file it was read from: `signed`, then
/// `checkpoint` (those present).
fn signed_heads(dir: &Path) -> Result<Vec<Head>, AuditError> {
    let signed_path = dir.join(SIGNED_FILE);
    let checkpoint_path = dir.join(CHECKPOINT_FILE);
    let mut heads = Vec::new();
    if let Some(head) = read_signed(&signed_path)? {
        heads.push((signed_path, head));
    }
    if let Some(head) = read_checkpoint_head(&checkpoint_path)? {
        heads.push((checkpoint_path, head));
    }
    Ok(heads)
}

/// The tree head in the `checkpoint` file, if it parses (it is only a second witness beside
/// `signed`, which is written first).
fn read_checkpoint_head(path: &Path) -> Result<Option<(u64, Hash)>, AuditError> {
    let Some(bytes) = fsx::read_optional(path, 1 << 20)? else {
        return Ok(None);
    };
    Ok(Note::parse(&bytes)
        .ok()
        .and_then(|n| Checkpoint::parse_text(&n.text).ok())
        .map(|c| (c.size, c.root)))
}

/// Fails with [`AuditError::Inconsistent`] unless the scanned WAL reaches every head's size with
/// that head's root.
fn check_extends(scan: &Scan, heads: &[Head]) -> Result<(), AuditError> {
    for (path, (size, root)) in heads {
        let found = if scan.chain.size < *size {
            Some(format!(
                "entries.wal holds only {} valid entries (root {})",
                scan.chain.size,
                b64(&scan.chain.range.root())
            ))
        } else {
            match scan.roots.iter().find(|(s, _)| s == size) {
                Some((_, r)) if r == root => None,
                Some((_, r)) => Some(format!(
                    "the entries in entries.wal give root {} at size {size}",
                    b64(r)
                )),
                None => Some(format!("no root could be computed at size {size}")),
            }
        };
        if let Some(found) = found {
            return Err(AuditError::Inconsistent {
                path: path.clone(),
                signed_size: *size,
                signed_root: b64(root),
                found,
            });
        }
    }
    Ok(())
}

/// Opens the WAL for appending (creating it; a new one is made durable with its directory) and
/// cuts what follows the valid prefix; returns the file and how many bytes were cut.
fn cut_torn_tail(
    dir: &Path,
    wal_path: &Path,
    scan: &Scan,
    wal_len: u64,
) -> Result<(File, u64), AuditError> {
    let truncated = scan.file_len.saturating_sub(scan.good_len);
    let wal_file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(wal_path)
        .map_err(AuditError::io(wal_path))?;
    if truncated > 0 {
        tracing::warn!(
            bytes = truncated,
            offset = scan.good_len,
            "truncating a torn tail of the audit WAL"
        );
        wal_file
            .set_len(scan.good_len)
            .and_then(|()| wal_file.sync_all())
            .map_err(AuditError::io(wal_path))?;
    }
    if wal_len == 0 {
        wal_file.sync_all().map_err(AuditError::io(wal_path))?;
        fsx::sync_dir(dir)?;
    }
    Ok((wal_file, truncated))
}

/// Replays the valid prefix of the WAL from byte `from` (0, or a resume point, where `tiles`
/// stands) into the tile tree, rewriting every full tile that is missing or differs.
fn rebuild_tiles(
    mut tiles: TileBuilder,
    wal_path: &Path,
    scan: &Scan,
    from: u64,
) -> Result<TileBuilder, AuditError> {
    wal::replay_range(wal_path, from, scan.good_len, |_, bytes, leaf| {
        tiles.push(bytes, leaf)?;
        tiles.write_full()
    })?;
    tiles.set_repair(false);
    if tiles.repaired > 0 {
        tracing::warn!(
            tiles = tiles.repaired,
            "rewrote missing or damaged audit tiles"
        );
    }
    if tiles.size() != scan.chain.size {
        return Err(AuditError::Corrupt {
            path: wal_path.to_path_buf(),
            offset: scan.good_len,
            reason: format!(
                "replay found {} entries, the scan {} (the file changed while opening)",
                tiles.size(),
                scan.chain.size
            ),
        });
    }
    Ok(tiles)
}

/// The [`Kind::Recovery`] entry to append after `report` (`None` after a clean stop with nothing
/// cut); `good_len` is where a torn tail was cut.
pub(crate) fn entry_draft(report: &Recovery, good_len: u64) -> Option<Draft> {
    let (size, truncated, unclean) = (report.size, report.truncated_bytes, report.unclean);
    if !unclean && truncated == 0 {
        return None;
    }
    let mut why = Vec::new();
    if unclean {
        why.push("the previous run did not close cleanly".to_owned());
    }
    if truncated > 0 {
        why.push(format!(
            "{truncated} bytes of a torn write were cut from entries.wal at byte {good_len}"
        ));
    }
    let mut attrs = vec![
        ("recovered_size".into(), size.to_string()),
        ("truncated_bytes".into(), truncated.to_string()),
        ("unclean".into(), unclean.to_string()),
        ("resumed".into(), report.resumed_at.is_some().to_string()),
    ];
    match (report.resumed_at, &report.resume_fallback) {
        (Some(at), _) => {
            why.push(format!(
                "opened from the signed resume point at {at} entries (only the WAL after it was validated)"
            ));
            attrs.push(("resumed_from".into(), at.to_string()));
        }
        (None, reason) => {
            // Bounded and without control characters, so the entry always encodes.
            let reason: String = reason
                .as_deref()
                .unwrap_or("no resume point")
                .chars()
                .map(|c| if c.is_control() { '?' } else { c })
                .take(300)
                .collect();
            why.push(format!("the whole WAL was validated ({reason})"));
            attrs.push(("resume_fallback".into(), reason));
        }
    }
    Some(Draft {
        kind: Kind::Recovery,
        principal: "system".into(),
        resource: ENTRIES_FILE.into(),
        outcome: Outcome::Ok,
        reason: format!("recovered {size} entries: {}", why.join("; ")),
        model: None,
        input: None,
        output: None,
        attrs,
    })
}
