//! Verification of a whole tiled log, of receipts and of consistency between two checkpoints.
//!
//! [`verify_log`] recomputes everything a C2SP tiled log claims from its entries up:
//!
//! 1. the `checkpoint` note verifies against the given keys, and *every* given key signed it;
//! 2. every entry bundle and hash tile the checkpoint's size requires is present and well formed;
//! 3. every entry decodes, sits at the position its `index` says, links to the leaf hash of the
//!    entry before it (`prev`; zeros for entry 0), and its time never goes backwards;
//! 4. every entry's leaf hash equals the level-0 tile hash at its position;
//! 5. every hash of a tile at level 1 and above equals the root of the full tile below it;
//! 6. the tree root computed from the tiles equals the checkpoint's root.
//!
//! Files come through the [`LogFiles`] trait, so this module does no I/O. A [`Failure`] names
//! the first problem found, in log order, as precisely as the evidence allows: a file path, an
//! entry number within a bundle (with its log index), a hash number within a tile, or the
//! signature of one key.
//!
//! When an entry's leaf hash and its level-0 tile hash disagree, the next entry's `prev` field
//! decides which of the two was altered: if it agrees with the tile, the entry was; if it agrees
//! with the entry, the tile was.
//!
//! Bundles are verified in parallel on up to [`DEFAULT_MAX_THREADS`] threads (computation only;
//! files are fetched on the calling thread).

use std::collections::BTreeMap;

use base64::Engine as _;

use crate::checkpoint::{self, Checkpoint, CheckpointError, VerifiedBy, VerifiedCheckpoint};
use crate::entry::{Entry, hex};
use crate::hash::{Hash, hash_from_slice, hash_to_base64, leaf_hash, leaf_hashes};
use crate::merkle::{self, ProofError};
use crate::note::{Note, Vkey};
use crate::receipt::TlogProof;
use crate::tile::{self, Tile, TileKind, TileSource, TileSourceError};

/// Where a tiled log's files come from: `get("checkpoint")`, `get("tile/0/000")`,
/// `get("tile/entries/001.p/5")`, ... Paths are relative, `/`-separated and never contain `..`.
pub trait LogFiles {
    /// The file's bytes; `Ok(None)` if it does not exist; `Err` (a message) if it exists but
    /// cannot be read.
    fn get(&mut self, path: &str) -> Result<Option<Vec<u8>>, String>;
}

impl LogFiles for BTreeMap<String, Vec<u8>> {
    fn get(&mut self, path: &str) -> Result<Option<Vec<u8>>, String> {
        Ok(BTreeMap::get(self, path).cloned())
    }
}

impl LogFiles for std::collections::HashMap<String, Vec<u8>> {
    fn get(&mut self, path: &str) -> Result<Option<Vec<u8>>, String> {
        Ok(std::collections::HashMap::get(self, path).cloned())
    }
}

/// What failed and where. `Display` is `location: what`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{location}: {what}")]
pub struct Failure {
    /// What is wrong, e.g. `leaf hash does not match the level-0 tile`.
    pub what: String,
    /// Where, e.g. `tile/entries/000.p/44, entry 17 (log index 17)`, `tile/0/000, hash 5`,
    /// `checkpoint, signature by example.com/log (0x06)`.
    pub location: String,
}

impl Failure {
    /// A failure at `location`.
    pub fn new(location: impl Into<String>, what: impl Into<String>) -> Failure {
        Failure {
            what: what.into(),
            location: location.into(),
        }
    }
}

/// What a successful [`verify_log`] established.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogReport {
    /// The checkpoint's origin line.
    pub origin: String,
    /// The number of entries (the checkpoint's tree size).
    pub size: u64,
    /// The checkpoint's root hash, recomputed from the entries.
    pub root: Hash,
    /// The signatures that verified (every given key is among them).
    pub verified_by: Vec<VerifiedBy>,
    /// Entries per kind (kind name, count), in kind-code order.
    pub kinds: Vec<(String, u64)>,
    /// The time of the first entry (Unix ms); `None` for an empty log.
    pub first_time_ms: Option<u64>,
    /// The time of the last entry (Unix ms); `None` for an empty log.
    pub last_time_ms: Option<u64>,
}

/// What a successful [`verify_receipt`] established.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceiptReport {
    /// The entry, decoded.
    pub entry: Entry,
    /// Its leaf hash (`SHA-256(0x00 || bytes)`).
    pub leaf: Hash,
    /// The receipt's index (equal to `entry.index`).
    pub index: u64,
    /// The checkpoint the entry is included in.
    pub checkpoint: Checkpoint,
    /// The signatures on that checkpoint that verified.
    pub verified_by: Vec<VerifiedBy>,
}

/// What a successful [`verify_consistency_notes`] established.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsistencyReport {
    /// The older checkpoint.
    pub old: Checkpoint,
    /// The newer checkpoint.
    pub new: Checkpoint,
    /// The signatures on the older checkpoint that verified.
    pub old_verified_by: Vec<VerifiedBy>,
    /// The signatures on the newer checkpoint that verified.
    pub new_verified_by: Vec<VerifiedBy>,
    /// The number of hashes in the consistency proof.
    pub proof_len: usize,
}

/// The most threads [`verify_log`] uses (it uses fewer if the machine has fewer cores).
pub const DEFAULT_MAX_THREADS: usize = 8;

/// Bundles handed to one thread at a time.
const BUNDLES_PER_THREAD: usize = 16;

/// The location of a key's signature, e.g. `checkpoint, signature by example.com/log (0x06)`.
pub fn signature_location(prefix: &str, key: &Vkey) -> String {
    format!(
        "{prefix}, signature by {} (0x{:02x})",
        key.name,
        key.sig_type()
    )
}

/// Verifies a signed checkpoint note against `keys`, requiring a valid signature by every one
/// of them. On failure, finds out which signature is at fault where it can: a key whose
/// signature line is missing, or the one key (of several) whose signature does not verify.
/// `prefix` is the location of the note (`checkpoint`, `proof, checkpoint`).
pub fn verify_signed_checkpoint(
    prefix: &str,
    note_bytes: &[u8],
    keys: &[Vkey],
) -> Result<VerifiedCheckpoint, Failure> {
    if keys.is_empty() {
        return Err(Failure::new(
            prefix,
            "no verifier key was given: a checkpoint is only as good as the keys it is checked against",
        ));
    }
    let verified = match checkpoint::verify_checkpoint(note_bytes, keys) {
        Ok(v) => v,
        Err(err) => return Err(locate_checkpoint_failure(prefix, note_bytes, keys, &err)),
    };
    if let Err(err) = checkpoint::require_all(&verified, keys) {
        // Name the first key that did not sign.
        for key in keys {
            let signed = verified
                .verified_by
                .iter()
                .any(|v| v.name == key.name && v.key_id == key.key_id);
            if !signed {
                return Err(Failure::new(
                    signature_location(prefix, key),
                    format!(
                        "missing: no valid signature line for key {}+{:08x} ({err})",
                        key.name, key.key_id
                    ),
                ));
            }
        }
        return Err(Failure::new(prefix, err.to_string()));
    }
    Ok(verified)
}

/// Works out which part of a checkpoint note is at fault after `verify_checkpoint` failed.
fn locate_checkpoint_failure(
    prefix: &str,
    note_bytes: &[u8],
    keys: &[Vkey],
    err: &CheckpointError,
) -> Failure {
    let note = match Note::parse(note_bytes) {
        Ok(note) => note,
        Err(_) => return Failure::new(prefix, err.to_string()),
    };
    let has_extensions = match Checkpoint::parse_text(&note.text) {
        Ok(cp) => !cp.extensions.is_empty(),
        Err(_) => return Failure::new(prefix, err.to_string()),
    };
    // Keys with a signature line, and whether that signature verifies on its own.
    let mut present: Vec<(&Vkey, Result<(), CheckpointError>)> = Vec::new();
    let mut missing: Vec<&Vkey> = Vec::new();
    for key in keys {
        let has_line = note
            .signatures
            .iter()
            .any(|s| s.name == key.name && s.key_id == key.key_id);
        if has_line {
            let alone = checkpoint::verify_checkpoint(note_bytes, std::slice::from_ref(key));
            present.push((key, alone.map(|_| ())));
        } else {
            missing.push(key);
        }
    }
    let failing: Vec<&(&Vkey, Result<(), CheckpointError>)> =
        present.iter().filter(|(_, r)| r.is_err()).collect();
    let passing = present.len().saturating_sub(failing.len());
    match (failing.first(), present.len()) {
        // Exactly the one signature, or some but not all of several, fail: name the first.
        (Some((key, Err(e))), n) if n == 1 || passing > 0 => Failure::new(
            signature_location(prefix, key),
            if n == 1 {
                format!("does not verify (the signature or the checkpoint text was altered): {e}")
            } else {
                let hint = if has_extensions
                    && key.sig_type() != crate::note::SIG_COSIG_MLDSA44
                    && present
                        .iter()
                        .filter(|(_, r)| r.is_ok())
                        .all(|(k, _)| k.sig_type() == crate::note::SIG_COSIG_MLDSA44)
                {
                    " (the ML-DSA-44 signatures that verify do not cover the checkpoint's \
                     extension lines, which may be what was altered)"
                } else {
                    ""
                };
                format!("does not verify, while the other signatures do{hint}: {e}")
            },
        ),
        // Several signatures, all failing: the signed text is what changed.
        (Some(_), n) if n > 1 => Failure::new(
            prefix,
            format!(
                "none of the {n} signatures by the given keys verifies: the checkpoint text was altered ({err})"
            ),
        ),
        _ => match missing.first() {
            Some(key) => Failure::new(
                signature_location(prefix, key),
                format!(
                    "missing: no signature line for key {}+{:08x} (signed by: {})",
                    key.name,
                    key.key_id,
                    signer_list(&note)
                ),
            ),
            None => Failure::new(prefix, err.to_string()),
        },
    }
}

fn signer_list(note: &Note) -> String {
    let names: Vec<String> = note
        .signatures
        .iter()
        .map(|s| format!("{}+{:08x}", s.name, s.key_id))
        .collect();
    if names.is_empty() {
        "nobody".to_owned()
    } else {
        names.join(", ")
    }
}

/// Verifies a whole tiled log against `keys` (every key must have signed its checkpoint). See
/// the module documentation for what is checked. Uses up to [`DEFAULT_MAX_THREADS`] threads.
pub fn verify_log(files: &mut dyn LogFiles, keys: &[Vkey]) -> Result<LogReport, Failure> {
    let threads = std::thread::available_parallelism()
        .map(usize::from)
        .unwrap_or(1)
        .clamp(1, DEFAULT_MAX_THREADS);
    verify_log_threads(files, keys, threads)
}

/// [`verify_log`] with an explicit number of worker threads (1 verifies on the calling thread).
pub fn verify_log_threads(
    files: &mut dyn LogFiles,
    keys: &[Vkey],
    threads: usize,
) -> Result<LogReport, Failure> {
    let threads = threads.max(1);
    let note = match files.get("checkpoint") {
        Ok(Some(bytes)) => bytes,
        Ok(None) => return Err(Failure::new("checkpoint", "missing")),
        Err(e) => return Err(Failure::new("checkpoint", format!("cannot be read: {e}"))),
    };
    let verified = verify_signed_checkpoint("checkpoint", &note, keys)?;
    let cp = &verified.checkpoint;
    let size = cp.size;

    // Entries and level-0 tiles, bundle by bundle, in batches verified in parallel.
    let bundles = Tile::entry_bundles_for_size(size);
    let mut chain = Chain::default();
    let mut verified_level0: BTreeMap<Tile, Vec<u8>> = BTreeMap::new();
    let batch_len = threads.saturating_mul(BUNDLES_PER_THREAD).max(1);
    let mut batches = bundles.chunks(batch_len);
    // While the workers verify one batch, this thread reads the next. A read failure is
    // reported only once every earlier bundle has been checked, so failures stay in log order.
    let mut next = batches.next().map(|tiles| fetch_batch(files, tiles, size));
    while let Some(fetched) = next.take() {
        let batch = fetched?;
        let (outcomes, following) = run_batch(&batch, threads, || {
            batches.next().map(|tiles| fetch_batch(files, tiles, size))
        });
        for (work, outcome) in batch.iter().zip(outcomes) {
            chain.absorb(work, outcome)?;
        }
        // The last level-0 tile is the one the tree hash may need (it may be partial).
        if let Some(last) = batch.last() {
            verified_level0.clear();
            verified_level0.insert(last.level0, last.tile_bytes.clone());
        }
        next = following;
    }
    if let Some(suspect) = chain.suspect() {
        let last_tile = verified_level0
            .iter()
            .next()
            .and_then(|(t, bytes)| tile::parse_hash_tile(bytes, t).ok())
            .unwrap_or_default();
        return Err(settle_last(
            &suspect,
            &chain.full_roots,
            &last_tile,
            size,
            &cp.root,
        ));
    }

    // Hash tiles at levels 1 and up: each hash is the root of a full tile below.
    let mut below: Vec<Hash> = std::mem::take(&mut chain.full_roots);
    let mut upper: Vec<Tile> = Tile::hash_tiles_for_size(size)
        .into_iter()
        .filter(|t| matches!(t.kind, TileKind::Hash { level } if level > 0))
        .collect();
    upper.sort_by_key(|t| (level_of(t), t.index));
    let mut verified_tiles = verified_level0;
    let mut level: u8 = 1;
    let mut rest = upper.as_slice();
    while !rest.is_empty() {
        let split = rest
            .iter()
            .position(|t| level_of(t) != level)
            .unwrap_or(rest.len());
        let (this_level, next) = rest.split_at(split);
        let mut roots = Vec::new();
        for t in this_level {
            let (bytes, path) = fetch_tile(files, t, size)?;
            let hashes = tile::parse_hash_tile(&bytes, t)
                .map_err(|e| Failure::new(path.as_str(), e.to_string()))?;
            for (i, h) in hashes.iter().enumerate() {
                let pos = t
                    .index
                    .checked_mul(tile::TILE_WIDTH)
                    .and_then(|p| p.checked_add(i as u64));
                let expected = pos
                    .and_then(|p| usize::try_from(p).ok())
                    .and_then(|p| below.get(p));
                let below_tile = Tile {
                    kind: TileKind::Hash {
                        level: level.saturating_sub(1),
                    },
                    index: pos.unwrap_or(u64::MAX),
                    width: tile::TILE_WIDTH as u16,
                };
                match expected {
                    Some(e) if e == h => {}
                    Some(e) => {
                        return Err(Failure::new(
                            format!("{path}, hash {i}"),
                            format!(
                                "is {} but the root of full tile {} (recomputed from the entries) is {}",
                                hash_to_base64(h),
                                below_tile.path(),
                                hash_to_base64(e)
                            ),
                        ));
                    }
                    None => {
                        return Err(Failure::new(
                            format!("{path}, hash {i}"),
                            format!("has no full tile {} below it", below_tile.path()),
                        ));
                    }
                }
            }
            if t.is_full() {
                roots.push(tile::subtree_root(&hashes));
            }
            verified_tiles.insert(*t, bytes);
        }
        below = roots;
        rest = next;
        level = level.saturating_add(1);
    }

    // The tree root, from the verified tiles only.
    let root = {
        let mut src = TileSource::new(size, |t: &Tile| -> Result<Vec<u8>, Failure> {
            verified_tiles.get(t).cloned().ok_or_else(|| {
                Failure::new(
                    t.path(),
                    "needed for the tree hash but not among the tiles verified",
                )
            })
        });
        merkle::tree_hash(&mut src, size).map_err(|e| tree_failure("tree hash", e))?
    };
    if root != cp.root {
        return Err(Failure::new(
            "checkpoint",
            format!(
                "signed root {} does not match the root {} of the {size} entries and their tiles: \
                 the log was rewritten or the checkpoint is not for these files",
                hash_to_base64(&cp.root),
                hash_to_base64(&root)
            ),
        ));
    }

    let kinds = chain
        .kinds
        .iter()
        .map(|(code, n)| {
            let name = crate::entry::Kind::from_code(*code)
                .map(|k| k.name())
                .unwrap_or_else(|| format!("kind.{code}"));
            (name, *n)
        })
        .collect();
    Ok(LogReport {
        origin: cp.origin.clone(),
        size,
        root,
        verified_by: verified.verified_by.clone(),
        kinds,
        first_time_ms: chain.first_time,
        last_time_ms: chain.last.as_ref().map(|(l, _, _)| l.time),
    })
}

fn level_of(t: &Tile) -> u8 {
    match t.kind {
        TileKind::Hash { level } => level,
        TileKind::Entries => 0,
    }
}

/// Turns a tree-hash or proof error over tiles into a failure.
fn tree_failure(what: &str, e: ProofError<TileSourceError<Failure>>) -> Failure {
    match e {
        ProofError::Source(TileSourceError::Fetch(f)) => f,
        other => Failure::new(what, other.to_string()),
    }
}

/// Where a bundle and its level-0 tile are, for naming failures.
#[derive(Clone)]
struct Loc {
    bundle_tile: Tile,
    bundle_path: String,
    tile_path: String,
}

impl Loc {
    fn first_index(&self) -> u64 {
        self.bundle_tile.index.saturating_mul(tile::TILE_WIDTH)
    }

    fn entry_location(&self, pos: usize) -> String {
        let index = self.first_index().saturating_add(pos as u64);
        format!("{}, entry {pos} (log index {index})", self.bundle_path)
    }

    fn hash_location(&self, pos: usize) -> String {
        format!("{}, hash {pos}", self.tile_path)
    }
}

/// One bundle and its level-0 tile, fetched.
struct Work {
    loc: Loc,
    level0: Tile,
    bundle: Vec<u8>,
    tile_bytes: Vec<u8>,
}

/// The first entry of a bundle, as far as the links between bundles need it.
#[derive(Debug, Clone, Copy)]
struct Edge {
    prev: Hash,
    time: u64,
}

/// The last entry of a bundle.
#[derive(Debug, Clone, Copy)]
struct Tail {
    leaf: Hash,
    time: u64,
    /// The tile hash, when the leaf hash did not match it (resolved by the next entry).
    mismatch: Option<Hash>,
}

/// What verifying one bundle found.
struct Outcome {
    first: Option<Edge>,
    result: Result<Summary, Failure>,
}

struct Summary {
    last: Tail,
    kinds: Vec<(u16, u64)>,
    full_root: Option<Hash>,
}

/// Fetches the bundles `tiles` and their level-0 tiles.
fn fetch_batch(files: &mut dyn LogFiles, tiles: &[Tile], size: u64) -> Result<Vec<Work>, Failure> {
    let mut batch = Vec::with_capacity(tiles.len());
    for &bundle_tile in tiles {
        let level0 = Tile {
            kind: TileKind::Hash { level: 0 },
            index: bundle_tile.index,
            width: bundle_tile.width,
        };
        let (bundle, bundle_path) = fetch_tile(files, &bundle_tile, size)?;
        let (tile_bytes, tile_path) = fetch_tile(files, &level0, size)?;
        let loc = Loc {
            bundle_tile,
            bundle_path,
            tile_path,
        };
        batch.push(Work {
            loc,
            level0,
            bundle,
            tile_bytes,
        });
    }
    Ok(batch)
}

/// Verifies a batch of bundles on `threads` threads, running `meanwhile` on this one; returns
/// the outcomes in bundle order and what `meanwhile` returned.
fn run_batch<T>(
    batch: &[Work],
    threads: usize,
    meanwhile: impl FnOnce() -> T,
) -> (Vec<Outcome>, T) {
    if threads <= 1 || batch.len() <= 1 {
        let out = batch.iter().map(verify_bundle).collect();
        return (out, meanwhile());
    }
    let per = batch.len().div_ceil(threads).max(1);
    std::thread::scope(|s| {
        let handles: Vec<_> = batch
            .chunks(per)
            .map(|chunk| s.spawn(move || chunk.iter().map(verify_bundle).collect::<Vec<_>>()))
            .collect();
        let other = meanwhile();
        let mut out = Vec::with_capacity(batch.len());
        for (h, chunk) in handles.into_iter().zip(batch.chunks(per)) {
            match h.join() {
                Ok(v) => out.extend(v),
                // Verification does not panic; if a worker did, its bundles count as failed.
                Err(_) => out.extend(chunk.iter().map(|w| Outcome {
                    first: None,
                    result: Err(Failure::new(
                        w.loc.bundle_path.as_str(),
                        "internal error: verification thread panicked",
                    )),
                })),
            }
        }
        (out, other)
    })
}

/// Verifies one bundle against its level-0 tile, except the first entry's link to the bundle
/// before (checked by [`Chain::absorb`]).
fn verify_bundle(w: &Work) -> Outcome {
    let mut first = None;
    let result = verify_bundle_inner(w, &mut first);
    Outcome { first, result }
}

fn verify_bundle_inner(w: &Work, first: &mut Option<Edge>) -> Result<Summary, Failure> {
    let loc = &w.loc;
    let entries = tile::parse_bundle(&w.bundle, &loc.bundle_tile)
        .map_err(|e| Failure::new(loc.bundle_path.as_str(), e.to_string()))?;
    let hashes = tile::parse_hash_tile(&w.tile_bytes, &w.level0)
        .map_err(|e| Failure::new(loc.tile_path.as_str(), e.to_string()))?;
    if entries.len() != hashes.len() {
        return Err(Failure::new(
            loc.bundle_path.as_str(),
            format!(
                "{} entries but {} has {} hashes",
                entries.len(),
                loc.tile_path,
                hashes.len()
            ),
        ));
    }
    let mut kinds: Vec<(u16, u64)> = Vec::new();
    let mut last: Option<Tail> = None;
    let base = loc.first_index();
    let leaves = leaf_hashes(&entries);
    for (pos, ((bytes, tile_hash), &leaf)) in entries
        .iter()
        .zip(hashes.iter())
        .zip(leaves.iter())
        .enumerate()
    {
        let entry = Entry::decode(bytes)
            .map_err(|e| Failure::new(loc.entry_location(pos), format!("does not decode: {e}")))?;
        match last {
            Some(prev) => {
                if let Some(th) = prev.mismatch {
                    return Err(blame(loc, pos.saturating_sub(1), &prev, &th, &entry.prev));
                }
            }
            None => {
                *first = Some(Edge {
                    prev: entry.prev,
                    time: entry.time_ms,
                });
            }
        }
        let want_index = base.saturating_add(pos as u64);
        if entry.index != want_index {
            return Err(Failure::new(
                loc.entry_location(pos),
                format!(
                    "says it is entry {} but sits at log index {want_index} \
                     (entries deleted, inserted or reordered)",
                    entry.index
                ),
            ));
        }
        if let Some(prev) = last {
            check_link(loc, pos, &entry, &prev)?;
        }
        let code = entry.kind.code();
        match kinds.iter_mut().find(|(c, _)| *c == code) {
            Some((_, n)) => *n = n.saturating_add(1),
            None => kinds.push((code, 1)),
        }
        last = Some(Tail {
            leaf,
            time: entry.time_ms,
            mismatch: (leaf != *tile_hash).then_some(*tile_hash),
        });
    }
    let last = last.ok_or_else(|| Failure::new(loc.bundle_path.as_str(), "empty bundle"))?;
    // The tile's own root: if the last hash disagrees with the entry, the failure is reported
    // before this is used, except for the log's last entry, where the tile's view is wanted.
    let full_root = loc
        .bundle_tile
        .is_full()
        .then(|| tile::subtree_root(&hashes));
    Ok(Summary {
        last,
        kinds,
        full_root,
    })
}

/// Checks that the entry at `pos` links to the one before it (`prev`) and is not older.
fn check_link(loc: &Loc, pos: usize, entry: &Entry, prev: &Tail) -> Result<(), Failure> {
    link_failure(loc, pos, &entry.prev, entry.time_ms, Some(prev)).map_or(Ok(()), Err)
}

/// The failure, if any, of an entry's `prev` and `time` against the entry before it (`None`:
/// the entry is entry 0 of the log).
fn link_failure(
    loc: &Loc,
    pos: usize,
    prev_field: &Hash,
    time: u64,
    before: Option<&Tail>,
) -> Option<Failure> {
    let (want, what) = match before {
        Some(b) => (b.leaf, "the leaf hash of the entry before it"),
        None => ([0u8; 32], "all zeros, as entry 0's must be"),
    };
    if *prev_field != want {
        return Some(Failure::new(
            loc.entry_location(pos),
            format!("prev {} is not {what} ({})", hex(prev_field), hex(&want)),
        ));
    }
    match before {
        Some(b) if time < b.time => Some(Failure::new(
            loc.entry_location(pos),
            format!(
                "time {time} ms is before the previous entry's {} ms (time never goes back in \
                 the log)",
                b.time
            ),
        )),
        _ => None,
    }
}

/// An entry's leaf hash `tail.leaf` differs from its tile hash `tile_hash`; the next entry's
/// `next_prev` says which one was altered.
fn blame(loc: &Loc, pos: usize, tail: &Tail, tile_hash: &Hash, next_prev: &Hash) -> Failure {
    if next_prev == &tail.leaf {
        Failure::new(
            loc.hash_location(pos),
            format!(
                "is {} but entry {pos} of {} hashes to {} (the next entry links to the entry, so \
                 the tile was altered)",
                hex(tile_hash),
                loc.bundle_path,
                hex(&tail.leaf)
            ),
        )
    } else if next_prev == tile_hash {
        Failure::new(
            loc.entry_location(pos),
            format!(
                "hashes to {} but {} says {} (the next entry links to the tile's hash, so the \
                 entry was altered)",
                hex(&tail.leaf),
                loc.hash_location(pos),
                hex(tile_hash)
            ),
        )
    } else {
        Failure::new(
            loc.entry_location(pos),
            format!(
                "hashes to {} but {} says {}, and the next entry links to neither",
                hex(&tail.leaf),
                loc.hash_location(pos),
                hex(tile_hash)
            ),
        )
    }
}

/// The state carried from bundle to bundle, in log order.
#[derive(Default)]
struct Chain {
    /// The previous bundle's last entry, its location and position in the bundle.
    last: Option<(Tail, Loc, usize)>,
    first_time: Option<u64>,
    kinds: BTreeMap<u16, u64>,
    full_roots: Vec<Hash>,
}

impl Chain {
    fn absorb(&mut self, w: &Work, outcome: Outcome) -> Result<(), Failure> {
        let before = self.last.as_ref().map(|(t, _, _)| t);
        if let Some((prev, prev_loc, pos)) = &self.last
            && let Some(th) = prev.mismatch
        {
            // Settle the previous bundle's last entry with this bundle's first.
            return Err(match outcome.first {
                Some(f) => blame(prev_loc, *pos, prev, &th, &f.prev),
                None => Failure::new(
                    prev_loc.entry_location(*pos),
                    format!(
                        "hashes to {} but {} says {}",
                        hex(&prev.leaf),
                        prev_loc.hash_location(*pos),
                        hex(&th)
                    ),
                ),
            });
        }
        if let Some(first) = outcome.first {
            if let Some(f) = link_failure(&w.loc, 0, &first.prev, first.time, before) {
                return Err(f);
            }
            if self.first_time.is_none() {
                self.first_time = Some(first.time);
            }
        }
        let summary = outcome.result?;
        for (code, n) in summary.kinds {
            let c = self.kinds.entry(code).or_insert(0);
            *c = c.saturating_add(n);
        }
        if let Some(root) = summary.full_root {
            self.full_roots.push(root);
        }
        let pos = usize::from(w.loc.bundle_tile.width).saturating_sub(1);
        self.last = Some((summary.last, w.loc.clone(), pos));
        Ok(())
    }

    /// The log's last entry, if its leaf hash did not match its tile hash: it has no successor
    /// to settle which of the two was altered, so the signed root will.
    fn suspect(&self) -> Option<Suspect> {
        let (tail, loc, pos) = self.last.as_ref()?;
        let tile_hash = tail.mismatch?;
        Some(Suspect {
            loc: loc.clone(),
            pos: *pos,
            leaf: tail.leaf,
            tile_hash,
        })
    }
}

/// The log's last entry, whose leaf hash differs from its level-0 tile hash.
struct Suspect {
    loc: Loc,
    pos: usize,
    leaf: Hash,
    tile_hash: Hash,
}

/// Decides, with the signed root, whether the last entry or its tile hash was altered: the tree
/// root is computed once with the tile's hashes and once with the entry's leaf hash (from the
/// roots of the full level-0 tiles, already checked against the entries, and the last tile).
fn settle_last(
    s: &Suspect,
    full_roots: &[Hash],
    last_tile: &[Hash],
    size: u64,
    signed_root: &Hash,
) -> Failure {
    let last_full = s.loc.bundle_tile.is_full();
    let mut entry_tile = last_tile.to_vec();
    if let Some(h) = entry_tile.get_mut(s.pos) {
        *h = s.leaf;
    }
    let mut entry_roots = full_roots.to_vec();
    if last_full && let Some(r) = entry_roots.last_mut() {
        *r = tile::subtree_root(&entry_tile);
    }
    let partial_of = |t: &[Hash]| -> Vec<Hash> { if last_full { Vec::new() } else { t.to_vec() } };
    let root_of = |roots: &[Hash], partial: Vec<Hash>| {
        let mut view = Level0View {
            full_roots: roots,
            partial,
            partial_start: (roots.len() as u64).saturating_mul(tile::TILE_WIDTH),
        };
        merkle::tree_hash(&mut view, size).ok()
    };
    let tile_root = root_of(full_roots, partial_of(last_tile));
    let entry_root = root_of(&entry_roots, partial_of(&entry_tile));
    if entry_root.as_ref() == Some(signed_root) {
        Failure::new(
            s.loc.hash_location(s.pos),
            format!(
                "is {} but the log's last entry ({}, entry {}) hashes to {}, which gives the \
                 checkpoint's signed root: the tile was altered",
                hex(&s.tile_hash),
                s.loc.bundle_path,
                s.pos,
                hex(&s.leaf)
            ),
        )
    } else if tile_root.as_ref() == Some(signed_root) {
        Failure::new(
            s.loc.entry_location(s.pos),
            format!(
                "hashes to {} but {} says {}, which gives the checkpoint's signed root: the entry \
                 was altered",
                hex(&s.leaf),
                s.loc.hash_location(s.pos),
                hex(&s.tile_hash)
            ),
        )
    } else {
        Failure::new(
            s.loc.entry_location(s.pos),
            format!(
                "the log's last entry hashes to {} but {} says {}, and neither gives the \
                 checkpoint's signed root",
                hex(&s.leaf),
                s.loc.hash_location(s.pos),
                hex(&s.tile_hash)
            ),
        )
    }
}

/// The tree as the level-0 data has it: the roots of the full level-0 tiles, then the hashes of
/// the last, partial one.
struct Level0View<'a> {
    full_roots: &'a [Hash],
    partial: Vec<Hash>,
    partial_start: u64,
}

impl merkle::SubtreeSource for Level0View<'_> {
    type Error = ();

    fn subtree(&mut self, level: u8, index: u64) -> Result<Hash, ()> {
        let height = u32::from(tile::TILE_HEIGHT);
        let span = |shift: u32| 1u64.checked_shl(shift).ok_or(());
        let slice = |hashes: &[Hash], start: u64, count: u64| -> Result<Hash, ()> {
            let start = usize::try_from(start).map_err(|_| ())?;
            let count = usize::try_from(count).map_err(|_| ())?;
            let end = start.checked_add(count).ok_or(())?;
            hashes.get(start..end).map(tile::subtree_root).ok_or(())
        };
        if u32::from(level) >= height {
            let shift = u32::from(level).saturating_sub(height);
            let count = span(shift)?;
            slice(self.full_roots, index.checked_mul(count).ok_or(())?, count)
        } else {
            let count = span(u32::from(level))?;
            let first = index.checked_mul(count).ok_or(())?;
            let offset = first.checked_sub(self.partial_start).ok_or(())?;
            slice(&self.partial, offset, count)
        }
    }
}

/// Parses a consistency (or inclusion) proof given as one base64 hash per line (blank lines
/// and surrounding whitespace ignored). Errors name the line.
pub fn parse_hash_lines(text: &[u8], location: &str) -> Result<Vec<Hash>, Failure> {
    let text = std::str::from_utf8(text)
        .map_err(|e| Failure::new(location, format!("not UTF-8 text: {e}")))?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(line)
            .map_err(|e| {
                Failure::new(
                    format!("{location}, line {}", i.saturating_add(1)),
                    format!("not base64: {e}"),
                )
            })?;
        let h = hash_from_slice(&bytes).ok_or_else(|| {
            Failure::new(
                format!("{location}, line {}", i.saturating_add(1)),
                format!("{} bytes, not a 32-byte hash", bytes.len()),
            )
        })?;
        out.push(h);
    }
    Ok(out)
}

/// Verifies that the checkpoint `new` extends the checkpoint `old`: both verify against
/// `keys` (every key must have signed each), they have the same origin, `old.size <= new.size`
/// and `proof` is a valid RFC 9162 consistency proof between their roots.
pub fn verify_consistency_notes(
    old: &[u8],
    new: &[u8],
    proof: &[Hash],
    keys: &[Vkey],
) -> Result<ConsistencyReport, Failure> {
    let old_v = verify_signed_checkpoint("old checkpoint", old, keys)?;
    let new_v = verify_signed_checkpoint("new checkpoint", new, keys)?;
    let (o, n) = (&old_v.checkpoint, &new_v.checkpoint);
    if o.origin != n.origin {
        return Err(Failure::new(
            "new checkpoint",
            format!(
                "origin {:?} is not the old checkpoint's {:?}: not the same log",
                n.origin, o.origin
            ),
        ));
    }
    if o.size > n.size {
        return Err(Failure::new(
            "new checkpoint",
            format!(
                "size {} is smaller than the old checkpoint's {}",
                n.size, o.size
            ),
        ));
    }
    if o.size == 0 {
        // Every tree extends the empty tree: there is nothing to prove (RFC 9162 defines no
        // proof for it), but the old checkpoint must really be the empty tree's.
        if o.root != crate::hash::empty_root() {
            return Err(Failure::new(
                "old checkpoint",
                format!(
                    "size 0 with root {}, not the empty tree's",
                    hash_to_base64(&o.root)
                ),
            ));
        }
        if !proof.is_empty() {
            return Err(Failure::new(
                "consistency proof",
                format!(
                    "{} hashes, but the empty tree is extended by any tree without a proof",
                    proof.len()
                ),
            ));
        }
    } else {
        verify_tree_consistency(o, n, proof)?;
    }
    Ok(ConsistencyReport {
        old: o.clone(),
        new: n.clone(),
        old_verified_by: old_v.verified_by.clone(),
        new_verified_by: new_v.verified_by.clone(),
        proof_len: proof.len(),
    })
}

fn verify_tree_consistency(o: &Checkpoint, n: &Checkpoint, proof: &[Hash]) -> Result<(), Failure> {
    merkle::verify_consistency(o.size, n.size, &o.root, &n.root, proof).map_err(|e| {
        Failure::new(
            "consistency proof",
            format!(
                "does not prove that the tree of {} entries extends the tree of {}: {e}",
                n.size, o.size
            ),
        )
    })
}

/// Computes the consistency proof between tree sizes `old_size` and `new_size` from the hash
/// tiles of a log. The log may have grown past `new_size`: a partial tile of `new_size` that is
/// gone is read from the wider tile that replaced it (hash tiles only ever grow at the end). The
/// proof is only as good as the files: verify it with [`verify_consistency_notes`].
pub fn consistency_proof_from_files(
    files: &mut dyn LogFiles,
    old_size: u64,
    new_size: u64,
) -> Result<Vec<Hash>, Failure> {
    if old_size == 0 && new_size > 0 {
        return Ok(Vec::new()); // every tree extends the empty tree
    }
    let mut src = TileSource::new(new_size, |t: &Tile| -> Result<Vec<u8>, Failure> {
        fetch_tile(files, t, new_size).map(|(bytes, _)| bytes)
    });
    merkle::consistency_proof(&mut src, old_size, new_size)
        .map_err(|e| tree_failure("consistency proof from tiles", e))
}

/// Reads tile or entry bundle `t` for a log of `size` entries; returns its bytes and the path
/// they were read from. A partial file that is gone is read from the full one or from a wider
/// partial one of the same index, taking the first `t.width` hashes or entries (tlog-tiles lets
/// a log delete a partial tile once the full tile exists, and the content only ever grows at
/// the end; whatever is read is verified all the same).
fn fetch_tile(files: &mut dyn LogFiles, t: &Tile, size: u64) -> Result<(Vec<u8>, String), Failure> {
    let path = t.path();
    let missing = match files.get(&path) {
        Ok(Some(bytes)) => return Ok((bytes, path)),
        Ok(None) => Failure::new(
            path.as_str(),
            if t.is_full() {
                format!("missing (a log of {size} entries must have it)")
            } else {
                format!(
                    "missing (a log of {size} entries must have it, or a wider one of the same index)"
                )
            },
        ),
        Err(e) => return Err(Failure::new(path.as_str(), format!("cannot be read: {e}"))),
    };
    if t.is_full() {
        return Err(missing);
    }
    let full = tile::TILE_WIDTH as u16;
    for width in std::iter::once(full).chain(t.width.saturating_add(1)..full) {
        let wider = Tile { width, ..*t };
        let wider_path = wider.path();
        match files.get(&wider_path) {
            Ok(Some(bytes)) => {
                return match prefix(t, &bytes) {
                    Some(p) => Ok((p, wider_path)),
                    None => Err(Failure::new(
                        wider_path.as_str(),
                        format!(
                            "read in place of {path}, but does not begin with {} complete {}",
                            t.width,
                            if t.kind == TileKind::Entries {
                                "entries"
                            } else {
                                "hashes"
                            }
                        ),
                    )),
                };
            }
            Ok(None) => {}
            Err(e) => {
                return Err(Failure::new(
                    wider_path.as_str(),
                    format!("cannot be read: {e}"),
                ));
            }
        }
    }
    Err(missing)
}

/// The first `t.width` hashes or entries of a wider tile's bytes.
fn prefix(t: &Tile, bytes: &[u8]) -> Option<Vec<u8>> {
    let width = usize::from(t.width);
    let len = match t.kind {
        TileKind::Hash { .. } => width.checked_mul(crate::hash::HASH_SIZE)?,
        TileKind::Entries => {
            let mut pos = 0usize;
            for _ in 0..width {
                let len_bytes = bytes.get(pos..pos.checked_add(2)?)?;
                let n = usize::from(u16::from_be_bytes([
                    *len_bytes.first()?,
                    *len_bytes.get(1)?,
                ]));
                pos = pos.checked_add(2)?.checked_add(n)?;
            }
            pos
        }
    };
    bytes.get(..len).map(<[u8]>::to_vec)
}

/// Verifies a `c2sp.org/tlog-proof@v1` receipt: the entry (from `entry_bytes`, else the
/// receipt's `extra` line; if both, they must be equal) decodes and its index is the receipt's,
/// the checkpoint verifies against `keys` (every key must have signed) and the inclusion proof
/// binds the entry's leaf hash to the checkpoint's root.
pub fn verify_receipt(
    proof_bytes: &[u8],
    entry_bytes: Option<&[u8]>,
    keys: &[Vkey],
) -> Result<ReceiptReport, Failure> {
    let proof = TlogProof::parse(proof_bytes).map_err(|e| Failure::new("proof", e.to_string()))?;
    let (bytes, source): (&[u8], &str) = match (entry_bytes, proof.extra.as_deref()) {
        (Some(given), Some(extra)) => {
            if given != extra {
                return Err(Failure::new(
                    "entry",
                    "the entry given differs from the one in the receipt's extra line",
                ));
            }
            (given, "entry")
        }
        (Some(given), None) => (given, "entry"),
        (None, Some(extra)) => (extra, "proof, extra line"),
        (None, None) => {
            return Err(Failure::new(
                "proof",
                "no entry: the receipt has no extra line, so the entry must be given",
            ));
        }
    };
    let entry =
        Entry::decode(bytes).map_err(|e| Failure::new(source, format!("does not decode: {e}")))?;
    if entry.index != proof.index {
        return Err(Failure::new(
            source,
            format!(
                "is entry {} but the receipt is for index {}",
                entry.index, proof.index
            ),
        ));
    }
    // The checkpoint, with the failing signature named; then the inclusion proof (what
    // `TlogProof::verify` checks, without verifying the signatures twice).
    let verified = verify_signed_checkpoint("proof, checkpoint", &proof.checkpoint, keys)?;
    let cp = &verified.checkpoint;
    let leaf = leaf_hash(bytes);
    if proof.index >= cp.size {
        return Err(Failure::new(
            "proof",
            format!(
                "index {} is not below the checkpoint's tree size {}",
                proof.index, cp.size
            ),
        ));
    }
    merkle::verify_inclusion(proof.index, cp.size, &leaf, &proof.proof, &cp.root).map_err(|m| {
        Failure::new(
            "proof, inclusion proof",
            format!(
                "does not bind entry {} (leaf {}) to the checkpoint's root: {m}",
                proof.index,
                hex(&leaf)
            ),
        )
    })?;
    Ok(ReceiptReport {
        entry,
        leaf,
        index: proof.index,
        checkpoint: verified.checkpoint.clone(),
        verified_by: verified.verified_by.clone(),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use ed25519_dalek::Signer as _;

    use super::*;
    use crate::entry::{Kind, Outcome};
    use crate::merkle::{MemoryTree, SubtreeSource as _};
    use crate::note::NoteSignature;

    const ORIGIN: &str = "example.com/unit";

    fn entries(n: u64) -> Vec<Vec<u8>> {
        let mut prev = [0u8; 32];
        (0..n)
            .map(|index| {
                let bytes = Entry {
                    index,
                    time_ms: 1_000 + index,
                    prev,
                    kind: if index % 3 == 0 {
                        Kind::Refusal
                    } else {
                        Kind::Inference
                    },
                    node: "n".into(),
                    principal: "p".into(),
                    resource: "r".into(),
                    outcome: Outcome::Ok,
                    reason: String::new(),
                    model: None,
                    input: None,
                    output: None,
                    attrs: vec![],
                }
                .encode()
                .unwrap();
                prev = leaf_hash(&bytes);
                bytes
            })
            .collect()
    }

    /// The files of a log of `n` entries, signed by an Ed25519 key, and the key.
    fn log(n: u64) -> (BTreeMap<String, Vec<u8>>, Vec<Vkey>, MemoryTree) {
        let es = entries(n);
        let mut tree = MemoryTree::new();
        es.iter().for_each(|e| tree.push(leaf_hash(e)));
        let mut files = BTreeMap::new();
        for b in Tile::entry_bundles_for_size(n) {
            let s = (b.index * 256) as usize;
            let items: Vec<&[u8]> = es[s..s + usize::from(b.width)]
                .iter()
                .map(Vec::as_slice)
                .collect();
            files.insert(b.path(), tile::encode_bundle(&items).unwrap());
        }
        for t in Tile::hash_tiles_for_size(n) {
            let TileKind::Hash { level } = t.kind else {
                panic!()
            };
            let bytes: Vec<u8> = (0..u64::from(t.width))
                .flat_map(|i| tree.subtree(8 * level, t.index * 256 + i).unwrap())
                .collect();
            files.insert(t.path(), bytes);
        }
        let key = ed25519_dalek::SigningKey::from_bytes(&[5; 32]);
        let vkey = Vkey::from_ed25519(ORIGIN, key.verifying_key());
        let text = Checkpoint {
            origin: ORIGIN.into(),
            size: n,
            root: tree.root(),
            extensions: vec![],
        }
        .to_text();
        let note = Note {
            signatures: vec![NoteSignature {
                name: ORIGIN.into(),
                key_id: vkey.key_id,
                signature: key.sign(text.as_bytes()).to_bytes().to_vec(),
            }],
            text,
        };
        files.insert("checkpoint".into(), note.to_bytes());
        (files, vec![vkey], tree)
    }

    #[test]
    fn logs_of_many_shapes_verify_on_any_thread_count() {
        for n in [0u64, 1, 2, 255, 256, 257, 511, 512, 513, 1000] {
            let (mut files, keys, tree) = log(n);
            for threads in [1, 2, 3] {
                let r = verify_log_threads(&mut files, &keys, threads).unwrap();
                assert_eq!(r.size, n);
                assert_eq!(r.root, tree.root());
                let counted: u64 = r.kinds.iter().map(|(_, c)| c).sum();
                assert_eq!(counted, n);
                assert_eq!(r.first_time_ms, (n > 0).then_some(1_000));
                assert_eq!(r.last_time_ms, (n > 0).then(|| 1_000 + n - 1));
            }
        }
    }

    #[test]
    fn the_first_failure_in_log_order_is_reported_whatever_the_threads() {
        let (files, keys, _) = log(1000);
        let mut broken = files.clone();
        // Two corruptions: bundle 3 (partial) and bundle 1; bundle 1's is reported.
        for path in ["tile/entries/003.p/232", "tile/entries/001"] {
            let b = broken.get_mut(path).unwrap();
            b[2 + 3] ^= 0xff; // entry 0's kind code
        }
        for threads in [1, 2, 4] {
            let f = verify_log_threads(&mut broken, &keys, threads).unwrap_err();
            assert_eq!(f.location, "tile/entries/001, entry 0 (log index 256)");
        }
    }

    #[test]
    fn partial_files_replaced_by_wider_ones_are_read_from_those() {
        // The files of a log of 1,100 entries with the checkpoint of its first 1,000: the
        // partial files of size 1,000 are gone, the full and wider ones hold their content.
        let (mut files, keys, tree) = log(1100);
        let (small, _, _) = log(1000);
        files.insert("checkpoint".into(), small["checkpoint"].clone());
        assert!(!files.contains_key("tile/entries/003.p/232"));
        let r = verify_log(&mut files, &keys).unwrap();
        assert_eq!(r.size, 1000);
        let mut t = tree.clone();
        assert_eq!(r.root, merkle::tree_hash(&mut t, 1000).unwrap());
        // Corruption in the wider file is still found, and named where it was read.
        files.get_mut("tile/0/003").unwrap()[32 * 7] ^= 1;
        let f = verify_log(&mut files, &keys).unwrap_err();
        assert_eq!(f.location, "tile/0/003, hash 7");
        files.get_mut("tile/0/003").unwrap()[32 * 7] ^= 1;
        // A wider bundle too short for the width wanted.
        files.insert("tile/entries/003".into(), vec![0, 5, 1]);
        let f = verify_log(&mut files, &keys).unwrap_err();
        assert_eq!(f.location, "tile/entries/003");
        files.remove("tile/entries/003");
        let f = verify_log(&mut files, &keys).unwrap_err();
        assert_eq!(f.location, "tile/entries/003.p/232");
        assert!(f.what.starts_with("missing"), "{}", f.what);
    }

    #[test]
    fn level0_view_matches_the_tree() {
        let (_, _, tree) = log(1000);
        let mut t = tree.clone();
        let full: Vec<Hash> = (0..3).map(|i| t.subtree(8, i).unwrap()).collect();
        let partial: Vec<Hash> = tree.leaves()[768..].to_vec();
        let mut view = Level0View {
            full_roots: &full,
            partial,
            partial_start: 768,
        };
        assert_eq!(merkle::tree_hash(&mut view, 1000).unwrap(), tree.root());
    }

    #[test]
    fn consistency_from_files_reads_wider_tiles() {
        let (mut files, _, tree) = log(1000);
        for (old, new) in [(1u64, 300u64), (300, 700), (256, 512), (999, 1000)] {
            let proof = consistency_proof_from_files(&mut files, old, new).unwrap();
            let (mut a, mut b) = (tree.clone(), tree.clone());
            merkle::verify_consistency(
                old,
                new,
                &merkle::tree_hash(&mut a, old).unwrap(),
                &merkle::tree_hash(&mut b, new).unwrap(),
                &proof,
            )
            .unwrap();
        }
    }

    #[test]
    fn hash_lines() {
        let h = [3u8; 32];
        let text = format!("{}\n\n  {}  \n", hash_to_base64(&h), hash_to_base64(&h));
        assert_eq!(parse_hash_lines(text.as_bytes(), "p").unwrap(), vec![h, h]);
        let f = parse_hash_lines(b"AAAA\n", "p").unwrap_err();
        assert_eq!(f.location, "p, line 1");
        let f = parse_hash_lines(b"!!\n", "p").unwrap_err();
        assert_eq!(f.location, "p, line 1");
        assert_eq!(f.to_string(), format!("p, line 1: {}", f.what));
    }

    #[test]
    fn no_keys_is_a_failure() {
        let (mut files, _, _) = log(3);
        let f = verify_log(&mut files, &[]).unwrap_err();
        assert_eq!(f.location, "checkpoint");
    }
}
