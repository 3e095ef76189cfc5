//! Public keys and signatures: what anyone may hold, and how to check a signature.

use std::path::Path;

use base64::Engine as _;
use ml_dsa::{EncodedVerifyingKey, MlDsa65};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::{KeyError, PUBLIC_FILE};

/// Largest public key file we are willing to read.
const MAX_PUBLIC_FILE: u64 = 64 * 1024;

/// The owner's public keys, as stored in `owner.pub.json`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct OwnerPublicKeys {
    /// Ed25519 public key, lowercase hex (32 bytes).
    pub ed25519: String,
    /// ML-DSA-65 public key, standard base64 (1952 bytes).
    pub ml_dsa_65: String,
    /// First 8 bytes of SHA-256 over both public keys, lowercase hex.
    pub key_id: String,
}

/// A hybrid owner signature: both halves must verify.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Signatures {
    /// Ed25519 signature, lowercase hex (64 bytes).
    pub ed25519: String,
    /// ML-DSA-65 signature, standard base64 (3309 bytes).
    pub ml_dsa_65: String,
}

/// The exact bytes Ed25519 signs: `len(domain) as u8 || domain || msg`.
pub(crate) fn ed25519_message(len: u8, domain: &[u8], msg: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(1 + domain.len() + msg.len());
    out.push(len);
    out.extend_from_slice(domain);
    out.extend_from_slice(msg);
    out
}

fn key_id(ed_pub: &[u8], ml_pub: &[u8]) -> String {
    let digest = Sha256::new()
        .chain_update(ed_pub)
        .chain_update(ml_pub)
        .finalize();
    hex::encode(digest.get(..8).unwrap_or_default())
}

impl OwnerPublicKeys {
    pub(crate) fn from_raw(ed_pub: &[u8; 32], ml_pub: &[u8]) -> Self {
        Self {
            ed25519: hex::encode(ed_pub),
            ml_dsa_65: base64::engine::general_purpose::STANDARD.encode(ml_pub),
            key_id: key_id(ed_pub, ml_pub),
        }
    }

    /// Loads `keys_dir/owner.pub.json`, checking that the keys decode and the key id matches.
    pub fn load(keys_dir: &Path) -> Result<Self, KeyError> {
        let path = keys_dir.join(PUBLIC_FILE);
        let read_err = |source| KeyError::Read {
            path: path.clone(),
            source,
        };
        let malformed = |reason: String| KeyError::Malformed {
            path: path.clone(),
            reason,
        };
        let len = std::fs::metadata(&path).map_err(read_err)?.len();
        if len > MAX_PUBLIC_FILE {
            return Err(malformed(format!(
                "file is {len} bytes, expected a few KiB"
            )));
        }
        let bytes = std::fs::read(&path).map_err(read_err)?;
        let keys: Self = serde_json::from_slice(&bytes).map_err(|e| malformed(e.to_string()))?;
        let (ed, ml) = keys
            .decode()
            .ok_or_else(|| malformed("public keys do not decode".into()))?;
        if key_id(ed.as_bytes(), &ml.encode()) != keys.key_id {
            return Err(malformed("key_id does not match the public keys".into()));
        }
        Ok(keys)
    }

    fn decode(&self) -> Option<(ed25519_dalek::VerifyingKey, ml_dsa::VerifyingKey<MlDsa65>)> {
        let mut ed = [0u8; 32];
        hex::decode_to_slice(&self.ed25519, &mut ed).ok()?;
        let ed = ed25519_dalek::VerifyingKey::from_bytes(&ed).ok()?;
        let ml_bytes = base64::engine::general_purpose::STANDARD
            .decode(&self.ml_dsa_65)
            .ok()?;
        let ml_enc = EncodedVerifyingKey::<MlDsa65>::try_from(ml_bytes.as_slice()).ok()?;
        Some((ed, ml_dsa::VerifyingKey::<MlDsa65>::decode(&ml_enc)))
    }

    /// Verifies a hybrid signature over `msg` under `domain`. Both halves must verify.
    ///
    /// Any failure (bad encoding, wrong key, wrong domain, altered message) is the
    /// same opaque [`KeyError::BadSignature`].
    pub fn verify(&self, domain: &[u8], msg: &[u8], sigs: &Signatures) -> Result<(), KeyError> {
        if self.verify_inner(domain, msg, sigs) {
            Ok(())
        } else {
            Err(KeyError::BadSignature)
        }
    }

    fn verify_inner(&self, domain: &[u8], msg: &[u8], sigs: &Signatures) -> bool {
        let Ok(len) = u8::try_from(domain.len()) else {
            return false;
        };
        let Some((ed, ml)) = self.decode() else {
            return false;
        };
        let mut ed_sig = [0u8; 64];
        if hex::decode_to_slice(&sigs.ed25519, &mut ed_sig).is_err() {
            return false;
        }
        let ed_sig = ed25519_dalek::Signature::from_bytes(&ed_sig);
        let ed_ok = ed
            .verify_strict(&ed25519_message(len, domain, msg), &ed_sig)
            .is_ok();
        let Ok(ml_bytes) = base64::engine::general_purpose::STANDARD.decode(&sigs.ml_dsa_65) else {
            return false;
        };
        let Ok(ml_sig) = ml_dsa::Signature::<MlDsa65>::try_from(ml_bytes.as_slice()) else {
            return false;
        };
        let ml_ok = ml.verify_with_context(msg, domain, &ml_sig);
        ed_ok && ml_ok
    }
}
