//! The owned model store: the only place Sovereign loads model weights from.
//!
//! A model is only as trustworthy as the bytes that get loaded. The store makes
//! sure those are exactly the bytes the owner imported and signed, every time:
//!
//! * **Untrusted input is parsed defensively.** GGUF headers are read through a
//!   bounds-checked reader ([`gguf`]) before anything is copied; non-GGUF and
//!   truncated files are rejected up front.
//! * **Content-addressed, read-only blobs.** Weights live at `blobs/sha256/<hex>`
//!   (mode 0444), named by the SHA-256 of the whole file.
//! * **Signed manifests.** `manifests/<name>.json` describes the blob and is signed
//!   by the owner's hybrid Ed25519 + ML-DSA-65 key ([`sov_keys`]).
//! * **Verified at every load.** [`ModelStore::verify`] checks the signature, then
//!   re-reads and re-hashes the whole blob, returning a [`VerifiedModel`] proof token
//!   that only it can create.
//! * **Converted in Rust when needed.** A model published as safetensors (a sentence-transformers
//!   BERT, in a directory or a `.zip`) is converted to GGUF at import ([`convert`]); the
//!   manifest records the converter and the SHA-256 of every source file.
//! * **All or nothing.** Imports copy into `tmp/`, fsync, then rename into place;
//!   on any error the temporary files are removed and existing content is untouched.
//!
//! # Layout
//!
//! ```text
//! <models dir>/blobs/sha256/<64 hex>   GGUF bytes, 0444
//! <models dir>/manifests/<name>.json  {"manifest": Manifest, "signatures": Signatures}
//! <models dir>/tmp/                   imports in progress
//! ```
//!
//! Names are `[a-z0-9][a-z0-9._-]{0,63}` so they are always safe file names.
//!
//! # Signed bytes
//!
//! The owner signs `serde_json::to_vec(&manifest)` (compact JSON, fields in the
//! order of [`Manifest`], no maps, so the encoding is deterministic) under the
//! domain `sovereign/model-manifest/v1` (see `sov_keys` for how the domain is
//! bound into each signature). Verification re-serializes the parsed manifest, so
//! any change to a value (size, name, a digest) breaks the signature.
//!
//! # Why loading is fast
//!
//! The manifest carries, besides the whole-file SHA-256 (the blob's address), a
//! BLAKE3 digest of every 64 MiB chunk, and the signature covers them all. Every
//! load re-reads and re-hashes every chunk; chunks are independent, so `verify`
//! hashes them in parallel: one thread per available core, each taking the next
//! chunk and reading it with `pread` (`FileExt::read_at`) into a 1 MiB buffer.
//!
//! Why BLAKE3 for the load-time check: SHA-256 runs at 1-2 GB/s per core only on
//! CPUs with SHA extensions; without them (as on the 2-core Xeon VMs this project
//! is tested on) it managed 150-200 MiB/s, which would make a 4 GB model wait
//! 20 s or more at every start. BLAKE3 is a 256-bit cryptographic hash built for
//! SIMD (AVX2/AVX-512/NEON, detected at run time) and runs at several GB/s per
//! core on the same machines, so a 4 GB model is checked in about a second on two
//! cores, usually bounded by disk speed. SHA-256 stays the content address and
//! the digest users compare with a publisher's. Nothing is cached between calls:
//! a byte flipped on disk after import is always caught, and the error names the
//! offset of the first bad chunk.

pub mod convert;
pub mod gguf;
pub mod templates;

mod error;
mod manifest;
mod store;
mod verify;

pub use error::StoreError;
pub use gguf::{GgufError, GgufInfo, GgufType, read_info, read_typed};
pub use manifest::{
    CHUNK_SIZE, ChatTemplateChoice, ChosenBy, Conversion, MANIFEST_DOMAIN, MANIFEST_FORMAT,
    Manifest, SourceFile, validate_name,
};
pub use store::{ImportOptions, ImportOutcome, ModelStore};

/// Architectures llama.cpp runs as encoders only (no generation, no KV cache: their
/// `create_memory` is null): the store and the engine treat such a model as an embedding model.
pub const EMBEDDING_ARCHITECTURES: [&str; 8] = [
    "bert",
    "nomic-bert",
    "nomic-bert-moe",
    "jina-bert-v2",
    "jina-bert-v3",
    "neo-bert",
    "eurobert",
    "modern-bert",
];

/// Whether a model of `general.architecture` `architecture` only embeds (see
/// [`EMBEDDING_ARCHITECTURES`]).
pub fn is_embedding_architecture(architecture: &str) -> bool {
    EMBEDDING_ARCHITECTURES.contains(&architecture)
}
pub use verify::VerifiedModel;

#[cfg(test)]
mod tests;
