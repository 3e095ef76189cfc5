//! Receipts in the `c2sp.org/tlog-proof@v1` format: an entry's index, its inclusion proof, a
//! signed checkpoint, and optional opaque extra data (Sovereign puts the entry's exact bytes
//! there, so a receipt is self-contained).
//!
//! ```text
//! c2sp.org/tlog-proof@v1
//! extra <base64>            (optional)
//! index <decimal>
//! <base64 hash>             (zero or more, leaf's sibling first)
//!
//! <checkpoint note, verbatim>
//! ```

use base64::Engine as _;

use crate::checkpoint::{
    Checkpoint, CheckpointError, VerifiedCheckpoint, parse_decimal, parse_hash, require_all,
    verify_checkpoint,
};
use crate::hash::Hash;
use crate::merkle::{MerkleError, verify_inclusion};
use crate::note::{MAX_NOTE_SIZE, Note, Vkey};

/// The first line of a proof.
pub const TLOG_PROOF_HEADER: &str = "c2sp.org/tlog-proof@v1";

/// The most inclusion proof hashes a proof may hold (a tree of 2^64 - 1 leaves needs 64).
pub const MAX_PROOF_HASHES: usize = 64;

/// The largest proof [`TlogProof::parse`] accepts: a maximal checkpoint note plus room for
/// the header, extra data, index and hashes.
pub const MAX_PROOF_SIZE: usize = 2 * MAX_NOTE_SIZE;

/// A `c2sp.org/tlog-proof@v1` proof.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlogProof {
    /// Opaque, unauthenticated extra data (the `extra` line), if present.
    pub extra: Option<Vec<u8>>,
    /// The entry's zero-based index in the log.
    pub index: u64,
    /// The inclusion proof, from the leaf's sibling up to the root's child.
    pub proof: Vec<Hash>,
    /// The signed checkpoint note bytes, verbatim.
    pub checkpoint: Vec<u8>,
}

/// Why a proof was rejected.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ReceiptError {
    /// The proof is larger than [`MAX_PROOF_SIZE`].
    #[error("proof is {size} bytes, more than the limit of {max}")]
    TooLarge {
        /// The proof's size.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// A line of the proof (before the checkpoint) is malformed.
    #[error("tlog-proof line {line}: {reason}")]
    Parse {
        /// The line, counting from 1.
        line: usize,
        /// What is wrong with it.
        reason: String,
    },
    /// The checkpoint is malformed, or its signatures do not satisfy the keys.
    #[error("tlog-proof checkpoint: {0}")]
    Checkpoint(#[from] CheckpointError),
    /// The index is not inside the checkpoint's tree.
    #[error("index {index} is not below the checkpoint's tree size {size}")]
    IndexOutOfRange {
        /// The proof's index.
        index: u64,
        /// The checkpoint's tree size.
        size: u64,
    },
    /// The inclusion proof does not lead from the leaf to the checkpoint's root.
    #[error("inclusion proof: {0}")]
    Inclusion(#[from] MerkleError),
}

fn parse_err(line: usize, reason: impl Into<String>) -> ReceiptError {
    ReceiptError::Parse {
        line,
        reason: reason.into(),
    }
}

/// Splits off the next `\n`-terminated line of `rest`, as UTF-8.
fn next_line<'a>(rest: &mut &'a [u8], line: usize) -> Result<&'a str, ReceiptError> {
    let pos = rest
        .iter()
        .position(|&b| b == b'\n')
        .ok_or_else(|| parse_err(line, "missing line or newline"))?;
    let (l, tail) = rest.split_at(pos);
    *rest = tail.get(1..).unwrap_or_default();
    std::str::from_utf8(l).map_err(|_| parse_err(line, "not valid UTF-8"))
}

impl TlogProof {
    /// Parses a proof. Strict: the header line, an optional `extra <canonical base64>` line,
    /// `index <decimal without leading zeros>`, at most [`MAX_PROOF_HASHES`] lines of canonical
    /// base64 32-byte hashes, an empty line, then a checkpoint note, which must parse (as a
    /// note and as a checkpoint) and is kept verbatim. No signature is checked here.
    ///
    /// [`ReceiptError::Parse`] lines count from the proof's first line; errors inside the
    /// checkpoint ([`ReceiptError::Checkpoint`]) count lines from the checkpoint's first line.
    pub fn parse(bytes: &[u8]) -> Result<TlogProof, ReceiptError> {
        if bytes.len() > MAX_PROOF_SIZE {
            return Err(ReceiptError::TooLarge {
                size: bytes.len(),
                max: MAX_PROOF_SIZE,
            });
        }
        let mut rest = bytes;
        let mut line = 1usize;
        let header = next_line(&mut rest, line)?;
        if header != TLOG_PROOF_HEADER {
            return Err(parse_err(
                line,
                format!("expected {TLOG_PROOF_HEADER:?}, got {header:?}"),
            ));
        }
        line = line.saturating_add(1);
        let mut l = next_line(&mut rest, line)?;
        let mut extra = None;
        if let Some(b64) = l.strip_prefix("extra ") {
            let data = base64::engine::general_purpose::STANDARD
                .decode(b64)
                .map_err(|e| {
                    parse_err(
                        line,
                        format!("extra data is not canonical standard base64: {e}"),
                    )
                })?;
            extra = Some(data);
            line = line.saturating_add(1);
            l = next_line(&mut rest, line)?;
        }
        let index_str = l
            .strip_prefix("index ")
            .ok_or_else(|| parse_err(line, format!("expected \"index N\", got {l:?}")))?;
        let index = parse_decimal(index_str).map_err(|r| parse_err(line, format!("index: {r}")))?;
        let mut proof = Vec::new();
        loop {
            line = line.saturating_add(1);
            let l = next_line(&mut rest, line)?;
            if l.is_empty() {
                break;
            }
            if proof.len() >= MAX_PROOF_HASHES {
                return Err(parse_err(
                    line,
                    format!("more than {MAX_PROOF_HASHES} proof hashes"),
                ));
            }
            proof.push(parse_hash(l).map_err(|r| parse_err(line, r))?);
        }
        let note = Note::parse(rest).map_err(CheckpointError::from)?;
        Checkpoint::parse_text(&note.text)?;
        Ok(TlogProof {
            extra,
            index,
            proof,
            checkpoint: rest.to_vec(),
        })
    }

    /// Encodes the proof; `checkpoint` is appended verbatim.
    pub fn to_bytes(&self) -> Vec<u8> {
        let b64 = &base64::engine::general_purpose::STANDARD;
        let mut s = format!("{TLOG_PROOF_HEADER}\n");
        if let Some(extra) = &self.extra {
            s.push_str("extra ");
            s.push_str(&b64.encode(extra));
            s.push('\n');
        }
        s.push_str(&format!("index {}\n", self.index));
        for h in &self.proof {
            s.push_str(&b64.encode(h));
            s.push('\n');
        }
        s.push('\n');
        let mut out = s.into_bytes();
        out.extend_from_slice(&self.checkpoint);
        out
    }

    /// Verify: checkpoint signatures (verify_checkpoint + require_all(keys)), index < size, inclusion of `leaf` in the checkpoint root.
    ///
    /// Every key in `keys` must have signed the checkpoint. `leaf` is the RFC 6962 leaf hash
    /// of the entry ([`crate::hash::leaf_hash`] of its bytes). The `extra` data is not
    /// authenticated by this check; only through `leaf`, if the caller derives it from `extra`.
    pub fn verify(&self, leaf: &Hash, keys: &[Vkey]) -> Result<VerifiedCheckpoint, ReceiptError> {
        let verified = verify_checkpoint(&self.checkpoint, keys)?;
        require_all(&verified, keys)?;
        let size = verified.checkpoint.size;
        if self.index >= size {
            return Err(ReceiptError::IndexOutOfRange {
                index: self.index,
                size,
            });
        }
        verify_inclusion(
            self.index,
            size,
            leaf,
            &self.proof,
            &verified.checkpoint.root,
        )?;
        Ok(verified)
    }
}
