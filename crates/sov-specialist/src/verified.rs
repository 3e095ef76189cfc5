//! The proof that a specialist was checked: its signature, its rules, its adapter's bytes.

use std::path::{Path, PathBuf};

use sov_models::VerifiedModel;

use crate::{Manifest, SpecialistError};

/// A specialist whose manifest signature, fields and adapter bytes were checked.
///
/// Only [`SpecialistStore::get`](crate::SpecialistStore::get) creates one; code that serves a
/// specialist takes this, not a name. The fields are private, so no other code can make one:
///
/// ```compile_fail
/// let forged = sov_specialist::VerifiedSpecialist { manifest: todo!(), sha256: todo!(), adapter: None };
/// ```
#[derive(Debug, Clone)]
pub struct VerifiedSpecialist {
    manifest: Manifest,
    sha256: String,
    adapter: Option<PathBuf>,
}

impl VerifiedSpecialist {
    pub(crate) fn new(manifest: Manifest, adapter: Option<PathBuf>) -> Self {
        let sha256 = manifest.sha256();
        Self {
            manifest,
            sha256,
            adapter,
        }
    }

    /// The verified manifest.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// [`Manifest::sha256`] of the verified manifest.
    pub fn sha256(&self) -> &str {
        &self.sha256
    }

    /// The adapter's blob, whose bytes were checked, if the specialist has an adapter.
    pub fn adapter_path(&self) -> Option<&Path> {
        self.adapter.as_deref()
    }

    /// Checks that `base` is the exact base model the owner approved: the same name and the
    /// same SHA-256. A model re-imported with other bytes under the approved name is refused,
    /// with both digests in the error, until the owner approves it by adding the specialist
    /// again.
    pub fn check_base(&self, base: &VerifiedModel) -> Result<(), SpecialistError> {
        let given = base.manifest();
        let approved = &self.manifest.base;
        if given.name == approved.name && given.sha256 == approved.sha256 {
            return Ok(());
        }
        Err(SpecialistError::BaseChanged {
            name: self.manifest.name.clone(),
            approved: approved.name.clone(),
            approved_sha256: approved.sha256.clone(),
            given: given.name.clone(),
            given_sha256: given.sha256.clone(),
        })
    }
}
