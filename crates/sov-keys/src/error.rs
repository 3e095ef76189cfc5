//! Typed errors for owner-key handling.

use std::path::PathBuf;

/// Everything that can go wrong while creating, loading or using owner keys.
///
/// Signature failures are deliberately opaque ([`KeyError::BadSignature`]): the
/// caller learns that verification failed, never which half or why.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The keys directory could not be created or secured.
    #[error("failed to create keys directory `{}`", path.display())]
    CreateDir {
        /// The directory.
        path: PathBuf,
        /// The underlying I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A key file could not be read.
    #[error("failed to read key file `{}`", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The underlying I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A key file could not be written.
    #[error("failed to write key file `{}`", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// The underlying I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A secret key file is readable or writable by group or others.
    #[error(
        "failed to load secret key `{}`: its mode is {mode:04o}, but it must not be accessible to group or others (chmod 600)",
        path.display()
    )]
    InsecurePermissions {
        /// The file.
        path: PathBuf,
        /// The permission bits found.
        mode: u32,
    },
    /// Only one of the two key files exists; refusing to guess or overwrite.
    #[error(
        "failed to initialise owner keys: `{}` exists but `{}` is missing; refusing to overwrite an existing key",
        present.display(),
        missing.display()
    )]
    HalfPresent {
        /// The file that exists.
        present: PathBuf,
        /// The file that is missing.
        missing: PathBuf,
    },
    /// A key file does not have the expected format.
    #[error("failed to parse key file `{}`: {reason}", path.display())]
    Malformed {
        /// The file.
        path: PathBuf,
        /// What was wrong.
        reason: String,
    },
    /// The public key file does not belong to the secret key file.
    #[error("failed to load owner keys: public key file `{}` does not match the secret key", path.display())]
    Mismatch {
        /// The public key file.
        path: PathBuf,
    },
    /// A signing domain longer than 255 bytes was requested.
    #[error("failed to sign: domain is {len} bytes, at most 255 are allowed")]
    DomainTooLong {
        /// The length given.
        len: usize,
    },
    /// The operating system's random number generator failed.
    #[error("failed to gather randomness from the operating system")]
    Random(#[source] getrandom::Error),
    /// ML-DSA signing failed (rejection sampling exhausted; practically impossible).
    #[error("ML-DSA signing failed")]
    Sign,
    /// A signature did not verify. Opaque on purpose.
    #[error("signature verification failed")]
    BadSignature,
}
