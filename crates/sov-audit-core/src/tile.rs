//! The C2SP tlog-tiles layout: tile paths, hash tiles, entry bundles, and a
//! [`SubtreeSource`] over stored tiles.
//!
//! # Tiles
//!
//! A log's Merkle tree is stored as *tiles* of height [`TILE_HEIGHT`] (8): the tile at tile level
//! `l` and index `n` holds up to [`TILE_WIDTH`] (256) consecutive hashes, hash `i` being the
//! complete subtree at Merkle level `8 * l` and index `256 * n + i`, that is
//! `MTH(D[(256n + i) * 256^l : (256n + i + 1) * 256^l])`. Level 0 tiles hold leaf hashes. A
//! *full* tile has 256 hashes; the rightmost tile of each level is usually *partial*: in a tree
//! of size `s` the level-`l` tiles hold `floor(s / 256^l)` hashes, so the partial tile has
//! `floor(s / 256^l) mod 256` of them (and does not exist when that is 0).
//!
//! Paths: `tile/<L>/<N>[.p/<W>]` for hash tiles and `tile/entries/<N>[.p/<W>]` for entry
//! bundles, where `<L>` is the decimal level (no leading zeros, 0..=63), `<N>` the index in
//! zero-padded 3-digit groups, all but the last prefixed with `x` (1234067 is `x001/x234/067`),
//! and `.p/<W>` marks a partial tile of width `<W>` (1..=255, no leading zeros).
//! [`Tile::parse_path`] accepts exactly the paths [`Tile::path`] produces.
//!
//! # Entry bundles
//!
//! An entry bundle holds the entries whose leaf hashes form the level 0 tile of the same index
//! and width, each as a big-endian `u16` length followed by the entry's bytes.
//!
//! # Subtrees from tiles
//!
//! A complete subtree at Merkle level `k` is found in the tile at tile level `k / 8`: its
//! `2^(k % 8)` hashes at that tile level lie inside one tile (aligned), and are hashed up the
//! remaining `k % 8` levels ([`subtree_root`]). [`TileSource`] does this, fetching each tile it
//! needs once, with the width that the tree size calls for.

use std::collections::HashMap;
use std::fmt;

use crate::hash::{HASH_SIZE, Hash, empty_root};
use crate::merkle::SubtreeSource;

/// The height of a tile: the number of Merkle tree levels one tile spans.
pub const TILE_HEIGHT: u8 = 8;

/// The width of a full tile, in hashes (or entries, for an entry bundle): `2^TILE_HEIGHT`.
pub const TILE_WIDTH: u64 = 256;

/// The highest tile level a path may name.
pub const MAX_TILE_LEVEL: u8 = 63;

/// What a tile holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TileKind {
    /// Merkle tree hashes at tile level `level` (0..=63; level 0 is leaf hashes).
    Hash {
        /// The tile level (Merkle level `8 * level`).
        level: u8,
    },
    /// An entry bundle: the entries behind a level 0 tile.
    Entries,
}

/// One tile or entry bundle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Tile {
    /// What the tile holds.
    pub kind: TileKind,
    /// The tile's index within its level.
    pub index: u64,
    /// The number of hashes (or entries) in it: 1..=256, 256 being a full tile.
    pub width: u16,
}

/// Why a tile path, a hash tile or an entry bundle was rejected.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TileError {
    /// A tile path that is not exactly in the tlog-tiles form.
    #[error("invalid tile path {path:?}: {reason}")]
    Path {
        /// The path as given.
        path: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A tile value that cannot exist (width 0 or above 256, level above 63).
    #[error("invalid tile {tile}: {reason}")]
    InvalidTile {
        /// The tile's path.
        tile: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A hash tile was given where an entry bundle was expected, or the other way round.
    #[error("{tile}: expected {expected}")]
    WrongKind {
        /// The tile's path.
        tile: String,
        /// What was expected ("a hash tile" or "an entry bundle").
        expected: &'static str,
    },
    /// A hash tile's length is not its width times 32 bytes.
    #[error("{tile}: hash tile is {got} bytes, want {want}")]
    HashTileLength {
        /// The tile's path.
        tile: String,
        /// The length found.
        got: usize,
        /// The length a tile of this width has.
        want: usize,
    },
    /// An entry bundle ends inside an entry's length prefix or data.
    #[error("{tile}: entry {entry} at byte offset {offset} is truncated (bundle is {len} bytes)")]
    BundleTruncated {
        /// The bundle's path.
        tile: String,
        /// The entry number within the bundle (0-based).
        entry: usize,
        /// The byte offset where the entry (its length prefix) starts.
        offset: usize,
        /// The bundle's length.
        len: usize,
    },
    /// Bytes follow the last entry of an entry bundle.
    #[error("{tile}: {extra} trailing bytes at byte offset {offset} after entry {entries}")]
    BundleTrailing {
        /// The bundle's path.
        tile: String,
        /// How many entries the bundle should hold (its width).
        entries: usize,
        /// The byte offset where the extra bytes start.
        offset: usize,
        /// How many extra bytes there are.
        extra: usize,
    },
    /// An entry too large for a bundle's `u16` length prefix.
    #[error("entry {entry} is {len} bytes, more than the 65535 an entry bundle can hold")]
    EntryTooLarge {
        /// The entry number (0-based).
        entry: usize,
        /// Its length.
        len: usize,
    },
    /// More entries than a bundle can hold.
    #[error("{count} entries do not fit in one entry bundle (at most 256)")]
    TooManyEntries {
        /// The number of entries given.
        count: usize,
    },
}

/// Why a [`TileSource`] could not produce a subtree hash.
#[derive(Debug, thiserror::Error)]
pub enum TileSourceError<E> {
    /// Fetching a tile failed.
    #[error("fetching a tile failed: {0}")]
    Fetch(E),
    /// A fetched tile is malformed.
    #[error("{0}")]
    Tile(TileError),
    /// The subtree is not a complete subtree of the source's tree.
    #[error(
        "subtree at level {level}, index {index} is not a complete subtree of a tree of size {size}"
    )]
    OutOfRange {
        /// The subtree's Merkle level.
        level: u8,
        /// Its index at that level.
        index: u64,
        /// The tree size.
        size: u64,
    },
}

/// `index` as zero-padded 3-digit groups, all but the last prefixed with `x`.
fn encode_index(index: u64) -> String {
    let mut groups = vec![index % 1000];
    let mut rest = index / 1000;
    while rest > 0 {
        groups.push(rest % 1000);
        rest /= 1000;
    }
    let parts: Vec<String> = groups
        .iter()
        .rev()
        .enumerate()
        .map(|(i, g)| {
            if i + 1 == groups.len() {
                format!("{g:03}")
            } else {
                format!("x{g:03}")
            }
        })
        .collect();
    parts.join("/")
}

/// A decimal number without leading zeros (a lone "0" is allowed), at most `max`.
fn parse_decimal(s: &str, max: u64) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) || (s.len() > 1 && s.starts_with('0'))
    {
        return None;
    }
    s.parse::<u64>().ok().filter(|v| *v <= max)
}

/// Exactly three ASCII digits.
fn parse_group(s: &str) -> Option<u64> {
    if s.len() == 3 && s.bytes().all(|b| b.is_ascii_digit()) {
        s.parse().ok()
    } else {
        None
    }
}

/// Tile-level hash count of a tree of `size` at tile level `level`: `floor(size / 256^level)`.
fn hashes_at_level(size: u64, level: u8) -> u64 {
    u32::from(level)
        .checked_mul(u32::from(TILE_HEIGHT))
        .and_then(|shift| size.checked_shr(shift))
        .unwrap_or(0)
}

impl Tile {
    /// The tile's path: `tile/<L>/<N>[.p/<W>]` or `tile/entries/<N>[.p/<W>]`, for example
    /// `tile/0/x001/x234/067`, `tile/entries/000.p/5`, `tile/1/000.p/1`. A width of 256 (or, for an
    /// invalid tile, above) has no `.p/` suffix; a tile with width 0 gets `.p/0`, which
    /// [`Tile::parse_path`] rejects.
    #[must_use]
    pub fn path(&self) -> String {
        let level = match self.kind {
            TileKind::Hash { level } => level.to_string(),
            TileKind::Entries => "entries".to_string(),
        };
        let mut p = format!("tile/{level}/{}", encode_index(self.index));
        if u64::from(self.width) < TILE_WIDTH {
            p.push_str(&format!(".p/{}", self.width));
        }
        p
    }

    /// Parses a tile path, strictly: `tile/`, then a level (decimal 0..=63 without leading zeros)
    /// or `entries`, then the index as 3-digit groups (all but the last starting with `x`, no
    /// leading `x000` group, so each index has one path), then optionally `.p/<W>` with `W` in
    /// 1..=255 without leading zeros. Nothing else: no empty elements, no `.` or `..`, no
    /// trailing slash, no leading slash.
    pub fn parse_path(path: &str) -> Result<Tile, TileError> {
        let err = |reason: &str| TileError::Path {
            path: path.to_string(),
            reason: reason.to_string(),
        };
        let parts: Vec<&str> = path.split('/').collect();
        let (first, rest) = parts.split_first().ok_or_else(|| err("empty path"))?;
        if *first != "tile" {
            return Err(err("does not start with \"tile/\""));
        }
        let (level_str, rest) = rest.split_first().ok_or_else(|| err("missing the level"))?;
        let kind = if *level_str == "entries" {
            TileKind::Entries
        } else {
            let level = parse_decimal(level_str, u64::from(MAX_TILE_LEVEL))
                .and_then(|l| u8::try_from(l).ok())
                .ok_or_else(|| {
                    err("the level is not \"entries\" or a decimal 0..=63 without leading zeros")
                })?;
            TileKind::Hash { level }
        };
        // A partial tile ends in "<NNN>.p/<W>".
        let (groups, width): (Vec<&str>, u16) = match rest {
            [head @ .., last_group, w] if last_group.ends_with(".p") => {
                let width = parse_decimal(w, TILE_WIDTH - 1)
                    .filter(|w| *w >= 1)
                    .and_then(|w| u16::try_from(w).ok())
                    .ok_or_else(|| {
                        err("the partial width is not a decimal 1..=255 without leading zeros")
                    })?;
                let mut g: Vec<&str> = head.to_vec();
                g.push(last_group.strip_suffix(".p").unwrap_or(last_group));
                (g, width)
            }
            _ => (rest.to_vec(), 256),
        };
        let (last, upper) = groups
            .split_last()
            .ok_or_else(|| err("missing the index"))?;
        let mut index: u64 = 0;
        for (i, g) in upper.iter().enumerate() {
            let digits = g.strip_prefix('x').ok_or_else(|| {
                err("an index element other than the last does not start with 'x'")
            })?;
            let v = parse_group(digits)
                .ok_or_else(|| err("an index element is not 'x' and three digits"))?;
            if i == 0 && v == 0 {
                return Err(err("the index has a leading x000 element"));
            }
            index = index
                .checked_mul(1000)
                .and_then(|x| x.checked_add(v))
                .ok_or_else(|| err("the index does not fit in 64 bits"))?;
        }
        let v =
            parse_group(last).ok_or_else(|| err("the last index element is not three digits"))?;
        index = index
            .checked_mul(1000)
            .and_then(|x| x.checked_add(v))
            .ok_or_else(|| err("the index does not fit in 64 bits"))?;
        Ok(Tile { kind, index, width })
    }

    /// Whether the tile is full (256 wide).
    #[must_use]
    pub fn is_full(&self) -> bool {
        u64::from(self.width) == TILE_WIDTH
    }

    /// Every hash tile (all levels, level 0 first, by index) of a tree of `size`, the partial
    /// ones with their widths. (For a size of 70,000: 273 full level 0 tiles, a level 0 tile of
    /// width 112, a full level 1 tile, a level 1 tile of width 17, a level 2 tile of width 1.)
    /// The list has about `size / 255` tiles.
    #[must_use]
    pub fn hash_tiles_for_size(size: u64) -> Vec<Tile> {
        let mut out = Vec::new();
        for level in 0..=MAX_TILE_LEVEL {
            let count = hashes_at_level(size, level);
            if count == 0 {
                break;
            }
            push_tiles(&mut out, TileKind::Hash { level }, count);
        }
        out
    }

    /// Every entry bundle of a tree of `size`, by index, the last one partial unless `size` is a
    /// multiple of 256.
    #[must_use]
    pub fn entry_bundles_for_size(size: u64) -> Vec<Tile> {
        let mut out = Vec::new();
        push_tiles(&mut out, TileKind::Entries, size);
        out
    }

    /// The hash tile at tile level `level`, as of a tree of `size`, that holds tile-level hash
    /// `n` (the complete subtree at Merkle level `8 * level`, index `n`): index `n / 256`, full
    /// if the tree fills it, otherwise partial with the width the tree size gives. When hash `n`
    /// does not exist yet at that size, the full tile that will hold it.
    #[must_use]
    pub fn for_leaf_at(level: u8, size: u64, n: u64) -> Tile {
        let count = hashes_at_level(size, level);
        let index = n / TILE_WIDTH;
        let start = index.saturating_mul(TILE_WIDTH);
        let width = if n < count {
            count.saturating_sub(start).min(TILE_WIDTH)
        } else {
            TILE_WIDTH
        };
        Tile {
            kind: TileKind::Hash { level },
            index,
            width: u16::try_from(width).unwrap_or(256),
        }
    }

    /// Checks that the tile could exist: width 1..=256 and, for a hash tile, level 0..=63.
    pub fn validate(&self) -> Result<(), TileError> {
        let bad = |reason| TileError::InvalidTile {
            tile: self.path(),
            reason,
        };
        if self.width == 0 || u64::from(self.width) > TILE_WIDTH {
            return Err(bad("width is not 1..=256"));
        }
        if let TileKind::Hash { level } = self.kind
            && level > MAX_TILE_LEVEL
        {
            return Err(bad("level is above 63"));
        }
        Ok(())
    }
}

impl fmt::Display for Tile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.path())
    }
}

/// Appends the tiles holding `count` items of `kind`: full ones, then the partial one if any.
fn push_tiles(out: &mut Vec<Tile>, kind: TileKind, count: u64) {
    let full = count / TILE_WIDTH;
    for index in 0..full {
        out.push(Tile {
            kind,
            index,
            width: 256,
        });
    }
    let partial = count % TILE_WIDTH;
    if partial > 0 {
        out.push(Tile {
            kind,
            index: full,
            width: u16::try_from(partial).unwrap_or(256),
        });
    }
}

/// The hashes in a hash tile's bytes: exactly `width * 32` bytes.
pub fn parse_hash_tile(bytes: &[u8], tile: &Tile) -> Result<Vec<Hash>, TileError> {
    tile.validate()?;
    if tile.kind == TileKind::Entries {
        return Err(TileError::WrongKind {
            tile: tile.path(),
            expected: "a hash tile",
        });
    }
    let want = usize::from(tile.width).saturating_mul(HASH_SIZE);
    if bytes.len() != want {
        return Err(TileError::HashTileLength {
            tile: tile.path(),
            got: bytes.len(),
            want,
        });
    }
    Ok(bytes
        .chunks_exact(HASH_SIZE)
        .filter_map(|c| Hash::try_from(c).ok())
        .collect())
}

/// Encodes entries as an entry bundle: each one as a big-endian `u16` length and its bytes.
/// Errors for an entry over 65,535 bytes or more than 256 entries.
pub fn encode_bundle(entries: &[&[u8]]) -> Result<Vec<u8>, TileError> {
    if entries.len() as u64 > TILE_WIDTH {
        return Err(TileError::TooManyEntries {
            count: entries.len(),
        });
    }
    let total: usize = entries.iter().map(|e| e.len().saturating_add(2)).sum();
    let mut out = Vec::with_capacity(total);
    for (i, e) in entries.iter().enumerate() {
        let len = u16::try_from(e.len()).map_err(|_| TileError::EntryTooLarge {
            entry: i,
            len: e.len(),
        })?;
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(e);
    }
    Ok(out)
}

/// The entries of an entry bundle: exactly `tile.width` length-prefixed entries and nothing
/// after them. Errors name the entry number and byte offset.
pub fn parse_bundle<'a>(bytes: &'a [u8], tile: &Tile) -> Result<Vec<&'a [u8]>, TileError> {
    tile.validate()?;
    if tile.kind != TileKind::Entries {
        return Err(TileError::WrongKind {
            tile: tile.path(),
            expected: "an entry bundle",
        });
    }
    let width = usize::from(tile.width);
    let mut out = Vec::with_capacity(width);
    let mut offset = 0usize;
    for entry in 0..width {
        let truncated = || TileError::BundleTruncated {
            tile: tile.path(),
            entry,
            offset,
            len: bytes.len(),
        };
        let data_start = offset.checked_add(2).ok_or_else(truncated)?;
        let prefix = bytes.get(offset..data_start).ok_or_else(truncated)?;
        let len = match prefix {
            [hi, lo] => usize::from(u16::from_be_bytes([*hi, *lo])),
            _ => return Err(truncated()),
        };
        let end = data_start.checked_add(len).ok_or_else(truncated)?;
        let data = bytes.get(data_start..end).ok_or_else(truncated)?;
        out.push(data);
        offset = end;
    }
    if offset != bytes.len() {
        return Err(TileError::BundleTrailing {
            tile: tile.path(),
            entries: width,
            offset,
            extra: bytes.len().saturating_sub(offset),
        });
    }
    Ok(out)
}

/// MTH of exactly 256 hashes (the hash a full tile contributes to the level above), or of 2^k
/// hashes: the hashes are nodes, combined pairwise with [`node_hash`](crate::hash::node_hash) (no leaf hashing).
///
/// For other counts this is the RFC 6962 shape over the given nodes (largest power of two on the
/// left), and [`empty_root`] for none.
#[must_use]
pub fn subtree_root(hashes: &[Hash]) -> Hash {
    // Pairing neighbours level by level, an odd last node carried up, builds the same tree as
    // RFC 6962's split at the largest power of two (the left subtrees are always full).
    let Some(first) = hashes.first() else {
        return empty_root();
    };
    if hashes.len() == 1 {
        return *first;
    }
    let mut level = crate::hash::parent_level(hashes);
    while level.len() > 1 {
        level = crate::hash::parent_level(&level);
    }
    level.first().copied().unwrap_or_else(empty_root)
}

/// A [`SubtreeSource`] over stored tiles: resolves `subtree(level, index)` by reading the tile at
/// tile level `level / 8` that holds it (fetching via the closure) and hashing up the remaining
/// `level % 8` levels.
///
/// The tiles are those of a tree of a fixed size (given to [`TileSource::new`], normally a
/// verified checkpoint's): each is requested with the width that size calls for (partial tiles
/// as `.p/<W>`), at most once; fetched tiles are kept, parsed, for the source's lifetime.
pub struct TileSource<F> {
    size: u64,
    fetch: F,
    cache: HashMap<Tile, Vec<Hash>>,
}

impl<F> fmt::Debug for TileSource<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TileSource")
            .field("size", &self.size)
            .field("cached_tiles", &self.cache.len())
            .finish_non_exhaustive()
    }
}

impl<F, E> TileSource<F>
where
    F: FnMut(&Tile) -> Result<Vec<u8>, E>,
{
    /// A source for the tree of `size`, reading tiles with `fetch` (given the tile, whose
    /// [`Tile::path`] is where to read it from).
    pub fn new(size: u64, fetch: F) -> Self {
        Self {
            size,
            fetch,
            cache: HashMap::new(),
        }
    }

    /// The tree size the source serves.
    #[must_use]
    pub fn size(&self) -> u64 {
        self.size
    }

    /// How many distinct tiles have been fetched so far.
    #[must_use]
    pub fn tiles_fetched(&self) -> usize {
        self.cache.len()
    }

    /// Forgets the tiles fetched so far (to bound memory when walking a large tree); later
    /// requests fetch them again.
    pub fn clear_cache(&mut self) {
        self.cache.clear();
    }

    fn tile_hashes(&mut self, tile: Tile) -> Result<&[Hash], TileSourceError<E>> {
        if !self.cache.contains_key(&tile) {
            let bytes = (self.fetch)(&tile).map_err(TileSourceError::Fetch)?;
            let hashes = parse_hash_tile(&bytes, &tile).map_err(TileSourceError::Tile)?;
            self.cache.insert(tile, hashes);
        }
        Ok(self.cache.get(&tile).map_or(&[], Vec::as_slice))
    }
}

impl<F, E> SubtreeSource for TileSource<F>
where
    F: FnMut(&Tile) -> Result<Vec<u8>, E>,
{
    type Error = TileSourceError<E>;

    fn subtree(&mut self, level: u8, index: u64) -> Result<Hash, TileSourceError<E>> {
        let out_of_range = TileSourceError::OutOfRange {
            level,
            index,
            size: self.size,
        };
        // The subtree spans leaves [index << level, (index + 1) << level): it must end within size.
        let span = 1u64.checked_shl(u32::from(level)).filter(|_| level < 64);
        let end = span.and_then(|s| index.checked_add(1).and_then(|i| i.checked_mul(s)));
        match end {
            Some(end) if end <= self.size => {}
            _ => return Err(out_of_range),
        }
        let tile_level = level / TILE_HEIGHT;
        let rest = level % TILE_HEIGHT;
        // Its 2^rest hashes at the tile level are [first, first + 2^rest), all inside one tile.
        let count = 1usize << rest;
        let first = index << rest; // cannot overflow: end = (index + 1) << level fits in u64.
        let tile = Tile::for_leaf_at(tile_level, self.size, first);
        let offset = usize::try_from(first % TILE_WIDTH).unwrap_or(usize::MAX);
        let hashes = self.tile_hashes(tile)?;
        let slice = offset
            .checked_add(count)
            .and_then(|end| hashes.get(offset..end));
        match slice {
            Some(s) => Ok(subtree_root(s)),
            None => Err(out_of_range),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use std::cell::RefCell;
    use std::collections::HashSet;

    use super::*;
    use crate::hash::{leaf_hash, node_hash};
    use crate::merkle::{
        MemoryTree, consistency_proof, inclusion_proof, tree_hash, verify_consistency,
        verify_inclusion,
    };

    fn hash_tile(level: u8, index: u64, width: u16) -> Tile {
        Tile {
            kind: TileKind::Hash { level },
            index,
            width,
        }
    }

    #[test]
    fn paths() {
        assert_eq!(hash_tile(0, 1_234_067, 256).path(), "tile/0/x001/x234/067");
        assert_eq!(hash_tile(1, 0, 1).path(), "tile/1/000.p/1");
        assert_eq!(hash_tile(63, 999, 255).path(), "tile/63/999.p/255");
        assert_eq!(hash_tile(2, 1000, 256).path(), "tile/2/x001/000");
        let e = Tile {
            kind: TileKind::Entries,
            index: 0,
            width: 5,
        };
        assert_eq!(e.path(), "tile/entries/000.p/5");
        assert_eq!(e.to_string(), "tile/entries/000.p/5");
        assert_eq!(
            hash_tile(0, u64::MAX, 256).path(),
            "tile/0/x018/x446/x744/x073/x709/x551/615"
        );
        for t in [
            hash_tile(0, 1_234_067, 256),
            hash_tile(1, 0, 1),
            hash_tile(63, 999, 255),
            hash_tile(5, u64::MAX, 17),
            hash_tile(0, 1_000_000, 256),
            e,
        ] {
            assert_eq!(Tile::parse_path(&t.path()), Ok(t), "{}", t.path());
        }
        for index in (0..5000u64).chain([999_999, 1_000_000, 1_000_001]) {
            let t = hash_tile(3, index, 256);
            assert_eq!(Tile::parse_path(&t.path()), Ok(t));
        }
    }

    #[test]
    fn strict_parsing() {
        for bad in [
            "",
            "tile",
            "tile/",
            "tile/0",
            "tile/0/",
            "/tile/0/000",
            "tiles/0/000",
            "tile/00/000",
            "tile/01/000",
            "tile/64/000",
            "tile/-1/000",
            "tile/+1/000",
            "tile/ 1/000",
            "tile/1a/000",
            "tile/entry/000",
            "tile/0/00",
            "tile/0/0000",
            "tile/0/x000",
            "tile/0/x001",
            "tile/0/001/002",
            "tile/0/y001/002",
            "tile/0/X001/002",
            "tile/0/x000/002",
            "tile/0/x01/002",
            "tile/0/x0001/002",
            "tile/0/x001//002",
            "tile/0/000/",
            "tile/0/000.p/",
            "tile/0/000.p/0",
            "tile/0/000.p/00",
            "tile/0/000.p/05",
            "tile/0/000.p/256",
            "tile/0/000.p/1/",
            "tile/0/000.p",
            "tile/0/000.p/1/2",
            "tile/0/000.p/x1",
            "tile/0/x001.p/5",
            "tile/0/.p/5",
            "tile/0/..",
            "tile/0/../000",
            "tile/../0/000",
            "tile/0/./000",
            "tile/0/0a0",
            "tile/0/00\u{663}",
            "tile/0/x018/x446/x744/x073/x709/x551/616",
            "tile/0/x001/x018/x446/x744/x073/x709/x551/615",
            "tile/entries/000.p/256",
            "tile//000",
            "tile/0/000 ",
        ] {
            assert!(Tile::parse_path(bad).is_err(), "accepted {bad:?}");
        }
        let e = Tile::parse_path("tile/0/x001//002").unwrap_err();
        assert!(e.to_string().contains("tile/0/x001//002"), "{e}");
    }

    #[test]
    fn tiles_for_size() {
        let tiles = Tile::hash_tiles_for_size(70_000);
        let l0: Vec<_> = tiles
            .iter()
            .filter(|t| t.kind == TileKind::Hash { level: 0 })
            .collect();
        assert_eq!(l0.len(), 274);
        assert_eq!(l0.iter().filter(|t| t.is_full()).count(), 273);
        assert_eq!(*l0[273], hash_tile(0, 273, 112));
        assert_eq!(
            tiles[274..],
            [
                hash_tile(1, 0, 256),
                hash_tile(1, 1, 17),
                hash_tile(2, 0, 1)
            ]
        );
        assert_eq!(
            Tile::hash_tiles_for_size(256),
            [hash_tile(0, 0, 256), hash_tile(1, 0, 1)]
        );
        assert_eq!(
            Tile::hash_tiles_for_size(300),
            [
                hash_tile(0, 0, 256),
                hash_tile(0, 1, 44),
                hash_tile(1, 0, 1)
            ]
        );
        assert!(Tile::hash_tiles_for_size(0).is_empty());
        assert_eq!(Tile::hash_tiles_for_size(1), [hash_tile(0, 0, 1)]);
        assert_eq!(Tile::hash_tiles_for_size(65_536).len(), 256 + 1 + 1);
        let e = Tile::entry_bundles_for_size(300);
        assert_eq!(e.len(), 2);
        assert_eq!(e[0].path(), "tile/entries/000");
        assert_eq!(e[1].path(), "tile/entries/001.p/44");
        assert!(Tile::entry_bundles_for_size(512).iter().all(Tile::is_full));
    }

    #[test]
    fn for_leaf_at() {
        assert_eq!(Tile::for_leaf_at(0, 300, 5), hash_tile(0, 0, 256));
        assert_eq!(Tile::for_leaf_at(0, 300, 299), hash_tile(0, 1, 44));
        assert_eq!(Tile::for_leaf_at(0, 300, 300), hash_tile(0, 1, 256));
        assert_eq!(Tile::for_leaf_at(1, 300, 0), hash_tile(1, 0, 1));
        assert_eq!(Tile::for_leaf_at(1, 70_000, 272), hash_tile(1, 1, 17));
        assert_eq!(Tile::for_leaf_at(2, 70_000, 0), hash_tile(2, 0, 1));
        assert_eq!(
            Tile::for_leaf_at(63, u64::MAX, u64::MAX).index,
            u64::MAX / 256
        );
        // Agrees with hash_tiles_for_size for every hash of every level.
        for size in [1u64, 255, 256, 257, 300, 65_535, 65_536, 70_000] {
            let all: HashSet<Tile> = Tile::hash_tiles_for_size(size).into_iter().collect();
            for level in 0..3u8 {
                let count = hashes_at_level(size, level);
                for n in (0..count).step_by(37).chain(count.checked_sub(1)) {
                    assert!(
                        all.contains(&Tile::for_leaf_at(level, size, n)),
                        "{size} {level} {n}"
                    );
                }
            }
        }
    }

    #[test]
    fn hash_tiles_and_bundles() {
        let t = hash_tile(0, 0, 2);
        let bytes = [[1u8; 32], [2u8; 32]].concat();
        assert_eq!(
            parse_hash_tile(&bytes, &t).unwrap(),
            vec![[1u8; 32], [2u8; 32]]
        );
        assert_eq!(
            parse_hash_tile(&bytes[..63], &t),
            Err(TileError::HashTileLength {
                tile: "tile/0/000.p/2".into(),
                got: 63,
                want: 64
            })
        );
        assert!(parse_hash_tile(&[bytes.clone(), vec![0]].concat(), &t).is_err());
        assert!(parse_hash_tile(&[], &hash_tile(0, 0, 0)).is_err());
        assert!(parse_hash_tile(&[], &hash_tile(64, 0, 1)).is_err());
        let e = Tile {
            kind: TileKind::Entries,
            index: 0,
            width: 3,
        };
        assert!(parse_hash_tile(&bytes, &e).is_err());

        let entries: [&[u8]; 3] = [b"a", b"", &[7u8; 300]];
        let b = encode_bundle(&entries).unwrap();
        assert_eq!(&b[..5], &[0, 1, b'a', 0, 0]);
        assert_eq!(parse_bundle(&b, &e).unwrap(), entries.to_vec());
        assert!(parse_bundle(&b, &hash_tile(0, 0, 3)).is_err());
        assert_eq!(
            parse_bundle(&b[..b.len() - 1], &e),
            Err(TileError::BundleTruncated {
                tile: "tile/entries/000.p/3".into(),
                entry: 2,
                offset: 5,
                len: b.len() - 1
            })
        );
        assert_eq!(
            parse_bundle(&b[..4], &e),
            Err(TileError::BundleTruncated {
                tile: "tile/entries/000.p/3".into(),
                entry: 1,
                offset: 3,
                len: 4
            })
        );
        let mut longer = b.clone();
        longer.extend_from_slice(&[0, 0]);
        assert_eq!(
            parse_bundle(&longer, &e),
            Err(TileError::BundleTrailing {
                tile: "tile/entries/000.p/3".into(),
                entries: 3,
                offset: b.len(),
                extra: 2
            })
        );
        for cut in 0..b.len() {
            assert!(parse_bundle(&b[..cut], &e).is_err());
        }
        let big = vec![0u8; 65_536];
        assert_eq!(
            encode_bundle(&[b"x", &big]),
            Err(TileError::EntryTooLarge {
                entry: 1,
                len: 65_536
            })
        );
        let max = vec![0u8; 65_535];
        let one = Tile {
            kind: TileKind::Entries,
            index: 0,
            width: 1,
        };
        assert_eq!(
            parse_bundle(&encode_bundle(&[&max]).unwrap(), &one).unwrap()[0].len(),
            65_535
        );
        let many: Vec<&[u8]> = vec![b"x"; 257];
        assert!(encode_bundle(&many).is_err());
        assert!(encode_bundle(&many[..256]).is_ok());
    }

    #[test]
    fn subtree_roots() {
        let leaves: Vec<Hash> = (0..256u32).map(|i| leaf_hash(&i.to_be_bytes())).collect();
        let mut t = MemoryTree::new();
        for l in &leaves {
            t.push(*l);
        }
        assert_eq!(subtree_root(&leaves), t.root());
        for n in 0..=256 {
            assert_eq!(
                subtree_root(&leaves[..n]),
                tree_hash(&mut t, n as u64).unwrap()
            );
        }
    }

    /// The tiles of `tree` as a map from path to bytes, for a tree of `size`.
    fn tiles_of(tree: &mut MemoryTree, size: u64) -> HashMap<String, Vec<u8>> {
        let mut files = HashMap::new();
        for tile in Tile::hash_tiles_for_size(size) {
            let TileKind::Hash { level } = tile.kind else {
                unreachable!()
            };
            let mut bytes = Vec::new();
            for i in 0..u64::from(tile.width) {
                let n = tile.index * 256 + i;
                bytes.extend_from_slice(&tree.subtree(level * 8, n).unwrap());
            }
            files.insert(tile.path(), bytes);
        }
        files
    }

    #[test]
    fn tile_source_matches_memory_tree() {
        let mut t = MemoryTree::new();
        for i in 0..70_000u32 {
            t.push(leaf_hash(&i.to_le_bytes()));
        }
        for size in [
            1u64, 2, 255, 256, 257, 300, 511, 512, 65_535, 65_536, 65_537, 70_000,
        ] {
            let files = tiles_of(&mut t, size);
            let fetched = RefCell::new(Vec::<String>::new());
            let mut src = TileSource::new(size, |tile: &Tile| {
                fetched.borrow_mut().push(tile.path());
                files.get(&tile.path()).cloned().ok_or("missing")
            });
            let mut prefix = MemoryTree::new();
            for l in &t.leaves()[..size as usize] {
                prefix.push(*l);
            }
            assert_eq!(
                tree_hash(&mut src, size).unwrap(),
                prefix.root(),
                "size {size}"
            );
            // Every complete subtree at every level, including levels not multiples of 8.
            for level in 0..=16u8 {
                let count = size >> level;
                let step = (count / 40).max(1);
                for index in (0..count)
                    .step_by(step as usize)
                    .chain(count.checked_sub(1))
                {
                    assert_eq!(
                        src.subtree(level, index).unwrap(),
                        prefix.subtree(level, index).unwrap(),
                        "size {size} level {level} index {index}"
                    );
                }
                assert!(matches!(
                    src.subtree(level, count),
                    Err(TileSourceError::OutOfRange { .. })
                ));
            }
            for index in [0, size / 3, size - 1] {
                let proof = inclusion_proof(&mut src, index, size).unwrap();
                assert_eq!(proof, inclusion_proof(&mut prefix, index, size).unwrap());
                verify_inclusion(
                    index,
                    size,
                    &t.leaves()[index as usize],
                    &proof,
                    &prefix.root(),
                )
                .unwrap();
            }
            for size1 in [1, size / 2, size - 1] {
                if size1 == 0 {
                    continue;
                }
                let proof = consistency_proof(&mut src, size1, size).unwrap();
                let root1 = tree_hash(&mut src, size1).unwrap();
                verify_consistency(size1, size, &root1, &prefix.root(), &proof).unwrap();
            }
            // Each tile fetched at most once, and only tiles of this tree size.
            let fetched = fetched.borrow().clone();
            let unique: HashSet<&String> = fetched.iter().collect();
            assert_eq!(unique.len(), fetched.len(), "a tile was fetched twice");
            assert!(fetched.iter().all(|p| files.contains_key(p)));
            assert!(matches!(
                src.subtree(64, 0),
                Err(TileSourceError::OutOfRange { .. })
            ));
            assert!(matches!(
                src.subtree(0, u64::MAX),
                Err(TileSourceError::OutOfRange { .. })
            ));
        }
    }

    #[test]
    fn tile_source_errors() {
        let mut src = TileSource::new(300, |_: &Tile| Err::<Vec<u8>, _>("unavailable"));
        assert!(matches!(
            src.subtree(0, 0),
            Err(TileSourceError::Fetch("unavailable"))
        ));
        let mut src = TileSource::new(300, |_: &Tile| Ok::<_, String>(vec![0u8; 31]));
        let e = src.subtree(0, 0).unwrap_err();
        assert!(matches!(
            e,
            TileSourceError::Tile(TileError::HashTileLength { .. })
        ));
        assert!(e.to_string().contains("tile/0/000"), "{e}");
        assert_eq!(src.tiles_fetched(), 0);
        assert!(format!("{src:?}").contains("300"));
        let mut calls = 0;
        let mut src = TileSource::new(2, |_: &Tile| {
            calls += 1;
            Ok::<_, String>([[1u8; 32], [2u8; 32]].concat())
        });
        assert_eq!(src.size(), 2);
        let want = node_hash(&[1u8; 32], &[2u8; 32]);
        assert_eq!(src.subtree(1, 0).unwrap(), want);
        assert_eq!(src.subtree(0, 1).unwrap(), [2u8; 32]);
        assert_eq!(src.tiles_fetched(), 1);
        src.clear_cache();
        assert_eq!(src.subtree(1, 0).unwrap(), want);
        drop(src);
        assert_eq!(calls, 2);
    }
}
