//! LoRA adapter files: checked, copied into the store while hashed, and checked again.

use std::fs::{self, File, OpenOptions};
use std::io::{BufReader, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use sha2::{Digest, Sha256};
use sov_models::{GgufInfo, GgufType, gguf};

use crate::error::io;
use crate::{Adapter, SpecialistError};

/// Copy buffer.
const COPY_BUF: usize = 1024 * 1024;

/// Checks that `src` is a LoRA adapter for a base of `base_arch`, copies it to `tmp` (a new
/// file, 0444 and synced once written) and returns what the manifest says about it. The header
/// is checked on the source first (a wrong file is refused before anything is copied), then on
/// the copy: the manifest describes the bytes stored, not the ones first looked at.
pub(crate) fn copy_checked(
    src: &Path,
    tmp: &Path,
    base_arch: &str,
) -> Result<Adapter, SpecialistError> {
    let read_err = |source| SpecialistError::ReadAdapter {
        path: src.to_path_buf(),
        source,
    };
    let mut source = File::open(src).map_err(read_err)?;
    let size = source.metadata().map_err(read_err)?.len();
    let header = gguf::parse_typed(BufReader::new(&source), size).map_err(|source| {
        SpecialistError::InvalidAdapter {
            path: src.to_path_buf(),
            source,
        }
    })?;
    check_header(src, &header, base_arch)?;
    source.seek(SeekFrom::Start(0)).map_err(read_err)?;

    let sha256 = copy_hashing(&mut source, src, tmp)?;
    let stored = fs::metadata(tmp).map_err(io("read", tmp))?.len();
    if stored != size || source.metadata().map_err(read_err)?.len() != size {
        return Err(SpecialistError::AdapterChanged {
            path: src.to_path_buf(),
        });
    }
    let header = gguf::read_typed(tmp).map_err(|source| SpecialistError::InvalidAdapter {
        path: src.to_path_buf(),
        source,
    })?;
    check_header(src, &header, base_arch)?;
    let file_name = src
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    Ok(Adapter {
        sha256,
        size,
        file_name,
    })
}

/// Checks that the file at `src` is a LoRA adapter for a base of `base_arch`, as
/// [`SpecialistStore::add`](crate::SpecialistStore::add) does before it copies one: for a
/// caller that checks more (the engine loading it against the base) before adding.
pub fn check_adapter(src: &Path, base_arch: &str) -> Result<(), SpecialistError> {
    let header = gguf::read_typed(src).map_err(|source| match source {
        gguf::GgufError::Io(source) => SpecialistError::ReadAdapter {
            path: src.to_path_buf(),
            source,
        },
        source => SpecialistError::InvalidAdapter {
            path: src.to_path_buf(),
            source,
        },
    })?;
    check_header(src, &header, base_arch)
}

/// `general.type = adapter`, `adapter.type = lora`, and the base model's architecture (llama.cpp
/// refuses an adapter of another architecture when it loads it; this says so at add time).
fn check_header(
    src: &Path,
    (info, ty): &(GgufInfo, GgufType),
    base_arch: &str,
) -> Result<(), SpecialistError> {
    let refuse = |reason: String| SpecialistError::NotALoraAdapter {
        path: src.to_path_buf(),
        reason,
    };
    match ty.general.as_deref() {
        Some("adapter") => {}
        Some(other) => {
            return Err(refuse(format!(
                "its general.type is `{other}`, not `adapter`"
            )));
        }
        None => {
            return Err(refuse(
                "it has no general.type (a LoRA adapter converted by llama.cpp says `adapter`)"
                    .into(),
            ));
        }
    }
    match ty.adapter.as_deref() {
        Some("lora") => {}
        Some(other) => {
            return Err(refuse(format!(
                "its adapter.type is `{other}`; only `lora` adapters are supported"
            )));
        }
        None => return Err(refuse("it has no adapter.type (expected `lora`)".into())),
    }
    if info.architecture != base_arch {
        return Err(refuse(format!(
            "it is an adapter for architecture `{}`, but the base model is `{base_arch}`",
            info.architecture
        )));
    }
    Ok(())
}

/// Copies `source` into the new file `tmp`, returning the SHA-256 of what was written.
fn copy_hashing(source: &mut File, src: &Path, tmp: &Path) -> Result<String, SpecialistError> {
    let mut out = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(tmp)
        .map_err(io("create", tmp))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; COPY_BUF];
    loop {
        let n = source
            .read(&mut buf)
            .map_err(|source| SpecialistError::ReadAdapter {
                path: src.to_path_buf(),
                source,
            })?;
        if n == 0 {
            break;
        }
        let data = buf.get(..n).unwrap_or_default();
        out.write_all(data).map_err(io("write", tmp))?;
        hasher.update(data);
    }
    out.set_permissions(fs::Permissions::from_mode(0o444))
        .map_err(io("make read-only", tmp))?;
    out.sync_all().map_err(io("sync", tmp))?;
    Ok(hex::encode(hasher.finalize()))
}

/// Checks that the blob at `path` is the adapter `a` names: its size, then its SHA-256.
pub(crate) fn check_blob(a: &Adapter, path: &Path) -> Result<(), String> {
    let mut file = File::open(path)
        .map_err(|e| format!("failed to read its adapter file `{}`: {e}", path.display()))?;
    let size = file
        .metadata()
        .map_err(|e| format!("failed to read its adapter file: {e}"))?
        .len();
    if size != a.size {
        return Err(format!(
            "its adapter file is {size} bytes, the manifest says {}",
            a.size
        ));
    }
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; COPY_BUF];
    loop {
        let n = file
            .read(&mut buf)
            .map_err(|e| format!("failed to read its adapter file: {e}"))?;
        if n == 0 {
            break;
        }
        hasher.update(buf.get(..n).unwrap_or_default());
    }
    let actual = hex::encode(hasher.finalize());
    if actual != a.sha256 {
        return Err(format!(
            "its adapter file hashes to sha256 {actual}, the manifest says {}",
            a.sha256
        ));
    }
    Ok(())
}
