//! Checkpoint signing and the `signed` file.

use std::path::Path;

use base64::Engine as _;
use sov_audit_core::checkpoint::{Checkpoint, mldsa_cosigned_message};
use sov_audit_core::hash::{Hash, hash_from_slice};
use sov_audit_core::note::{Vkey, signature_line};
use sov_keys::LogKey;

use crate::{AuditError, fsx};

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// The log key with the origin it signs for.
#[derive(Debug)]
pub(crate) struct Signer {
    key: LogKey,
    origin: String,
    ed: Vkey,
    ml: Vkey,
}

impl Signer {
    pub(crate) fn new(key: LogKey, origin: &str) -> Self {
        let ed = Vkey::from_ed25519(origin, key.ed25519_public());
        let ml = Vkey::from_mldsa44(origin, key.mldsa44_public());
        Self {
            key,
            origin: origin.to_owned(),
            ed,
            ml,
        }
    }

    /// The log origin.
    pub(crate) fn origin(&self) -> &str {
        &self.origin
    }

    /// An Ed25519 signature with the log key over `msg` (a resume point's signed message).
    pub(crate) fn sign_ed25519(&self, msg: &[u8]) -> [u8; 64] {
        self.key.sign_ed25519(msg)
    }

    /// The log key's Ed25519 public key.
    pub(crate) fn ed25519_public(&self) -> ed25519_dalek::VerifyingKey {
        self.key.ed25519_public()
    }

    /// The `vkeys` file content: the Ed25519 vkey, then the ML-DSA-44 one, one per line.
    pub(crate) fn vkeys_text(&self) -> String {
        format!("{}\n{}\n", self.ed.encode(), self.ml.encode())
    }

    /// A signed checkpoint note for the tree (`size`, `root`): an Ed25519 (0x01) signature over
    /// the note text and an ML-DSA-44 subtree/v1 cosignature (0x06) over `[0, size)` made at
    /// `timestamp` (seconds), both under the key name = origin.
    pub(crate) fn sign(
        &self,
        size: u64,
        root: &Hash,
        timestamp: u64,
    ) -> Result<Vec<u8>, AuditError> {
        let text = Checkpoint {
            origin: self.origin.clone(),
            size,
            root: *root,
            extensions: Vec::new(),
        }
        .to_text();
        let ed_sig = self.key.sign_ed25519(text.as_bytes());
        let msg = mldsa_cosigned_message(&self.origin, timestamp, &self.origin, 0, size, root)
            .map_err(|e| AuditError::Config {
                reason: format!("cannot build the ML-DSA-44 cosigned message: {e}"),
            })?;
        let ml_sig = self.key.sign_mldsa44(&msg)?;
        let mut cosig = Vec::with_capacity(8usize.saturating_add(ml_sig.len()));
        cosig.extend_from_slice(&timestamp.to_be_bytes());
        cosig.extend_from_slice(&ml_sig);
        let mut note = text;
        note.push('\n');
        note.push_str(&signature_line(&self.origin, self.ed.key_id, &ed_sig));
        note.push_str(&signature_line(&self.origin, self.ml.key_id, &cosig));
        Ok(note.into_bytes())
    }
}

/// The `signed` file's content: `"<size>\n<root base64>\n"`.
pub(crate) fn signed_text(size: u64, root: &Hash) -> String {
    format!("{size}\n{}\n", B64.encode(root))
}

/// Parses the `signed` file (or `None` if absent).
pub(crate) fn read_signed(path: &Path) -> Result<Option<(u64, Hash)>, AuditError> {
    let Some(bytes) = fsx::read_optional(path, 1024)? else {
        return Ok(None);
    };
    let malformed = |reason: &str| AuditError::Malformed {
        path: path.to_path_buf(),
        reason: format!("{reason} (want \"<size>\\n<root base64>\\n\")"),
    };
    let text = std::str::from_utf8(&bytes).map_err(|_| malformed("not UTF-8"))?;
    let mut lines = text.split('\n');
    let (Some(size), Some(root), Some(""), None) =
        (lines.next(), lines.next(), lines.next(), lines.next())
    else {
        return Err(malformed("not exactly two lines"));
    };
    if size.is_empty() || !size.bytes().all(|b| b.is_ascii_digit()) {
        return Err(malformed("bad size"));
    }
    let size: u64 = size.parse().map_err(|_| malformed("bad size"))?;
    let root = B64
        .decode(root)
        .ok()
        .and_then(|r| hash_from_slice(&r))
        .ok_or_else(|| malformed("bad root"))?;
    Ok(Some((size, root)))
}

/// Base64 of a hash, for messages.
pub(crate) fn b64(h: &Hash) -> String {
    B64.encode(h)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    #[test]
    fn signed_file_is_parsed_strictly() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("signed");
        assert_eq!(read_signed(&path).unwrap(), None);
        let root = [5u8; 32];
        std::fs::write(&path, signed_text(42, &root)).unwrap();
        assert_eq!(read_signed(&path).unwrap(), Some((42, root)));
        let good = signed_text(42, &root);
        for bad in [
            good.trim_end().to_owned(),
            format!("{good}\n"),
            format!("+{good}"),
            good.replace("42", "4 2"),
            good.replace("42", ""),
            format!("42\n{}\n", B64.encode([5u8; 31])),
            "18446744073709551616\nAAAA\n".to_owned(),
        ] {
            std::fs::write(&path, &bad).unwrap();
            assert!(
                matches!(read_signed(&path), Err(AuditError::Malformed { .. })),
                "{bad:?}"
            );
        }
    }
}
