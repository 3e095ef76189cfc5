//! The signed specialist manifest.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use sov_keys::Signatures;

/// `format` value of a version-1 specialist manifest.
pub const MANIFEST_FORMAT: &str = "sovereign.specialist-manifest/v1";
/// Signing domain for specialist manifests.
pub const MANIFEST_DOMAIN: &[u8] = b"sovereign/specialist-manifest/v1";

/// The instructions of a specialist with corpora, when the owner gives none: the kernel puts the
/// passages it retrieved before the question, numbered `[1]`, `[2]`, ...
pub const DEFAULT_INSTRUCTIONS: &str = "Answer using only the numbered passages given with the \
question. Cite every passage you use by its number in square brackets, like [1] or [2][3]. If \
the passages do not contain the answer, say plainly that they do not; do not guess and do not \
use outside knowledge.";

/// The instructions of a specialist without corpora, when the owner gives none (there are no
/// passages to answer from or cite).
pub const DEFAULT_INSTRUCTIONS_WITHOUT_CORPORA: &str = "Answer accurately and concisely. If you \
do not know the answer, say so plainly; do not guess.";

/// What the owner approves about one specialist. Field order is fixed and there are no maps,
/// so `serde_json::to_vec(&manifest)` (the signed bytes) is deterministic.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Always [`MANIFEST_FORMAT`].
    pub format: String,
    /// The specialist's name: the model rule, `[a-z0-9][a-z0-9._-]{0,63}`, and never `auto`.
    pub name: String,
    /// The base model, bound to its exact bytes.
    pub base: BaseModel,
    /// The corpora its answers are grounded in, in order; may be empty.
    pub corpora: Vec<String>,
    /// What it is for, in plain words: the router embeds this to pick a specialist. Not empty,
    /// at most [`MAX_DESCRIPTION_CHARS`](crate::MAX_DESCRIPTION_CHARS) characters.
    pub description: String,
    /// The instructions given to the model with every request (its system prompt), at most
    /// [`MAX_INSTRUCTIONS_BYTES`](crate::MAX_INSTRUCTIONS_BYTES).
    pub instructions: String,
    /// SHA-256 of the instructions' UTF-8 bytes, lowercase hex.
    pub instructions_sha256: String,
    /// The tools it may call, by name; each was installed when the specialist was added.
    pub tools: Vec<String>,
    /// How its model is offered the tools (absent from the signed bytes when `auto`, so the
    /// manifests signed before it existed verify unchanged).
    #[serde(default, skip_serializing_if = "ToolChoice::is_auto")]
    pub tool_choice: ToolChoice,
    /// A LoRA adapter applied over the base model, if any.
    pub adapter: Option<Adapter>,
    /// When it was added, RFC 3339 UTC.
    pub created_at: String,
    /// Key id of the owner who signed it.
    pub owner_key_id: String,
}

/// How a specialist's model is offered its tools, for a question its tools do not answer on
/// their own.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ToolChoice {
    /// It may call them, or answer in words.
    #[default]
    Auto,
    /// Its first answer must call one of them (then it answers in words from the results).
    Required,
}

impl ToolChoice {
    /// Whether this is [`ToolChoice::Auto`].
    pub fn is_auto(&self) -> bool {
        *self == ToolChoice::Auto
    }

    /// `auto` or `required`.
    pub fn name(self) -> &'static str {
        match self {
            ToolChoice::Auto => "auto",
            ToolChoice::Required => "required",
        }
    }
}

/// The base model of a specialist: a name in the model store and the SHA-256 of the file the
/// owner approved (the model store's content address).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct BaseModel {
    /// The model's name in the store.
    pub name: String,
    /// SHA-256 of the model file, lowercase hex.
    pub sha256: String,
}

/// A LoRA adapter file, stored at `blobs/sha256/<sha256>`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Adapter {
    /// SHA-256 of the file, lowercase hex; also the blob's file name.
    pub sha256: String,
    /// Size in bytes.
    pub size: u64,
    /// The file name it was added from.
    pub file_name: String,
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
        // Serializing plain strings, integers, lists and an option cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// SHA-256 of [`Manifest::signed_bytes`], lowercase hex: the specialist's identity, which
    /// the audit record's entries name. Any change to any field changes it.
    pub fn sha256(&self) -> String {
        sha256_hex(&self.signed_bytes())
    }

    /// The default instructions for a specialist with these corpora.
    pub fn default_instructions(corpora: &[String]) -> &'static str {
        if corpora.is_empty() {
            DEFAULT_INSTRUCTIONS_WITHOUT_CORPORA
        } else {
            DEFAULT_INSTRUCTIONS
        }
    }
}

pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}
