//! A log directory (an export, or a copy of a node's log) as [`LogFiles`]: reads only regular
//! files inside the directory, by the log's own relative paths, within size limits.

use std::fs::File;
use std::io::Read as _;
use std::path::{Component, Path, PathBuf};

use sov_audit_core::verify::LogFiles;

/// The largest file read: a full entry bundle of 256 maximal entries (256 × (2 + 65,535) bytes).
pub const MAX_FILE_SIZE: u64 = 256 * (2 + 65_535);

/// A tiled log in a directory.
#[derive(Debug)]
pub struct DirFiles {
    root: PathBuf,
    canonical_root: PathBuf,
}

impl DirFiles {
    /// Opens `root`, which must be a directory.
    pub fn open(root: &Path) -> Result<DirFiles, String> {
        let canonical_root = std::fs::canonicalize(root)
            .map_err(|e| format!("{}: cannot open: {e}", root.display()))?;
        if !canonical_root.is_dir() {
            return Err(format!("{}: not a directory", root.display()));
        }
        Ok(DirFiles {
            root: root.to_path_buf(),
            canonical_root,
        })
    }

    /// The full path of a log path, if it is a plain relative path that stays inside the
    /// directory (no `..`, no root, no odd characters).
    fn resolve(&self, path: &str) -> Result<PathBuf, String> {
        let plain = !path.is_empty()
            && path
                .bytes()
                .all(|b| matches!(b, b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'.' | b'_' | b'-' | b'/'))
            && Path::new(path)
                .components()
                .all(|c| matches!(c, Component::Normal(_)))
            && !path.split('/').any(|seg| seg.is_empty() || seg == "." || seg == "..");
        if !plain {
            return Err(format!(
                "refusing to read {path:?}: not a plain path inside the log directory"
            ));
        }
        Ok(self.root.join(path))
    }
}

impl LogFiles for DirFiles {
    fn get(&mut self, path: &str) -> Result<Option<Vec<u8>>, String> {
        let full = self.resolve(path)?;
        // Follow symbolic links only as far as they stay inside the directory.
        let canonical = match std::fs::canonicalize(&full) {
            Ok(c) => c,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e.to_string()),
        };
        if !canonical.starts_with(&self.canonical_root) {
            return Err(format!(
                "{} leads outside the log directory (to {})",
                full.display(),
                canonical.display()
            ));
        }
        let meta = std::fs::metadata(&canonical).map_err(|e| e.to_string())?;
        if !meta.is_file() {
            return Err("not a regular file".to_owned());
        }
        read_limited(&canonical, MAX_FILE_SIZE).map(Some)
    }
}

/// Reads a file of at most `limit` bytes.
pub fn read_limited(path: &Path, limit: u64) -> Result<Vec<u8>, String> {
    let file = File::open(path).map_err(|e| e.to_string())?;
    let mut bytes = Vec::new();
    file.take(limit.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(|e| e.to_string())?;
    if bytes.len() as u64 > limit {
        return Err(format!(
            "larger than {limit} bytes, the most this file can be"
        ));
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    #[test]
    fn paths_must_stay_inside() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("tile/0")).unwrap();
        std::fs::write(dir.path().join("tile/0/000"), b"x").unwrap();
        let mut files = DirFiles::open(dir.path()).unwrap();
        assert_eq!(files.get("tile/0/000").unwrap(), Some(b"x".to_vec()));
        assert_eq!(files.get("tile/0/001").unwrap(), None);
        for bad in [
            "../x",
            "/etc/passwd",
            "tile/../../x",
            "tile//0",
            "./checkpoint",
            "",
            "a\\b",
        ] {
            assert!(files.get(bad).is_err(), "{bad:?}");
        }
        assert!(files.get("tile/0").is_err(), "a directory is not a file");
    }

    #[cfg(unix)]
    #[test]
    fn symlinks_out_are_refused() {
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("secret"), b"s").unwrap();
        let dir = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(outside.path().join("secret"), dir.path().join("checkpoint"))
            .unwrap();
        std::fs::write(dir.path().join("real"), b"r").unwrap();
        std::os::unix::fs::symlink(dir.path().join("real"), dir.path().join("inside")).unwrap();
        let mut files = DirFiles::open(dir.path()).unwrap();
        assert!(files.get("checkpoint").is_err());
        assert_eq!(files.get("inside").unwrap(), Some(b"r".to_vec()));
    }
}
