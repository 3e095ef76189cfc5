//! Specialists: what one is, and how the owner's approval of it is stored.
//!
//! A specialist is a base model from the model store, bound to its exact bytes, plus what makes
//! it answer one domain well: instructions, curated corpora to ground its answers in, the tools
//! it may call, an optional LoRA adapter, and a description the router reads to pick it. The
//! owner approves all of that at once by signing one manifest; nothing in it can change without
//! breaking the signature, so what is served is what the owner approved.
//!
//! * **Bound to the base model's bytes.** The manifest names the base model and its SHA-256,
//!   taken from a [`sov_models::VerifiedModel`] when the specialist is added. A base model
//!   re-imported with other bytes under the same name is refused when serving
//!   ([`VerifiedSpecialist::check_base`]), with both digests in the error.
//! * **Signed manifests.** `manifests/<name>.json` is signed by the owner's hybrid Ed25519 +
//!   ML-DSA-65 key ([`sov_keys`]); [`SpecialistStore::get`] checks the signature, the rules of
//!   every field and the adapter's bytes, and only it returns a [`VerifiedSpecialist`].
//! * **Adapters are content-addressed.** A LoRA adapter GGUF is checked (its header says
//!   `general.type = adapter`, `adapter.type = lora`, and the base model's architecture) and
//!   stored read-only at `blobs/sha256/<hex>`; specialists using the same file share it.
//! * **All or nothing.** An add writes into `tmp/`, syncs, then moves into place; on any error
//!   the store is left as it was. Replacing a specialist must be asked for.
//!
//! # Layout
//!
//! ```text
//! <specialists dir>/manifests/<name>.json   {"manifest": Manifest, "signatures": Signatures}
//! <specialists dir>/blobs/sha256/<64 hex>   adapter GGUF bytes, 0444
//! <specialists dir>/tmp/                    adds in progress
//! ```
//!
//! Names follow the model names' rule, `[a-z0-9][a-z0-9._-]{0,63}`, and `auto` is reserved for
//! the router (a request for `model: auto` asks it to choose).
//!
//! # Signed bytes
//!
//! The owner signs `serde_json::to_vec(&manifest)`: compact JSON, fields in the order of
//! [`Manifest`], no maps, so the encoding is deterministic. The signing domain is
//! `sovereign/specialist-manifest/v1` ([`MANIFEST_DOMAIN`]; see `sov_keys` for how a domain is
//! bound into each signature), so a model manifest's signature can never pass for a
//! specialist's or the reverse. Verification re-serializes the parsed manifest, so any change
//! to a value breaks the signature. [`Manifest::sha256`] is the SHA-256 of those same bytes:
//! the specialist's identity in the audit record.

mod adapter;
mod error;
mod manifest;
mod rules;
mod store;
mod verified;

pub use adapter::check_adapter;
pub use error::SpecialistError;
pub use manifest::{
    Adapter, BaseModel, DEFAULT_INSTRUCTIONS, DEFAULT_INSTRUCTIONS_WITHOUT_CORPORA,
    MANIFEST_DOMAIN, MANIFEST_FORMAT, Manifest, ToolChoice,
};
pub use rules::{
    EMBEDDING_ARCHITECTURES, MAX_CORPORA, MAX_DESCRIPTION_CHARS, MAX_INSTRUCTIONS_BYTES, MAX_TOOLS,
    RESERVED_NAMES, validate_corpus_name, validate_name,
};
pub use store::{Added, Spec, SpecialistStore};
pub use verified::VerifiedSpecialist;

#[cfg(test)]
mod tests;
