//! The audit log's own signing key (`log.key`).
//!
//! The Open Audit Record signs its checkpoints with a key of its own, separate from the
//! owner keys: it signs automatically, many times a second, so it must be loadable
//! without a person present. Checkpoints carry two signatures made with it: Ed25519
//! (signed-note type 0x01) and ML-DSA-44 (subtree/v1 cosignature type 0x06).
//!
//! # File (`<keys_dir>/log.key`, mode 0600, refused on load if group/world can access it)
//!
//! ```text
//! sovereign-log-key v1
//! ed25519-seed <64 hex chars>
//! ml-dsa-44-seed <64 hex chars>
//! ```
//!
//! Both are 32-byte seeds from the OS RNG; the ML-DSA-44 key is
//! `ML-DSA.KeyGen_internal(seed)` (FIPS 204, Algorithm 6). The file is created once,
//! atomically (temporary file, fsync, hard link, fsync of the directory) and never
//! overwritten.

use std::fmt;
use std::path::Path;

use ed25519_dalek::Signer as _;
use ml_dsa::{ExpandedSigningKey, MlDsa44};
use zeroize::Zeroizing;

use crate::{KeyError, fsutil};

/// File name of the log's secret key file inside the keys directory.
pub const LOG_KEY_FILE: &str = "log.key";
const HEADER: &str = "sovereign-log-key v1";
const ED_LABEL: &str = "ed25519-seed";
const ML_LABEL: &str = "ml-dsa-44-seed";

/// The audit log's signing key: Ed25519 + ML-DSA-44.
///
/// Secrets are zeroized on drop and never printed ([`fmt::Debug`] shows the public
/// Ed25519 key only).
pub struct LogKey {
    ed25519: ed25519_dalek::SigningKey,
    ml_dsa: ExpandedSigningKey<MlDsa44>,
    ml_dsa_public: ml_dsa::VerifyingKey<MlDsa44>,
}

impl fmt::Debug for LogKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LogKey")
            .field(
                "ed25519_public",
                &hex::encode(self.ed25519.verifying_key().as_bytes()),
            )
            .finish_non_exhaustive()
    }
}

impl LogKey {
    /// Loads `<keys_dir>/log.key`, creating it (and `keys_dir`, mode 0700) first if it
    /// does not exist yet.
    ///
    /// Refuses a key file that group or others can access, or that is malformed; an
    /// existing file is never overwritten.
    pub fn init_or_load(keys_dir: &Path) -> Result<LogKey, KeyError> {
        let path = keys_dir.join(LOG_KEY_FILE);
        let exists = path.try_exists().map_err(|source| KeyError::Read {
            path: path.clone(),
            source,
        })?;
        if exists {
            return Self::load(keys_dir);
        }
        fsutil::ensure_private_dir(keys_dir)?;
        let mut ed_seed = Zeroizing::new([0u8; 32]);
        let mut ml_seed = Zeroizing::new([0u8; 32]);
        getrandom::fill(ed_seed.as_mut()).map_err(KeyError::Random)?;
        getrandom::fill(ml_seed.as_mut()).map_err(KeyError::Random)?;
        let text = Zeroizing::new(format!(
            "{HEADER}\n{ED_LABEL} {}\n{ML_LABEL} {}\n",
            hex::encode(ed_seed.as_ref()),
            hex::encode(ml_seed.as_ref())
        ));
        match fsutil::write_new_atomic(&path, text.as_bytes(), 0o600) {
            Ok(()) => Ok(Self::from_seeds(&ed_seed, &ml_seed)),
            // Another process created it between our check and our link: use theirs.
            Err(KeyError::Write { source, .. })
                if source.kind() == std::io::ErrorKind::AlreadyExists =>
            {
                Self::load(keys_dir)
            }
            Err(e) => Err(e),
        }
    }

    /// Loads an existing `<keys_dir>/log.key`.
    pub fn load(keys_dir: &Path) -> Result<LogKey, KeyError> {
        let path = keys_dir.join(LOG_KEY_FILE);
        let text = fsutil::read_secret(&path)?;
        let (ed_seed, ml_seed) = fsutil::parse_seed_file(&path, &text, HEADER, ED_LABEL, ML_LABEL)?;
        Ok(Self::from_seeds(&ed_seed, &ml_seed))
    }

    fn from_seeds(ed_seed: &[u8; 32], ml_seed: &[u8; 32]) -> Self {
        let ed25519 = ed25519_dalek::SigningKey::from_bytes(ed_seed);
        let seed = Zeroizing::new(ml_dsa::Seed::from(*ml_seed));
        let ml_dsa = ExpandedSigningKey::<MlDsa44>::from_seed(&seed);
        let ml_dsa_public = ml_dsa.verifying_key();
        Self {
            ed25519,
            ml_dsa,
            ml_dsa_public,
        }
    }

    /// The Ed25519 public key.
    pub fn ed25519_public(&self) -> ed25519_dalek::VerifyingKey {
        self.ed25519.verifying_key()
    }

    /// The ML-DSA-44 public key.
    pub fn mldsa44_public(&self) -> ml_dsa::VerifyingKey<MlDsa44> {
        self.ml_dsa_public.clone()
    }

    /// Signs `msg` with Ed25519 (RFC 8032, pure): the 64-byte signature.
    pub fn sign_ed25519(&self, msg: &[u8]) -> [u8; 64] {
        self.ed25519.sign(msg).to_bytes()
    }

    /// Signs `msg` with pure ML-DSA-44, empty context, deterministic variant (FIPS 204
    /// Algorithm 2 with `rnd = 0^32`): the 2,420-byte encoded signature.
    ///
    /// Fails only if rejection sampling is exhausted, which practically never happens.
    pub fn sign_mldsa44(&self, msg: &[u8]) -> Result<Vec<u8>, KeyError> {
        let sig = self
            .ml_dsa
            .sign_deterministic(msg, &[])
            .map_err(|_| KeyError::Sign)?;
        Ok(sig.encode().to_vec())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use std::os::unix::fs::PermissionsExt;

    use ed25519_dalek::Verifier as _;

    use super::*;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn create_then_reload_same_key() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("keys");
        let a = LogKey::init_or_load(&dir).unwrap();
        let path = dir.join(LOG_KEY_FILE);
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(&dir), 0o700);
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3);
        assert_eq!(lines[0], HEADER);
        assert!(lines[1].starts_with("ed25519-seed ") && lines[1].len() == 13 + 64);
        assert!(lines[2].starts_with("ml-dsa-44-seed ") && lines[2].len() == 15 + 64);
        let b = LogKey::init_or_load(&dir).unwrap();
        assert_eq!(a.ed25519_public(), b.ed25519_public());
        assert_eq!(a.mldsa44_public(), b.mldsa44_public());
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            text,
            "not rewritten"
        );
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1, "no temp files");
        // A second directory gets a different key.
        let c = LogKey::init_or_load(&tmp.path().join("other")).unwrap();
        assert_ne!(a.ed25519_public(), c.ed25519_public());
        assert_ne!(a.mldsa44_public(), c.mldsa44_public());
    }

    #[test]
    fn permissions_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("keys");
        LogKey::init_or_load(&dir).unwrap();
        let path = dir.join(LOG_KEY_FILE);
        for bad in [0o640, 0o604, 0o660, 0o644] {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(bad)).unwrap();
            let err = LogKey::init_or_load(&dir).unwrap_err();
            assert!(
                matches!(err, KeyError::InsecurePermissions { mode, .. } if mode == bad),
                "{err}"
            );
        }
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o400)).unwrap();
        LogKey::init_or_load(&dir).unwrap();
    }

    #[test]
    fn malformed_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("keys");
        LogKey::init_or_load(&dir).unwrap();
        let path = dir.join(LOG_KEY_FILE);
        let good = std::fs::read_to_string(&path).unwrap();
        let cases = [
            good.replace("sovereign-log-key v1", "sovereign-owner-key v1"),
            good.replace("ml-dsa-44-seed", "ml-dsa-65-seed"),
            good.lines().take(2).collect::<Vec<_>>().join("\n"),
            format!("{good}extra\n"),
            good.replacen("ed25519-seed ", "ed25519-seed 0", 1),
        ];
        for bad in cases {
            std::fs::write(&path, &bad).unwrap();
            let err = LogKey::load(&dir).unwrap_err();
            assert!(matches!(err, KeyError::Malformed { .. }), "{err}: {bad}");
        }
    }

    #[test]
    fn signatures_verify() {
        let tmp = tempfile::tempdir().unwrap();
        let key = LogKey::init_or_load(tmp.path()).unwrap();
        let msg = b"example.com/log\n5\nAAAA\n";
        let ed = key.sign_ed25519(msg);
        let ed_sig = ed25519_dalek::Signature::from_bytes(&ed);
        key.ed25519_public().verify_strict(msg, &ed_sig).unwrap();
        assert!(key.ed25519_public().verify(b"other", &ed_sig).is_err());

        let ml = key.sign_mldsa44(msg).unwrap();
        assert_eq!(ml.len(), 2420);
        assert_eq!(key.sign_mldsa44(msg).unwrap(), ml, "deterministic");
        let sig = ml_dsa::Signature::<MlDsa44>::try_from(ml.as_slice()).unwrap();
        let public = key.mldsa44_public();
        assert!(public.verify_with_context(msg, &[], &sig));
        assert!(!public.verify_with_context(msg, b"ctx", &sig));
        assert!(!public.verify_with_context(b"other", &[], &sig));
        // The public key survives an encode/decode round trip (as published in vkeys).
        let decoded = ml_dsa::VerifyingKey::<MlDsa44>::decode(&public.encode());
        assert!(decoded.verify_with_context(msg, &[], &sig));
    }

    #[test]
    fn debug_has_no_secrets() {
        let tmp = tempfile::tempdir().unwrap();
        let key = LogKey::init_or_load(tmp.path()).unwrap();
        let text = std::fs::read_to_string(tmp.path().join(LOG_KEY_FILE)).unwrap();
        let debug = format!("{key:?}");
        for line in text.lines().skip(1) {
            let seed = line.split(' ').nth(1).unwrap();
            assert!(!debug.contains(&seed[..16]), "{debug}");
        }
        assert!(debug.contains(&hex::encode(key.ed25519_public().as_bytes())));
    }
}
