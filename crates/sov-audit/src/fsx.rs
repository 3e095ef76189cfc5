//! Small filesystem helpers: atomic replacement, directory fsync, bounded reads.

use std::fs::{self, File};
use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::AuditError;

static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// A temporary name beside `path`: `.<name>.tmp-<pid>-<n>` (hidden, never a valid tile path).
fn temp_path(path: &Path) -> PathBuf {
    let n = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.tmp-{}-{n}", std::process::id()))
}

/// The directory holding `path`.
pub(crate) fn parent(path: &Path) -> &Path {
    path.parent().unwrap_or_else(|| Path::new("."))
}

/// Replaces `path` with `bytes` atomically: write a temporary file beside it, rename it over
/// `path`. With `sync`, the temporary file is fsynced before the rename and the directory after
/// it, so the new content is durable when this returns; without, a concurrent reader still never
/// sees a partial file (durability is then the caller's job, see [`sync_file`]).
pub(crate) fn write_atomic(path: &Path, bytes: &[u8], sync: bool) -> Result<(), AuditError> {
    let tmp = temp_path(path);
    let result = (|| {
        let mut file = File::create(&tmp)?;
        file.write_all(bytes)?;
        if sync {
            file.sync_data()?;
        }
        drop(file);
        fs::rename(&tmp, path)
    })();
    if let Err(source) = result {
        let _ = fs::remove_file(&tmp);
        return Err(AuditError::Io {
            path: path.to_path_buf(),
            source,
        });
    }
    if sync {
        sync_dir(parent(path))?;
    }
    Ok(())
}

/// fsyncs a directory, making the names created or removed in it durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), AuditError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(AuditError::io(dir))
}

/// fdatasyncs an existing file by path (a file already gone is not an error).
pub(crate) fn sync_file(path: &Path) -> Result<(), AuditError> {
    match File::open(path) {
        Ok(f) => f.sync_data().map_err(AuditError::io(path)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(AuditError::Io {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// Reads a whole file of at most `max` bytes; `None` if it does not exist.
pub(crate) fn read_optional(path: &Path, max: u64) -> Result<Option<Vec<u8>>, AuditError> {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(AuditError::Io {
                path: path.to_path_buf(),
                source,
            });
        }
    };
    let mut out = Vec::new();
    file.take(max.saturating_add(1))
        .read_to_end(&mut out)
        .map_err(AuditError::io(path))?;
    if u64::try_from(out.len()).unwrap_or(u64::MAX) > max {
        return Err(AuditError::Malformed {
            path: path.to_path_buf(),
            reason: format!("file is larger than {max} bytes"),
        });
    }
    Ok(Some(out))
}

/// Whether `path` exists.
pub(crate) fn exists(path: &Path) -> Result<bool, AuditError> {
    path.try_exists().map_err(AuditError::io(path))
}
