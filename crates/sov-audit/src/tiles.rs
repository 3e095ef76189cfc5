//! Writing the C2SP tlog-tiles layout as the log grows, and reading it back.

use std::collections::{BTreeSet, HashSet, VecDeque};
use std::fs;
use std::path::{Path, PathBuf};

use sov_audit_core::hash::Hash;
use sov_audit_core::merkle::CompactRange;
use sov_audit_core::tile::{
    TILE_WIDTH, Tile, TileKind, parse_bundle, parse_hash_tile, subtree_root,
};

use crate::{AuditError, fsx};

const WIDTH: usize = 256;

/// The tiles of a growing tree: the right edge (the partial tile at each level and the partial
/// entry bundle) in memory, everything else on disk.
///
/// [`TileBuilder::push`] only changes memory: a tile it completes is queued, and
/// [`TileBuilder::write_full`] writes the queued full tiles (temporary file + rename), dropping
/// each only once it is written; partial tiles are written only by
/// [`TileBuilder::write_partials`], for sizes about to be checkpointed. Nothing is fsynced until
/// [`TileBuilder::sync`], which forgets a file only once it is synced. So after an I/O error
/// every step can simply be run again (the publisher retries on a timer) and the state in memory
/// always matches the entries pushed. In repair mode (recovery), a full tile already on disk with
/// the right content is left alone, and one that is missing or differs is rewritten.
#[derive(Debug)]
pub(crate) struct TileBuilder {
    dir: PathBuf,
    repair: bool,
    /// `levels[l]`: the hashes of the current (partial) tile at level `l`, fewer than 256.
    levels: Vec<Vec<Hash>>,
    /// `full[l]`: how many full tiles level `l` has, which is the index of its current tile.
    full: Vec<u64>,
    /// The current partial entry bundle, encoded.
    bundle: Vec<u8>,
    bundle_count: usize,
    range: CompactRange,
    /// Full tiles completed by `push`, not yet written.
    pending: VecDeque<(Tile, Vec<u8>)>,
    dirty_files: BTreeSet<PathBuf>,
    dirty_dirs: BTreeSet<PathBuf>,
    known_dirs: HashSet<PathBuf>,
    /// `.p` directories of tiles that are now full, removed after the next checkpoint.
    stale: Vec<PathBuf>,
    /// Full tiles rewritten in repair mode.
    pub repaired: u64,
}

impl TileBuilder {
    pub(crate) fn new(dir: &Path, repair: bool) -> Self {
        Self {
            dir: dir.to_path_buf(),
            repair,
            levels: vec![Vec::with_capacity(WIDTH)],
            full: vec![0],
            bundle: Vec::new(),
            bundle_count: 0,
            range: CompactRange::new(),
            pending: VecDeque::new(),
            dirty_files: BTreeSet::new(),
            dirty_dirs: BTreeSet::new(),
            known_dirs: HashSet::new(),
            stale: Vec::new(),
            repaired: 0,
        }
    }

    /// The tile tree of `size` entries rebuilt from its right edge alone (a resume point):
    /// `upper` holds the hashes of the partial tiles of levels 1 and up, level by level (as
    /// [`TileBuilder::upper_partials`] returns them), and `entries` the entries of the partial
    /// level-0 tile (`size % 256` of them, with their leaf hashes). The compact range is derived
    /// from these; the caller checks its root. Fails if the counts do not fit `size`.
    pub(crate) fn resumed(
        dir: &Path,
        repair: bool,
        size: u64,
        upper: &[Hash],
        entries: &[(Vec<u8>, Hash)],
    ) -> Result<Self, String> {
        let counts = level_counts(size);
        let want_upper: usize = counts.iter().skip(1).sum();
        if upper.len() != want_upper {
            return Err(format!(
                "{} partial tile hashes above level 0, but a tree of {size} has {want_upper}",
                upper.len()
            ));
        }
        if Some(&entries.len()) != counts.first() {
            return Err(format!(
                "{} entries in the partial level-0 tile, but a tree of {size} has {}",
                entries.len(),
                counts.first().copied().unwrap_or(0)
            ));
        }
        let mut b = Self::new(dir, repair);
        b.levels.clear();
        b.full.clear();
        let mut rest = upper;
        for (level, &n) in counts.iter().enumerate() {
            let hashes: Vec<Hash> = if level == 0 {
                entries.iter().map(|(_, h)| *h).collect()
            } else {
                let (mine, more) = rest.split_at(n);
                rest = more;
                mine.to_vec()
            };
            let mut v = Vec::with_capacity(WIDTH);
            v.extend_from_slice(&hashes);
            b.levels.push(v);
            let shift = u32::try_from(level.saturating_add(1).saturating_mul(8)).unwrap_or(64);
            b.full.push(size.checked_shr(shift).unwrap_or(0));
        }
        for (bytes, _) in entries {
            let len = u16::try_from(bytes.len()).map_err(|_| "entry too long".to_owned())?;
            b.bundle.extend_from_slice(&len.to_be_bytes());
            b.bundle.extend_from_slice(bytes);
        }
        b.bundle_count = entries.len();
        // The compact range: per level, top first, one perfect subtree per set bit of that
        // level's count, largest first.
        let mut hashes = Vec::new();
        for level in b.levels.iter().rev() {
            let mut pos = 0usize;
            for bit in (0..8u32).rev() {
                let w = 1usize << bit;
                if level.len() & w != 0 {
                    let chunk = level.get(pos..pos.saturating_add(w)).unwrap_or(&[]);
                    hashes.push(subtree_root(chunk));
                    pos = pos.saturating_add(w);
                }
            }
        }
        b.range = CompactRange::from_parts(size, hashes).map_err(|e| e.to_string())?;
        Ok(b)
    }

    /// The hashes of the partial tiles of levels 1 and up, level by level (what a resume point
    /// records besides the level-0 entries, which it re-reads from the WAL).
    pub(crate) fn upper_partials(&self) -> Vec<Hash> {
        self.levels.iter().skip(1).flatten().copied().collect()
    }

    pub(crate) fn set_repair(&mut self, repair: bool) {
        self.repair = repair;
    }

    /// The tree size.
    pub(crate) fn size(&self) -> u64 {
        self.range.size()
    }

    /// The tree's right edge.
    pub(crate) fn range(&self) -> &CompactRange {
        &self.range
    }

    /// The tree root.
    pub(crate) fn root(&self) -> Hash {
        self.range.root()
    }

    /// Appends an entry (bytes and leaf hash) in memory, queueing every tile it completes for
    /// [`TileBuilder::write_full`]. Fails (changing nothing) only for an entry a bundle cannot
    /// hold.
    pub(crate) fn push(&mut self, entry: &[u8], leaf: Hash) -> Result<(), AuditError> {
        let len = u16::try_from(entry.len()).map_err(|_| AuditError::TooLarge {
            size: entry.len(),
            max: usize::from(u16::MAX),
        })?;
        self.range.push(leaf);
        self.bundle.extend_from_slice(&len.to_be_bytes());
        self.bundle.extend_from_slice(entry);
        self.bundle_count = self.bundle_count.saturating_add(1);
        let mut hash = leaf;
        let mut level = 0usize;
        loop {
            while self.levels.len() <= level {
                self.levels.push(Vec::with_capacity(WIDTH));
                self.full.push(0);
            }
            let (Some(current), Some(&index)) = (self.levels.get_mut(level), self.full.get(level))
            else {
                break;
            };
            current.push(hash);
            if current.len() < WIDTH {
                break;
            }
            let bytes = current.concat();
            hash = subtree_root(current);
            current.clear();
            let Ok(level_u8) = u8::try_from(level) else {
                break;
            };
            self.pending
                .push_back((hash_tile(level_u8, index, WIDTH), bytes));
            if level == 0 {
                let bundle = std::mem::take(&mut self.bundle);
                self.bundle_count = 0;
                self.pending.push_back((bundle_tile(index, WIDTH), bundle));
            }
            if let Some(f) = self.full.get_mut(level) {
                *f = f.saturating_add(1);
            }
            level = level.saturating_add(1);
        }
        Ok(())
    }

    /// Writes the full tiles completed so far; each leaves the queue only once it is written, so
    /// after an error a later call carries on where this one stopped.
    pub(crate) fn write_full(&mut self) -> Result<(), AuditError> {
        while let Some((tile, bytes)) = self.pending.pop_front() {
            if let Err(e) = self.put(tile, &bytes) {
                self.pending.push_front((tile, bytes));
                return Err(e);
            }
        }
        Ok(())
    }

    /// Writes the partial tiles and bundle of the current size (those a checkpoint of this size
    /// needs); an identical file already there is kept.
    pub(crate) fn write_partials(&mut self) -> Result<(), AuditError> {
        let mut partials = Vec::new();
        for (level, hashes) in self.levels.iter().enumerate() {
            if hashes.is_empty() {
                continue;
            }
            let (Ok(level), Some(&index)) = (u8::try_from(level), self.full.get(level)) else {
                continue;
            };
            partials.push((hash_tile(level, index, hashes.len()), hashes.concat()));
        }
        if self.bundle_count > 0 {
            let index = self.full.first().copied().unwrap_or(0);
            partials.push((bundle_tile(index, self.bundle_count), self.bundle.clone()));
        }
        for (tile, bytes) in partials {
            let path = self.dir.join(tile.path());
            if fs::read(&path).is_ok_and(|old| old == bytes) {
                continue;
            }
            self.put_file(&path, &bytes)?;
        }
        Ok(())
    }

    fn put(&mut self, tile: Tile, bytes: &[u8]) -> Result<(), AuditError> {
        let path = self.dir.join(tile.path());
        if self.repair {
            if !fs::read(&path).is_ok_and(|old| old == bytes) {
                self.put_file(&path, bytes)?;
                self.repaired = self.repaired.saturating_add(1);
            }
        } else {
            self.put_file(&path, bytes)?;
        }
        if tile.is_full() {
            let mut p = path.into_os_string();
            p.push(".p");
            self.stale.push(PathBuf::from(p));
        }
        Ok(())
    }

    fn put_file(&mut self, path: &Path, bytes: &[u8]) -> Result<(), AuditError> {
        let parent = fsx::parent(path).to_path_buf();
        self.ensure_dir(&parent)?;
        fsx::write_atomic(path, bytes, false)?;
        self.dirty_files.insert(path.to_path_buf());
        self.dirty_dirs.insert(parent);
        Ok(())
    }

    /// Creates `dir` and its missing ancestors, remembering the parents whose entries changed.
    fn ensure_dir(&mut self, dir: &Path) -> Result<(), AuditError> {
        if self.known_dirs.contains(dir) {
            return Ok(());
        }
        let mut missing = Vec::new();
        let mut cur = dir;
        while !fsx::exists(cur)? {
            missing.push(cur.to_path_buf());
            match cur.parent() {
                Some(p) => cur = p,
                None => break,
            }
        }
        for d in missing.iter().rev() {
            match fs::create_dir(d) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(source) => {
                    return Err(AuditError::Io {
                        path: d.clone(),
                        source,
                    });
                }
            }
            self.dirty_dirs.insert(fsx::parent(d).to_path_buf());
        }
        self.known_dirs.insert(dir.to_path_buf());
        Ok(())
    }

    /// Makes every tile written since the last successful call durable: the files, then their
    /// directories. Each is forgotten only once synced, so after an error a later call syncs
    /// what is left.
    pub(crate) fn sync(&mut self) -> Result<(), AuditError> {
        while let Some(path) = self.dirty_files.first() {
            fsx::sync_file(path)?;
            self.dirty_files.pop_first();
        }
        // Deepest first, so a new directory is durable before the entry naming it.
        while let Some(dir) = self.dirty_dirs.last() {
            fsx::sync_dir(dir)?;
            self.dirty_dirs.pop_last();
        }
        Ok(())
    }

    /// Removes the partial tiles of tiles that are now full (called once the full tiles are
    /// durable and a checkpoint no longer needs the partials). Failures are only logged.
    pub(crate) fn remove_stale(&mut self) {
        for dir in std::mem::take(&mut self.stale) {
            match fs::remove_dir_all(&dir) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    tracing::warn!(path = %dir.display(), error = %e, "could not remove old partial tiles")
                }
            }
        }
    }
}

/// How many hashes the partial tile of each level holds in a tree of `size` (level 0 first, up to
/// the highest level that has a tile).
pub(crate) fn level_counts(size: u64) -> Vec<usize> {
    let mut out = Vec::new();
    let mut n = size;
    loop {
        out.push(usize::try_from(n % 256).unwrap_or(0));
        n /= 256;
        if n == 0 {
            break;
        }
    }
    out
}

fn hash_tile(level: u8, index: u64, width: usize) -> Tile {
    Tile {
        kind: TileKind::Hash { level },
        index,
        width: u16::try_from(width).unwrap_or(256),
    }
}

fn bundle_tile(index: u64, width: usize) -> Tile {
    Tile {
        kind: TileKind::Entries,
        index,
        width: u16::try_from(width).unwrap_or(256),
    }
}

/// The first `width` entries of an entry bundle, or `None` if it holds fewer.
fn bundle_prefix(bytes: &[u8], width: usize) -> Option<Vec<u8>> {
    let mut pos = 0usize;
    for _ in 0..width {
        let len = bytes.get(pos..pos.checked_add(2)?)?;
        let n = usize::from(u16::from_be_bytes([*len.first()?, *len.get(1)?]));
        pos = pos.checked_add(2)?.checked_add(n)?;
        if pos > bytes.len() {
            return None;
        }
    }
    bytes.get(..pos).map(<[u8]>::to_vec)
}

/// The first `width` items of a tile's content (hashes or entries), if it holds that many.
fn prefix(tile: &Tile, bytes: &[u8]) -> Option<Vec<u8>> {
    let width = usize::from(tile.width);
    match tile.kind {
        TileKind::Hash { .. } => bytes.get(..width.checked_mul(32)?).map(<[u8]>::to_vec),
        TileKind::Entries => bundle_prefix(bytes, width),
    }
}

/// Reads a tile or entry bundle from the log directory, checking its size (hash tiles) or framing
/// (bundles). A missing partial tile is served from the full tile, or else from any wider
/// partial tile of the same index, taking the prefix.
pub(crate) fn read_tile(dir: &Path, tile: &Tile) -> Result<Vec<u8>, AuditError> {
    let rel = tile.path();
    let path = dir.join(&rel);
    let found = match fsx::read_optional(&path, max_tile_bytes(tile))? {
        Some(bytes) => Some(bytes),
        None if !tile.is_full() => fallback(dir, tile)?,
        None => None,
    };
    let Some(bytes) = found else {
        return Err(AuditError::NotFound { path: rel });
    };
    check_tile(&path, tile, &bytes)?;
    Ok(bytes)
}

fn max_tile_bytes(tile: &Tile) -> u64 {
    match tile.kind {
        TileKind::Hash { .. } => TILE_WIDTH * 32,
        TileKind::Entries => TILE_WIDTH * (2 + 65_535),
    }
}

fn fallback(dir: &Path, tile: &Tile) -> Result<Option<Vec<u8>>, AuditError> {
    let full = Tile {
        width: 256,
        ..*tile
    };
    let full_path = dir.join(full.path());
    if let Some(bytes) = fsx::read_optional(&full_path, max_tile_bytes(&full))? {
        return Ok(prefix(tile, &bytes));
    }
    let mut pdir = full_path.into_os_string();
    pdir.push(".p");
    let pdir = PathBuf::from(pdir);
    let entries = match fs::read_dir(&pdir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(AuditError::Io { path: pdir, source }),
    };
    let mut wider: Vec<u16> = entries
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str().and_then(|n| n.parse::<u16>().ok()))
        .filter(|w| *w > tile.width && *w < 256)
        .collect();
    wider.sort_unstable();
    for w in wider {
        let other = Tile { width: w, ..*tile };
        if let Some(bytes) = fsx::read_optional(&dir.join(other.path()), max_tile_bytes(&other))?
            && let Some(p) = prefix(tile, &bytes)
        {
            return Ok(Some(p));
        }
    }
    Ok(None)
}

fn check_tile(path: &Path, tile: &Tile, bytes: &[u8]) -> Result<(), AuditError> {
    let result = match tile.kind {
        TileKind::Hash { .. } => parse_hash_tile(bytes, tile).map(|_| ()),
        TileKind::Entries => parse_bundle(bytes, tile).map(|_| ()),
    };
    result.map_err(|e| AuditError::Malformed {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use sov_audit_core::hash::leaf_hash;
    use sov_audit_core::merkle::MemoryTree;
    use sov_audit_core::tile::encode_bundle;

    use super::*;

    #[test]
    fn bundle_prefix_takes_whole_entries() {
        let entries: Vec<Vec<u8>> = (1..=5u8).map(|n| vec![n; usize::from(n)]).collect();
        let refs: Vec<&[u8]> = entries.iter().map(Vec::as_slice).collect();
        let bundle = encode_bundle(&refs).unwrap();
        for w in 0..=5 {
            let want = encode_bundle(&refs[..w]).unwrap();
            assert_eq!(bundle_prefix(&bundle, w).unwrap(), want);
        }
        assert!(bundle_prefix(&bundle, 6).is_none());
        assert!(bundle_prefix(&bundle[..bundle.len() - 1], 5).is_none());
        assert!(bundle_prefix(&[0x00], 1).is_none());
    }

    #[test]
    fn builder_writes_the_c2sp_tiles() {
        let tmp = tempfile::tempdir().unwrap();
        let mut b = TileBuilder::new(tmp.path(), false);
        let mut tree = MemoryTree::new();
        for i in 0..(256u32 * 256 + 300) {
            let e = i.to_be_bytes();
            b.push(&e, leaf_hash(&e)).unwrap();
            tree.push(leaf_hash(&e));
        }
        b.write_full().unwrap();
        b.write_partials().unwrap();
        b.sync().unwrap();
        assert_eq!(b.root(), tree.root());
        let size = b.size();
        for tile in Tile::hash_tiles_for_size(size)
            .into_iter()
            .chain(Tile::entry_bundles_for_size(size))
        {
            let bytes = read_tile(tmp.path(), &tile).unwrap();
            check_tile(Path::new("x"), &tile, &bytes).unwrap();
        }
        // Level 1 tile 0 is full (65,536 leaves), level 2 has one hash.
        assert!(tmp.path().join("tile/1/000").is_file());
        assert!(tmp.path().join("tile/2/000.p/1").is_file());
        assert!(tmp.path().join("tile/1/001.p/1").is_file());
        assert!(tmp.path().join("tile/0/257.p/44").is_file());
    }

    #[test]
    fn tile_writes_are_retried_after_an_io_error() {
        let tmp = tempfile::tempdir().unwrap();
        // A file where the `tile` directory must go: every tile write fails.
        std::fs::write(tmp.path().join("tile"), b"").unwrap();
        let mut b = TileBuilder::new(tmp.path(), false);
        let mut tree = MemoryTree::new();
        for i in 0..600u32 {
            let e = i.to_be_bytes();
            b.push(&e, leaf_hash(&e)).unwrap();
            tree.push(leaf_hash(&e));
        }
        assert!(b.write_full().is_err());
        assert!(b.write_partials().is_err());
        // The tree in memory is intact and nothing was dropped: once the disk is back, the same
        // steps write every tile.
        assert_eq!((b.size(), b.root()), (600, tree.root()));
        std::fs::remove_file(tmp.path().join("tile")).unwrap();
        b.write_full().unwrap();
        b.write_partials().unwrap();
        b.sync().unwrap();
        for tile in Tile::hash_tiles_for_size(600)
            .into_iter()
            .chain(Tile::entry_bundles_for_size(600))
        {
            read_tile(tmp.path(), &tile).unwrap();
        }
        assert!(tmp.path().join("tile/0/001").is_file());
        assert!(tmp.path().join("tile/entries/001").is_file());
    }
}
