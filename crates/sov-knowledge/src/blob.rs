//! The original bytes of each document: `blobs/sha256/<hex>`, read-only, named by their
//! SHA-256, written before the database commit that lists them and removed again when it fails.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::KnowledgeError;

fn io(action: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> KnowledgeError {
    let path = path.to_path_buf();
    move |source| KnowledgeError::Io {
        action,
        path,
        source,
    }
}

pub(crate) fn dir(corpus: &Path) -> PathBuf {
    corpus.join("blobs").join("sha256")
}

/// Where the blob of `sha256` is.
pub(crate) fn path(corpus: &Path, sha256: &str) -> PathBuf {
    dir(corpus).join(sha256)
}

pub(crate) fn sync_dir(dir: &Path) -> Result<(), KnowledgeError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io("sync directory", dir))
}

/// Stores `bytes` as the blob `sha256` unless it is there; returns whether it was written.
pub(crate) fn write(corpus: &Path, sha256: &str, bytes: &[u8]) -> Result<bool, KnowledgeError> {
    let target = path(corpus, sha256);
    if target.exists() {
        return Ok(false);
    }
    let tmp_dir = corpus.join("tmp");
    fs::create_dir_all(&tmp_dir).map_err(io("create directory", &tmp_dir))?;
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let tmp = tmp_dir.join(format!("{sha256}-{}-{nanos}.partial", std::process::id()));
    let written = (|| {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(io("create", &tmp))?;
        file.write_all(bytes).map_err(io("write", &tmp))?;
        file.set_permissions(fs::Permissions::from_mode(0o444))
            .map_err(io("make read-only", &tmp))?;
        file.sync_all().map_err(io("sync", &tmp))?;
        fs::rename(&tmp, &target).map_err(io("move blob into", &target))?;
        sync_dir(&dir(corpus))
    })();
    if written.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    written.map(|()| true)
}

/// Removes the blob `sha256` if it is there.
pub(crate) fn remove(corpus: &Path, sha256: &str) -> Result<(), KnowledgeError> {
    let target = path(corpus, sha256);
    match fs::remove_file(&target) {
        Ok(()) => sync_dir(&dir(corpus)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io("remove", &target)(e)),
    }
}

/// Checks that the blob `sha256` is a file of `size` bytes (its content is hashed at add).
pub(crate) fn check(corpus: &Path, sha256: &str, size: u64) -> Result<(), String> {
    let meta = fs::metadata(path(corpus, sha256)).map_err(|e| format!("is missing ({e})"))?;
    if !meta.is_file() || meta.len() != size {
        return Err(format!("is {} bytes, the manifest says {size}", meta.len()));
    }
    Ok(())
}
