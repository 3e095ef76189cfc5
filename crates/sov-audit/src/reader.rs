//! Reading a log directory: entries, receipts, proofs, files, export. Needs no lock, so it
//! works beside a running writer, even in another process.

use std::fs;
use std::path::{Path, PathBuf};

use sov_audit_core::checkpoint::Checkpoint;
use sov_audit_core::hash::{Hash, leaf_hash};
use sov_audit_core::merkle::{ProofError, consistency_proof, inclusion_proof, verify_inclusion};
use sov_audit_core::note::{MAX_NOTE_SIZE, Note, Vkey, parse_vkeys};
use sov_audit_core::receipt::TlogProof;
use sov_audit_core::tile::{Tile, TileKind, TileSource, TileSourceError, parse_bundle};

use crate::tiles::read_tile;
use crate::{AuditError, CHECKPOINT_FILE, ORIGIN_FILE, VKEYS_FILE, fsx};

/// A read-only view of a log directory at its latest checkpoint (as of [`LogReader::open`]; open
/// again to see a newer one).
///
/// Everything it returns comes from the files the writer publishes (checkpoint, tiles, bundles),
/// never from the WAL, so it serves exactly what an exported copy would.
#[derive(Debug, Clone)]
pub struct LogReader {
    dir: PathBuf,
    origin: String,
    note: Vec<u8>,
    checkpoint: Checkpoint,
}

type SourceError = ProofError<TileSourceError<AuditError>>;

fn proof_error(what: String, e: SourceError) -> AuditError {
    match e {
        ProofError::Source(TileSourceError::Fetch(inner)) => inner,
        other => AuditError::Proof {
            what,
            reason: other.to_string(),
        },
    }
}

impl LogReader {
    /// Opens the log in `dir`: reads `origin` and the `checkpoint` (parsed, signatures not
    /// checked: verify with [`sov_audit_core::checkpoint::verify_checkpoint`] and the `vkeys`).
    pub fn open(dir: &Path) -> Result<LogReader, AuditError> {
        let origin_path = dir.join(ORIGIN_FILE);
        let origin =
            fsx::read_optional(&origin_path, 4096)?.ok_or_else(|| AuditError::NotFound {
                path: ORIGIN_FILE.into(),
            })?;
        let origin = String::from_utf8(origin).map_err(|_| AuditError::Malformed {
            path: origin_path.clone(),
            reason: "not UTF-8".into(),
        })?;
        let origin = origin.strip_suffix('\n').unwrap_or(&origin).to_owned();
        let cp_path = dir.join(CHECKPOINT_FILE);
        let note = fsx::read_optional(&cp_path, u64::try_from(MAX_NOTE_SIZE).unwrap_or(u64::MAX))?
            .ok_or_else(|| AuditError::NotFound {
                path: CHECKPOINT_FILE.into(),
            })?;
        let malformed = |reason: String| AuditError::Malformed {
            path: cp_path.clone(),
            reason,
        };
        let parsed = Note::parse(&note).map_err(|e| malformed(e.to_string()))?;
        let checkpoint =
            Checkpoint::parse_text(&parsed.text).map_err(|e| malformed(e.to_string()))?;
        if checkpoint.origin != origin {
            return Err(malformed(format!(
                "origin line {:?} is not the log's origin {origin:?}",
                checkpoint.origin
            )));
        }
        Ok(LogReader {
            dir: dir.to_path_buf(),
            origin,
            note,
            checkpoint,
        })
    }

    /// The checkpoint note's bytes (verbatim) and its parsed tree head.
    pub fn checkpoint(&self) -> (&[u8], &Checkpoint) {
        (&self.note, &self.checkpoint)
    }

    /// The log's origin.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// The log directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The log's verifier keys, from `vkeys`.
    pub fn vkeys(&self) -> Result<Vec<Vkey>, AuditError> {
        let path = self.dir.join(VKEYS_FILE);
        let bytes = fsx::read_optional(&path, 64 * 1024)?.ok_or_else(|| AuditError::NotFound {
            path: VKEYS_FILE.into(),
        })?;
        let text = String::from_utf8(bytes).map_err(|_| AuditError::Malformed {
            path: path.clone(),
            reason: "not UTF-8".into(),
        })?;
        parse_vkeys(&text).map_err(|e| AuditError::Malformed {
            path,
            reason: e.to_string(),
        })
    }

    fn covered(&self, index: u64) -> Result<u64, AuditError> {
        let size = self.checkpoint.size;
        if index >= size {
            return Err(AuditError::NotCovered { index, size });
        }
        Ok(size)
    }

    /// The exact bytes of entry `index` (from its entry bundle); `index` must be below the
    /// checkpoint's size.
    pub fn entry(&self, index: u64) -> Result<Vec<u8>, AuditError> {
        let size = self.covered(index)?;
        let n = index / 256;
        let width = size.saturating_sub(n.saturating_mul(256)).min(256);
        let tile = Tile {
            kind: TileKind::Entries,
            index: n,
            width: u16::try_from(width).unwrap_or(256),
        };
        let bytes = read_tile(&self.dir, &tile)?;
        let entries = parse_bundle(&bytes, &tile).map_err(|e| AuditError::Malformed {
            path: self.dir.join(tile.path()),
            reason: e.to_string(),
        })?;
        let at = usize::try_from(index % 256).unwrap_or(usize::MAX);
        entries
            .get(at)
            .map(|e| e.to_vec())
            .ok_or_else(|| AuditError::Malformed {
                path: self.dir.join(tile.path()),
                reason: format!("bundle has no entry {at}"),
            })
    }

    fn source(&self) -> TileSource<impl FnMut(&Tile) -> Result<Vec<u8>, AuditError> + '_> {
        TileSource::new(self.checkpoint.size, |t: &Tile| read_tile(&self.dir, t))
    }

    /// A `c2sp.org/tlog-proof@v1` receipt for entry `index`: the entry's bytes (as `extra`), its
    /// inclusion proof and the checkpoint. The proof is checked against the checkpoint's root
    /// before it is returned.
    pub fn receipt(&self, index: u64) -> Result<TlogProof, AuditError> {
        let size = self.covered(index)?;
        let entry = self.entry(index)?;
        let leaf = leaf_hash(&entry);
        let what = format!("entry {index} in the tree of size {size}");
        let proof = inclusion_proof(&mut self.source(), index, size)
            .map_err(|e| proof_error(what.clone(), e))?;
        verify_inclusion(index, size, &leaf, &proof, &self.checkpoint.root).map_err(|e| {
            AuditError::Proof {
                what,
                reason: format!("the stored tiles and bundle disagree with the checkpoint: {e}"),
            }
        })?;
        Ok(TlogProof {
            extra: Some(entry),
            index,
            proof,
            checkpoint: self.note.clone(),
        })
    }

    /// A consistency proof from the tree of `size1` to the checkpoint's tree.
    pub fn consistency(&self, size1: u64) -> Result<Vec<Hash>, AuditError> {
        self.consistency_between(size1, self.checkpoint.size)
    }

    /// A consistency proof from the tree of `size1` to the tree of `size2`, both within the
    /// checkpoint's tree.
    pub fn consistency_between(&self, size1: u64, size2: u64) -> Result<Vec<Hash>, AuditError> {
        let size = self.checkpoint.size;
        if size1 > size2 || size2 > size {
            return Err(AuditError::NotCovered {
                index: size1.max(size2),
                size,
            });
        }
        consistency_proof(&mut self.source(), size1, size2)
            .map_err(|e| proof_error(format!("consistency from {size1} to {size2}"), e))
    }

    /// A published file by its path relative to the log: `checkpoint` and `vkeys` (as they are on
    /// disk now), or a tile or entry bundle path (`tile/0/x001/234`, `tile/entries/000.p/7`,
    /// checked with [`Tile::parse_path`]; a partial tile that was replaced by its full tile is
    /// served as the prefix of it). Nothing outside these is ever read.
    pub fn file(&self, path: &str) -> Result<Vec<u8>, AuditError> {
        match path {
            CHECKPOINT_FILE | VKEYS_FILE => fsx::read_optional(
                &self.dir.join(path),
                u64::try_from(MAX_NOTE_SIZE).unwrap_or(u64::MAX),
            )?
            .ok_or_else(|| AuditError::NotFound { path: path.into() }),
            _ => {
                let tile = Tile::parse_path(path).map_err(|e| AuditError::BadPath {
                    path: path.into(),
                    reason: e.to_string(),
                })?;
                read_tile(&self.dir, &tile)
            }
        }
    }

    /// Writes a static copy of the log at this checkpoint into `dest` (which must not exist or be
    /// an empty directory): `checkpoint`, `vkeys`, and every hash tile and entry bundle the
    /// checkpoint's size calls for, at their exact C2SP paths (partial ones included). Returns
    /// the tree size. Any file server can serve the result; `sov-verify log` checks it.
    pub fn export(&self, dest: &Path) -> Result<u64, AuditError> {
        match fs::read_dir(dest) {
            Ok(mut it) => {
                if it.next().is_some() {
                    return Err(AuditError::ExportDest {
                        path: dest.to_path_buf(),
                    });
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                fs::create_dir_all(dest).map_err(AuditError::io(dest))?;
            }
            Err(_) => {
                return Err(AuditError::ExportDest {
                    path: dest.to_path_buf(),
                });
            }
        }
        let write = |rel: &str, bytes: &[u8]| -> Result<(), AuditError> {
            let path = dest.join(rel);
            let parent = fsx::parent(&path);
            fs::create_dir_all(parent).map_err(AuditError::io(parent))?;
            fs::write(&path, bytes).map_err(AuditError::io(&path))
        };
        write(CHECKPOINT_FILE, &self.note)?;
        write(VKEYS_FILE, &self.file(VKEYS_FILE)?)?;
        let size = self.checkpoint.size;
        for tile in Tile::hash_tiles_for_size(size)
            .into_iter()
            .chain(Tile::entry_bundles_for_size(size))
        {
            let bytes = read_tile(&self.dir, &tile)?;
            write(&tile.path(), &bytes)?;
        }
        Ok(size)
    }
}
