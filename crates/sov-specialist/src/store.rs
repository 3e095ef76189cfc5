//! The specialist store: add (or replace), list, get (verified) and remove.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use sov_keys::{OwnerKeys, OwnerPublicKeys};
use sov_models::VerifiedModel;

use crate::error::io;
use crate::manifest::{SignedManifest, sha256_hex};
use crate::{
    BaseModel, MANIFEST_DOMAIN, MANIFEST_FORMAT, Manifest, SpecialistError, VerifiedSpecialist,
    adapter, rules,
};

/// Largest manifest file read (instructions are at most 32 KiB).
const MAX_MANIFEST: u64 = 1024 * 1024;

/// What the owner asks for: the input of [`SpecialistStore::add`].
#[derive(Debug, Clone)]
pub struct Spec<'a> {
    /// The specialist's name ([`validate_name`](crate::validate_name)).
    pub name: String,
    /// The base model, as the model store verified it: its name and SHA-256 are what the
    /// manifest binds the specialist to.
    pub base: &'a VerifiedModel,
    /// The corpora, in order (their existence is the caller's to check).
    pub corpora: Vec<String>,
    /// What it is for, for the router.
    pub description: String,
    /// The instructions; `None` for [`Manifest::default_instructions`].
    pub instructions: Option<String>,
    /// The tools it may call.
    pub tools: Vec<String>,
    /// The tools installed on this node, which `tools` are checked against.
    pub installed_tools: Vec<String>,
    /// How its model is offered the tools (`required` needs tools).
    pub tool_choice: crate::ToolChoice,
    /// A LoRA adapter GGUF file to apply over the base model.
    pub adapter: Option<PathBuf>,
    /// Replace a specialist of the same name, if there is one (otherwise that is an error).
    pub replace: bool,
}

/// What [`SpecialistStore::add`] did.
#[derive(Debug, Clone)]
pub struct Added {
    /// The manifest now stored, as signed.
    pub manifest: Manifest,
    /// The manifest it replaced, if the name was taken (only with [`Spec::replace`]).
    pub replaced: Option<Manifest>,
}

/// A specialist store rooted at a directory (see the crate docs for the layout).
#[derive(Debug, Clone)]
pub struct SpecialistStore {
    root: PathBuf,
    #[cfg(test)]
    fail_manifest_writes: bool,
}

/// Removes a temporary file when dropped.
struct TempFile(PathBuf);

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.0);
    }
}

fn sync_dir(dir: &Path) -> Result<(), SpecialistError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io("sync directory", dir))
}

impl SpecialistStore {
    /// Opens the store at `dir`, creating `manifests`, `blobs/sha256` and `tmp` if missing.
    pub fn open(dir: &Path) -> Result<Self, SpecialistError> {
        let store = Self {
            root: dir.to_path_buf(),
            #[cfg(test)]
            fail_manifest_writes: false,
        };
        for sub in [store.manifest_dir(), store.blob_dir(), store.tmp_dir()] {
            fs::create_dir_all(&sub).map_err(io("create directory", &sub))?;
        }
        Ok(store)
    }

    /// Makes every manifest write fail after its temporary file is written, to test that an
    /// add leaves nothing behind.
    #[cfg(test)]
    pub(crate) fn failing_manifest_writes(mut self) -> Self {
        self.fail_manifest_writes = true;
        self
    }

    fn manifest_dir(&self) -> PathBuf {
        self.root.join("manifests")
    }
    fn blob_dir(&self) -> PathBuf {
        self.root.join("blobs").join("sha256")
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
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        self.tmp_dir()
            .join(format!("{what}-{}-{nanos}-{n}.partial", std::process::id()))
    }

    /// Adds the specialist `spec` describes, signing its manifest with `signer`; with
    /// [`Spec::replace`], it replaces one of the same name. All or nothing: on any error the
    /// store is as it was.
    pub fn add(&self, spec: &Spec<'_>, signer: &OwnerKeys) -> Result<Added, SpecialistError> {
        rules::validate_name(&spec.name)?;
        let base = spec.base.manifest();
        if rules::is_embedding_only(&base.gguf) {
            return Err(SpecialistError::EmbeddingBase {
                model: base.name.clone(),
                architecture: base.gguf.architecture.clone(),
            });
        }
        rules::check_corpora(&spec.corpora)?;
        rules::check_description(&spec.description)?;
        let instructions = spec
            .instructions
            .clone()
            .unwrap_or_else(|| Manifest::default_instructions(&spec.corpora).to_owned());
        rules::check_instructions(&instructions)?;
        rules::check_tools(&spec.tools, &spec.installed_tools)?;
        if spec.tool_choice == crate::ToolChoice::Required && spec.tools.is_empty() {
            return Err(SpecialistError::InvalidField {
                field: "tool_choice",
                reason: "`required` needs at least one tool (--tools)".into(),
            });
        }
        let existing = self.read_signed(&spec.name)?.map(|s| s.manifest);
        if existing.is_some() && !spec.replace {
            return Err(SpecialistError::NameTaken {
                name: spec.name.clone(),
            });
        }

        // The adapter goes into tmp/ first, checked and hashed; it moves into place last.
        let mut staged = None;
        let adapter = match &spec.adapter {
            Some(src) => {
                let tmp = TempFile(self.tmp_path("adapter"));
                let a = adapter::copy_checked(src, &tmp.0, &base.gguf.architecture)?;
                staged = Some(tmp);
                Some(a)
            }
            None => None,
        };
        let manifest = Manifest {
            format: MANIFEST_FORMAT.to_owned(),
            name: spec.name.clone(),
            base: BaseModel {
                name: base.name.clone(),
                sha256: base.sha256.clone(),
            },
            corpora: spec.corpora.clone(),
            description: spec.description.clone(),
            instructions_sha256: sha256_hex(instructions.as_bytes()),
            instructions,
            tools: spec.tools.clone(),
            tool_choice: spec.tool_choice,
            adapter,
            created_at: now_rfc3339()?,
            owner_key_id: signer.public().key_id,
        };
        let signatures = signer
            .sign(MANIFEST_DOMAIN, &manifest.signed_bytes())
            .map_err(SpecialistError::Sign)?;
        let signed = SignedManifest {
            manifest,
            signatures,
        };

        let mut created_blob = None;
        if let (Some(a), Some(tmp)) = (&signed.manifest.adapter, &staged) {
            let blob = self.blob_path(&a.sha256);
            if !blob.exists() {
                fs::rename(&tmp.0, &blob).map_err(io("move adapter into", &blob))?;
                sync_dir(&self.blob_dir())?;
                created_blob = Some(blob);
            }
        }
        drop(staged);
        if let Err(e) = self.write_manifest(&signed, spec.replace) {
            if let Some(blob) = created_blob {
                let _ = fs::remove_file(blob);
            }
            return Err(e);
        }
        if let Some(old) = existing.as_ref().and_then(|m| m.adapter.as_ref()) {
            self.drop_blob_if_unused(&old.sha256);
        }
        Ok(Added {
            manifest: signed.manifest,
            replaced: existing,
        })
    }

    /// Writes `manifests/<name>.json` atomically: a synced temporary file, then a rename (to
    /// replace) or a hard link (which fails if the name was taken meanwhile, so nothing is
    /// clobbered that was not asked for).
    fn write_manifest(
        &self,
        signed: &SignedManifest,
        replace: bool,
    ) -> Result<(), SpecialistError> {
        let name = &signed.manifest.name;
        let path = self.manifest_path(name);
        let mut bytes =
            serde_json::to_vec_pretty(signed).map_err(|source| SpecialistError::ParseManifest {
                path: path.clone(),
                source,
            })?;
        bytes.push(b'\n');
        let tmp = TempFile(self.tmp_path("manifest"));
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o644)
            .open(&tmp.0)
            .map_err(io("create", &tmp.0))?;
        file.write_all(&bytes).map_err(io("write", &tmp.0))?;
        file.sync_all().map_err(io("sync", &tmp.0))?;
        #[cfg(test)]
        if self.fail_manifest_writes {
            return Err(io("write manifest", &path)(std::io::Error::other(
                "injected by the test",
            )));
        }
        if replace {
            fs::rename(&tmp.0, &path).map_err(io("write manifest", &path))?;
        } else {
            fs::hard_link(&tmp.0, &path).map_err(|e| {
                if e.kind() == std::io::ErrorKind::AlreadyExists {
                    SpecialistError::NameTaken { name: name.clone() }
                } else {
                    io("write manifest", &path)(e)
                }
            })?;
        }
        sync_dir(&self.manifest_dir())
    }

    fn read_signed(&self, name: &str) -> Result<Option<SignedManifest>, SpecialistError> {
        rules::validate_name(name)?;
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
        let signed = serde_json::from_slice(&bytes)
            .map_err(|source| SpecialistError::ParseManifest { path, source })?;
        Ok(Some(signed))
    }

    /// Every specialist's manifest, sorted by name. Signatures are not checked (use
    /// [`Self::get`]).
    pub fn list(&self) -> Result<Vec<Manifest>, SpecialistError> {
        let dir = self.manifest_dir();
        let mut out = Vec::new();
        for entry in fs::read_dir(&dir).map_err(io("list", &dir))? {
            let entry = entry.map_err(io("list", &dir))?;
            let file_name = entry.file_name();
            let Some(name) = file_name.to_str().and_then(|n| n.strip_suffix(".json")) else {
                continue;
            };
            if rules::validate_name(name).is_err() {
                continue;
            }
            if let Some(signed) = self.read_signed(name)? {
                out.push(signed.manifest);
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// The specialist `name`, verified: the manifest's signature against `owner`, every rule
    /// of its fields, and its adapter's size and SHA-256, read fresh from disk. Only this
    /// function creates a [`VerifiedSpecialist`].
    pub fn get(
        &self,
        name: &str,
        owner: &OwnerPublicKeys,
    ) -> Result<VerifiedSpecialist, SpecialistError> {
        let signed = self
            .read_signed(name)?
            .ok_or_else(|| SpecialistError::NotFound {
                name: name.to_owned(),
            })?;
        let manifest = signed.manifest;
        owner
            .verify(
                MANIFEST_DOMAIN,
                &manifest.signed_bytes(),
                &signed.signatures,
            )
            .map_err(|_| SpecialistError::ManifestSignature {
                name: name.to_owned(),
            })?;
        let inconsistent = |reason: String| SpecialistError::Inconsistent {
            name: name.to_owned(),
            reason,
        };
        if manifest.name != name {
            return Err(inconsistent(format!(
                "the manifest file is named `{name}` but describes `{}`",
                manifest.name
            )));
        }
        if manifest.owner_key_id != owner.key_id {
            return Err(inconsistent(format!(
                "it names owner key {}, but was verified with {}",
                manifest.owner_key_id, owner.key_id
            )));
        }
        rules::check_manifest(&manifest).map_err(inconsistent)?;
        let adapter = match &manifest.adapter {
            Some(a) => {
                let path = self.blob_path(&a.sha256);
                adapter::check_blob(a, &path).map_err(inconsistent)?;
                Some(path)
            }
            None => None,
        };
        Ok(VerifiedSpecialist::new(manifest, adapter))
    }

    /// Removes the specialist `name` and returns its manifest; its adapter's blob goes too,
    /// unless another specialist uses the same file.
    pub fn remove(&self, name: &str) -> Result<Manifest, SpecialistError> {
        let manifest = self
            .read_signed(name)?
            .ok_or_else(|| SpecialistError::NotFound {
                name: name.to_owned(),
            })?
            .manifest;
        let path = self.manifest_path(name);
        fs::remove_file(&path).map_err(io("remove", &path))?;
        sync_dir(&self.manifest_dir())?;
        if let Some(a) = &manifest.adapter {
            self.drop_blob_if_unused(&a.sha256);
        }
        Ok(manifest)
    }

    /// Removes an adapter blob no manifest names any more. After the change it follows is
    /// durable, so a failure is not the change's: a blob left behind is named by its content,
    /// checked at every [`Self::get`], and reused by the next add of the same file.
    fn drop_blob_if_unused(&self, sha256: &str) {
        if !rules::is_hex_digest(sha256) {
            return;
        }
        let Ok(manifests) = self.list() else { return };
        let used = manifests
            .iter()
            .any(|m| m.adapter.as_ref().is_some_and(|a| a.sha256 == sha256));
        if !used && fs::remove_file(self.blob_path(sha256)).is_ok() {
            let _ = sync_dir(&self.blob_dir());
        }
    }
}

fn now_rfc3339() -> Result<String, SpecialistError> {
    let now = time::OffsetDateTime::now_utc();
    let now = now.replace_nanosecond(0).unwrap_or(now);
    now.format(&time::format_description::well_known::Rfc3339)
        .map_err(SpecialistError::Clock)
}
