//! The audit entry: one consequential action, as deterministic bytes.
//!
//! An entry's bytes are the leaf data of the log's Merkle tree (its leaf hash is
//! `SHA-256(0x00 || bytes)`, RFC 6962) and the element of a C2SP entry bundle, so an entry is
//! at most 65,535 bytes. There is exactly one encoding of any [`Entry`]: [`Entry::decode`]
//! accepts only bytes that [`Entry::encode`] would produce, so re-encoding a decoded entry gives
//! the same bytes and the same leaf hash.
//!
//! # Format, version 1
//!
//! All integers are big-endian. `str8` is a `u8` length then that many bytes of UTF-8; `str16`
//! is the same with a `u16` length. Strings never contain control characters (Unicode `Cc`:
//! U+0000–U+001F, U+007F–U+009F), so an entry can always be printed safely. `opt32` is one byte,
//! `0x00` (absent) or `0x01` (present), followed, when present, by 32 bytes.
//!
//! | offset | size | field | meaning |
//! |---|---|---|---|
//! | 0 | 1 | version | `0x01` |
//! | 1 | 2 | kind | what happened, see [`Kind`]; 0 is invalid, unknown codes are kept as [`Kind::Other`] |
//! | 3 | 8 | index | the entry's position in the log (0-based) |
//! | 11 | 8 | time | Unix time in milliseconds (UTC) when the log sequenced it; never decreases along the log |
//! | 19 | 32 | prev | the leaf hash of entry `index - 1`; 32 zero bytes for entry 0 |
//! | 51 | str8 | node | the node that wrote the entry; 1 to 255 bytes |
//! | … | str8 | principal | who asked (an identity, `system` for the node itself); may be empty |
//! | … | str16 | resource | what it was about (a model id, a route, a path); may be empty |
//! | … | 1 | outcome | see [`Outcome`] |
//! | … | str16 | reason | why: a refusal's reason, an error message; may be empty |
//! | … | opt32 | model | SHA-256 of the model file used (its content address) |
//! | … | opt32 | input | commitment to the inputs, see [`commitment`] |
//! | … | opt32 | output | commitment to the outputs |
//! | … | 1 | attr count | 0 to 64 |
//! | … | per attr: str8, str16 | key, value | keys: 1 to 64 bytes of `a-z 0-9 _ . -`, strictly ascending (so unique) |
//!
//! Nothing may follow the last attribute. Decoding rejects any deviation with an
//! [`EntryError`] naming the field and byte offset, and never panics.
//!
//! # Commitments, not content
//!
//! Prompts and answers never enter the record. An entry carries `SHA-256` commitments to them,
//! salted with 32 random bytes per request ([`commitment`]). The salt is handed to the caller and
//! not kept by the node, so the holder of the content and the salt can prove what was asked and
//! answered, while the record alone reveals nothing, not even whether two requests were equal.

use sha2::{Digest as _, Sha256};

use crate::hash::Hash;

/// The largest entry, in bytes (a C2SP entry bundle's `u16` length prefix).
pub const MAX_ENTRY_SIZE: usize = 65_535;
/// The only entry format version this crate writes and reads.
pub const VERSION: u8 = 1;
/// The most attributes one entry may carry.
pub const MAX_ATTRS: usize = 64;
/// The longest attribute key, in bytes.
pub const MAX_ATTR_KEY: usize = 64;

/// What happened. The `u16` codes are part of the format and never change meaning.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// 1: the server started serving.
    ServerStart,
    /// 2: the server stopped.
    ServerStop,
    /// 3: a model file was imported into the store.
    ModelImport,
    /// 4: a model was verified and loaded into an engine.
    ModelLoad,
    /// 5: a model was removed from the store.
    ModelRemove,
    /// 6: an inference request (chat, completion, embedding).
    Inference,
    /// 7: a request refused before any work (bad input, overload, unknown model).
    Refusal,
    /// 8: an authorisation decision.
    PolicyDecision,
    /// 9: a change to the policy.
    PolicyChange,
    /// 10: a decision of the egress gate.
    EgressDecision,
    /// 11: a key was rotated.
    KeyRotation,
    /// 12: a seal attestation (what the boundary enforces).
    SealAttestation,
    /// 13: the log recovered from an unclean stop.
    Recovery,
    /// 14: a change to the directory (a principal added or disabled, a token issued or revoked).
    IdentityChange,
    /// 15: a change to a corpus (a corpus, or a document in it, added, replaced or removed).
    CorpusChange,
    /// 16: a specialist added (or replaced) or removed.
    SpecialistChange,
    /// 17: the router's choice for a `model: auto` request: the candidates, their scores, the
    /// choice and why.
    Route,
    /// 18: a search over corpora for a caller: which corpora, how many documents were readable
    /// and how many withheld, the hashes of the chunks returned.
    Retrieval,
    /// 19: a tool call's receipt: the tool and its version, the caller, the decision that
    /// allowed it, commitments to its arguments (`input`) and its result (`output`).
    ToolCall,
    /// 20: a tool server started (or refused) with the node: its executable's SHA-256, its
    /// confinement, and the SHA-256 of the tool list it offered (a changed list is visible).
    ToolServer,
    /// 21: a session opened (signed in with a token) or closed (signed out).
    Session,
    /// Any other non-zero code: written by a newer version, kept as is.
    Other(u16),
}

impl Kind {
    /// The kinds this version knows, in code order.
    pub const KNOWN: [Kind; 21] = [
        Kind::ServerStart,
        Kind::ServerStop,
        Kind::ModelImport,
        Kind::ModelLoad,
        Kind::ModelRemove,
        Kind::Inference,
        Kind::Refusal,
        Kind::PolicyDecision,
        Kind::PolicyChange,
        Kind::EgressDecision,
        Kind::KeyRotation,
        Kind::SealAttestation,
        Kind::Recovery,
        Kind::IdentityChange,
        Kind::CorpusChange,
        Kind::SpecialistChange,
        Kind::Route,
        Kind::Retrieval,
        Kind::ToolCall,
        Kind::ToolServer,
        Kind::Session,
    ];

    /// The kind's code in the format.
    pub fn code(self) -> u16 {
        match self {
            Kind::ServerStart => 1,
            Kind::ServerStop => 2,
            Kind::ModelImport => 3,
            Kind::ModelLoad => 4,
            Kind::ModelRemove => 5,
            Kind::Inference => 6,
            Kind::Refusal => 7,
            Kind::PolicyDecision => 8,
            Kind::PolicyChange => 9,
            Kind::EgressDecision => 10,
            Kind::KeyRotation => 11,
            Kind::SealAttestation => 12,
            Kind::Recovery => 13,
            Kind::IdentityChange => 14,
            Kind::CorpusChange => 15,
            Kind::SpecialistChange => 16,
            Kind::Route => 17,
            Kind::Retrieval => 18,
            Kind::ToolCall => 19,
            Kind::ToolServer => 20,
            Kind::Session => 21,
            Kind::Other(code) => code,
        }
    }

    /// The kind for a code; `None` for 0, which is never valid.
    pub fn from_code(code: u16) -> Option<Kind> {
        if code == 0 {
            return None;
        }
        Some(
            Kind::KNOWN
                .into_iter()
                .find(|k| k.code() == code)
                .unwrap_or(Kind::Other(code)),
        )
    }

    /// A stable dotted name, e.g. `model.load`; `kind.<code>` for unknown kinds.
    pub fn name(self) -> String {
        let known = match self {
            Kind::ServerStart => "server.start",
            Kind::ServerStop => "server.stop",
            Kind::ModelImport => "model.import",
            Kind::ModelLoad => "model.load",
            Kind::ModelRemove => "model.remove",
            Kind::Inference => "inference",
            Kind::Refusal => "refusal",
            Kind::PolicyDecision => "policy.decision",
            Kind::PolicyChange => "policy.change",
            Kind::EgressDecision => "egress.decision",
            Kind::KeyRotation => "key.rotation",
            Kind::SealAttestation => "seal.attestation",
            Kind::Recovery => "recovery",
            Kind::IdentityChange => "identity.change",
            Kind::CorpusChange => "corpus.change",
            Kind::SpecialistChange => "specialist.change",
            Kind::Route => "route",
            Kind::Retrieval => "retrieval",
            Kind::ToolCall => "tool.call",
            Kind::ToolServer => "tool.server",
            Kind::Session => "session",
            Kind::Other(code) => return format!("kind.{code}"),
        };
        known.to_owned()
    }
}

/// How it ended. The `u8` codes are part of the format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// 0: done as asked.
    Ok,
    /// 1: refused (by validation, policy, capacity or the seal).
    Denied,
    /// 2: attempted and failed.
    Error,
    /// 3: accepted and under way; a later entry records how it ended.
    Started,
    /// 4: stopped before the end because the caller went away.
    Cancelled,
    /// Any other code: written by a newer version, kept as is.
    Other(u8),
}

impl Outcome {
    /// The outcome's code in the format.
    pub fn code(self) -> u8 {
        match self {
            Outcome::Ok => 0,
            Outcome::Denied => 1,
            Outcome::Error => 2,
            Outcome::Started => 3,
            Outcome::Cancelled => 4,
            Outcome::Other(code) => code,
        }
    }

    /// The outcome for a code (every byte is valid).
    pub fn from_code(code: u8) -> Outcome {
        match code {
            0 => Outcome::Ok,
            1 => Outcome::Denied,
            2 => Outcome::Error,
            3 => Outcome::Started,
            4 => Outcome::Cancelled,
            other => Outcome::Other(other),
        }
    }

    /// A stable name, e.g. `denied`; `outcome.<code>` for unknown codes.
    pub fn name(self) -> String {
        let known = match self {
            Outcome::Ok => "ok",
            Outcome::Denied => "denied",
            Outcome::Error => "error",
            Outcome::Started => "started",
            Outcome::Cancelled => "cancelled",
            Outcome::Other(code) => return format!("outcome.{code}"),
        };
        known.to_owned()
    }
}

/// One decoded audit entry. See the module documentation for the byte format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Position in the log.
    pub index: u64,
    /// Unix time in milliseconds.
    pub time_ms: u64,
    /// Leaf hash of the previous entry (zeros for entry 0).
    pub prev: Hash,
    /// What happened.
    pub kind: Kind,
    /// The node that wrote it.
    pub node: String,
    /// Who asked.
    pub principal: String,
    /// What it was about.
    pub resource: String,
    /// How it ended.
    pub outcome: Outcome,
    /// Why (refusal reason, error message).
    pub reason: String,
    /// SHA-256 of the model used.
    pub model: Option<Hash>,
    /// Commitment to the inputs.
    pub input: Option<Hash>,
    /// Commitment to the outputs.
    pub output: Option<Hash>,
    /// Further facts, keys strictly ascending.
    pub attrs: Vec<(String, String)>,
}

/// Why an entry could not be encoded or decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EntryError {
    /// The bytes end before the field does.
    #[error("entry ends inside {field} (byte {offset}, {len} bytes in all)")]
    Truncated {
        /// The field being read.
        field: &'static str,
        /// Where it starts.
        offset: usize,
        /// The entry's length.
        len: usize,
    },
    /// A version this crate does not read.
    #[error("unsupported entry version {0} (this verifier reads version {VERSION})")]
    Version(u8),
    /// Kind code 0.
    #[error("kind code 0 is not valid")]
    ZeroKind,
    /// A string that is not UTF-8 or holds a control character.
    #[error("{field} at byte {offset} is not UTF-8 text without control characters")]
    BadText {
        /// The field.
        field: &'static str,
        /// Where its bytes start.
        offset: usize,
    },
    /// A string longer than its length prefix allows, or an empty node.
    #[error("{field} is {len} bytes; it must be {min} to {max}")]
    BadLength {
        /// The field.
        field: &'static str,
        /// Its length.
        len: usize,
        /// The fewest bytes allowed.
        min: usize,
        /// The most bytes allowed.
        max: usize,
    },
    /// An optional hash whose presence byte is neither 0 nor 1.
    #[error("{field} presence byte at {offset} is {value:#04x}, not 0x00 or 0x01")]
    BadPresence {
        /// The field.
        field: &'static str,
        /// Where the byte is.
        offset: usize,
        /// Its value.
        value: u8,
    },
    /// More attributes than [`MAX_ATTRS`].
    #[error("{0} attributes; at most {MAX_ATTRS} are allowed")]
    TooManyAttrs(usize),
    /// An attribute key outside `a-z 0-9 _ . -`.
    #[error("attribute key {0:?} must be 1 to {MAX_ATTR_KEY} bytes of a-z 0-9 _ . -")]
    BadAttrKey(String),
    /// Attribute keys not strictly ascending.
    #[error("attribute key {key:?} is not after {previous:?}: keys must be unique and ascending")]
    AttrOrder {
        /// The previous key.
        previous: String,
        /// The key out of order.
        key: String,
    },
    /// Bytes after the last attribute.
    #[error("{0} unexpected bytes after the last field")]
    Trailing(usize),
    /// The encoding would exceed [`MAX_ENTRY_SIZE`].
    #[error("entry would be {0} bytes; the most is {MAX_ENTRY_SIZE}")]
    TooLarge(usize),
}

impl Entry {
    /// Encodes the entry. Fails (and never truncates) if a field breaks the format's rules or
    /// the result would exceed [`MAX_ENTRY_SIZE`].
    pub fn encode(&self) -> Result<Vec<u8>, EntryError> {
        if self.kind.code() == 0 {
            return Err(EntryError::ZeroKind);
        }
        let mut out = Vec::with_capacity(256);
        out.push(VERSION);
        out.extend_from_slice(&self.kind.code().to_be_bytes());
        out.extend_from_slice(&self.index.to_be_bytes());
        out.extend_from_slice(&self.time_ms.to_be_bytes());
        out.extend_from_slice(&self.prev);
        put_str(&mut out, "node", &self.node, 1, u8::MAX as usize)?;
        put_str(&mut out, "principal", &self.principal, 0, u8::MAX as usize)?;
        put_str(&mut out, "resource", &self.resource, 0, u16::MAX as usize)?;
        out.push(self.outcome.code());
        put_str(&mut out, "reason", &self.reason, 0, u16::MAX as usize)?;
        put_opt(&mut out, self.model.as_ref());
        put_opt(&mut out, self.input.as_ref());
        put_opt(&mut out, self.output.as_ref());
        if self.attrs.len() > MAX_ATTRS {
            return Err(EntryError::TooManyAttrs(self.attrs.len()));
        }
        out.push(self.attrs.len() as u8);
        let mut previous: Option<&str> = None;
        for (key, value) in &self.attrs {
            check_attr_key(key)?;
            if let Some(prev) = previous
                && prev.as_bytes() >= key.as_bytes()
            {
                return Err(EntryError::AttrOrder {
                    previous: prev.to_owned(),
                    key: key.clone(),
                });
            }
            previous = Some(key);
            put_str(&mut out, "attribute key", key, 1, MAX_ATTR_KEY)?;
            put_str(&mut out, "attribute value", value, 0, u16::MAX as usize)?;
        }
        if out.len() > MAX_ENTRY_SIZE {
            return Err(EntryError::TooLarge(out.len()));
        }
        Ok(out)
    }

    /// Decodes an entry, accepting exactly the bytes [`Entry::encode`] produces.
    pub fn decode(bytes: &[u8]) -> Result<Entry, EntryError> {
        if bytes.len() > MAX_ENTRY_SIZE {
            return Err(EntryError::TooLarge(bytes.len()));
        }
        let mut r = Reader { bytes, pos: 0 };
        let version = r.u8("version")?;
        if version != VERSION {
            return Err(EntryError::Version(version));
        }
        let kind = Kind::from_code(r.u16("kind")?).ok_or(EntryError::ZeroKind)?;
        let index = r.u64("index")?;
        let time_ms = r.u64("time")?;
        let prev = r.hash("prev")?;
        let node = r.str8("node", 1)?;
        let principal = r.str8("principal", 0)?;
        let resource = r.str16("resource")?;
        let outcome = Outcome::from_code(r.u8("outcome")?);
        let reason = r.str16("reason")?;
        let model = r.opt("model")?;
        let input = r.opt("input")?;
        let output = r.opt("output")?;
        let count = r.u8("attr count")? as usize;
        if count > MAX_ATTRS {
            return Err(EntryError::TooManyAttrs(count));
        }
        let mut attrs: Vec<(String, String)> = Vec::with_capacity(count);
        for _ in 0..count {
            let key = r.str8("attribute key", 1)?;
            check_attr_key(&key)?;
            if let Some((previous, _)) = attrs.last()
                && previous.as_bytes() >= key.as_bytes()
            {
                return Err(EntryError::AttrOrder {
                    previous: previous.clone(),
                    key,
                });
            }
            let value = r.str16("attribute value")?;
            attrs.push((key, value));
        }
        let rest = bytes.len().saturating_sub(r.pos);
        if rest != 0 {
            return Err(EntryError::Trailing(rest));
        }
        Ok(Entry {
            index,
            time_ms,
            prev,
            kind,
            node,
            principal,
            resource,
            outcome,
            reason,
            model,
            input,
            output,
            attrs,
        })
    }

    /// The value of attribute `key`, if present.
    pub fn attr(&self, key: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// The entry as one JSON object (hashes in lowercase hex, time in milliseconds and as
    /// RFC 3339 UTC), for tools that print entries; field names match the format's.
    pub fn to_json(&self) -> String {
        let mut s = String::with_capacity(512);
        s.push('{');
        s.push_str(&format!("\"index\":{},", self.index));
        s.push_str(&format!("\"time_ms\":{},", self.time_ms));
        s.push_str(&format!(
            "\"time\":{},",
            json_str(&rfc3339_ms(self.time_ms))
        ));
        s.push_str(&format!("\"kind\":{},", json_str(&self.kind.name())));
        s.push_str(&format!("\"kind_code\":{},", self.kind.code()));
        s.push_str(&format!("\"node\":{},", json_str(&self.node)));
        s.push_str(&format!("\"principal\":{},", json_str(&self.principal)));
        s.push_str(&format!("\"resource\":{},", json_str(&self.resource)));
        s.push_str(&format!("\"outcome\":{},", json_str(&self.outcome.name())));
        s.push_str(&format!("\"reason\":{},", json_str(&self.reason)));
        for (name, value) in [
            ("model", &self.model),
            ("input", &self.input),
            ("output", &self.output),
        ] {
            match value {
                Some(h) => s.push_str(&format!("\"{name}\":\"{}\",", hex(h))),
                None => s.push_str(&format!("\"{name}\":null,")),
            }
        }
        s.push_str(&format!("\"prev\":\"{}\",", hex(&self.prev)));
        s.push_str("\"attrs\":{");
        for (i, (k, v)) in self.attrs.iter().enumerate() {
            if i > 0 {
                s.push(',');
            }
            s.push_str(&format!("{}:{}", json_str(k), json_str(v)));
        }
        s.push_str("}}");
        s
    }
}

/// `SHA-256("sovereign/audit-commitment/v1\n" || label || "\n" || salt || data)`: a hiding
/// commitment to `data` (the `input` or `output` of an entry; `label` says which).
pub fn commitment(label: &str, salt: &[u8; 32], data: &[u8]) -> Hash {
    let mut c = Committer::new(label, salt);
    c.update(data);
    c.finish()
}

/// [`commitment`] computed incrementally, for data that arrives in pieces (a streamed answer).
#[derive(Debug, Clone)]
pub struct Committer(Sha256);

impl Committer {
    /// Starts a commitment to data labelled `label` under `salt`.
    pub fn new(label: &str, salt: &[u8; 32]) -> Self {
        let mut h = Sha256::new();
        h.update(b"sovereign/audit-commitment/v1\n");
        h.update(label.as_bytes());
        h.update(b"\n");
        h.update(salt);
        Self(h)
    }

    /// Adds the next piece of the data.
    pub fn update(&mut self, data: &[u8]) {
        self.0.update(data);
    }

    /// The commitment to all the pieces, in order.
    pub fn finish(self) -> Hash {
        self.0.finalize().into()
    }
}

/// Replaces control characters with U+FFFD and cuts `s` to at most `max` bytes (on a character
/// boundary), so free text (error messages, paths) always fits an entry's string field.
pub fn clean_text(s: &str, max: usize) -> String {
    let mut out = String::with_capacity(s.len().min(max));
    for c in s.chars() {
        let c = if c.is_control() { '\u{FFFD}' } else { c };
        if out.len() + c.len_utf8() > max {
            break;
        }
        out.push(c);
    }
    out
}

/// Lowercase hex of bytes.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 0x0f) as usize] as char);
    }
    s
}

/// A JSON string literal for `s` (RFC 8259 escaping).
pub fn json_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                out.push_str(&format!("\\u{:04x}", c as u32));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Unix milliseconds as RFC 3339 UTC, e.g. `2026-11-26T14:12:14.123Z`.
pub fn rfc3339_ms(ms: u64) -> String {
    let secs = ms / 1000;
    let days = secs / 86_400;
    let rem = secs % 86_400;
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60,
        ms % 1000
    )
}

/// Days since 1970-01-01 to a proleptic Gregorian (year, month, day); H. Hinnant's algorithm.
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

fn check_attr_key(key: &str) -> Result<(), EntryError> {
    let ok = !key.is_empty()
        && key.len() <= MAX_ATTR_KEY
        && key
            .bytes()
            .all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'_' | b'.' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(EntryError::BadAttrKey(clean_text(key, 80)))
    }
}

fn put_str(
    out: &mut Vec<u8>,
    field: &'static str,
    s: &str,
    min: usize,
    max: usize,
) -> Result<(), EntryError> {
    if s.len() < min || s.len() > max {
        return Err(EntryError::BadLength {
            field,
            len: s.len(),
            min,
            max,
        });
    }
    if s.chars().any(char::is_control) {
        return Err(EntryError::BadText {
            field,
            offset: out.len(),
        });
    }
    if max <= u8::MAX as usize {
        out.push(s.len() as u8);
    } else {
        out.extend_from_slice(&(s.len() as u16).to_be_bytes());
    }
    out.extend_from_slice(s.as_bytes());
    Ok(())
}

fn put_opt(out: &mut Vec<u8>, h: Option<&Hash>) {
    match h {
        Some(h) => {
            out.push(1);
            out.extend_from_slice(h);
        }
        None => out.push(0),
    }
}

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, field: &'static str, n: usize) -> Result<&'a [u8], EntryError> {
        let end = self.pos.checked_add(n);
        match end.and_then(|end| self.bytes.get(self.pos..end)) {
            Some(slice) => {
                self.pos += n;
                Ok(slice)
            }
            None => Err(EntryError::Truncated {
                field,
                offset: self.pos,
                len: self.bytes.len(),
            }),
        }
    }

    fn array<const N: usize>(&mut self, field: &'static str) -> Result<[u8; N], EntryError> {
        let slice = self.take(field, N)?;
        let mut out = [0u8; N];
        out.copy_from_slice(slice);
        Ok(out)
    }

    fn u8(&mut self, field: &'static str) -> Result<u8, EntryError> {
        Ok(self.array::<1>(field)?[0])
    }

    fn u16(&mut self, field: &'static str) -> Result<u16, EntryError> {
        Ok(u16::from_be_bytes(self.array(field)?))
    }

    fn u64(&mut self, field: &'static str) -> Result<u64, EntryError> {
        Ok(u64::from_be_bytes(self.array(field)?))
    }

    fn hash(&mut self, field: &'static str) -> Result<Hash, EntryError> {
        self.array(field)
    }

    fn text(&mut self, field: &'static str, len: usize) -> Result<String, EntryError> {
        let offset = self.pos;
        let raw = self.take(field, len)?;
        match std::str::from_utf8(raw) {
            Ok(s) if !s.chars().any(char::is_control) => Ok(s.to_owned()),
            _ => Err(EntryError::BadText { field, offset }),
        }
    }

    fn str8(&mut self, field: &'static str, min: usize) -> Result<String, EntryError> {
        let len = self.u8(field)? as usize;
        if len < min {
            return Err(EntryError::BadLength {
                field,
                len,
                min,
                max: u8::MAX as usize,
            });
        }
        self.text(field, len)
    }

    fn str16(&mut self, field: &'static str) -> Result<String, EntryError> {
        let len = self.u16(field)? as usize;
        self.text(field, len)
    }

    fn opt(&mut self, field: &'static str) -> Result<Option<Hash>, EntryError> {
        let offset = self.pos;
        match self.u8(field)? {
            0 => Ok(None),
            1 => Ok(Some(self.hash(field)?)),
            value => Err(EntryError::BadPresence {
                field,
                offset,
                value,
            }),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn sample() -> Entry {
        Entry {
            index: 7,
            time_ms: 1_795_000_000_123,
            prev: [0xab; 32],
            kind: Kind::Inference,
            node: "node-1".into(),
            principal: "alice".into(),
            resource: "smollm2-135m-instruct".into(),
            outcome: Outcome::Ok,
            reason: String::new(),
            model: Some([1; 32]),
            input: Some([2; 32]),
            output: None,
            attrs: vec![
                ("route".into(), "/v1/chat/completions".into()),
                ("tokens".into(), "42".into()),
            ],
        }
    }

    #[test]
    fn round_trip_is_exact() {
        let e = sample();
        let bytes = e.encode().unwrap();
        assert_eq!(Entry::decode(&bytes).unwrap(), e);
        assert_eq!(Entry::decode(&bytes).unwrap().encode().unwrap(), bytes);
    }

    #[test]
    fn layout_matches_the_documented_offsets() {
        let e = sample();
        let b = e.encode().unwrap();
        assert_eq!(b[0], 1);
        assert_eq!(&b[1..3], &6u16.to_be_bytes());
        assert_eq!(&b[3..11], &7u64.to_be_bytes());
        assert_eq!(&b[11..19], &1_795_000_000_123u64.to_be_bytes());
        assert_eq!(&b[19..51], &[0xab; 32]);
        assert_eq!(b[51], 6);
        assert_eq!(&b[52..58], b"node-1");
        assert_eq!(b[58], 5);
        assert_eq!(&b[59..64], b"alice");
        assert_eq!(&b[64..66], &21u16.to_be_bytes());
    }

    #[test]
    fn every_truncation_is_an_error() {
        let bytes = sample().encode().unwrap();
        for n in 0..bytes.len() {
            assert!(Entry::decode(&bytes[..n]).is_err(), "prefix of {n} bytes");
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert_eq!(Entry::decode(&longer), Err(EntryError::Trailing(1)));
    }

    #[test]
    fn every_single_bit_flip_changes_or_breaks_the_entry() {
        let e = sample();
        let bytes = e.encode().unwrap();
        for bit in 0..bytes.len() * 8 {
            let mut b = bytes.clone();
            b[bit / 8] ^= 1 << (bit % 8);
            if let Ok(decoded) = Entry::decode(&b) {
                assert_ne!(decoded, e, "bit {bit}");
                assert_eq!(decoded.encode().unwrap(), b, "bit {bit}: not canonical");
            }
        }
    }

    #[test]
    fn bad_fields_are_refused_on_encode() {
        let mut e = sample();
        e.node = String::new();
        assert!(matches!(
            e.encode(),
            Err(EntryError::BadLength { field: "node", .. })
        ));
        let mut e = sample();
        e.reason = "line\nbreak".into();
        assert!(matches!(
            e.encode(),
            Err(EntryError::BadText {
                field: "reason",
                ..
            })
        ));
        let mut e = sample();
        e.attrs.reverse();
        assert!(matches!(e.encode(), Err(EntryError::AttrOrder { .. })));
        let mut e = sample();
        e.attrs = vec![("Bad Key".into(), String::new())];
        assert!(matches!(e.encode(), Err(EntryError::BadAttrKey(_))));
        let mut e = sample();
        e.resource = "x".repeat(40_000);
        e.reason = "y".repeat(40_000);
        assert!(matches!(e.encode(), Err(EntryError::TooLarge(_))));
        let mut e = sample();
        e.kind = Kind::Other(0);
        assert_eq!(e.encode(), Err(EntryError::ZeroKind));
    }

    #[test]
    fn unknown_kinds_and_outcomes_survive() {
        let mut e = sample();
        e.kind = Kind::Other(999);
        e.outcome = Outcome::Other(77);
        let d = Entry::decode(&e.encode().unwrap()).unwrap();
        assert_eq!(d.kind, Kind::Other(999));
        assert_eq!(d.kind.name(), "kind.999");
        assert_eq!(d.outcome.name(), "outcome.77");
        for k in Kind::KNOWN {
            assert_eq!(Kind::from_code(k.code()), Some(k));
        }
    }

    #[test]
    fn kind_codes_and_names_are_fixed() {
        // Part of the format: a code never changes meaning, a name never changes spelling.
        let expected = [
            (1, "server.start"),
            (2, "server.stop"),
            (3, "model.import"),
            (4, "model.load"),
            (5, "model.remove"),
            (6, "inference"),
            (7, "refusal"),
            (8, "policy.decision"),
            (9, "policy.change"),
            (10, "egress.decision"),
            (11, "key.rotation"),
            (12, "seal.attestation"),
            (13, "recovery"),
            (14, "identity.change"),
            (15, "corpus.change"),
            (16, "specialist.change"),
            (17, "route"),
            (18, "retrieval"),
            (19, "tool.call"),
            (20, "tool.server"),
            (21, "session"),
        ];
        let known: Vec<(u16, String)> = Kind::KNOWN.iter().map(|k| (k.code(), k.name())).collect();
        let expected: Vec<(u16, String)> = expected
            .iter()
            .map(|(c, n)| (*c, (*n).to_owned()))
            .collect();
        assert_eq!(known, expected);
        assert_eq!(Kind::from_code(16), Some(Kind::SpecialistChange));
        // The first code after the known ones is still kept, as `Other`.
        assert_eq!(Kind::from_code(19), Some(Kind::ToolCall));
        assert_eq!(Kind::from_code(20), Some(Kind::ToolServer));
        assert_eq!(Kind::from_code(21), Some(Kind::Session));
        assert_eq!(Kind::from_code(22), Some(Kind::Other(22)));
        assert_eq!(Kind::Other(22).name(), "kind.22");
    }

    #[test]
    fn largest_entry_fits_exactly() {
        let mut e = sample();
        e.attrs.clear();
        let base = e.encode().unwrap().len();
        e.reason = "r".repeat(MAX_ENTRY_SIZE - base);
        assert_eq!(e.encode().unwrap().len(), MAX_ENTRY_SIZE);
        e.reason.push('r');
        assert!(matches!(e.encode(), Err(EntryError::TooLarge(_))));
    }

    #[test]
    fn commitments_hide_and_bind() {
        let salt = [9u8; 32];
        let a = commitment("input", &salt, b"hello");
        assert_ne!(a, commitment("input", &[8u8; 32], b"hello"));
        assert_ne!(a, commitment("output", &salt, b"hello"));
        assert_ne!(a, commitment("input", &salt, b"hellp"));
        assert_eq!(a, commitment("input", &salt, b"hello"));
        let mut c = Committer::new("input", &salt);
        c.update(b"he");
        c.update(b"llo");
        assert_eq!(c.finish(), a);
    }

    #[test]
    fn json_and_time_are_well_formed() {
        assert_eq!(rfc3339_ms(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339_ms(951_782_400_001), "2000-02-29T00:00:00.001Z");
        assert_eq!(rfc3339_ms(1_795_000_000_123), "2026-11-18T11:06:40.123Z");
        assert_eq!(json_str("a\"b\\c\u{1}"), "\"a\\\"b\\\\c\\u0001\"");
        let j = sample().to_json();
        assert!(j.starts_with("{\"index\":7,"));
        assert!(j.contains("\"output\":null"));
        assert!(j.contains("\"attrs\":{\"route\":\"/v1/chat/completions\",\"tokens\":\"42\"}"));
    }

    #[test]
    fn clean_text_makes_anything_fit() {
        assert_eq!(clean_text("a\nb", 10), "a\u{FFFD}b");
        assert_eq!(clean_text("ééé", 5), "éé");
    }
}
