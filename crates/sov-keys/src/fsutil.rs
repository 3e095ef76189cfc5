//! Small filesystem helpers: create-once atomic writes and permission checks.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

use crate::KeyError;

/// A 32-byte seed.
pub(crate) type Seed = Zeroizing<[u8; 32]>;

/// Parses a secret key file of the form `header\n<ed_label> <64 hex>\n<ml_label> <64 hex>\n`
/// (the owner's and the log's keys share it), naming what is wrong with the file at `path`.
pub(crate) fn parse_seed_file(
    path: &Path,
    text: &str,
    header: &str,
    ed_label: &str,
    ml_label: &str,
) -> Result<(Seed, Seed), KeyError> {
    let malformed = |reason: String| KeyError::Malformed {
        path: path.to_path_buf(),
        reason,
    };
    let mut lines = text.lines();
    if lines.next() != Some(header) {
        return Err(malformed(format!("missing `{header}` header")));
    }
    let ed_seed = parse_seed(lines.next(), ed_label)
        .ok_or_else(|| malformed(format!("bad {ed_label} line (want `{ed_label} <64 hex>`)")))?;
    let ml_seed = parse_seed(lines.next(), ml_label)
        .ok_or_else(|| malformed(format!("bad {ml_label} line (want `{ml_label} <64 hex>`)")))?;
    if lines.any(|l| !l.trim().is_empty()) {
        return Err(malformed("unexpected trailing content".to_owned()));
    }
    Ok((ed_seed, ml_seed))
}

fn parse_seed(line: Option<&str>, label: &str) -> Option<Seed> {
    let hex_part = line?.strip_prefix(label)?.strip_prefix(' ')?.trim_end();
    let mut seed = Zeroizing::new([0u8; 32]);
    hex::decode_to_slice(hex_part, seed.as_mut()).ok()?;
    Some(seed)
}

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
