//! Fast verification: chunk digests hashed in parallel with positioned reads.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::{Manifest, StoreError};

/// Read buffer per thread.
const BUF: usize = 1024 * 1024;

/// Proof that a model's manifest signature and every byte of its blob were checked.
///
/// Only [`ModelStore::verify`](crate::ModelStore::verify) creates one; code that loads
/// a model should take this instead of a path.
#[derive(Debug, Clone)]
pub struct VerifiedModel {
    manifest: Manifest,
    path: PathBuf,
}

impl VerifiedModel {
    pub(crate) fn new(manifest: Manifest, path: PathBuf) -> Self {
        Self { manifest, path }
    }

    /// The verified manifest.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// The blob that was verified.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Hashes every chunk of `path` in parallel and compares with the manifest.
/// The manifest must already be signature-checked and consistent.
pub(crate) fn check_blob(manifest: &Manifest, path: &Path) -> Result<(), StoreError> {
    let io_err = |source| StoreError::Io {
        action: "read model blob",
        path: path.to_path_buf(),
        source,
    };
    let file = File::open(path).map_err(io_err)?;
    let actual = file.metadata().map_err(io_err)?.len();
    if actual != manifest.size {
        return Err(StoreError::BlobSize {
            name: manifest.name.clone(),
            expected: manifest.size,
            actual,
        });
    }
    let chunks = manifest.chunk_blake3.len() as u64;
    let threads = std::thread::available_parallelism()
        .map_or(1, std::num::NonZeroUsize::get)
        .min(usize::try_from(chunks).unwrap_or(usize::MAX))
        .max(1);
    let next = AtomicU64::new(0);
    // Each worker takes the next unhashed chunk until none are left, and reports
    // the first (lowest) mismatching chunk it saw.
    let results: Vec<Result<Option<(u64, String)>, std::io::Error>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|_| s.spawn(|| worker(&file, manifest, &next)))
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(std::io::Error::other("hashing thread panicked")))
            })
            .collect()
    });
    let mut first_bad: Option<(u64, String)> = None;
    for result in results {
        if let Some((index, digest)) = result.map_err(io_err)?
            && first_bad.as_ref().is_none_or(|(i, _)| index < *i)
        {
            first_bad = Some((index, digest));
        }
    }
    match first_bad {
        None => Ok(()),
        Some((index, actual)) => Err(StoreError::DigestMismatch {
            name: manifest.name.clone(),
            offset: index.saturating_mul(manifest.chunk_size),
            expected: expected_digest(manifest, index),
            actual,
        }),
    }
}

fn expected_digest(manifest: &Manifest, index: u64) -> String {
    usize::try_from(index)
        .ok()
        .and_then(|i| manifest.chunk_blake3.get(i))
        .cloned()
        .unwrap_or_default()
}

fn worker(
    file: &File,
    manifest: &Manifest,
    next: &AtomicU64,
) -> Result<Option<(u64, String)>, std::io::Error> {
    let mut buf = vec![0u8; BUF];
    let mut first_bad = None;
    let chunks = manifest.chunk_blake3.len() as u64;
    loop {
        let index = next.fetch_add(1, Ordering::Relaxed);
        if index >= chunks {
            return Ok(first_bad);
        }
        let start = index.saturating_mul(manifest.chunk_size);
        let end = start.saturating_add(manifest.chunk_size).min(manifest.size);
        let mut hasher = blake3::Hasher::new();
        let mut pos = start;
        while pos < end {
            let want = usize::try_from(end - pos).unwrap_or(BUF).min(BUF);
            let slice = buf.get_mut(..want).unwrap_or_default();
            file.read_exact_at(slice, pos)?;
            hasher.update(&*slice);
            pos += want as u64;
        }
        let digest = hasher.finalize().to_hex().to_string();
        if digest != expected_digest(manifest, index) && first_bad.is_none() {
            first_bad = Some((index, digest));
        }
    }
}
