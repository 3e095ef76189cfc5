//! C2SP signed notes (`c2sp.org/signed-note`) and verifier keys (vkeys).
//!
//! A signed note is a UTF-8 text ending in a newline, a blank line, and one or more signature
//! lines `— <key name> base64(32-bit key ID || signature)`. This module parses and re-encodes
//! notes byte-exactly and parses vkeys; checking the signatures of a checkpoint note is
//! [`crate::checkpoint::verify_checkpoint`]'s job, since two of the three signature types sign
//! more than the note text.
//!
//! Parsing is strict: base64 must be canonical (standard alphabet, padded, zero trailing bits),
//! so that [`Note::to_bytes`] gives back exactly the bytes [`Note::parse`] read.

use std::fmt;

use base64::Engine as _;
use sha2::{Digest, Sha256};

/// The largest note [`Note::parse`] accepts, in bytes.
pub const MAX_NOTE_SIZE: usize = 1 << 20;

/// The most signature lines [`Note::parse`] accepts (the spec requires at least 16).
pub const MAX_SIGNATURES: usize = 64;

/// Signature type `0x01`: Ed25519 over the note text (c2sp.org/signed-note).
pub const SIG_ED25519: u8 = 0x01;

/// Signature type `0x04`: timestamped Ed25519 checkpoint cosignature, `cosignature/v1`
/// (c2sp.org/tlog-cosignature).
pub const SIG_COSIG_ED25519: u8 = 0x04;

/// Signature type `0x06`: timestamped ML-DSA-44 (sub)tree cosignature, `subtree/v1`
/// (c2sp.org/tlog-cosignature).
pub const SIG_COSIG_MLDSA44: u8 = 0x06;

/// Length of an Ed25519 public key.
pub const ED25519_PUBLIC_KEY_SIZE: usize = 32;

/// Length of an ML-DSA-44 public key.
pub const MLDSA44_PUBLIC_KEY_SIZE: usize = 1312;

/// The em dash and space that start every signature line.
const SIG_PREFIX: &str = "\u{2014} ";

/// One signature line of a note.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoteSignature {
    /// The key name.
    pub name: String,
    /// The key ID: the first four bytes of the decoded signature, big-endian.
    pub key_id: u32,
    /// The signature bytes after the 4-byte key ID (for types 0x04 and 0x06 this includes the
    /// 8-byte timestamp).
    pub signature: Vec<u8>,
}

/// A parsed signed note.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    /// The note text, including its final newline but not the blank separator line.
    pub text: String,
    /// The signatures, in the order they appear.
    pub signatures: Vec<NoteSignature>,
}

/// Why a note or a vkey was rejected. Line numbers count from 1 over the whole input.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum NoteError {
    /// The note is larger than [`MAX_NOTE_SIZE`].
    #[error("note is {size} bytes, more than the limit of {max}")]
    TooLarge {
        /// The note's size.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// The note is not valid UTF-8.
    #[error("note is not valid UTF-8 (line {line}, byte offset {offset})")]
    InvalidUtf8 {
        /// The line holding the first invalid byte.
        line: usize,
        /// Byte offset of the first invalid byte.
        offset: usize,
    },
    /// The note contains an ASCII control character other than newline.
    #[error("line {line}: control character 0x{byte:02x} (only newline is allowed)")]
    ControlChar {
        /// The line holding it.
        line: usize,
        /// The character.
        byte: u8,
    },
    /// The note does not end with a newline.
    #[error("note does not end with a newline")]
    MissingFinalNewline,
    /// No blank line separates the text from the signatures.
    #[error("no blank line separates the note text from the signatures")]
    MissingSeparator,
    /// The note has no signature lines.
    #[error("note has no signatures")]
    NoSignatures,
    /// The note has more than [`MAX_SIGNATURES`] signature lines.
    #[error("note has {count} signature lines, more than the limit of {max}")]
    TooManySignatures {
        /// How many there are.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// A signature line is malformed.
    #[error("line {line}: bad signature line: {reason}")]
    BadSignatureLine {
        /// The line.
        line: usize,
        /// What is wrong with it.
        reason: String,
    },
    /// A vkey is malformed.
    #[error("bad verifier key: {reason}")]
    BadVkey {
        /// What is wrong with it.
        reason: String,
    },
    /// A vkey's key ID is not the one computed from its name, type and public key.
    #[error("verifier key {name}: key ID {got:08x} does not match the computed {want:08x}")]
    VkeyIdMismatch {
        /// The key name.
        name: String,
        /// The key ID written in the vkey.
        got: u32,
        /// The key ID computed from name, type and public key.
        want: u32,
    },
    /// A vkey has a signature type this crate does not verify.
    #[error("verifier key {name}: unsupported signature type 0x{sig_type:02x}")]
    UnsupportedKeyType {
        /// The key name.
        name: String,
        /// The type byte.
        sig_type: u8,
    },
    /// An error in one line of a vkey list.
    #[error("vkey line {line}: {source}")]
    VkeyLine {
        /// The line.
        line: usize,
        /// The error.
        source: Box<NoteError>,
    },
}

/// Whether `name` is a valid key name: non-empty, no Unicode spaces, no `+`.
pub fn is_valid_key_name(name: &str) -> bool {
    !name.is_empty() && !name.chars().any(|c| c.is_whitespace() || c == '+')
}

/// The 1-based line number of byte `offset` in `bytes`.
fn line_of(bytes: &[u8], offset: usize) -> usize {
    let end = offset.min(bytes.len());
    bytes
        .get(..end)
        .map_or(0, |b| b.iter().filter(|&&c| c == b'\n').count())
        .saturating_add(1)
}

/// Checks that `bytes` is valid UTF-8 without control characters other than newline.
/// Line numbers in errors are offset by `first_line - 1`.
pub(crate) fn check_text(bytes: &[u8], first_line: usize) -> Result<&str, NoteError> {
    let text = std::str::from_utf8(bytes).map_err(|e| NoteError::InvalidUtf8 {
        line: line_of(bytes, e.valid_up_to())
            .saturating_add(first_line)
            .saturating_sub(1),
        offset: e.valid_up_to(),
    })?;
    let mut line = first_line;
    for b in text.bytes() {
        if b == b'\n' {
            line = line.saturating_add(1);
        } else if b < 0x20 {
            return Err(NoteError::ControlChar { line, byte: b });
        }
    }
    Ok(text)
}

impl Note {
    /// Parses a signed note (syntax only: no signature is checked).
    ///
    /// The text is separated from the signatures by the last blank line. Rejects: more than
    /// [`MAX_NOTE_SIZE`] bytes, invalid UTF-8, control characters other than newline (so CRLF
    /// too), a missing final newline or separator, no signatures, more than
    /// [`MAX_SIGNATURES`], a line without the `— ` prefix, an invalid key name, non-canonical
    /// base64, and a signature shorter than 5 bytes (key ID plus at least one byte).
    pub fn parse(bytes: &[u8]) -> Result<Note, NoteError> {
        if bytes.len() > MAX_NOTE_SIZE {
            return Err(NoteError::TooLarge {
                size: bytes.len(),
                max: MAX_NOTE_SIZE,
            });
        }
        let all = check_text(bytes, 1)?;
        if !all.ends_with('\n') {
            return Err(NoteError::MissingFinalNewline);
        }
        let split = all.rfind("\n\n").ok_or(NoteError::MissingSeparator)?;
        let text_end = split.saturating_add(1);
        let (text, rest) = all.split_at(text_end);
        // `rest` starts with the blank line's "\n".
        let sigs = rest.get(1..).unwrap_or_default();
        if sigs.is_empty() {
            return Err(NoteError::NoSignatures);
        }
        // The first signature line's number: lines in `text`, plus the blank line, plus one.
        let first_line = text
            .bytes()
            .filter(|&b| b == b'\n')
            .count()
            .saturating_add(2);
        let lines: Vec<&str> = sigs
            .strip_suffix('\n')
            .unwrap_or(sigs)
            .split('\n')
            .collect();
        if lines.len() > MAX_SIGNATURES {
            return Err(NoteError::TooManySignatures {
                count: lines.len(),
                max: MAX_SIGNATURES,
            });
        }
        let mut signatures = Vec::with_capacity(lines.len());
        for (i, l) in lines.iter().enumerate() {
            let line = first_line.saturating_add(i);
            signatures.push(parse_signature_line(l, line)?);
        }
        Ok(Note {
            text: text.to_owned(),
            signatures,
        })
    }

    /// Encodes the note: text, blank line, one signature line per signature.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = String::with_capacity(self.text.len().saturating_add(1));
        out.push_str(&self.text);
        out.push('\n');
        for s in &self.signatures {
            out.push_str(&signature_line(&s.name, s.key_id, &s.signature));
        }
        out.into_bytes()
    }
}

fn parse_signature_line(l: &str, line: usize) -> Result<NoteSignature, NoteError> {
    let bad = |reason: &str| NoteError::BadSignatureLine {
        line,
        reason: reason.to_owned(),
    };
    let rest = l
        .strip_prefix(SIG_PREFIX)
        .ok_or_else(|| bad("does not start with an em dash (U+2014) and a space"))?;
    let (name, b64) = rest
        .split_once(' ')
        .ok_or_else(|| bad("no space between key name and signature"))?;
    if !is_valid_key_name(name) {
        return Err(bad(&format!(
            "invalid key name {name:?} (must be non-empty, without spaces or '+')"
        )));
    }
    if b64.is_empty() {
        return Err(bad("empty signature"));
    }
    let raw = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .map_err(|e| bad(&format!("signature is not canonical standard base64: {e}")))?;
    let (id, sig) = raw
        .split_first_chunk::<4>()
        .ok_or_else(|| bad("signature shorter than its 4-byte key ID"))?;
    if sig.is_empty() {
        return Err(bad("signature has a key ID but no signature bytes"));
    }
    Ok(NoteSignature {
        name: name.to_owned(),
        key_id: u32::from_be_bytes(*id),
        signature: sig.to_vec(),
    })
}

/// A signature line: `"— name base64(key_id || sig)\n"`.
pub fn signature_line(name: &str, key_id: u32, sig: &[u8]) -> String {
    let mut raw = Vec::with_capacity(sig.len().saturating_add(4));
    raw.extend_from_slice(&key_id.to_be_bytes());
    raw.extend_from_slice(sig);
    format!(
        "{SIG_PREFIX}{name} {}\n",
        base64::engine::general_purpose::STANDARD.encode(raw)
    )
}

/// The key ID: `SHA-256(name || 0x0A || sig_type || public_key)[:4]`, big-endian.
pub fn key_id(name: &str, sig_type: u8, public_key: &[u8]) -> u32 {
    let digest = Sha256::new()
        .chain_update(name.as_bytes())
        .chain_update([b'\n', sig_type])
        .chain_update(public_key)
        .finalize();
    let mut id = [0u8; 4];
    id.copy_from_slice(digest.get(..4).unwrap_or(&[0; 4]));
    u32::from_be_bytes(id)
}

/// A public key of one of the supported signature types.
#[derive(Clone, PartialEq)]
pub enum PublicKey {
    /// Type 0x01: Ed25519 over the note text.
    Ed25519(ed25519_dalek::VerifyingKey),
    /// Type 0x04: Ed25519 `cosignature/v1`.
    CosigEd25519(ed25519_dalek::VerifyingKey),
    /// Type 0x06: ML-DSA-44 `subtree/v1`.
    MlDsa44(Box<ml_dsa::VerifyingKey<ml_dsa::MlDsa44>>),
}

impl Eq for PublicKey {}

impl PublicKey {
    /// The signature type byte.
    pub fn sig_type(&self) -> u8 {
        match self {
            PublicKey::Ed25519(_) => SIG_ED25519,
            PublicKey::CosigEd25519(_) => SIG_COSIG_ED25519,
            PublicKey::MlDsa44(_) => SIG_COSIG_MLDSA44,
        }
    }

    /// The encoded public key (32 bytes for Ed25519, 1312 for ML-DSA-44).
    pub fn to_bytes(&self) -> Vec<u8> {
        match self {
            PublicKey::Ed25519(k) | PublicKey::CosigEd25519(k) => k.to_bytes().to_vec(),
            PublicKey::MlDsa44(k) => k.encode().to_vec(),
        }
    }

    /// Decodes a key of type `sig_type` from its public key bytes.
    fn decode(name: &str, sig_type: u8, pk: &[u8]) -> Result<PublicKey, NoteError> {
        let bad = |reason: String| NoteError::BadVkey {
            reason: format!("{name}: {reason}"),
        };
        match sig_type {
            SIG_ED25519 | SIG_COSIG_ED25519 => {
                let arr: &[u8; ED25519_PUBLIC_KEY_SIZE] = pk.try_into().map_err(|_| {
                    bad(format!(
                        "Ed25519 public key is {} bytes, want {ED25519_PUBLIC_KEY_SIZE}",
                        pk.len()
                    ))
                })?;
                let k = ed25519_dalek::VerifyingKey::from_bytes(arr)
                    .map_err(|_| bad("Ed25519 public key is not a valid point".into()))?;
                if k.is_weak() {
                    return Err(bad("Ed25519 public key is a weak (small-order) key".into()));
                }
                Ok(if sig_type == SIG_ED25519 {
                    PublicKey::Ed25519(k)
                } else {
                    PublicKey::CosigEd25519(k)
                })
            }
            SIG_COSIG_MLDSA44 => {
                let enc =
                    ml_dsa::EncodedVerifyingKey::<ml_dsa::MlDsa44>::try_from(pk).map_err(|_| {
                        bad(format!(
                            "ML-DSA-44 public key is {} bytes, want {MLDSA44_PUBLIC_KEY_SIZE}",
                            pk.len()
                        ))
                    })?;
                Ok(PublicKey::MlDsa44(Box::new(ml_dsa::VerifyingKey::decode(
                    &enc,
                ))))
            }
            other => Err(NoteError::UnsupportedKeyType {
                name: name.to_owned(),
                sig_type: other,
            }),
        }
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self {
            PublicKey::Ed25519(_) => "Ed25519",
            PublicKey::CosigEd25519(_) => "CosigEd25519",
            PublicKey::MlDsa44(_) => "MlDsa44",
        };
        write!(f, "PublicKey::{kind}(..)")
    }
}

/// A verifier key: a key name, key ID and public key.
#[derive(Clone, PartialEq, Eq)]
pub struct Vkey {
    /// The key name (signature lines must carry the same name).
    pub name: String,
    /// The key ID (signature lines must carry the same ID).
    pub key_id: u32,
    /// The public key.
    pub key: PublicKey,
}

impl fmt::Debug for Vkey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Vkey")
            .field("name", &self.name)
            .field("key_id", &format_args!("{:08x}", self.key_id))
            .field("sig_type", &format_args!("0x{:02x}", self.sig_type()))
            .finish()
    }
}

impl Vkey {
    /// Parses `name+hex8+base64(type || public key)`. The key ID must be 8 lowercase hex digits
    /// and equal to [`key_id`] recomputed from name, type and public key; the name must be valid
    /// ([`is_valid_key_name`]); the type must be 0x01, 0x04 or 0x06.
    pub fn parse(s: &str) -> Result<Vkey, NoteError> {
        let bad = |reason: &str| NoteError::BadVkey {
            reason: reason.to_owned(),
        };
        let (name, rest) = s
            .split_once('+')
            .ok_or_else(|| bad("expected name+keyid+key"))?;
        let (id_hex, key_b64) = rest
            .split_once('+')
            .ok_or_else(|| bad("expected name+keyid+key"))?;
        if !is_valid_key_name(name) {
            return Err(bad(&format!(
                "invalid key name {name:?} (must be non-empty, without spaces or '+')"
            )));
        }
        if id_hex.len() != 8
            || !id_hex
                .bytes()
                .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        {
            return Err(bad(&format!(
                "{name}: key ID {id_hex:?} is not 8 lowercase hex digits"
            )));
        }
        let id = u32::from_str_radix(id_hex, 16)
            .map_err(|_| bad(&format!("{name}: key ID {id_hex:?} is not hex")))?;
        let raw = base64::engine::general_purpose::STANDARD
            .decode(key_b64)
            .map_err(|e| {
                bad(&format!(
                    "{name}: key is not canonical standard base64: {e}"
                ))
            })?;
        let (&sig_type, pk) = raw
            .split_first()
            .ok_or_else(|| bad(&format!("{name}: empty key")))?;
        let want = key_id(name, sig_type, pk);
        if want != id {
            return Err(NoteError::VkeyIdMismatch {
                name: name.to_owned(),
                got: id,
                want,
            });
        }
        let key = PublicKey::decode(name, sig_type, pk)?;
        Ok(Vkey {
            name: name.to_owned(),
            key_id: id,
            key,
        })
    }

    /// Encodes the vkey as `name+hex8+base64(type || public key)`.
    pub fn encode(&self) -> String {
        let mut raw = vec![self.sig_type()];
        raw.extend_from_slice(&self.key.to_bytes());
        format!(
            "{}+{:08x}+{}",
            self.name,
            self.key_id,
            base64::engine::general_purpose::STANDARD.encode(raw)
        )
    }

    /// The signature type byte of the key.
    pub fn sig_type(&self) -> u8 {
        self.key.sig_type()
    }

    fn from_key(name: &str, key: PublicKey) -> Vkey {
        Vkey {
            name: name.to_owned(),
            key_id: key_id(name, key.sig_type(), &key.to_bytes()),
            key,
        }
    }

    /// A type 0x01 (Ed25519 note signature) vkey. `name` should satisfy
    /// [`is_valid_key_name`], or nothing it signs will parse.
    pub fn from_ed25519(name: &str, key: ed25519_dalek::VerifyingKey) -> Vkey {
        Self::from_key(name, PublicKey::Ed25519(key))
    }

    /// A type 0x04 (Ed25519 `cosignature/v1`) vkey. `name` should satisfy
    /// [`is_valid_key_name`].
    pub fn from_cosig_ed25519(name: &str, key: ed25519_dalek::VerifyingKey) -> Vkey {
        Self::from_key(name, PublicKey::CosigEd25519(key))
    }

    /// A type 0x06 (ML-DSA-44 `subtree/v1`) vkey. `name` should satisfy
    /// [`is_valid_key_name`] and be at most 255 bytes (the cosigned message's limit).
    pub fn from_mldsa44(name: &str, key: ml_dsa::VerifyingKey<ml_dsa::MlDsa44>) -> Vkey {
        Self::from_key(name, PublicKey::MlDsa44(Box::new(key)))
    }
}

/// Parses one vkey per non-empty line (surrounding ASCII whitespace on a line is ignored; a
/// line starting with `#` is a comment). Errors name the line.
pub fn parse_vkeys(text: &str) -> Result<Vec<Vkey>, NoteError> {
    let mut out = Vec::new();
    for (i, l) in text.lines().enumerate() {
        let l = l.trim_ascii();
        if l.is_empty() || l.starts_with('#') {
            continue;
        }
        let key = Vkey::parse(l).map_err(|e| NoteError::VkeyLine {
            line: i.saturating_add(1),
            source: Box::new(e),
        })?;
        out.push(key);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    const EXAMPLE_VKEY: &str =
        "example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k";

    #[test]
    fn text_split_at_last_blank_line() {
        let n = Note::parse("a\n\nb\n\n\u{2014} k AAAAAAE=\n".as_bytes()).unwrap();
        assert_eq!(n.text, "a\n\nb\n");
        assert_eq!(n.signatures.len(), 1);
        assert_eq!(n.signatures[0].key_id, 0);
        assert_eq!(n.signatures[0].signature, vec![1]);
    }

    #[test]
    fn error_lines() {
        let e = Note::parse("a\nb\n\n\u{2014} k AAAAAAE=\n- k AAAAAAE=\n".as_bytes()).unwrap_err();
        assert!(
            matches!(e, NoteError::BadSignatureLine { line: 5, .. }),
            "{e}"
        );
        let e = Note::parse(b"a\nb\rc\n\n").unwrap_err();
        assert_eq!(e, NoteError::ControlChar { line: 2, byte: 13 });
        let e = Note::parse(b"a\n\xff\n").unwrap_err();
        assert_eq!(e, NoteError::InvalidUtf8 { line: 2, offset: 2 });
    }

    #[test]
    fn vkey_round_trip_and_lines() {
        let k = Vkey::parse(EXAMPLE_VKEY).unwrap();
        assert_eq!(k.encode(), EXAMPLE_VKEY);
        assert_eq!(
            format!("{k:?}"),
            "Vkey { name: \"example.com/foo\", key_id: 530d903a, sig_type: 0x01 }"
        );
        let keys = parse_vkeys(&format!(
            "# comment\n\n{EXAMPLE_VKEY}\n  {EXAMPLE_VKEY}  \n"
        ))
        .unwrap();
        assert_eq!(keys.len(), 2);
        let e = parse_vkeys(&format!("{EXAMPLE_VKEY}\n\nnope\n")).unwrap_err();
        assert!(matches!(e, NoteError::VkeyLine { line: 3, .. }), "{e}");
    }

    #[test]
    fn vkey_rejects() {
        // Uppercase hex, wrong id, unknown type, wrong length, bad name.
        for bad in [
            "example.com/foo+530D903A+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k",
            "example.com/foo+530d903b+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k",
            "example.com/fo o+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k",
            "+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k",
            "example.com/foo+530d903a",
            "example.com/foo+530d903a+",
            "example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2",
        ] {
            assert!(Vkey::parse(bad).is_err(), "{bad}");
        }
        // A valid id for an unsupported type 0x02.
        let pk = [7u8; 32];
        let id = key_id("a", 2, &pk);
        let mut raw = vec![2u8];
        raw.extend_from_slice(&pk);
        let s = format!(
            "a+{id:08x}+{}",
            base64::engine::general_purpose::STANDARD.encode(raw)
        );
        assert_eq!(
            Vkey::parse(&s).unwrap_err(),
            NoteError::UnsupportedKeyType {
                name: "a".into(),
                sig_type: 2
            }
        );
    }
}
