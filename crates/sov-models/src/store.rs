//! The model store: import, list, get, verify and remove.

use std::fs::{self, File, OpenOptions};
use std::io::{BufReader, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::manifest::{SignedManifest, default_name, validate_name};
use crate::{
    CHUNK_SIZE, MANIFEST_DOMAIN, MANIFEST_FORMAT, Manifest, StoreError, VerifiedModel, gguf, verify,
};

/// Largest manifest file we read.
const MAX_MANIFEST: u64 = 16 * 1024 * 1024;
/// Copy buffer for imports.
const COPY_BUF: usize = 1024 * 1024;

/// Result of [`ModelStore::import`].
#[derive(Debug, Clone)]
pub enum ImportOutcome {
    /// The model was added.
    Imported(Manifest),
    /// The same name with the same contents was already there; nothing changed.
    AlreadyPresent(Manifest),
}

/// A model store rooted at a directory (see the crate docs for the layout).
#[derive(Debug, Clone)]
pub struct ModelStore {
    root: PathBuf,
    chunk_size: u64,
}

/// What an import may say besides the file.
#[derive(Debug, Clone, Default)]
pub struct ImportOptions {
    /// The name to store it under (default: from the file name).
    pub name: Option<String>,
    /// A chat template the owner chose ([`crate::templates::choose`]).
    pub chat_template: Option<crate::ChatTemplateChoice>,
}

/// Removes a temporary file when dropped unless disarmed.
struct TempFile(Option<PathBuf>);

impl Drop for TempFile {
    fn drop(&mut self) {
        if let Some(path) = self.0.take() {
            let _ = fs::remove_file(path);
        }
    }
}

/// Removes a temporary directory and everything in it when dropped.
struct TempDir(Option<PathBuf>);

impl Drop for TempDir {
    fn drop(&mut self) {
        if let Some(path) = self.0.take() {
            let _ = fs::remove_dir_all(path);
        }
    }
}

fn file_name(src: &Path) -> String {
    src.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

pub(crate) fn io(action: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> StoreError {
    let path = path.to_path_buf();
    move |source| StoreError::Io {
        action,
        path,
        source,
    }
}

fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io("sync directory", dir))
}

impl ModelStore {
    /// Opens the store at `dir`, creating `blobs/sha256`, `manifests` and `tmp` if missing.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        let store = Self {
            root: dir.to_path_buf(),
            chunk_size: CHUNK_SIZE,
        };
        for sub in [store.blob_dir(), store.manifest_dir(), store.tmp_dir()] {
            fs::create_dir_all(&sub).map_err(io("create directory", &sub))?;
        }
        Ok(store)
    }

    #[cfg(test)]
    pub(crate) fn with_chunk_size(mut self, chunk_size: u64) -> Self {
        self.chunk_size = chunk_size;
        self
    }

    fn blob_dir(&self) -> PathBuf {
        self.root.join("blobs").join("sha256")
    }
    fn manifest_dir(&self) -> PathBuf {
        self.root.join("manifests")
    }
    fn tmp_dir(&self) -> PathBuf {
        self.root.join("tmp")
    }
    fn manifest_path(&self, name: &str) -> PathBuf {
        self.manifest_dir().join(format!("{name}.json"))
    }
    fn blob_path(&self, sha256: &str) -> PathBuf {
        self.blob_dir().join(sha256)
    }
    fn tmp_path(&self, what: &str) -> PathBuf {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        self.tmp_dir()
            .join(format!("{what}-{}-{nanos}.partial", std::process::id()))
    }

    /// Imports the GGUF file `src` under `name` (default: its sanitized file stem),
    /// signing the manifest with `signer`. On any error the store is left as it was.
    pub fn import(
        &self,
        src: &Path,
        name: Option<&str>,
        signer: &sov_keys::OwnerKeys,
        progress: &mut dyn FnMut(u64, u64),
    ) -> Result<ImportOutcome, StoreError> {
        let options = ImportOptions {
            name: name.map(str::to_owned),
            chat_template: None,
        };
        self.import_with(src, &options, signer, progress)
    }

    /// [`Self::import`] with options: a chat template named by the owner. Without one, a GGUF
    /// that has no template of its own gets the one its architecture implies, if any
    /// ([`crate::templates::for_architecture`]); the manifest records the choice.
    pub fn import_with(
        &self,
        src: &Path,
        options: &ImportOptions,
        signer: &sov_keys::OwnerKeys,
        progress: &mut dyn FnMut(u64, u64),
    ) -> Result<ImportOutcome, StoreError> {
        let source_file_name = file_name(src);
        let name = self.name_for(options, &source_file_name)?;
        self.store_gguf(
            src,
            src,
            source_file_name,
            &name,
            options,
            None,
            signer,
            progress,
        )
    }

    /// Converts the model directory or `.zip` at `src` to GGUF ([`crate::convert`]) and imports
    /// the result like [`Self::import_with`]; the manifest records the converter and every
    /// source file. The conversion works in `tmp/`, which it leaves as it found it.
    pub fn import_converted(
        &self,
        src: &Path,
        options: &ImportOptions,
        signer: &sov_keys::OwnerKeys,
        progress: &mut dyn FnMut(u64, u64),
    ) -> Result<ImportOutcome, StoreError> {
        let source_file_name = file_name(src);
        let name = self.name_for(options, &source_file_name)?;
        if options.chat_template.is_some() {
            return Err(StoreError::NoChat {
                path: src.to_path_buf(),
            });
        }
        let work = self.tmp_path("convert");
        fs::create_dir(&work).map_err(io("create directory", &work))?;
        let _work_guard = TempDir(Some(work.clone()));
        let converted =
            crate::convert::convert(src, &work).map_err(|source| StoreError::Convert {
                path: src.to_path_buf(),
                source,
            })?;
        self.store_gguf(
            &converted.gguf,
            src,
            source_file_name,
            &name,
            options,
            Some(converted.conversion),
            signer,
            progress,
        )
    }

    fn name_for(
        &self,
        options: &ImportOptions,
        source_file_name: &str,
    ) -> Result<String, StoreError> {
        let name = options
            .name
            .clone()
            .unwrap_or_else(|| default_name(source_file_name));
        validate_name(&name)?;
        Ok(name)
    }

    /// Copies the GGUF at `gguf` into the store under `name` (errors name `src`, what the
    /// owner gave).
    #[allow(clippy::too_many_arguments)]
    fn store_gguf(
        &self,
        gguf: &Path,
        src: &Path,
        source_file_name: String,
        name: &str,
        options: &ImportOptions,
        converted_from: Option<crate::Conversion>,
        signer: &sov_keys::OwnerKeys,
        progress: &mut dyn FnMut(u64, u64),
    ) -> Result<ImportOutcome, StoreError> {
        let name = name.to_owned();
        // Parse first: reject non-GGUF and truncated files before copying anything.
        let read_err = |source| StoreError::ReadSource {
            path: src.to_path_buf(),
            source,
        };
        let mut source = File::open(gguf).map_err(read_err)?;
        let size = source.metadata().map_err(read_err)?.len();
        let invalid = |source| StoreError::InvalidModel {
            path: src.to_path_buf(),
            source,
        };
        gguf::parse(BufReader::new(&source), size).map_err(invalid)?;
        source.seek(SeekFrom::Start(0)).map_err(read_err)?;

        let tmp_path = self.tmp_path("import");
        let tmp_guard = TempFile(Some(tmp_path.clone()));
        let (sha256, chunk_blake3) =
            self.copy_hashing(&mut source, size, &tmp_path, src, progress)?;
        // Describe the bytes we stored, not the ones we first looked at.
        let tmp_len = fs::metadata(&tmp_path)
            .map_err(io("read", &tmp_path))?
            .len();
        if tmp_len != size || source.metadata().map_err(read_err)?.len() != size {
            return Err(StoreError::SourceChanged {
                path: src.to_path_buf(),
            });
        }
        let info = gguf::read_info(&tmp_path).map_err(invalid)?;
        let chat_template = match &options.chat_template {
            Some(_) if crate::is_embedding_architecture(&info.architecture) => {
                return Err(StoreError::NoChat {
                    path: src.to_path_buf(),
                });
            }
            Some(choice) => Some(choice.clone()),
            None if info.chat_template.is_none() => {
                crate::templates::for_architecture(&info.architecture)
            }
            None => None,
        };

        if let Some(existing) = self.get_if_present(&name)? {
            return if existing.sha256 != sha256 {
                Err(StoreError::NameTaken {
                    name,
                    existing: existing.sha256,
                })
            } else if existing.chat_template != chat_template {
                let describe = |t: &Option<crate::ChatTemplateChoice>| {
                    t.as_ref().map_or_else(
                        || "the model's own chat template".to_owned(),
                        |t| format!("chat template `{}`", t.name),
                    )
                };
                Err(StoreError::TemplateDiffers {
                    name,
                    existing: describe(&existing.chat_template),
                    requested: describe(&chat_template),
                })
            } else {
                Ok(ImportOutcome::AlreadyPresent(existing))
            };
        }

        let imported_at = now_rfc3339()?;
        let manifest = Manifest {
            format: MANIFEST_FORMAT.to_owned(),
            name: name.clone(),
            sha256: sha256.clone(),
            size,
            chunk_size: self.chunk_size,
            chunk_blake3,
            gguf: info,
            source_file_name,
            imported_at,
            owner_key_id: signer.public().key_id,
            converted_from,
            chat_template,
        };
        manifest.check_consistent()?;
        let signatures = signer
            .sign(MANIFEST_DOMAIN, &manifest.signed_bytes())
            .map_err(StoreError::Sign)?;
        let signed = SignedManifest {
            manifest,
            signatures,
        };

        // Move the blob into place (or reuse an identical one), then the manifest.
        let blob = self.blob_path(&sha256);
        let created_blob = !blob.exists();
        if created_blob {
            fs::rename(&tmp_path, &blob).map_err(io("move blob into", &blob))?;
            sync_dir(&self.blob_dir())?;
        }
        drop(tmp_guard);
        if let Err(e) = self.write_manifest(&name, &signed) {
            if created_blob {
                let _ = fs::remove_file(&blob);
            }
            return Err(e);
        }
        Ok(ImportOutcome::Imported(signed.manifest))
    }

    /// Copies `source` into a new read-only temp file, hashing the whole file and
    /// each chunk. Returns `(sha256 of the file, BLAKE3 of each chunk)`.
    fn copy_hashing(
        &self,
        source: &mut File,
        size: u64,
        tmp_path: &Path,
        src: &Path,
        progress: &mut dyn FnMut(u64, u64),
    ) -> Result<(String, Vec<String>), StoreError> {
        let mut out = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(tmp_path)
            .map_err(io("create", tmp_path))?;
        let mut whole = Sha256::new();
        let mut chunk = blake3::Hasher::new();
        let mut chunk_fill = 0u64;
        let mut chunks = Vec::new();
        let mut done = 0u64;
        let mut buf = vec![0u8; COPY_BUF];
        progress(0, size);
        loop {
            let n = source
                .read(&mut buf)
                .map_err(|source| StoreError::ReadSource {
                    path: src.to_path_buf(),
                    source,
                })?;
            if n == 0 {
                break;
            }
            let mut data = buf.get(..n).unwrap_or_default();
            out.write_all(data).map_err(io("write", tmp_path))?;
            whole.update(data);
            while !data.is_empty() {
                let room = usize::try_from(self.chunk_size - chunk_fill).unwrap_or(usize::MAX);
                let (head, rest) = data.split_at(room.min(data.len()));
                chunk.update(head);
                chunk_fill += head.len() as u64;
                if chunk_fill == self.chunk_size {
                    chunks.push(chunk.finalize().to_hex().to_string());
                    chunk.reset();
                    chunk_fill = 0;
                }
                data = rest;
            }
            done += n as u64;
            progress(done.min(size), size);
        }
        if chunk_fill > 0 {
            chunks.push(chunk.finalize().to_hex().to_string());
        }
        if done != size {
            return Err(StoreError::SourceChanged {
                path: src.to_path_buf(),
            });
        }
        out.set_permissions(fs::Permissions::from_mode(0o444))
            .map_err(io("make read-only", tmp_path))?;
        out.sync_all().map_err(io("sync", tmp_path))?;
        Ok((hex::encode(whole.finalize()), chunks))
    }

    /// Writes `manifests/<name>.json` atomically, refusing to replace an existing one.
    fn write_manifest(&self, name: &str, signed: &SignedManifest) -> Result<(), StoreError> {
        let path = self.manifest_path(name);
        let mut bytes =
            serde_json::to_vec_pretty(signed).map_err(|source| StoreError::ParseManifest {
                path: path.clone(),
                source,
            })?;
        bytes.push(b'\n');
        let tmp = self.tmp_path("manifest");
        let _guard = TempFile(Some(tmp.clone()));
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o644)
            .open(&tmp)
            .map_err(io("create", &tmp))?;
        file.write_all(&bytes).map_err(io("write", &tmp))?;
        file.sync_all().map_err(io("sync", &tmp))?;
        // A hard link fails if the target exists, so a concurrent import is never clobbered.
        fs::hard_link(&tmp, &path).map_err(io("write manifest", &path))?;
        sync_dir(&self.manifest_dir())
    }

    pub(crate) fn read_signed(&self, name: &str) -> Result<Option<SignedManifest>, StoreError> {
        validate_name(name)?;
        let path = self.manifest_path(name);
        let file = match File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io("read manifest", &path)(e)),
        };
        let mut bytes = Vec::new();
        file.take(MAX_MANIFEST)
            .read_to_end(&mut bytes)
            .map_err(io("read manifest", &path))?;
        let signed: SignedManifest =
            serde_json::from_slice(&bytes).map_err(|source| StoreError::ParseManifest {
                path: path.clone(),
                source,
            })?;
        Ok(Some(signed))
    }

    fn get_if_present(&self, name: &str) -> Result<Option<Manifest>, StoreError> {
        Ok(self.read_signed(name)?.map(|s| s.manifest))
    }

    /// All manifests, sorted by name. Signatures are not checked (use [`Self::verify`]).
    pub fn list(&self) -> Result<Vec<Manifest>, StoreError> {
        let dir = self.manifest_dir();
        let mut out = Vec::new();
        for entry in fs::read_dir(&dir).map_err(io("list", &dir))? {
            let entry = entry.map_err(io("list", &dir))?;
            let file_name = entry.file_name();
            let Some(name) = file_name.to_str().and_then(|n| n.strip_suffix(".json")) else {
                continue;
            };
            if validate_name(name).is_err() {
                continue;
            }
            if let Some(m) = self.get_if_present(name)? {
                out.push(m);
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// The manifest of `name`, unverified.
    pub fn get(&self, name: &str) -> Result<Manifest, StoreError> {
        self.get_if_present(name)?
            .ok_or_else(|| StoreError::NotFound {
                name: name.to_owned(),
            })
    }

    /// Checks the manifest signature against `owner`, then every chunk of the blob,
    /// reading it fresh from disk. Only this function creates a [`VerifiedModel`].
    pub fn verify(
        &self,
        name: &str,
        owner: &sov_keys::OwnerPublicKeys,
    ) -> Result<VerifiedModel, StoreError> {
        let signed = self
            .read_signed(name)?
            .ok_or_else(|| StoreError::NotFound {
                name: name.to_owned(),
            })?;
        let manifest = signed.manifest;
        owner
            .verify(
                MANIFEST_DOMAIN,
                &manifest.signed_bytes(),
                &signed.signatures,
            )
            .map_err(|_| StoreError::ManifestSignature {
                name: name.to_owned(),
            })?;
        if manifest.name != name {
            return Err(StoreError::Inconsistent {
                name: name.to_owned(),
                reason: format!(
                    "manifest file is named `{name}` but describes `{}`",
                    manifest.name
                ),
            });
        }
        manifest.check_consistent()?;
        let path = self.blob_path(&manifest.sha256);
        verify::check_blob(&manifest, &path)?;
        Ok(VerifiedModel::new(manifest, path))
    }

    /// Removes `name`, and its blob unless another manifest uses the same digest.
    pub fn remove(&self, name: &str) -> Result<Manifest, StoreError> {
        let manifest = self.get(name)?;
        let path = self.manifest_path(name);
        fs::remove_file(&path).map_err(io("remove", &path))?;
        sync_dir(&self.manifest_dir())?;
        let still_used = self.list()?.iter().any(|m| m.sha256 == manifest.sha256);
        if !still_used && crate::manifest::is_hex_digest(&manifest.sha256) {
            let blob = self.blob_path(&manifest.sha256);
            match fs::remove_file(&blob) {
                Ok(()) => sync_dir(&self.blob_dir())?,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(io("remove", &blob)(e)),
            }
        }
        Ok(manifest)
    }
}

fn now_rfc3339() -> Result<String, StoreError> {
    let now = time::OffsetDateTime::now_utc();
    let now = now.replace_nanosecond(0).unwrap_or(now);
    now.format(&time::format_description::well_known::Rfc3339)
        .map_err(StoreError::Clock)
}
