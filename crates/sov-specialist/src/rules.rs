//! The rules every specialist keeps: names, limits, and the shape of a signed manifest.
//!
//! [`SpecialistStore::add`](crate::SpecialistStore::add) applies them before signing and
//! [`SpecialistStore::get`](crate::SpecialistStore::get) again after verifying, so a manifest
//! that breaks one is never served, even if it was signed by an older version.

use sov_models::{GgufInfo, StoreError};

use crate::manifest::sha256_hex;
use crate::{MANIFEST_FORMAT, Manifest, SpecialistError};

/// The longest description, in characters (the router embeds it; embedding models read a few
/// hundred tokens).
pub const MAX_DESCRIPTION_CHARS: usize = 2000;
/// The longest instructions, in bytes of UTF-8: 32 KiB, sent with every request.
pub const MAX_INSTRUCTIONS_BYTES: usize = 32 * 1024;
/// The most corpora one specialist searches.
pub const MAX_CORPORA: usize = 64;
/// The most tools one specialist may call.
pub const MAX_TOOLS: usize = 64;
/// Names no specialist may take: `auto` asks the router to choose.
pub const RESERVED_NAMES: &[&str] = &["auto"];
/// `general.architecture` values of embedding-only models, which encode text but cannot answer
/// (llama.cpp's BERT path, which Sovereign's embedding models use).
pub const EMBEDDING_ARCHITECTURES: &[&str] = &sov_models::EMBEDDING_ARCHITECTURES;

/// Checks a specialist name: the model names' rule (`[a-z0-9][a-z0-9._-]{0,63}`, so it is a
/// safe file name) and not a reserved name.
pub fn validate_name(name: &str) -> Result<(), SpecialistError> {
    let invalid = |reason| SpecialistError::InvalidName {
        name: clip(name),
        reason,
    };
    sov_models::validate_name(name).map_err(|e| match e {
        StoreError::InvalidName { reason, .. } => invalid(reason),
        _ => invalid("it is not a valid name"),
    })?;
    if RESERVED_NAMES.contains(&name) {
        return Err(invalid(
            "`auto` is reserved: a request for `auto` asks the router to choose",
        ));
    }
    Ok(())
}

/// Checks a corpus name: the model names' rule, since a corpus is a folder of the home.
pub fn validate_corpus_name(name: &str) -> Result<(), SpecialistError> {
    sov_models::validate_name(name).map_err(|e| SpecialistError::InvalidCorpus {
        name: clip(name),
        reason: match e {
            StoreError::InvalidName { reason, .. } => reason.to_owned(),
            other => other.to_string(),
        },
    })
}

/// Whether a model is embedding-only (its architecture is in [`EMBEDDING_ARCHITECTURES`]).
pub(crate) fn is_embedding_only(info: &GgufInfo) -> bool {
    EMBEDDING_ARCHITECTURES.contains(&info.architecture.as_str())
}

/// Checks the corpora: valid names, none twice, at most [`MAX_CORPORA`].
pub(crate) fn check_corpora(corpora: &[String]) -> Result<(), SpecialistError> {
    if corpora.len() > MAX_CORPORA {
        return Err(field(
            "corpora",
            format!("{} corpora; the most is {MAX_CORPORA}", corpora.len()),
        ));
    }
    for (i, c) in corpora.iter().enumerate() {
        validate_corpus_name(c)?;
        if corpora.get(..i).is_some_and(|before| before.contains(c)) {
            return Err(field("corpora", format!("`{c}` is named twice")));
        }
    }
    Ok(())
}

/// Checks the description: not blank, at most [`MAX_DESCRIPTION_CHARS`], no control characters
/// but line breaks and tabs.
pub(crate) fn check_description(text: &str) -> Result<(), SpecialistError> {
    if text.trim().is_empty() {
        return Err(field("description", "it is empty".to_owned()));
    }
    let chars = text.chars().count();
    if chars > MAX_DESCRIPTION_CHARS {
        return Err(field(
            "description",
            format!("it is {chars} characters; the most is {MAX_DESCRIPTION_CHARS}"),
        ));
    }
    check_text("description", text)
}

/// Checks the instructions: not blank, at most [`MAX_INSTRUCTIONS_BYTES`], no control
/// characters but line breaks and tabs.
pub(crate) fn check_instructions(text: &str) -> Result<(), SpecialistError> {
    if text.trim().is_empty() {
        return Err(field("instructions", "they are empty".to_owned()));
    }
    if text.len() > MAX_INSTRUCTIONS_BYTES {
        return Err(field(
            "instructions",
            format!(
                "they are {} bytes; the most is {MAX_INSTRUCTIONS_BYTES} (32 KiB)",
                text.len()
            ),
        ));
    }
    check_text("instructions", text)
}

/// Checks the tools against the installed ones: each installed, none twice.
pub(crate) fn check_tools(tools: &[String], installed: &[String]) -> Result<(), SpecialistError> {
    if tools.len() > MAX_TOOLS {
        return Err(field(
            "tools",
            format!("{} tools; the most is {MAX_TOOLS}", tools.len()),
        ));
    }
    for (i, t) in tools.iter().enumerate() {
        if !installed.contains(t) {
            return Err(SpecialistError::UnknownTool {
                tool: clip(t),
                installed: installed.to_vec(),
            });
        }
        if tools.get(..i).is_some_and(|before| before.contains(t)) {
            return Err(field("tools", format!("`{t}` is named twice")));
        }
    }
    Ok(())
}

/// Checks a manifest read back from disk (after its signature): every rule above, and that its
/// digests are what they claim.
pub(crate) fn check_manifest(m: &Manifest) -> Result<(), String> {
    let reason = |e: SpecialistError| e.to_string();
    if m.format != MANIFEST_FORMAT {
        return Err(format!("unknown format `{}`", m.format));
    }
    validate_name(&m.name).map_err(reason)?;
    sov_models::validate_name(&m.base.name).map_err(|e| e.to_string())?;
    if !is_hex_digest(&m.base.sha256) {
        return Err("the base model's sha256 is not 64 lowercase hex digits".into());
    }
    check_corpora(&m.corpora).map_err(reason)?;
    check_description(&m.description).map_err(reason)?;
    check_instructions(&m.instructions).map_err(reason)?;
    if sha256_hex(m.instructions.as_bytes()) != m.instructions_sha256 {
        return Err("the instructions do not hash to their sha256".into());
    }
    // The tools were checked against those installed when it was added; here only their shape.
    check_tools(&m.tools, &m.tools).map_err(reason)?;
    if let Some(a) = &m.adapter
        && (!is_hex_digest(&a.sha256) || a.size == 0)
    {
        return Err("the adapter's sha256 or size is malformed".into());
    }
    Ok(())
}

pub(crate) fn is_hex_digest(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

fn check_text(name: &'static str, text: &str) -> Result<(), SpecialistError> {
    match text
        .chars()
        .find(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
    {
        Some(c) => Err(field(
            name,
            format!("it holds the control character U+{:04X}", u32::from(c)),
        )),
        None => Ok(()),
    }
}

fn field(field: &'static str, reason: String) -> SpecialistError {
    SpecialistError::InvalidField { field, reason }
}

fn clip(s: &str) -> String {
    s.chars().take(80).collect()
}
