//! The Open Audit Record's formats, verify-only: no I/O, no async, no `unsafe`.
//!
//! Modules:
//! * [`hash`]: RFC 6962 leaf and node hashes.
//! * [`merkle`]: Merkle tree hashes, inclusion and consistency proofs (RFC 9162), verification and
//!   generation from any source of subtree hashes.
//! * [`tile`]: the C2SP tlog-tiles layout: tile paths, hash tiles, entry bundles.
//! * [`note`]: C2SP signed notes and verifier keys (vkeys).
//! * [`checkpoint`]: C2SP checkpoints and their signatures (Ed25519 0x01, ML-DSA-44 subtree/v1 0x06).
//! * [`receipt`]: `c2sp.org/tlog-proof@v1` receipts.
//! * [`entry`]: the audit entry encoding.
//! * [`verify`]: verification of a whole tiled log.
//! * [`record`]: the recording seam: [`record::Draft`], [`record::Appended`] and the
//!   [`record::Record`] trait the log implements.

pub mod checkpoint;
pub mod entry;
pub mod hash;
pub mod merkle;
pub mod note;
pub mod receipt;
pub mod record;
pub mod tile;
pub mod verify;
