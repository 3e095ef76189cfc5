//! The signed model manifest and model names.

use serde::{Deserialize, Serialize};
use sov_keys::Signatures;

use crate::{GgufInfo, StoreError};

/// `format` value of a version-1 manifest.
pub const MANIFEST_FORMAT: &str = "sovereign.model-manifest/v1";
/// Signing domain for manifests.
pub const MANIFEST_DOMAIN: &[u8] = b"sovereign/model-manifest/v1";
/// Chunk size for per-chunk digests: 64 MiB.
pub const CHUNK_SIZE: u64 = 64 * 1024 * 1024;

/// What the owner vouches for about one model. Field order is fixed, so
/// `serde_json::to_vec(&manifest)` (the signed bytes) is deterministic.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Always [`MANIFEST_FORMAT`].
    pub format: String,
    /// Model name, `[a-z0-9][a-z0-9._-]{0,63}`.
    pub name: String,
    /// SHA-256 of the whole file, lowercase hex; also the blob's file name.
    pub sha256: String,
    /// File size in bytes.
    pub size: u64,
    /// Bytes per chunk ([`CHUNK_SIZE`]).
    pub chunk_size: u64,
    /// BLAKE3 of each chunk, lowercase hex, in order; the last chunk may be short. These are
    /// what every load checks (see the crate docs for why BLAKE3 here).
    pub chunk_blake3: Vec<String>,
    /// What the GGUF header says.
    pub gguf: GgufInfo,
    /// File name the model was imported from.
    pub source_file_name: String,
    /// Import time, RFC 3339 UTC.
    pub imported_at: String,
    /// Key id of the owner who signed it.
    pub owner_key_id: String,
    /// How the GGUF was made, when it was converted at import from another format. Absent
    /// (and not serialized) for a GGUF imported as it is, so manifests written before this
    /// field existed re-serialize to the bytes that were signed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub converted_from: Option<Conversion>,
    /// The chat template the engine uses instead of the one in the GGUF (or for a GGUF that has
    /// none). Absent (and not serialized) when the GGUF's own template is used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chat_template: Option<ChatTemplateChoice>,
}

/// How a model was converted to GGUF at import (`sov model import DIR_OR_ZIP`).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Conversion {
    /// The converter, e.g. `sov-models/bert-safetensors`.
    pub converter: String,
    /// Its version: a new version may write other bytes from the same files.
    pub converter_version: String,
    /// The archive the files came from, when the import was given a `.zip`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub archive: Option<SourceFile>,
    /// The files the converter read, by their path inside the directory or archive.
    pub files: Vec<SourceFile>,
}

/// One file a converted model was made from.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct SourceFile {
    /// Path inside the model directory or archive (`/`-separated), or the archive's file name.
    pub name: String,
    /// Size in bytes.
    pub size: u64,
    /// SHA-256, lowercase hex.
    pub sha256: String,
}

/// A chat template chosen at import.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ChatTemplateChoice {
    /// A built-in template's name (`gemma`, `chatml`: [`crate::templates`]), or the file name
    /// of the owner's own template.
    pub name: String,
    /// SHA-256 of the template's text, lowercase hex.
    pub sha256: String,
    /// Why this template: the owner named it, or the architecture implied it.
    pub chosen_by: ChosenBy,
    /// The template's text, for the owner's own file (a built-in's text is in the binary).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
}

/// Who chose a chat template.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ChosenBy {
    /// `sov model import --chat-template`.
    Owner,
    /// The GGUF has no template; its `general.architecture` has a known format.
    Architecture,
}

/// A manifest file on disk: `{"manifest": ..., "signatures": ...}`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub(crate) struct SignedManifest {
    pub(crate) manifest: Manifest,
    pub(crate) signatures: Signatures,
}

impl Manifest {
    /// The exact bytes the owner signs.
    pub fn signed_bytes(&self) -> Vec<u8> {
        // Serializing plain strings and integers cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Checks that the chunk list, size and digests agree in shape.
    pub(crate) fn check_consistent(&self) -> Result<(), StoreError> {
        let bad = |reason: String| StoreError::Inconsistent {
            name: self.name.clone(),
            reason,
        };
        if self.format != MANIFEST_FORMAT {
            return Err(bad(format!("unknown format `{}`", self.format)));
        }
        if !is_hex_digest(&self.sha256) {
            return Err(bad("sha256 is not 64 lowercase hex digits".into()));
        }
        if self.chunk_size == 0 {
            return Err(bad("chunk_size is zero".into()));
        }
        let chunks = self.size.div_ceil(self.chunk_size);
        if self.chunk_blake3.len() as u64 != chunks {
            return Err(bad(format!(
                "{} chunk digests for {} bytes in chunks of {}",
                self.chunk_blake3.len(),
                self.size,
                self.chunk_size
            )));
        }
        if !self.chunk_blake3.iter().all(|d| is_hex_digest(d)) {
            return Err(bad("a chunk digest is not 64 lowercase hex digits".into()));
        }
        if let Some(c) = &self.converted_from {
            let files = c.files.iter().chain(c.archive.as_ref());
            if files.clone().any(|f| !is_hex_digest(&f.sha256)) {
                return Err(bad(
                    "a source file's sha256 is not 64 lowercase hex digits".into()
                ));
            }
        }
        if let Some(t) = &self.chat_template {
            crate::templates::text_of(t).map_err(bad)?;
        }
        Ok(())
    }
}

pub(crate) fn is_hex_digest(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Checks a model name: `[a-z0-9][a-z0-9._-]{0,63}`. Names become file names, so
/// anything else (slashes, `..` at the start, upper case, spaces) is refused.
pub fn validate_name(name: &str) -> Result<(), StoreError> {
    let err = |reason| StoreError::InvalidName {
        name: name.chars().take(80).collect(),
        reason,
    };
    let mut bytes = name.bytes();
    match bytes.next() {
        None => return Err(err("it is empty")),
        Some(b) if !(b.is_ascii_lowercase() || b.is_ascii_digit()) => {
            return Err(err("it must start with a lowercase letter or digit"));
        }
        Some(_) => {}
    }
    if name.len() > 64 {
        return Err(err("it is longer than 64 characters"));
    }
    if !bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b)) {
        return Err(err("only a-z, 0-9, '.', '_' and '-' are allowed"));
    }
    Ok(())
}

/// Default name for a file: its stem, lowercased, other characters replaced by `-`.
pub(crate) fn default_name(file_name: &str) -> String {
    let stem = std::path::Path::new(file_name)
        .file_stem()
        .map_or_else(String::new, |s| s.to_string_lossy().into_owned());
    let mapped: String = stem
        .chars()
        .map(|c| c.to_ascii_lowercase())
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-".contains(c) {
                c
            } else {
                '-'
            }
        })
        .collect();
    let trimmed = mapped.trim_start_matches(|c: char| !c.is_ascii_alphanumeric());
    trimmed.chars().take(64).collect()
}
