//! The seal's files (its reports and the attestation's index) as the server writes them: owner
//! only (0600), durable (fsync of the file, and of the folder after a rename), and replaced
//! atomically, so that a reader sees the old text or the new one, never a part.

use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};

/// Why a file of the seal could not be written: what was tried, on which path, and the cause.
#[derive(Debug, thiserror::Error)]
#[error("failed to {what} {}", path.display())]
pub struct FileError {
    /// `create`, `write`, `remove`, `move into place` or `sync`.
    pub what: &'static str,
    /// The file or folder.
    pub path: PathBuf,
    /// The system's answer.
    #[source]
    pub source: std::io::Error,
}

fn failed(what: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> FileError {
    let path = path.to_owned();
    move |source| FileError { what, path, source }
}

/// Creates `path` (it must not exist), owner only, with `text`, and syncs it.
pub fn write_new(path: &Path, text: &str) -> Result<(), FileError> {
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(failed("create", path))?;
    file.write_all(text.as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(failed("write", path))
}

/// Replaces `path` with `text`: a private temporary file beside it (`.tmp`), then a rename, then
/// a sync of the folder, so the new file survives a power loss.
pub fn replace(path: &Path, text: &str) -> Result<(), FileError> {
    let tmp = path.with_extension("tmp");
    if tmp.exists() {
        std::fs::remove_file(&tmp).map_err(failed("remove", &tmp))?;
    }
    write_new(&tmp, text)?;
    std::fs::rename(&tmp, path).map_err(failed("move into place", path))?;
    let folder = path.parent().unwrap_or(Path::new("."));
    std::fs::File::open(folder)
        .and_then(|d| d.sync_all())
        .map_err(failed("sync", folder))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::os::unix::fs::PermissionsExt as _;

    use super::*;

    #[test]
    fn files_are_private_and_replaced_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("report.json");
        replace(&path, "one\n").unwrap();
        replace(&path, "two\n").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "two\n");
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert!(!path.with_extension("tmp").exists());
        // A temporary file left by an interrupted write does not stop the next one.
        std::fs::write(path.with_extension("tmp"), "torn").unwrap();
        replace(&path, "three\n").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "three\n");

        let err = write_new(&path, "again").unwrap_err();
        assert_eq!(err.what, "create");
        assert_eq!(err.source.kind(), std::io::ErrorKind::AlreadyExists);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "three\n");
    }
}
