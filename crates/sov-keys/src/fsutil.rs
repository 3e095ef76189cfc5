//! Small filesystem helpers: create-once atomic writes and permission checks.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::KeyError;

/// Creates `dir` (and parents) with mode 0700 if it does not exist yet.
pub(crate) fn ensure_private_dir(dir: &Path) -> Result<(), KeyError> {
    if dir.is_dir() {
        return Ok(());
    }
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|source| KeyError::CreateDir {
            path: dir.to_path_buf(),
            source,
        })
}

/// Writes `bytes` to `path` with `mode`, atomically and without ever replacing an
/// existing file: the data goes to a temporary file that is fsynced, then
/// hard-linked to `path` (which fails if `path` exists), then the directory is fsynced.
pub(crate) fn write_new_atomic(path: &Path, bytes: &[u8], mode: u32) -> Result<(), KeyError> {
    let err = |source| KeyError::Write {
        path: path.to_path_buf(),
        source,
    };
    let dir = path.parent().unwrap_or_else(|| Path::new("."));
    let tmp = temp_path(path).map_err(KeyError::Random)?;
    let result = (|| {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&tmp)?;
        // The umask may have narrowed the mode; set it exactly.
        file.set_permissions(fs::Permissions::from_mode(mode))?;
        file.write_all(bytes)?;
        file.sync_all()?;
        drop(file);
        fs::hard_link(&tmp, path)?;
        File::open(dir)?.sync_all()
    })();
    // The temporary name is removed whether or not the link succeeded.
    let _ = fs::remove_file(&tmp);
    result.map_err(err)
}

fn temp_path(path: &Path) -> Result<PathBuf, getrandom::Error> {
    let mut nonce = [0u8; 8];
    getrandom::fill(&mut nonce)?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    Ok(path.with_file_name(format!(".{name}.tmp-{}", hex::encode(nonce))))
}

/// Reads a secret file, refusing it if group or others have any access.
pub(crate) fn read_secret(path: &Path) -> Result<zeroize::Zeroizing<String>, KeyError> {
    let read_err = |source| KeyError::Read {
        path: path.to_path_buf(),
        source,
    };
    let file = File::open(path).map_err(read_err)?;
    let meta = file.metadata().map_err(read_err)?;
    let mode = meta.permissions().mode() & 0o7777;
    if mode & 0o077 != 0 {
        return Err(KeyError::InsecurePermissions {
            path: path.to_path_buf(),
            mode,
        });
    }
    if !meta.is_file() || meta.len() > 4096 {
        return Err(KeyError::Malformed {
            path: path.to_path_buf(),
            reason: "not a small regular file".into(),
        });
    }
    // Reserve up front so the buffer never reallocates and leaves stray copies.
    let mut text = zeroize::Zeroizing::new(String::with_capacity(4097));
    std::io::Read::read_to_string(&mut &file, &mut text).map_err(read_err)?;
    Ok(text)
}
