//! The node's directory (principals, tokens) and policy set as the commands use them.
//!
//! Local commands act with the rights of whoever can write the home (the same trust as editing
//! `sov.toml` or the keys): they change the directory directly, recorded as `local:<user>`.
//! Each change queues its audit entry in the directory's outbox in the same transaction; the
//! command then moves the outbox into the record, or, while `sov serve` holds the record, leaves
//! that to the server, which drains the outbox at start and every quarter of a second.

use anyhow::{Context, Result, bail};
use sov_audit::AuditError;
use sov_policy::{Directory, Policies};

use crate::home::{Config, Home};
use crate::record;

/// Opens the directory of an initialised home.
pub fn open_directory(home: &Home) -> Result<Directory> {
    home.require_initialised()?;
    Directory::open(&home.identity_path()).context("failed to open the identity directory")
}

/// Loads and validates `policies/*.cedar`. The error names the file, line and reason.
pub fn load_policies(home: &Home) -> Result<Policies> {
    let dir = home.policies_dir();
    if !dir.exists() {
        // A home made before policies existed: deny-all would lock the owner out silently.
        bail!(
            "there is no policy folder at {} (run `sov init`, which installs the starter set)",
            dir.display()
        );
    }
    Policies::load_dir(&dir)
        .with_context(|| format!("the policy set in {} is not valid", dir.display()))
}

/// Where the directory's queued audit entries went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recorded {
    /// Moved into the audit record now (how many).
    Now(usize),
    /// The record is held by a running `sov serve`, which will move them.
    ByServer,
}

/// Moves the directory's outbox into the audit record, unless a running server holds it.
pub fn record_outbox(home: &Home, config: &Config, directory: &Directory) -> Result<Recorded> {
    // Nothing queued: leave the record alone (opening it signs a fresh checkpoint).
    if directory
        .outbox()
        .context("failed to read the directory's outbox")?
        .is_empty()
    {
        return Ok(Recorded::Now(0));
    }
    let log = match record::open(home, config) {
        Ok(log) => log,
        Err(e) if is_locked(&e) => return Ok(Recorded::ByServer),
        Err(e) => return Err(e),
    };
    let moved = directory
        .drain_outbox(&log)
        .context("failed to move the directory's changes into the audit record");
    let closed = log.close().context("failed to close the audit record");
    let moved = moved?;
    closed?;
    Ok(Recorded::Now(moved))
}

/// Whether opening the record failed because another process writes it.
fn is_locked(err: &anyhow::Error) -> bool {
    err.chain().any(|c| {
        matches!(
            c.downcast_ref::<AuditError>(),
            Some(AuditError::Locked { .. })
        )
    })
}

/// One line for the user about where the change was recorded.
pub fn recorded_line(recorded: Recorded) -> &'static str {
    match recorded {
        Recorded::Now(_) => "Recorded in the audit record.",
        Recorded::ByServer => {
            "The running server holds the audit record; it records this change within a second."
        }
    }
}
