//! C2SP checkpoints (`c2sp.org/tlog-checkpoint`) and their signatures
//! (`c2sp.org/signed-note` Ed25519 0x01, `c2sp.org/tlog-cosignature` Ed25519 0x04 and
//! ML-DSA-44 0x06).
//!
//! Verify only: signing lives in the `sov-audit` crate.

use base64::Engine as _;

use crate::hash::{HASH_SIZE, Hash};
use crate::note::{self, Note, NoteError, NoteSignature, PublicKey, Vkey};

/// The largest timestamp a cosignature may carry (2^63 - 1).
pub const MAX_TIMESTAMP: u64 = i64::MAX as u64;

/// The ML-DSA-44 `subtree/v1` cosigned message's label.
pub const SUBTREE_V1_LABEL: &[u8; 12] = b"subtree/v1\n\0";

/// Length of an Ed25519 signature.
const ED25519_SIG_SIZE: usize = 64;

/// Length of an ML-DSA-44 signature.
pub const MLDSA44_SIG_SIZE: usize = 2420;

/// A checkpoint: the note text of a log's signed tree head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// The log's origin line.
    pub origin: String,
    /// The tree size.
    pub size: u64,
    /// The RFC 6962 root hash at `size`.
    pub root: Hash,
    /// Extension lines (non-empty, without their newlines).
    pub extensions: Vec<String>,
}

/// Why a checkpoint was rejected.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CheckpointError {
    /// The signed note around the checkpoint is malformed.
    #[error("checkpoint note: {0}")]
    Note(#[from] NoteError),
    /// The checkpoint text does not end with a newline.
    #[error("checkpoint text does not end with a newline")]
    MissingFinalNewline,
    /// A line of the checkpoint text is malformed.
    #[error("checkpoint line {line}: {reason}")]
    Text {
        /// The line (1: origin, 2: size, 3: root, 4+: extensions).
        line: usize,
        /// What is wrong with it.
        reason: String,
    },
    /// A field of a cosigned message is out of its range.
    #[error("cosigned message: {reason}")]
    Message {
        /// What is out of range.
        reason: String,
    },
    /// A cosignature's timestamp is more than 2^63 - 1.
    #[error("signature by {name}+{key_id:08x}: timestamp {timestamp} is more than 2^63-1")]
    TimestampTooLarge {
        /// The key name.
        name: String,
        /// The key ID.
        key_id: u32,
        /// The timestamp.
        timestamp: u64,
    },
    /// A signature by a known key failed to verify: the whole note is rejected.
    #[error("signature by known key {name}+{key_id:08x} does not verify: {reason}")]
    BadSignature {
        /// The key name.
        name: String,
        /// The key ID.
        key_id: u32,
        /// Why (wrong length, bad encoding, or wrong signature).
        reason: String,
    },
    /// Two different given keys have the same name and key ID.
    #[error("two different keys named {name} share key ID {key_id:08x}")]
    AmbiguousKey {
        /// The key name.
        name: String,
        /// The key ID.
        key_id: u32,
    },
    /// No signature by a known key verified.
    #[error(
        "no known signature: none of the {signatures} signatures is by one of the {keys} given keys"
    )]
    NoKnownSignature {
        /// Signatures in the note.
        signatures: usize,
        /// Keys given.
        keys: usize,
    },
    /// A required key did not sign.
    #[error("required key {name}+{key_id:08x} (type 0x{sig_type:02x}) did not sign the checkpoint")]
    MissingRequired {
        /// The key name.
        name: String,
        /// The key ID.
        key_id: u32,
        /// The key's signature type.
        sig_type: u8,
    },
}

fn text_err(line: usize, reason: impl Into<String>) -> CheckpointError {
    CheckpointError::Text {
        line,
        reason: reason.into(),
    }
}

impl Checkpoint {
    /// Parses a checkpoint note text (including its final newline): origin (non-empty), tree
    /// size (ASCII decimal, no leading zeros, fits in u64), root (canonical base64 of exactly
    /// 32 bytes), then optional non-empty extension lines. Control characters other than
    /// newline and invalid UTF-8 are rejected as in a note.
    pub fn parse_text(text: &str) -> Result<Checkpoint, CheckpointError> {
        note::check_text(text.as_bytes(), 1)?;
        let body = text
            .strip_suffix('\n')
            .ok_or(CheckpointError::MissingFinalNewline)?;
        let mut lines = body.split('\n');
        let origin = lines
            .next()
            .filter(|l| !l.is_empty())
            .ok_or_else(|| text_err(1, "empty origin"))?;
        let size_line = lines
            .next()
            .ok_or_else(|| text_err(2, "missing tree size"))?;
        let size = parse_decimal(size_line).map_err(|reason| text_err(2, reason))?;
        let root_line = lines
            .next()
            .ok_or_else(|| text_err(3, "missing root hash"))?;
        let root = parse_hash(root_line).map_err(|reason| text_err(3, reason))?;
        let mut extensions = Vec::new();
        for (i, l) in lines.enumerate() {
            if l.is_empty() {
                return Err(text_err(i.saturating_add(4), "empty extension line"));
            }
            extensions.push(l.to_owned());
        }
        Ok(Checkpoint {
            origin: origin.to_owned(),
            size,
            root,
            extensions,
        })
    }

    /// The checkpoint note text: origin, size, base64 root, extension lines, each with `\n`.
    pub fn to_text(&self) -> String {
        let mut s = format!(
            "{}\n{}\n{}\n",
            self.origin,
            self.size,
            base64::engine::general_purpose::STANDARD.encode(self.root)
        );
        for e in &self.extensions {
            s.push_str(e);
            s.push('\n');
        }
        s
    }
}

/// Parses an ASCII decimal u64 with no leading zeros (except `0` itself) and no sign.
pub(crate) fn parse_decimal(s: &str) -> Result<u64, String> {
    if s.is_empty() {
        return Err("empty number".into());
    }
    if !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("{s:?} is not an ASCII decimal number"));
    }
    if s.len() > 1 && s.starts_with('0') {
        return Err(format!("{s:?} has a leading zero"));
    }
    s.parse::<u64>()
        .map_err(|_| format!("{s:?} does not fit in 64 bits"))
}

/// Parses canonical standard base64 of exactly 32 bytes.
pub(crate) fn parse_hash(s: &str) -> Result<Hash, String> {
    let raw = base64::engine::general_purpose::STANDARD
        .decode(s)
        .map_err(|e| format!("hash {s:?} is not canonical standard base64: {e}"))?;
    raw.as_slice()
        .try_into()
        .map_err(|_| format!("hash {s:?} is {} bytes, want {HASH_SIZE}", raw.len()))
}

fn msg_err(reason: impl Into<String>) -> CheckpointError {
    CheckpointError::Message {
        reason: reason.into(),
    }
}

/// The ML-DSA-44 `subtree/v1` cosigned_message bytes:
/// `"subtree/v1\n\0" || u8 len || cosigner || u64 timestamp || u8 len || origin || u64 start ||
/// u64 end || hash`.
///
/// Errors if the cosigner name or origin is empty or longer than 255 bytes, the timestamp is
/// more than 2^63 - 1, or `start` is not zero while the timestamp is.
pub fn mldsa_cosigned_message(
    cosigner: &str,
    timestamp: u64,
    origin: &str,
    start: u64,
    end: u64,
    hash: &Hash,
) -> Result<Vec<u8>, CheckpointError> {
    let name_len = u8::try_from(cosigner.len())
        .ok()
        .filter(|&l| l > 0)
        .ok_or_else(|| {
            msg_err(format!(
                "cosigner name is {} bytes, must be 1..=255",
                cosigner.len()
            ))
        })?;
    let origin_len = u8::try_from(origin.len())
        .ok()
        .filter(|&l| l > 0)
        .ok_or_else(|| {
            msg_err(format!(
                "log origin is {} bytes, must be 1..=255",
                origin.len()
            ))
        })?;
    if timestamp > MAX_TIMESTAMP {
        return Err(msg_err(format!(
            "timestamp {timestamp} is more than 2^63-1"
        )));
    }
    if start != 0 && timestamp != 0 {
        return Err(msg_err(format!(
            "start is {start}, so the timestamp must be 0, not {timestamp}"
        )));
    }
    let mut m = Vec::with_capacity(
        SUBTREE_V1_LABEL
            .len()
            .saturating_add(cosigner.len())
            .saturating_add(origin.len())
            .saturating_add(2 + 3 * 8 + HASH_SIZE),
    );
    m.extend_from_slice(SUBTREE_V1_LABEL);
    m.push(name_len);
    m.extend_from_slice(cosigner.as_bytes());
    m.extend_from_slice(&timestamp.to_be_bytes());
    m.push(origin_len);
    m.extend_from_slice(origin.as_bytes());
    m.extend_from_slice(&start.to_be_bytes());
    m.extend_from_slice(&end.to_be_bytes());
    m.extend_from_slice(hash);
    Ok(m)
}

/// The Ed25519 `cosignature/v1` message (type 0x04): `"cosignature/v1\ntime T\n" || note text`.
pub fn ed25519_cosigned_message(timestamp: u64, note_text: &str) -> Vec<u8> {
    format!("cosignature/v1\ntime {timestamp}\n{note_text}").into_bytes()
}

/// A key whose signature on a checkpoint verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedBy {
    /// The key name.
    pub name: String,
    /// The key ID.
    pub key_id: u32,
    /// The signature type (0x01, 0x04 or 0x06).
    pub sig_type: u8,
    /// The cosignature's timestamp (types 0x04 and 0x06), POSIX seconds.
    pub timestamp: Option<u64>,
}

/// A checkpoint whose note verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedCheckpoint {
    /// The checkpoint.
    pub checkpoint: Checkpoint,
    /// The note it came in.
    pub note: Note,
    /// The known keys whose signatures verified, each once, in signature order.
    pub verified_by: Vec<VerifiedBy>,
}

/// Splits `u64 BE timestamp || rest`, rejecting a wrong length or a timestamp above 2^63-1.
fn split_timestamped<'a>(
    sig: &'a NoteSignature,
    sig_len: usize,
    what: &str,
) -> Result<(u64, &'a [u8]), CheckpointError> {
    let want = sig_len.saturating_add(8);
    if sig.signature.len() != want {
        return Err(bad_sig(
            sig,
            format!(
                "{what} cosignature is {} bytes, want {want} (8-byte timestamp and {sig_len}-byte signature)",
                sig.signature.len()
            ),
        ));
    }
    let (ts, rest) = sig
        .signature
        .split_first_chunk::<8>()
        .ok_or_else(|| bad_sig(sig, "too short".into()))?;
    let timestamp = u64::from_be_bytes(*ts);
    if timestamp > MAX_TIMESTAMP {
        return Err(CheckpointError::TimestampTooLarge {
            name: sig.name.clone(),
            key_id: sig.key_id,
            timestamp,
        });
    }
    Ok((timestamp, rest))
}

fn bad_sig(sig: &NoteSignature, reason: String) -> CheckpointError {
    CheckpointError::BadSignature {
        name: sig.name.clone(),
        key_id: sig.key_id,
        reason,
    }
}

fn verify_ed25519(
    key: &ed25519_dalek::VerifyingKey,
    msg: &[u8],
    sig_bytes: &[u8],
    sig: &NoteSignature,
) -> Result<(), CheckpointError> {
    let arr: &[u8; ED25519_SIG_SIZE] = sig_bytes.try_into().map_err(|_| {
        bad_sig(
            sig,
            format!(
                "Ed25519 signature is {} bytes, want {ED25519_SIG_SIZE}",
                sig_bytes.len()
            ),
        )
    })?;
    let s = ed25519_dalek::Signature::from_bytes(arr);
    key.verify_strict(msg, &s)
        .map_err(|_| bad_sig(sig, "Ed25519 signature is wrong".into()))
}

/// Verifies one signature by a known key; returns its timestamp, if the type has one.
fn verify_one(
    key: &Vkey,
    sig: &NoteSignature,
    text: &str,
    cp: &Checkpoint,
) -> Result<Option<u64>, CheckpointError> {
    match &key.key {
        PublicKey::Ed25519(k) => {
            verify_ed25519(k, text.as_bytes(), &sig.signature, sig)?;
            Ok(None)
        }
        PublicKey::CosigEd25519(k) => {
            let (ts, s) = split_timestamped(sig, ED25519_SIG_SIZE, "Ed25519")?;
            verify_ed25519(k, &ed25519_cosigned_message(ts, text), s, sig)?;
            Ok(Some(ts))
        }
        PublicKey::MlDsa44(k) => {
            let (ts, s) = split_timestamped(sig, MLDSA44_SIG_SIZE, "ML-DSA-44")?;
            let msg = mldsa_cosigned_message(&key.name, ts, &cp.origin, 0, cp.size, &cp.root)
                .map_err(|e| bad_sig(sig, e.to_string()))?;
            let s = ml_dsa::Signature::<ml_dsa::MlDsa44>::try_from(s)
                .map_err(|_| bad_sig(sig, "ML-DSA-44 signature does not decode".into()))?;
            if !k.verify_with_context(&msg, &[], &s) {
                return Err(bad_sig(sig, "ML-DSA-44 signature is wrong".into()));
            }
            Ok(Some(ts))
        }
    }
}

/// The key in `keys` with this name and ID, if any; an error if two different keys match.
fn find_key<'a>(
    keys: &'a [Vkey],
    name: &str,
    key_id: u32,
) -> Result<Option<&'a Vkey>, CheckpointError> {
    let mut found: Option<&Vkey> = None;
    for k in keys.iter().filter(|k| k.name == name && k.key_id == key_id) {
        match found {
            None => found = Some(k),
            Some(f) if f == k => {}
            Some(_) => {
                return Err(CheckpointError::AmbiguousKey {
                    name: name.to_owned(),
                    key_id,
                });
            }
        }
    }
    Ok(found)
}

/// Parse a signed checkpoint note and verify it against `keys` per signed-note rules: signatures by
/// unknown (name,id) pairs are ignored; any failing signature from a known key rejects the note; at
/// least one known key must verify. ML-DSA-44 (0x06) is verified with the subtree/v1 message (start 0,
/// end = size, timestamp from the signature, cosigner = key name, empty context, pure ML-DSA).
///
/// Ed25519 (0x01) signs the note text; Ed25519 cosignatures (0x04) sign
/// [`ed25519_cosigned_message`]. Timestamps above 2^63-1 are rejected. Every signature by a
/// known key is verified, including repeats; each key appears once in `verified_by`.
pub fn verify_checkpoint(
    note_bytes: &[u8],
    keys: &[Vkey],
) -> Result<VerifiedCheckpoint, CheckpointError> {
    let note = Note::parse(note_bytes)?;
    let checkpoint = Checkpoint::parse_text(&note.text)?;
    let mut verified_by: Vec<VerifiedBy> = Vec::new();
    for sig in &note.signatures {
        let Some(key) = find_key(keys, &sig.name, sig.key_id)? else {
            continue;
        };
        let timestamp = verify_one(key, sig, &note.text, &checkpoint)?;
        let sig_type = key.sig_type();
        if !verified_by
            .iter()
            .any(|v| v.name == key.name && v.key_id == key.key_id && v.sig_type == sig_type)
        {
            verified_by.push(VerifiedBy {
                name: key.name.clone(),
                key_id: key.key_id,
                sig_type,
                timestamp,
            });
        }
    }
    if verified_by.is_empty() {
        return Err(CheckpointError::NoKnownSignature {
            signatures: note.signatures.len(),
            keys: keys.len(),
        });
    }
    Ok(VerifiedCheckpoint {
        checkpoint,
        note,
        verified_by,
    })
}

/// Policy helper: error unless every key in `required` is in `verified.verified_by`.
///
/// Keys are matched by name, key ID and signature type; `required` should be (a subset of) the
/// keys given to [`verify_checkpoint`], which checked the actual public keys.
pub fn require_all(
    verified: &VerifiedCheckpoint,
    required: &[Vkey],
) -> Result<(), CheckpointError> {
    for k in required {
        let sig_type = k.sig_type();
        if !verified
            .verified_by
            .iter()
            .any(|v| v.name == k.name && v.key_id == k.key_id && v.sig_type == sig_type)
        {
            return Err(CheckpointError::MissingRequired {
                name: k.name.clone(),
                key_id: k.key_id,
                sig_type,
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    const ROOT: &str = "+zoErtsZtGO6sfiSV/v4UJSIyowisE8hvjw0q5+bD38=";

    #[test]
    fn parse_and_round_trip() {
        let t = format!("example.com/log\n20852163\n{ROOT}\next one\next two\n");
        let c = Checkpoint::parse_text(&t).unwrap();
        assert_eq!(c.origin, "example.com/log");
        assert_eq!(c.size, 20_852_163);
        assert_eq!(c.extensions, vec!["ext one", "ext two"]);
        assert_eq!(c.to_text(), t);
        assert_eq!(
            Checkpoint::parse_text(&format!("o\n0\n{ROOT}\n"))
                .unwrap()
                .size,
            0
        );
        let max = format!("o\n{}\n{ROOT}\n", u64::MAX);
        assert_eq!(Checkpoint::parse_text(&max).unwrap().size, u64::MAX);
    }

    #[test]
    fn parse_rejects() {
        let cases: &[(String, usize)] = &[
            (format!("\n1\n{ROOT}\n"), 1),
            (format!("o\n01\n{ROOT}\n"), 2),
            (format!("o\n+1\n{ROOT}\n"), 2),
            (format!("o\n-1\n{ROOT}\n"), 2),
            (format!("o\n 1\n{ROOT}\n"), 2),
            (format!("o\n\n{ROOT}\n"), 2),
            (format!("o\n18446744073709551616\n{ROOT}\n"), 2),
            ("o\n1\n".to_string(), 3),
            ("o\n1\nAAAA\n".to_string(), 3),
            (
                "o\n1\n+zoErtsZtGO6sfiSV/v4UJSIyowisE8hvjw0q5+bD38\n".to_string(),
                3,
            ),
            (
                "o\n1\n+zoErtsZtGO6sfiSV/v4UJSIyowisE8hvjw0q5+bD39=\n".to_string(),
                3,
            ),
            (format!("o\n1\n{ROOT}\n\n"), 4),
            (format!("o\n1\n{ROOT}\na\n\nb\n"), 5),
        ];
        for (t, line) in cases {
            match Checkpoint::parse_text(t) {
                Err(CheckpointError::Text { line: l, .. }) => assert_eq!(l, *line, "{t:?}"),
                other => panic!("{t:?}: {other:?}"),
            }
        }
        assert_eq!(
            Checkpoint::parse_text(&format!("o\n1\n{ROOT}")),
            Err(CheckpointError::MissingFinalNewline)
        );
        assert!(Checkpoint::parse_text(&format!("o\r\n1\n{ROOT}\n")).is_err());
    }

    #[test]
    fn messages() {
        assert_eq!(
            ed25519_cosigned_message(1_679_315_147, "a\n"),
            b"cosignature/v1\ntime 1679315147\na\n"
        );
        let h = [0xab; 32];
        let m = mldsa_cosigned_message("w", 0x0102, "o", 0, 3, &h).unwrap();
        let mut want = b"subtree/v1\n\0\x01w".to_vec();
        want.extend_from_slice(&0x0102u64.to_be_bytes());
        want.extend_from_slice(b"\x01o");
        want.extend_from_slice(&0u64.to_be_bytes());
        want.extend_from_slice(&3u64.to_be_bytes());
        want.extend_from_slice(&h);
        assert_eq!(m, want);
        assert!(mldsa_cosigned_message("", 0, "o", 0, 1, &h).is_err());
        assert!(mldsa_cosigned_message("w", 0, "", 0, 1, &h).is_err());
        assert!(mldsa_cosigned_message(&"w".repeat(256), 0, "o", 0, 1, &h).is_err());
        assert!(mldsa_cosigned_message("w", 0, &"o".repeat(255), 0, 1, &h).is_ok());
        assert!(mldsa_cosigned_message("w", 1 << 63, "o", 0, 1, &h).is_err());
        assert!(mldsa_cosigned_message("w", 1, "o", 1, 2, &h).is_err());
        assert!(mldsa_cosigned_message("w", 0, "o", 1, 2, &h).is_ok());
    }
}
