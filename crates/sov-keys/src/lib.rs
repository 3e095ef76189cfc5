//! Owner identity for Sovereign: the keys that say "this institution approved it".
//!
//! Everything the system trusts (model manifests, policies, audit checkpoints) is
//! signed by the owner. We sign with **two** algorithms at once and require both
//! signatures to verify:
//!
//! * **Ed25519** (RFC 8032, `verify_strict`): small, fast, battle-tested today;
//! * **ML-DSA-65** (FIPS 204): post-quantum, so a signature made today still means
//!   something once large quantum computers exist.
//!
//! An attacker has to break both to forge an owner signature.
//!
//! # Files (in the keys directory, created with mode 0700)
//!
//! * `owner.key` (mode 0600, refused on load if group/world can access it):
//!   ```text
//!   sovereign-owner-key v1
//!   ed25519-seed <64 hex chars>
//!   ml-dsa-65-seed <64 hex chars>
//!   ```
//!   Both are 32-byte seeds from the OS RNG; the ML-DSA key is
//!   `ML-DSA.KeyGen_internal(seed)` (FIPS 204, Algorithm 6).
//! * `owner.pub.json` (mode 0644): [`OwnerPublicKeys`] as JSON.
//!
//! Both are written once, atomically (temporary file, fsync, hard link, fsync of
//! the directory); an existing key is never overwritten.
//!
//! # Byte encodings
//!
//! * `key_id` = lowercase hex of the first 8 bytes of
//!   `SHA-256(ed25519_public_key (32 bytes) || ml_dsa_65_public_key (1952 bytes))`.
//! * `ed25519` public key and signature: lowercase hex. `ml_dsa_65`: standard base64
//!   (with padding) of the FIPS 204 encodings.
//! * Signing `msg` under `domain` (at most 255 bytes):
//!   * Ed25519 signs `len(domain) as u8 || domain || msg`;
//!   * ML-DSA-65 signs `msg` with context string `ctx = domain` (deterministic variant,
//!     which already prefixes `0 || len(ctx) || ctx`).
//!
//! Domains keep a signature over one kind of object from being replayed as another.

mod error;
mod fsutil;
mod log_key;
mod public;

use std::fmt;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use ed25519_dalek::Signer as _;
use ml_dsa::{ExpandedSigningKey, MlDsa65};
use zeroize::Zeroizing;

pub use error::KeyError;
pub use log_key::{LOG_KEY_FILE, LogKey};
pub use public::{OwnerPublicKeys, Signatures};

/// File name of the secret key file.
pub const SECRET_FILE: &str = "owner.key";
/// File name of the public key file.
pub const PUBLIC_FILE: &str = "owner.pub.json";
const HEADER: &str = "sovereign-owner-key v1";

/// What [`OwnerKeys::init`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InitOutcome {
    /// New keys were generated and written.
    Created,
    /// Valid keys were already there; nothing was changed.
    AlreadyPresent,
}

/// The owner's secret signing keys. Secrets are zeroized on drop and never printed.
pub struct OwnerKeys {
    ed25519: ed25519_dalek::SigningKey,
    ml_dsa: ExpandedSigningKey<MlDsa65>,
    public: OwnerPublicKeys,
}

impl fmt::Debug for OwnerKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OwnerKeys")
            .field("key_id", &self.public.key_id)
            .finish_non_exhaustive()
    }
}

impl OwnerKeys {
    /// Creates the owner keys in `keys_dir` unless they already exist.
    ///
    /// Idempotent: if both files exist and load (and match), returns
    /// [`InitOutcome::AlreadyPresent`] and touches nothing. If only one exists,
    /// fails with [`KeyError::HalfPresent`] rather than overwrite anything.
    pub fn init(keys_dir: &Path) -> Result<InitOutcome, KeyError> {
        let secret_path = keys_dir.join(SECRET_FILE);
        let public_path = keys_dir.join(PUBLIC_FILE);
        match (exists(&secret_path)?, exists(&public_path)?) {
            (true, true) => {
                let keys = Self::load(keys_dir)?;
                let public = OwnerPublicKeys::load(keys_dir)?;
                if public != keys.public {
                    return Err(KeyError::Mismatch { path: public_path });
                }
                return Ok(InitOutcome::AlreadyPresent);
            }
            (true, false) => return Err(half(secret_path, public_path)),
            (false, true) => return Err(half(public_path, secret_path)),
            (false, false) => {}
        }
        fsutil::ensure_private_dir(keys_dir)?;
        let mut ed_seed = Zeroizing::new([0u8; 32]);
        let mut ml_seed = Zeroizing::new([0u8; 32]);
        getrandom::fill(ed_seed.as_mut()).map_err(KeyError::Random)?;
        getrandom::fill(ml_seed.as_mut()).map_err(KeyError::Random)?;
        let keys = Self::from_seeds(&ed_seed, &ml_seed);
        let text = Zeroizing::new(format!(
            "{HEADER}\ned25519-seed {}\nml-dsa-65-seed {}\n",
            hex::encode(ed_seed.as_ref()),
            hex::encode(ml_seed.as_ref())
        ));
        let mut public_json =
            serde_json::to_vec_pretty(&keys.public).map_err(|e| KeyError::Write {
                path: public_path.clone(),
                source: e.into(),
            })?;
        public_json.push(b'\n');
        fsutil::write_new_atomic(&secret_path, text.as_bytes(), 0o600)?;
        fsutil::write_new_atomic(&public_path, &public_json, 0o644)?;
        Ok(InitOutcome::Created)
    }

    /// Loads the secret keys from `keys_dir/owner.key`.
    ///
    /// Refuses the file if group or others can access it.
    pub fn load(keys_dir: &Path) -> Result<OwnerKeys, KeyError> {
        let path = keys_dir.join(SECRET_FILE);
        let text = fsutil::read_secret(&path)?;
        let (ed_seed, ml_seed) =
            fsutil::parse_seed_file(&path, &text, HEADER, "ed25519-seed", "ml-dsa-65-seed")?;
        Ok(Self::from_seeds(&ed_seed, &ml_seed))
    }

    fn from_seeds(ed_seed: &[u8; 32], ml_seed: &[u8; 32]) -> Self {
        let ed25519 = ed25519_dalek::SigningKey::from_bytes(ed_seed);
        let seed = Zeroizing::new(ml_dsa::Seed::from(*ml_seed));
        let ml_dsa = ExpandedSigningKey::<MlDsa65>::from_seed(&seed);
        let ml_pub = ml_dsa.verifying_key().encode();
        let ed_pub = ed25519.verifying_key().to_bytes();
        let public = OwnerPublicKeys::from_raw(&ed_pub, &ml_pub);
        Self {
            ed25519,
            ml_dsa,
            public,
        }
    }

    /// The public half, for verification and for publishing.
    pub fn public(&self) -> OwnerPublicKeys {
        self.public.clone()
    }

    /// Signs `msg` under `domain` with both algorithms (see the crate docs for the bytes).
    ///
    /// Fails only if `domain` is longer than 255 bytes (or, practically never, if
    /// ML-DSA rejection sampling is exhausted).
    pub fn sign(&self, domain: &[u8], msg: &[u8]) -> Result<Signatures, KeyError> {
        let len = u8::try_from(domain.len())
            .map_err(|_| KeyError::DomainTooLong { len: domain.len() })?;
        let ed = self
            .ed25519
            .sign(&public::ed25519_message(len, domain, msg));
        let ml = self
            .ml_dsa
            .sign_deterministic(msg, domain)
            .map_err(|_| KeyError::Sign)?;
        Ok(Signatures {
            ed25519: hex::encode(ed.to_bytes()),
            ml_dsa_65: base64::engine::general_purpose::STANDARD.encode(ml.encode()),
        })
    }
}

fn exists(path: &Path) -> Result<bool, KeyError> {
    path.try_exists().map_err(|source| KeyError::Read {
        path: path.to_path_buf(),
        source,
    })
}

fn half(present: PathBuf, missing: PathBuf) -> KeyError {
    KeyError::HalfPresent { present, missing }
}

#[cfg(test)]
mod tests;
