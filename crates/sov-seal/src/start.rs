//! The seal at start, as a typestate: the steps `sov serve` takes, in order, each a type that
//! only the step before returns, so that none is skipped, repeated or taken out of turn.
//!
//! 1. [`Plan::for_declaration`]: what the declaration asks of this home, checked before the
//!    port is taken. A listen address outside `[seal] listen`, a declared read-only root that
//!    does not exist, or a part of the home that resolves outside it is [`Refused`].
//! 2. [`Plan::confine`]: once the listener is bound (the seal forbids binding afterwards) and
//!    while the process has one thread, the folders the server writes are made and the kernel
//!    layers applied: a network namespace when offline, Landlock, seccomp ([`crate::confine`]).
//! 3. [`Confined::probe`]: right after, the live probes ([`crate::probe`]), and the report.
//! 4. [`Probed::store`]: the report written, owner only, as `report.json` and under its
//!    SHA-256 in `reports/` ([`Files`]).
//! 5. [`Stored::attest`]: the `seal.attestation` entry naming that SHA-256, appended through the
//!    record (which the server opens only now: its writer starts threads), and its index noted
//!    in `attestation`. [`Attested`] knows the index; [`Attested::require_whole`] refuses a
//!    start required to be whole (`--require-seal`) when a layer or a probe falls short.
//!
//! The fields are private, so no step's value can be made but by the step before:
//!
//! ```compile_fail,E0451
//! fn forge(report: sov_seal::Report) -> sov_seal::start::Attested {
//!     sov_seal::start::Attested { report, json: Vec::new(), index: 0, required: false }
//! }
//! ```
//!
//! ```compile_fail,E0451
//! use sov_seal::start::{Files, Probed};
//! fn forge(report: sov_seal::Report, files: Files) -> Probed {
//!     Probed { report, files, required: false }
//! }
//! ```

use std::collections::BTreeSet;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};

use sov_audit_core::record::{Record, RecordError};

use crate::confine::{self, Confinement, Layer, Rules};
use crate::declare::Declaration;
use crate::private_file;
use crate::probe::{self, Prepared};
use crate::report::{self, Report};

pub use crate::private_file::FileError;

/// The seal's files, in one folder: the report of the last start, every report by its SHA-256,
/// and the index of the last start's attestation entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Files {
    dir: PathBuf,
}

impl Files {
    /// `seal/` in the home at `root`, where `sov serve` keeps them.
    pub fn in_home(root: &Path) -> Self {
        Self::at(root.join("seal"))
    }

    /// In the folder `dir`.
    pub fn at(dir: PathBuf) -> Self {
        Self { dir }
    }

    /// The folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// `report.json`: the report of the last start (what `sov seal status` reads).
    pub fn report(&self) -> PathBuf {
        self.dir.join("report.json")
    }

    /// `reports/`: every report stored, each under its SHA-256.
    pub fn archive(&self) -> PathBuf {
        self.dir.join("reports")
    }

    /// `reports/<sha256>.json`: the report whose SHA-256 is `sha256` (hex).
    pub fn archived(&self, sha256: &str) -> PathBuf {
        self.archive().join(format!("{sha256}.json"))
    }

    /// `attestation`: the index of the last start's seal.attestation entry, for `sov seal
    /// status` to check the stored report against the record.
    pub fn attestation(&self) -> PathBuf {
        self.dir.join("attestation")
    }
}

/// The home as the seal sees it: what the server may read, and what it writes.
#[derive(Debug, Clone)]
pub struct Home {
    /// The home: read-only beneath it, as a whole (models, keys, policies, the configuration).
    pub root: PathBuf,
    /// The configuration: probed, it must stay readable and must not be writable.
    pub config: PathBuf,
    /// The folders the server writes (its record, its directory), made before the seal.
    pub writes: Vec<PathBuf>,
    /// The seal's own files (written too).
    pub files: Files,
}

/// What the declaration asks of this start: step 1.
#[derive(Debug)]
pub struct Plan {
    declaration: Declaration,
    home: Home,
    rules: Rules,
    required: bool,
}

/// The kernel layers applied, the probes prepared before them: step 2.
#[derive(Debug)]
pub struct Confined {
    plan: Plan,
    listen: SocketAddr,
    started_at: String,
    confinement: Confinement,
    prepared: Prepared,
}

/// The probes run and the report made: step 3.
#[derive(Debug)]
pub struct Probed {
    report: Report,
    files: Files,
    required: bool,
}

/// The report stored, its SHA-256 known: step 4.
#[derive(Debug)]
pub struct Stored {
    report: Report,
    json: Vec<u8>,
    digest: String,
    files: Files,
    required: bool,
}

/// The report attested in the record, at a known index: step 5, the seal as the server keeps it.
#[derive(Debug)]
pub struct Attested {
    report: Report,
    json: Vec<u8>,
    index: u64,
    required: bool,
}

/// A start the declaration does not allow, refused before anything is applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct Refused {
    /// Why, in words (for the refusal's entry and the user).
    pub reason: String,
}

/// A seal required to be whole that is not.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the seal is not whole: {}", .missing.join("; "))]
pub struct NotWhole {
    /// Each declared layer not in force and each probe that did not hold, in words.
    pub missing: Vec<String>,
}

/// Why a step of the start failed.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The listener's address could not be read.
    #[error("failed to read the listening address")]
    Listener(#[source] std::io::Error),
    /// A folder the server writes could not be made.
    #[error("failed to create {}", path.display())]
    Folder {
        /// The folder.
        path: PathBuf,
        /// The system's answer.
        #[source]
        source: std::io::Error,
    },
    /// The start time could not be written.
    #[error("failed to write the start time")]
    Clock(#[source] time::error::Format),
    /// The report could not be written as JSON.
    #[error("{0}")]
    Report(String),
    /// A file of the seal could not be written.
    #[error(transparent)]
    File(#[from] FileError),
    /// The attestation entry was not recorded.
    #[error("failed to record the seal attestation")]
    Record(#[source] RecordError),
}

impl Plan {
    /// The plan for serving `home` on `listen` within `declaration`; refused when the
    /// declaration does not allow it (see the module's documentation).
    pub fn for_declaration(
        declaration: &Declaration,
        home: Home,
        listen: SocketAddr,
    ) -> Result<Self, Refused> {
        preflight(declaration, &home, listen)?;
        let mut read_write = home.writes.clone();
        read_write.push(home.files.dir.clone());
        let mut read_only = vec![home.root.clone()];
        read_only.extend(declaration.read_only.iter().cloned());
        let rules = Rules {
            offline: declaration.offline,
            read_write,
            read_only,
            connect_ports: declaration.outbound.iter().map(|d| d.port).collect(),
            unavailable: BTreeSet::new(),
        };
        Ok(Self {
            declaration: declaration.clone(),
            home,
            rules,
            required: false,
        })
    }

    /// Requires the seal to be whole (`--require-seal`): then [`Attested::require_whole`]
    /// refuses a seal where a declared layer is not in force or a probe did not hold.
    pub fn require_whole(mut self, required: bool) -> Self {
        self.required = required;
        self
    }

    /// Leaves `layers` off, as if the kernel lacked them (`--seal-unavailable`, for tests of the
    /// report and of `--require-seal`); the report says so.
    pub fn unavailable(mut self, layers: impl IntoIterator<Item = Layer>) -> Self {
        self.rules.unavailable.extend(layers);
        self
    }

    /// Applies the seal, `listener` bound: makes the folders the server writes (a rule names an
    /// open folder), prepares the probes, then applies the layers. Must run while the process
    /// has one thread; a layer that cannot cover the process is reported as not in force.
    pub fn confine(self, listener: &TcpListener) -> Result<Confined, StartError> {
        let listen = listener.local_addr().map_err(StartError::Listener)?;
        let archive = self.home.files.archive();
        for folder in self.rules.read_write.iter().chain([&archive]) {
            std::fs::create_dir_all(folder).map_err(|source| StartError::Folder {
                path: folder.clone(),
                source,
            })?;
        }
        let started_at = time::OffsetDateTime::now_utc()
            .format(&time::format_description::well_known::Rfc3339)
            .map_err(StartError::Clock)?;
        let prepared = probe::prepare(&self.rules, Some(self.home.config.clone()));
        let confinement = confine::apply(&self.rules, prepared.target());
        Ok(Confined {
            plan: self,
            listen,
            started_at,
            confinement,
            prepared,
        })
    }
}

impl Confined {
    /// How each layer stands.
    pub fn confinement(&self) -> &Confinement {
        &self.confinement
    }

    /// Runs the probes (before any other thread starts) and makes the report.
    pub fn probe(self) -> Probed {
        let probes = probe::run(self.prepared);
        let report = Report::new(
            self.started_at,
            self.listen.to_string(),
            &self.plan.declaration,
            &self.plan.rules,
            &self.confinement,
            probes,
        );
        Probed {
            report,
            files: self.plan.home.files,
            required: self.plan.required,
        }
    }
}

impl Probed {
    /// The report.
    pub fn report(&self) -> &Report {
        &self.report
    }

    /// Stores the report: under its SHA-256 in `reports/` (once), and as `report.json`.
    pub fn store(self) -> Result<Stored, StartError> {
        let text = self.report.to_json().map_err(StartError::Report)?;
        let digest = report::digest(text.as_bytes());
        let kept = self.files.archived(&digest);
        if !kept.exists() {
            private_file::write_new(&kept, &text)?;
        }
        private_file::replace(&self.files.report(), &text)?;
        Ok(Stored {
            report: self.report,
            json: text.into_bytes(),
            digest,
            files: self.files,
            required: self.required,
        })
    }
}

impl Stored {
    /// The report.
    pub fn report(&self) -> &Report {
        &self.report
    }

    /// The stored report's SHA-256, in hex.
    pub fn digest(&self) -> &str {
        &self.digest
    }

    /// Appends the `seal.attestation` entry (as `principal`) and notes its index in
    /// `attestation`. The entry: outcome `ok` only when the report says sealed, otherwise
    /// `error` with what is missing; attributes `report_sha256`, `layers`, `probes_held`,
    /// `kernel` and each probe's answer (`probe.<name>`).
    pub fn attest(self, log: &dyn Record, principal: &str) -> Result<Attested, StartError> {
        let appended =
            report::attest(log, principal, &self.report, &self.json).map_err(StartError::Record)?;
        private_file::replace(&self.files.attestation(), &format!("{}\n", appended.index))?;
        Ok(Attested {
            report: self.report,
            json: self.json,
            index: appended.index,
            required: self.required,
        })
    }
}

impl Attested {
    /// The report.
    pub fn report(&self) -> &Report {
        &self.report
    }

    /// The index of the report's seal.attestation entry.
    pub fn attestation(&self) -> u64 {
        self.index
    }

    /// What keeps the seal from being whole: `None` when every declared layer is in force and
    /// every probe held.
    pub fn gaps(&self) -> Option<NotWhole> {
        if self.report.sealed {
            return None;
        }
        let mut missing: Vec<String> = self
            .report
            .missing_layers()
            .iter()
            .map(|l| format!("{} is not in force ({})", l.layer, l.detail))
            .collect();
        missing.extend(
            self.report
                .failed_probes()
                .iter()
                .map(|p| format!("probe {} ({}): {}", p.name, p.tried, p.result)),
        );
        Some(NotWhole { missing })
    }

    /// Refuses a seal that is not whole when it was required to be
    /// ([`Plan::require_whole`]); otherwise the start may go on, whole or not.
    pub fn require_whole(&self) -> Result<(), NotWhole> {
        match self.gaps() {
            Some(gaps) if self.required => Err(gaps),
            _ => Ok(()),
        }
    }

    /// The report, its bytes as stored (their SHA-256 is in the entry), and the entry's index.
    pub fn into_parts(self) -> (Report, Vec<u8>, u64) {
        (self.report, self.json, self.index)
    }
}

/// Refuses a start the declaration does not allow: a declared read-only root that does not
/// exist, a listen address outside `[seal] listen`, or a part of the home that resolves
/// outside it (a symbolic link the seal would deny at first use).
fn preflight(declaration: &Declaration, home: &Home, listen: SocketAddr) -> Result<(), Refused> {
    let missing_root = declaration
        .read_only
        .iter()
        .find(|p| !p.exists())
        .map(|p| format!("the declared read-only root {} does not exist", p.display()));
    let undeclared_listen = (!declaration.listen.is_empty()
        && !declaration.listen.contains(&listen))
    .then(|| {
        let declared: Vec<String> = declaration.listen.iter().map(ToString::to_string).collect();
        format!("{listen} is not a declared listen address ([seal] listen = {declared:?})")
    });
    match missing_root
        .or(undeclared_listen)
        .or_else(|| outside_home(&home.root, &declaration.read_only))
    {
        None => Ok(()),
        Some(reason) => Err(Refused { reason }),
    }
}

/// A file or folder of the home (two levels deep: `models/blobs`, `state/identity.db`, ...)
/// that resolves outside the home and outside every declared read-only root: under the seal
/// the server could not use it, so the start is refused now, with the reason.
fn outside_home(root: &Path, read_only: &[PathBuf]) -> Option<String> {
    let root = std::fs::canonicalize(root).ok()?;
    let allowed: Vec<PathBuf> = read_only
        .iter()
        .filter_map(|p| std::fs::canonicalize(p).ok())
        .collect();
    let mut paths = Vec::new();
    for entry in std::fs::read_dir(&root).ok()?.flatten() {
        let path = entry.path();
        if path.is_dir() && !entry.file_type().is_ok_and(|t| t.is_symlink()) {
            paths.extend(
                std::fs::read_dir(&path)
                    .into_iter()
                    .flatten()
                    .flatten()
                    .map(|e| e.path()),
            );
        }
        paths.push(path);
    }
    paths.into_iter().find_map(|path| {
        let real = std::fs::canonicalize(&path).ok()?;
        if real.starts_with(&root) || allowed.iter().any(|a| real.starts_with(a)) {
            return None;
        }
        Some(format!(
            "{} resolves to {}, outside the home: the seal would deny the server access to it (move it into the home, or declare a read-only root in [seal] read_only if the server only reads it)",
            path.display(),
            real.display()
        ))
    })
}

#[cfg(test)]
#[path = "start_tests.rs"]
mod tests;
