//! The signed corpus manifest, corpus names and document attributes.

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use sov_keys::{OwnerKeys, OwnerPublicKeys, Signatures};

use crate::{EmbedderId, KnowledgeError};

/// `format` of a version-1 corpus manifest.
pub const MANIFEST_FORMAT: &str = "sovereign.corpus-manifest/v1";
/// The domain the owner signs corpus manifests under.
pub const MANIFEST_DOMAIN: &[u8] = b"sovereign/corpus-manifest/v1";

/// What the owner vouches for about one corpus. Field order is fixed and there are no maps, so
/// `serde_json::to_vec(&manifest)` (the signed bytes) is deterministic.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct CorpusManifest {
    /// Always [`MANIFEST_FORMAT`].
    pub format: String,
    /// The corpus name, `[a-z0-9][a-z0-9._-]{0,63}`.
    pub name: String,
    /// The embedding model every vector was made with.
    pub embedder: EmbedderId,
    /// Every document, sorted by id.
    pub documents: Vec<DocumentEntry>,
    /// Key id of the owner who signed it.
    pub owner_key_id: String,
}

/// One document of a corpus, as the manifest lists it.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct DocumentEntry {
    /// The document id: its path relative to the folder it was added from (`/`-separated), or
    /// its file name when the file was named itself.
    pub id: String,
    /// Its title: the first level-1 heading, the HTML `<title>`, the PDF's `Title`, else the
    /// file name.
    pub title: String,
    /// SHA-256 of the original bytes, lowercase hex (the blob's file name).
    pub sha256: String,
    /// Size of the original bytes.
    pub size: u64,
    /// `text/markdown`, `text/plain`, `text/html`, `application/pdf` or the DOCX media type.
    pub media_type: String,
    /// Its clearance level, if any (Cedar's `resource.clearance`).
    pub clearance: Option<i64>,
    /// Its attributes, `key=value`, sorted, keys unique.
    pub attributes: Vec<String>,
    /// SHA-256 of each chunk's exact text (what a prompt contains), lowercase hex, in order.
    pub chunks: Vec<String>,
}

/// The stored form: `{"manifest": ..., "signatures": ...}`, compact JSON.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub(crate) struct SignedManifest {
    pub(crate) manifest: CorpusManifest,
    pub(crate) signatures: Signatures,
}

impl CorpusManifest {
    /// An empty manifest for a new corpus.
    pub(crate) fn empty(name: &str, embedder: &EmbedderId, owner_key_id: String) -> Self {
        Self {
            format: MANIFEST_FORMAT.to_owned(),
            name: name.to_owned(),
            embedder: embedder.clone(),
            documents: Vec::new(),
            owner_key_id,
        }
    }

    /// The exact bytes the owner signs.
    pub fn signed_bytes(&self) -> Vec<u8> {
        // Serializing strings, integers and vectors of them cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// The entry of document `id`.
    pub fn document(&self, id: &str) -> Option<&DocumentEntry> {
        self.documents
            .binary_search_by(|d| d.id.as_str().cmp(id))
            .ok()
            .and_then(|i| self.documents.get(i))
    }

    /// Checks what the signature cannot: the format, sorted unique ids, digests in shape.
    fn check_consistent(&self) -> Result<(), String> {
        if self.format != MANIFEST_FORMAT {
            return Err(format!("unknown manifest format `{}`", self.format));
        }
        check_embedder(&self.embedder).map_err(|r| r.to_owned())?;
        if !self
            .documents
            .windows(2)
            .all(|w| matches!(w, [a, b] if a.id < b.id))
        {
            return Err("document ids are not sorted and unique".into());
        }
        for d in &self.documents {
            if !is_hex_digest(&d.sha256) || !d.chunks.iter().all(|c| is_hex_digest(c)) {
                return Err(format!("document `{}` has a malformed digest", d.id));
            }
            if !d
                .attributes
                .windows(2)
                .all(|w| matches!(w, [a, b] if attr_key(a) < attr_key(b)))
            {
                return Err(format!("the attributes of `{}` are not sorted", d.id));
            }
        }
        Ok(())
    }
}

/// Signs `manifest` with `signer`: the stored bytes and their SHA-256 (hex).
pub(crate) fn sign(
    manifest: &CorpusManifest,
    signer: &OwnerKeys,
) -> Result<(Vec<u8>, String), KnowledgeError> {
    let signatures = signer
        .sign(MANIFEST_DOMAIN, &manifest.signed_bytes())
        .map_err(|source| KnowledgeError::Sign {
            corpus: manifest.name.clone(),
            source,
        })?;
    let signed = SignedManifest {
        manifest: manifest.clone(),
        signatures,
    };
    let bytes = serde_json::to_vec(&signed).unwrap_or_default();
    let digest = sha256_hex(&bytes);
    Ok((bytes, digest))
}

/// Parses stored manifest bytes without checking the signature (for listings).
pub(crate) fn parse_unverified(bytes: &[u8]) -> Option<CorpusManifest> {
    serde_json::from_slice::<SignedManifest>(bytes)
        .ok()
        .map(|s| s.manifest)
}

/// Parses stored manifest bytes, checks they are in their one encoding, that the owner signed
/// them, that they describe corpus `name`, and that they are consistent.
pub(crate) fn verify(
    bytes: &[u8],
    owner: &OwnerPublicKeys,
    name: &str,
) -> Result<CorpusManifest, KnowledgeError> {
    let inconsistent = |reason: String| KnowledgeError::Inconsistent {
        corpus: name.to_owned(),
        reason,
    };
    let signed: SignedManifest = serde_json::from_slice(bytes)
        .map_err(|e| inconsistent(format!("the manifest does not parse: {e}")))?;
    owner
        .verify(
            MANIFEST_DOMAIN,
            &signed.manifest.signed_bytes(),
            &signed.signatures,
        )
        .map_err(|_| KnowledgeError::ManifestSignature {
            corpus: name.to_owned(),
        })?;
    // One encoding per manifest, so that its hash (what provenance names) is a function of it.
    if serde_json::to_vec(&signed).ok().as_deref() != Some(bytes) {
        return Err(inconsistent(
            "the manifest is not in its canonical encoding".into(),
        ));
    }
    if signed.manifest.name != name {
        return Err(inconsistent(format!(
            "the manifest describes corpus `{}`",
            signed.manifest.name
        )));
    }
    signed.manifest.check_consistent().map_err(inconsistent)?;
    Ok(signed.manifest)
}

/// Lowercase hex SHA-256 of `bytes`.
pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

pub(crate) fn is_hex_digest(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Checks an embedder id as a manifest may hold it.
pub(crate) fn check_embedder(id: &EmbedderId) -> Result<(), &'static str> {
    if !is_hex_digest(&id.sha256) {
        return Err("its sha256 is not 64 lowercase hex digits");
    }
    if id.dims == 0 || id.dims > 65_536 {
        return Err("its dimensions are not between 1 and 65536");
    }
    if id.name.is_empty() || id.name.len() > 256 || id.name.chars().any(char::is_control) {
        return Err("its name is empty, too long or has control characters");
    }
    Ok(())
}

/// Checks a corpus name: `[a-z0-9][a-z0-9._-]{0,63}`. Names become folder names, so anything
/// else (slashes, a leading dot, upper case, spaces) is refused.
pub fn validate_name(name: &str) -> Result<(), KnowledgeError> {
    let err = |reason| KnowledgeError::InvalidName {
        name: name.chars().take(80).collect(),
        reason,
    };
    let mut bytes = name.bytes();
    match bytes.next() {
        None => return Err(err("it is empty")),
        Some(b) if !(b.is_ascii_lowercase() || b.is_ascii_digit()) => {
            return Err(err("it must start with a lowercase letter or digit"));
        }
        Some(_) => {}
    }
    if name.len() > 64 {
        return Err(err("it is longer than 64 characters"));
    }
    if !bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b)) {
        return Err(err("only a-z, 0-9, '.', '_' and '-' are allowed"));
    }
    Ok(())
}

fn attr_key(attr: &str) -> &str {
    attr.split_once('=').map_or(attr, |(k, _)| k)
}

/// Turns `(key, value)` pairs into the manifest's sorted `key=value` strings. Keys are
/// `[a-z0-9_.-]{1,64}` and unique; values have no control characters and at most 256 bytes.
pub(crate) fn attributes(pairs: &[(String, String)]) -> Result<Vec<String>, KnowledgeError> {
    let mut out: Vec<String> = Vec::with_capacity(pairs.len());
    for (k, v) in pairs {
        let attr = format!("{k}={v}");
        let bad = |reason| KnowledgeError::InvalidAttribute {
            attr: attr.chars().take(80).collect(),
            reason,
        };
        if k.is_empty()
            || k.len() > 64
            || !k
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"_.-".contains(&b))
        {
            return Err(bad("keys are 1 to 64 of a-z, 0-9, '_', '.', '-'"));
        }
        if v.len() > 256 || v.chars().any(char::is_control) {
            return Err(bad(
                "values are at most 256 bytes without control characters",
            ));
        }
        out.push(attr);
    }
    out.sort_by(|a, b| attr_key(a).cmp(attr_key(b)));
    if let Some(key) = out.windows(2).find_map(|w| match w {
        [a, b] if attr_key(a) == attr_key(b) => Some(attr_key(a).to_owned()),
        _ => None,
    }) {
        return Err(KnowledgeError::InvalidAttribute {
            attr: key,
            reason: "the key is given twice",
        });
    }
    Ok(out)
}
