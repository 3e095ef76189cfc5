//! Typed errors for the model store.

use std::path::PathBuf;

use crate::gguf::GgufError;

/// Everything that can go wrong in the model store.
///
/// Manifest signature failures are opaque ([`StoreError::ManifestSignature`]).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A store directory or file could not be created, written or removed.
    #[error("failed to {action} `{}`", path.display())]
    Io {
        /// What we were doing, e.g. "create directory".
        action: &'static str,
        /// The path involved.
        path: PathBuf,
        /// The underlying I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The file to import could not be opened or read.
    #[error("failed to read model file `{}`", path.display())]
    ReadSource {
        /// The source file.
        path: PathBuf,
        /// The underlying I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The file to import is not an acceptable GGUF model.
    #[error("failed to import `{}`: not a valid GGUF model", path.display())]
    InvalidModel {
        /// The source file.
        path: PathBuf,
        /// Why.
        #[source]
        source: GgufError,
    },
    /// The file to import changed while it was being copied.
    #[error("failed to import `{}`: the file changed while it was being copied", path.display())]
    SourceChanged {
        /// The source file.
        path: PathBuf,
    },
    /// A model name is not of the form `[a-z0-9][a-z0-9._-]{{0,63}}`.
    #[error("failed to use model name `{name}`: {reason}")]
    InvalidName {
        /// The rejected name.
        name: String,
        /// Why.
        reason: &'static str,
    },
    /// The name already belongs to a model with different contents.
    #[error(
        "failed to import as `{name}`: that name is already used by a different model (sha256 {existing})"
    )]
    NameTaken {
        /// The name.
        name: String,
        /// Digest of the model already stored under that name.
        existing: String,
    },
    /// No model with that name.
    #[error("failed to find model `{name}` in the store")]
    NotFound {
        /// The name.
        name: String,
    },
    /// A manifest file could not be parsed.
    #[error("failed to parse manifest `{}`", path.display())]
    ParseManifest {
        /// The manifest file.
        path: PathBuf,
        /// Why.
        #[source]
        source: serde_json::Error,
    },
    /// Signing the manifest failed.
    #[error("failed to sign the manifest")]
    Sign(#[source] sov_keys::KeyError),
    /// The manifest's owner signature does not verify. Opaque on purpose.
    #[error("failed to verify model `{name}`: the manifest's signature is not valid")]
    ManifestSignature {
        /// The model name.
        name: String,
    },
    /// The manifest is signed but internally inconsistent.
    #[error("failed to verify model `{name}`: manifest is inconsistent ({reason})")]
    Inconsistent {
        /// The model name.
        name: String,
        /// What does not add up.
        reason: String,
    },
    /// The blob's size differs from the manifest.
    #[error(
        "failed to verify model `{name}`: the file does not match its signed manifest: it is {actual} bytes, the manifest says {expected}"
    )]
    BlobSize {
        /// The model name.
        name: String,
        /// Size in the manifest.
        expected: u64,
        /// Size on disk.
        actual: u64,
    },
    /// A chunk of the blob does not hash to the value in the manifest.
    #[error(
        "failed to verify model `{name}`: the file does not match its signed manifest: the chunk at byte {offset} hashes to BLAKE3 {actual}, the manifest says {expected}"
    )]
    DigestMismatch {
        /// The model name.
        name: String,
        /// Start of the first bad chunk.
        offset: u64,
        /// Expected chunk BLAKE3 (hex).
        expected: String,
        /// Actual chunk BLAKE3 (hex).
        actual: String,
    },
    /// A model directory or archive could not be converted to GGUF.
    #[error("failed to import `{}`: it could not be converted to GGUF", path.display())]
    Convert {
        /// The directory or archive.
        path: PathBuf,
        /// Why.
        #[source]
        source: crate::convert::ConvertError,
    },
    /// A chat template was named for an embedding model.
    #[error("failed to import `{}`: it is an embedding model, which takes no chat template", path.display())]
    NoChat {
        /// The model file, directory or archive.
        path: PathBuf,
    },
    /// The name holds the same model with another chat template.
    #[error(
        "failed to import as `{name}`: that name already holds this model with {existing}, not {requested}; remove it first (`sov model rm {name}`)"
    )]
    TemplateDiffers {
        /// The name.
        name: String,
        /// The template in the stored manifest.
        existing: String,
        /// The template of this import.
        requested: String,
    },
    /// The system clock could not be formatted.
    #[error("failed to format the import time")]
    Clock(#[source] time::error::Format),
}
