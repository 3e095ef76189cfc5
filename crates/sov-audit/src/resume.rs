//! The signed resume point (`resume`): what open needs to continue the log without reading the
//! WAL before it. Written by the publisher after every checkpoint (so also at a clean close);
//! checked and used by recovery (`recover`), which falls back to the full scan whenever any
//! check fails. The rule is in the crate documentation (`# Recovery`).
//!
//! The file is text, one `name value` field a line, in this order, strictly canonical (decimal
//! numbers without leading zeros, standard padded base64):
//!
//! ```text
//! sovereign audit resume v1
//! origin <origin>
//! size <tree size>
//! root <root, base64>
//! wal_len <bytes of entries.wal holding exactly those entries>
//! last_offset <offset of the last entry's record>
//! last_leaf <leaf hash of the last entry, base64>
//! last_time <time of the last entry, ms>
//! tile_offset <offset of the record of entry size - size % 256 (wal_len if size % 256 == 0)>
//! tiles <the hashes of the partial tiles of levels 1 and up, concatenated, base64; `-` if none>
//! signature <Ed25519 signature, base64>
//! ```
//!
//! The signature is made with the log key (the Ed25519 key of the checkpoints) over
//! [`DOMAIN`] followed by every byte before the `signature` line (the origin included). The
//! domain has a NUL byte, which no note text has, so a resume signature is never a valid
//! checkpoint signature and the other way round.

use std::fs::File;
use std::os::unix::fs::FileExt as _;
use std::path::Path;

use base64::Engine as _;
use ed25519_dalek::{Signature, VerifyingKey};
use sov_audit_core::entry::Entry;
use sov_audit_core::hash::{Hash, hash_from_slice, leaf_hash};

use crate::sign::{Signer, b64};
use crate::tiles::{TileBuilder, level_counts};
use crate::wal::{ChainState, to_u64};
use crate::{AuditError, RESUME_FILE, fsx};

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// What the signature covers, before the file's body.
pub const DOMAIN: &[u8] = b"sovereign/audit-resume/v1\0";

const MAGIC: &str = "sovereign audit resume v1";

/// The largest resume file read (a tree of 2^64 entries needs about 80 KB).
pub const MAX_RESUME_BYTES: u64 = 256 * 1024;

/// The most WAL bytes the partial level-0 tile's entries (at most 256 records, each with a
/// terminator) can take: the most a resume re-reads.
const MAX_REREAD: u64 = 256 * (2 + 65_535 + 2);

/// A resume point: the state of the log after its first `size` entries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ResumePoint {
    pub size: u64,
    pub root: Hash,
    pub wal_len: u64,
    pub last_offset: u64,
    pub last_leaf: Hash,
    pub last_time: u64,
    pub tile_offset: u64,
    /// The partial tiles of levels 1 and up ([`TileBuilder::upper_partials`]).
    pub tiles: Vec<Hash>,
}

impl ResumePoint {
    fn body(&self, origin: &str) -> String {
        let tiles = if self.tiles.is_empty() {
            "-".to_owned()
        } else {
            B64.encode(self.tiles.concat())
        };
        format!(
            "{MAGIC}\norigin {origin}\nsize {}\nroot {}\nwal_len {}\nlast_offset {}\nlast_leaf {}\nlast_time {}\ntile_offset {}\ntiles {tiles}\n",
            self.size,
            b64(&self.root),
            self.wal_len,
            self.last_offset,
            b64(&self.last_leaf),
            self.last_time,
            self.tile_offset,
        )
    }

    /// The signed file.
    pub(crate) fn encode(&self, signer: &Signer) -> Vec<u8> {
        let body = self.body(signer.origin());
        let sig = signer.sign_ed25519(&signed_message(body.as_bytes()));
        format!("{body}signature {}\n", B64.encode(sig)).into_bytes()
    }

    /// The structural rules a resume point obeys whatever the WAL holds.
    fn check_shape(&self) -> Result<(), String> {
        let s = self.size;
        if s == 0 {
            if self.wal_len != 0
                || self.last_offset != 0
                || self.tile_offset != 0
                || self.last_time != 0
                || self.last_leaf != [0; 32]
            {
                return Err("an empty tree must have zero offsets, time and leaf".into());
            }
        } else {
            // The last record (length, at least one byte, terminator) ends the prefix.
            let last_len = self
                .wal_len
                .checked_sub(self.last_offset)
                .and_then(|n| n.checked_sub(4))
                .ok_or("last_offset is not before wal_len")?;
            if last_len == 0 || last_len > u64::from(u16::MAX) {
                return Err("the last record does not fit between last_offset and wal_len".into());
            }
            if s.is_multiple_of(256) {
                if self.tile_offset != self.wal_len {
                    return Err("tile_offset must be wal_len when size is a multiple of 256".into());
                }
            } else if self.tile_offset > self.last_offset {
                return Err("tile_offset is after last_offset".into());
            }
            if self.wal_len.saturating_sub(self.reread_start()) > MAX_REREAD {
                return Err("the partial tile spans more bytes than 256 entries can".into());
            }
        }
        let want: usize = level_counts(s).iter().skip(1).sum();
        if self.tiles.len() != want {
            return Err(format!(
                "{} partial tile hashes, a tree of {s} has {want}",
                self.tiles.len()
            ));
        }
        Ok(())
    }

    /// Where the entries re-read at open start: the partial level-0 tile, or the last entry
    /// when that tile is empty.
    fn reread_start(&self) -> u64 {
        if !self.size.is_multiple_of(256) {
            self.tile_offset
        } else if self.size > 0 {
            self.last_offset
        } else {
            self.wal_len
        }
    }
}

fn signed_message(body: &[u8]) -> Vec<u8> {
    let mut msg = Vec::with_capacity(DOMAIN.len().saturating_add(body.len()));
    msg.extend_from_slice(DOMAIN);
    msg.extend_from_slice(body);
    msg
}

/// At most 40 characters of untrusted text, for messages.
fn short(s: &str) -> String {
    let cut: String = s.chars().take(40).collect();
    if cut.len() < s.len() {
        format!("{cut:?}...")
    } else {
        format!("{cut:?}")
    }
}

fn number(s: &str) -> Result<u64, String> {
    let canonical =
        !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) && (s == "0" || !s.starts_with('0'));
    if !canonical {
        return Err(format!("{} is not a canonical decimal number", short(s)));
    }
    s.parse()
        .map_err(|_| format!("{} is out of range", short(s)))
}

fn hash(s: &str) -> Result<Hash, String> {
    let bytes = B64
        .decode(s)
        .map_err(|_| format!("{} is not base64", short(s)))?;
    hash_from_slice(&bytes).ok_or_else(|| format!("{} is not a 32-byte hash", short(s)))
}

/// A parsed resume file: origin, point, signature, and the signed message.
#[derive(Debug)]
pub(crate) struct Parsed {
    pub origin: String,
    pub point: ResumePoint,
    signature: [u8; 64],
    message: Vec<u8>,
}

impl Parsed {
    /// Whether the signature verifies with `key` (strict Ed25519 verification).
    pub(crate) fn verify(&self, key: &VerifyingKey) -> bool {
        key.verify_strict(&self.message, &Signature::from_bytes(&self.signature))
            .is_ok()
    }
}

/// Parses a resume file strictly (untrusted bytes: never panics; the signature is not checked
/// here). A file that parses is exactly the canonical encoding of what it holds.
pub(crate) fn parse(bytes: &[u8]) -> Result<Parsed, String> {
    if to_u64(bytes.len()) > MAX_RESUME_BYTES {
        return Err(format!("larger than {MAX_RESUME_BYTES} bytes"));
    }
    let text = std::str::from_utf8(bytes).map_err(|_| "not UTF-8".to_owned())?;
    let body_len = text
        .rfind("\nsignature ")
        .map(|i| i.saturating_add(1))
        .ok_or("no signature line")?;
    let (body, sig_line) = text.split_at(body_len);
    let sig_b64 = sig_line
        .strip_prefix("signature ")
        .and_then(|s| s.strip_suffix('\n'))
        .ok_or("the signature line must end the file, with a newline")?;
    let sig = B64
        .decode(sig_b64)
        .map_err(|_| "the signature is not base64".to_owned())?;
    let signature: [u8; 64] = sig
        .try_into()
        .map_err(|_| "the signature is not 64 bytes".to_owned())?;
    let mut lines = body
        .strip_suffix('\n')
        .ok_or("the body does not end with a newline")?
        .split('\n');
    if lines.next() != Some(MAGIC) {
        return Err(format!("the first line is not {MAGIC:?}"));
    }
    let mut field = |name: &str| -> Result<&str, String> {
        lines
            .next()
            .and_then(|l| l.strip_prefix(name))
            .and_then(|l| l.strip_prefix(' '))
            .ok_or_else(|| format!("expected the field {name:?}"))
    };
    let origin = field("origin")?.to_owned();
    if origin.is_empty() || origin.chars().any(char::is_control) {
        return Err("bad origin".into());
    }
    let size = number(field("size")?)?;
    let root = hash(field("root")?)?;
    let wal_len = number(field("wal_len")?)?;
    let last_offset = number(field("last_offset")?)?;
    let last_leaf = hash(field("last_leaf")?)?;
    let last_time = number(field("last_time")?)?;
    let tile_offset = number(field("tile_offset")?)?;
    let tiles_text = field("tiles")?;
    let tiles = if tiles_text == "-" {
        Vec::new()
    } else {
        let raw = B64
            .decode(tiles_text)
            .map_err(|_| "tiles is not base64".to_owned())?;
        if raw.is_empty() || raw.len() % 32 != 0 {
            return Err("tiles is not a non-empty list of 32-byte hashes".into());
        }
        raw.chunks_exact(32).filter_map(hash_from_slice).collect()
    };
    if lines.next().is_some() {
        return Err("unexpected lines after tiles".into());
    }
    let point = ResumePoint {
        size,
        root,
        wal_len,
        last_offset,
        last_leaf,
        last_time,
        tile_offset,
        tiles,
    };
    point.check_shape()?;
    // Canonical: the file is exactly what the writer would have written.
    if point.body(&origin) != body || B64.encode(signature) != sig_b64 {
        return Err("not in canonical form".into());
    }
    Ok(Parsed {
        origin,
        point,
        signature,
        message: signed_message(body.as_bytes()),
    })
}

/// [`parse`] and the signature check over the bytes of a resume file, for the fuzz target
/// (`fuzz/`): the canonical re-encoding of the body and signature if it parses, and whether
/// the signature verifies with `ed25519_public` (if that is a valid key).
#[doc(hidden)]
pub fn parse_resume_bytes(
    bytes: &[u8],
    ed25519_public: &[u8; 32],
) -> Result<(Vec<u8>, bool), String> {
    let parsed = parse(bytes)?;
    let again = format!(
        "{}signature {}\n",
        parsed.point.body(&parsed.origin),
        B64.encode(parsed.signature)
    );
    let verified = VerifyingKey::from_bytes(ed25519_public).is_ok_and(|k| parsed.verify(&k));
    Ok((again.into_bytes(), verified))
}

/// The state after a resume point, checked against the WAL: where the scan continues.
#[derive(Debug)]
pub(crate) struct Resumed {
    pub point: ResumePoint,
    /// The chain state after `point.size` entries.
    pub chain: ChainState,
    /// The tile tree at `point.size`, right edge only.
    pub tiles: TileBuilder,
    /// WAL bytes read to check the point (the partial tile's entries, or the last entry).
    pub bytes_read: u64,
}

/// A signed tree head (size, root) and the file it was read from.
pub(crate) type Head = (std::path::PathBuf, (u64, Hash));

/// Loads the resume point of the log in `dir` and checks it: it parses, is for `origin`, its
/// signature verifies with the log key, it is not ahead of any signed tree head (and has that
/// head's root at the same size), the WAL holds at least its bytes, and the WAL's entries of the
/// partial level-0 tile (or the last entry) before it decode, chain, end with the recorded last
/// entry and, with the recorded upper tiles, give the recorded root. `Err` says why not (the
/// caller then scans the whole WAL).
pub(crate) fn load(
    dir: &Path,
    wal_path: &Path,
    signer: &Signer,
    heads: &[Head],
) -> Result<Resumed, String> {
    let path = dir.join(RESUME_FILE);
    let bytes = match fsx::read_optional(&path, MAX_RESUME_BYTES) {
        Ok(Some(b)) => b,
        Ok(None) => return Err("there is no resume file".into()),
        Err(e) => return Err(format!("the resume file cannot be read: {}", e.chain())),
    };
    let parsed = parse(&bytes).map_err(|e| format!("the resume file is malformed: {e}"))?;
    if parsed.origin != signer.origin() {
        return Err(format!(
            "the resume file is for origin {}, not {:?}",
            short(&parsed.origin),
            signer.origin()
        ));
    }
    if !parsed.verify(&signer.ed25519_public()) {
        return Err("the resume file's signature does not verify with the log key".into());
    }
    let point = parsed.point;
    for (head_path, (size, root)) in heads {
        let name = head_path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if *size < point.size {
            return Err(format!(
                "`{name}` holds size {size}, older than the resume point's {}",
                point.size
            ));
        }
        if *size == point.size && *root != point.root {
            return Err(format!(
                "`{name}` holds another root than the resume point at size {size}"
            ));
        }
    }
    let file = match File::open(wal_path) {
        Ok(f) => Some(f),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(format!("entries.wal cannot be opened: {e}")),
    };
    let wal_len = match &file {
        Some(f) => f
            .metadata()
            .map_err(|e| format!("entries.wal cannot be read: {e}"))?
            .len(),
        None => 0,
    };
    if wal_len < point.wal_len {
        return Err(format!(
            "entries.wal is {wal_len} bytes, shorter than the resume point's {}",
            point.wal_len
        ));
    }
    let start = point.reread_start();
    let mut region = vec![0u8; usize::try_from(point.wal_len.saturating_sub(start)).unwrap_or(0)];
    if let Some(f) = &file
        && !region.is_empty()
    {
        f.read_exact_at(&mut region, start)
            .map_err(|e| format!("entries.wal cannot be read: {e}"))?;
    }
    let entries = check_region(&point, start, &region)?;
    let partial = usize::try_from(point.size % 256).unwrap_or(0);
    let level0 = entries
        .get(entries.len().saturating_sub(partial)..)
        .unwrap_or(&[]);
    let tiles = TileBuilder::resumed(dir, true, point.size, &point.tiles, level0)
        .map_err(|e| format!("the resume point's tiles do not fit: {e}"))?;
    if tiles.root() != point.root {
        return Err(format!(
            "the resume point's tiles and the entries re-read give root {}, the point says {}",
            b64(&tiles.root()),
            b64(&point.root)
        ));
    }
    let chain = ChainState {
        size: point.size,
        last_leaf: point.last_leaf,
        last_time: point.last_time,
        last_offset: point.last_offset,
        tile_offset: point.tile_offset,
        range: tiles.range().clone(),
    };
    Ok(Resumed {
        bytes_read: to_u64(region.len()),
        point,
        chain,
        tiles,
    })
}

/// Checks the WAL bytes `region` (from offset `start` to the point's `wal_len`): records and
/// terminators, ending with a terminator; the entries are the last ones of the point's tree
/// (the partial level-0 tile, or the last entry), decode, have consecutive indexes, chain, do
/// not go back in time, and the last is the recorded one. Returns them with their leaf hashes.
fn check_region(
    point: &ResumePoint,
    start: u64,
    region: &[u8],
) -> Result<Vec<(Vec<u8>, Hash)>, String> {
    let want = if !point.size.is_multiple_of(256) {
        point.size % 256
    } else {
        u64::from(point.size > 0)
    };
    let first = point.size.saturating_sub(want);
    let mut out: Vec<(Vec<u8>, Hash)> = Vec::new();
    let mut state = ChainState::default();
    let mut pos = 0usize;
    let mut last_offset = None;
    let mut after_terminator = true;
    let bad = |at: usize, what: &str| {
        format!(
            "the WAL record at byte {} before the resume point {what}",
            start.saturating_add(to_u64(at))
        )
    };
    while pos < region.len() {
        let len = match region.get(pos..pos.saturating_add(2)) {
            Some(&[a, b]) => usize::from(u16::from_be_bytes([a, b])),
            _ => return Err(bad(pos, "is cut short")),
        };
        let body_at = pos.saturating_add(2);
        if len == 0 {
            if after_terminator {
                return Err(bad(pos, "is an empty batch"));
            }
            after_terminator = true;
            pos = body_at;
            continue;
        }
        after_terminator = false;
        let body = region
            .get(body_at..body_at.saturating_add(len))
            .ok_or_else(|| bad(pos, "is cut short"))?;
        let index = first.saturating_add(to_u64(out.len()));
        if to_u64(out.len()) >= want {
            return Err(bad(pos, "is one entry too many"));
        }
        let entry = Entry::decode(body).map_err(|e| bad(pos, &format!("does not decode: {e}")))?;
        if entry.index != index {
            return Err(bad(pos, &format!("has index {}, not {index}", entry.index)));
        }
        if !out.is_empty() {
            state
                .check_next(body)
                .map_err(|e| bad(pos, &format!("does not chain: {e}")))?;
        }
        let leaf = leaf_hash(body);
        state.size = index.saturating_add(1);
        state.last_leaf = leaf;
        state.last_time = entry.time_ms;
        last_offset = Some(start.saturating_add(to_u64(pos)));
        out.push((body.to_vec(), leaf));
        pos = body_at.saturating_add(len);
    }
    if !after_terminator {
        return Err("the resume point's wal_len is not at the end of a batch".into());
    }
    if to_u64(out.len()) != want {
        return Err(format!(
            "{} entries lie before the resume point in its last tile, not {want}",
            out.len()
        ));
    }
    if want > 0 {
        if last_offset != Some(point.last_offset) {
            return Err("the last entry's record is not at the recorded offset".into());
        }
        if state.last_leaf != point.last_leaf {
            return Err(format!(
                "the WAL's entry {} has leaf hash {}, the resume point records {}",
                point.size.saturating_sub(1),
                b64(&state.last_leaf),
                b64(&point.last_leaf)
            ));
        }
        if state.last_time != point.last_time {
            return Err("the last entry's time is not the recorded one".into());
        }
    }
    Ok(out)
}

/// Where the publisher stands in the WAL: what a resume point at the tile tree's size records.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct WalMark {
    pub size: u64,
    pub wal_len: u64,
    pub last_offset: u64,
    pub last_leaf: Hash,
    pub last_time: u64,
    pub tile_offset: u64,
}

impl WalMark {
    pub(crate) fn new(chain: &ChainState, wal_len: u64) -> Self {
        Self {
            size: chain.size,
            wal_len,
            last_offset: chain.last_offset,
            last_leaf: chain.last_leaf,
            last_time: chain.last_time,
            tile_offset: chain.tile_offset,
        }
    }

    /// Advances over one acknowledged batch written at `start` (which must be where the last
    /// one ended).
    pub(crate) fn batch(
        &mut self,
        start: u64,
        entries: &[(Vec<u8>, Hash)],
        last_time: u64,
    ) -> Result<(), AuditError> {
        if start != self.wal_len {
            return Err(AuditError::Thread {
                reason: format!(
                    "a batch at WAL byte {start} follows one that ended at {}",
                    self.wal_len
                ),
            });
        }
        let mut pos = start;
        for (bytes, leaf) in entries {
            if self.size.is_multiple_of(256) {
                self.tile_offset = pos;
            }
            self.last_offset = pos;
            self.last_leaf = *leaf;
            self.size = self.size.saturating_add(1);
            pos = pos.saturating_add(2).saturating_add(to_u64(bytes.len()));
        }
        self.wal_len = pos.saturating_add(2);
        self.last_time = last_time;
        Ok(())
    }

    /// The resume point at this mark, with the tile tree `tiles` (of the same size).
    pub(crate) fn point(&self, tiles: &TileBuilder) -> Option<ResumePoint> {
        if tiles.size() != self.size {
            return None;
        }
        Some(ResumePoint {
            size: self.size,
            root: tiles.root(),
            wal_len: self.wal_len,
            last_offset: self.last_offset,
            last_leaf: self.last_leaf,
            last_time: self.last_time,
            tile_offset: if self.size.is_multiple_of(256) {
                self.wal_len
            } else {
                self.tile_offset
            },
            tiles: tiles.upper_partials(),
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    fn point() -> ResumePoint {
        ResumePoint {
            size: 300,
            root: [1; 32],
            wal_len: 10_000,
            last_offset: 9_800,
            last_leaf: [2; 32],
            last_time: 1_700_000_000_000,
            tile_offset: 5_000,
            tiles: vec![[3; 32]],
        }
    }

    #[test]
    fn round_trips_and_is_strict() {
        let tmp = tempfile::tempdir().unwrap();
        let key = sov_keys::LogKey::init_or_load(tmp.path()).unwrap();
        let signer = Signer::new(key, "o.test/log");
        let bytes = point().encode(&signer);
        let parsed = parse(&bytes).unwrap();
        assert_eq!(parsed.point, point());
        assert_eq!(parsed.origin, "o.test/log");
        assert!(parsed.verify(&signer.ed25519_public()));
        let text = String::from_utf8(bytes.clone()).unwrap();
        for bad in [
            text.replace("size 300", "size 0300"),
            text.replace("size 300", "size +300"),
            text.replace("size 300", "size 600"),
            text.replace("wal_len 10000", "wal_len 9000"),
            text.replace("tile_offset 5000", "tile_offset 9900"),
            text.replace("\nsignature", "\nextra x\nsignature"),
            text.trim_end().to_owned(),
            format!("{text}\n"),
            text.replacen("sovereign", "Sovereign", 1),
        ] {
            assert!(parse(bad.as_bytes()).is_err(), "{bad}");
        }
        // A changed field still parses (it is canonical) but no longer verifies.
        let forged = text.replace("last_time 1700000000000", "last_time 1700000000001");
        let p = parse(forged.as_bytes()).unwrap();
        assert!(!p.verify(&signer.ed25519_public()));
        // The domain keeps it apart from a note signature over the same text.
        let body_len = text.find("signature ").unwrap();
        let plain = signer.sign_ed25519(&bytes[..body_len]);
        let swapped = format!("{}signature {}\n", &text[..body_len], B64.encode(plain));
        assert!(
            !parse(swapped.as_bytes())
                .unwrap()
                .verify(&signer.ed25519_public())
        );
    }
}
