//! Typed errors for specialists and their store.

use std::path::PathBuf;

use sov_models::GgufError;

/// Everything that can go wrong with a specialist or the store of them.
///
/// A manifest whose signature does not verify is opaque ([`SpecialistError::ManifestSignature`]).
#[derive(Debug, thiserror::Error)]
pub enum SpecialistError {
    /// A store directory or file could not be created, written, read or removed.
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
    /// A specialist name breaks the rule, or is reserved.
    #[error("failed to use specialist name `{name}`: {reason}")]
    InvalidName {
        /// The rejected name (at most 80 characters of it).
        name: String,
        /// Why.
        reason: &'static str,
    },
    /// A corpus name breaks the rule.
    #[error("failed to use corpus name `{name}`: {reason}")]
    InvalidCorpus {
        /// The rejected name (at most 80 characters of it).
        name: String,
        /// Why.
        reason: String,
    },
    /// A field of the specialist is outside its limits (empty, too long, a control character).
    #[error("failed to use the {field}: {reason}")]
    InvalidField {
        /// The field: `description`, `instructions`, `tools`, ...
        field: &'static str,
        /// Why.
        reason: String,
    },
    /// A tool that is not installed.
    #[error("unknown tool `{tool}`: {}", installed_tools(.installed))]
    UnknownTool {
        /// The tool asked for (at most 80 characters of it).
        tool: String,
        /// The tools that are installed.
        installed: Vec<String>,
    },
    /// The base model cannot generate text.
    #[error(
        "failed to use model `{model}` as a base: it is an embedding model (architecture `{architecture}`), which encodes text but cannot answer"
    )]
    EmbeddingBase {
        /// The model's name.
        model: String,
        /// Its `general.architecture`.
        architecture: String,
    },
    /// The adapter file could not be opened or read.
    #[error("failed to read adapter file `{}`", path.display())]
    ReadAdapter {
        /// The file.
        path: PathBuf,
        /// The underlying I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The adapter file is not valid GGUF.
    #[error("failed to use `{}` as an adapter: not a valid GGUF file", path.display())]
    InvalidAdapter {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: GgufError,
    },
    /// The adapter file is valid GGUF but not a LoRA adapter for the base model.
    #[error("failed to use `{}` as an adapter: {reason}", path.display())]
    NotALoraAdapter {
        /// The file.
        path: PathBuf,
        /// What its header says instead.
        reason: String,
    },
    /// The adapter file changed while it was being copied.
    #[error("failed to store adapter `{}`: the file changed while it was being copied", path.display())]
    AdapterChanged {
        /// The file.
        path: PathBuf,
    },
    /// The name is taken and replacing was not asked for.
    #[error(
        "failed to add specialist `{name}`: a specialist of that name already exists, and replacing it was not asked for (--replace)"
    )]
    NameTaken {
        /// The name.
        name: String,
    },
    /// No specialist with that name.
    #[error("failed to find specialist `{name}`")]
    NotFound {
        /// The name.
        name: String,
    },
    /// A manifest file could not be parsed.
    #[error("failed to parse specialist manifest `{}`", path.display())]
    ParseManifest {
        /// The manifest file.
        path: PathBuf,
        /// Why.
        #[source]
        source: serde_json::Error,
    },
    /// Signing the manifest failed.
    #[error("failed to sign the specialist manifest")]
    Sign(#[source] sov_keys::KeyError),
    /// The manifest's owner signature does not verify. Opaque on purpose.
    #[error("failed to verify specialist `{name}`: the manifest's signature is not valid")]
    ManifestSignature {
        /// The specialist's name.
        name: String,
    },
    /// The manifest is signed but breaks a rule, or its adapter's bytes are not those it names.
    #[error("failed to verify specialist `{name}`: {reason}")]
    Inconsistent {
        /// The specialist's name.
        name: String,
        /// What does not add up.
        reason: String,
    },
    /// The base model offered is not the exact one the owner approved.
    #[error(
        "failed to use specialist `{name}`: the owner approved base model `{approved}` with sha256 {approved_sha256}, but `{given}` has sha256 {given_sha256}; add the specialist again (with --replace) to approve this base"
    )]
    BaseChanged {
        /// The specialist's name.
        name: String,
        /// The base model named in the manifest.
        approved: String,
        /// Its SHA-256 in the manifest.
        approved_sha256: String,
        /// The model offered.
        given: String,
        /// Its SHA-256.
        given_sha256: String,
    },
    /// The system clock could not be formatted.
    #[error("failed to format the time of the change")]
    Clock(#[source] time::error::Format),
}

fn installed_tools(installed: &[String]) -> String {
    if installed.is_empty() {
        "no tools are installed".to_owned()
    } else {
        format!("the installed tools are {}", installed.join(", "))
    }
}

pub(crate) fn io(
    action: &'static str,
    path: &std::path::Path,
) -> impl FnOnce(std::io::Error) -> SpecialistError {
    let path = path.to_path_buf();
    move |source| SpecialistError::Io {
        action,
        path,
        source,
    }
}
