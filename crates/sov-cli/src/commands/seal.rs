//! `sov seal open | close`: edit the boundary's declaration (`[seal]` in sov.toml).
//!
//! The edit keeps the file's comments, is written atomically (temporary file, fsync, rename,
//! folder fsync),
//! and is recorded as a `policy.change` entry on resource `seal` (through the directory's
//! outbox, so it works while `sov serve` holds the record). If it cannot be recorded, the file
//! is put back as it was. Kernel rules are never loosened at run time: a change takes effect at
//! the next start.

use std::fs;
use std::io::Write as _;
use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result};
use sov_audit_core::entry::Kind;
use sov_seal::{Destination, declare};

use crate::home::{Home, replace_private};
use crate::{identity, record};

/// `sov seal open HOST:PORT --purpose TEXT`
pub fn open(home: &Home, destination: &str, purpose: &str) -> Result<ExitCode> {
    let dest = Destination::parse(destination, purpose)?;
    let (path, old) = read(home)?;
    let new = declare::open(&old, &dest)?;
    change(
        home,
        &path,
        &old,
        &new,
        vec![
            ("change", "seal.open".to_owned()),
            ("destination", dest.address()),
            ("purpose", dest.purpose.clone()),
        ],
        &format!("Declared open: {dest}."),
    )?;
    Ok(ExitCode::SUCCESS)
}

/// `sov seal close HOST:PORT`
pub fn close(home: &Home, destination: &str) -> Result<ExitCode> {
    // The purpose is not needed to name a destination; parse with a placeholder.
    let dest = Destination::parse(destination, "-")?;
    let (path, old) = read(home)?;
    let new = declare::close(&old, &dest.host, dest.port)?;
    change(
        home,
        &path,
        &old,
        &new,
        vec![
            ("change", "seal.close".to_owned()),
            ("destination", dest.address()),
        ],
        &format!("Closed: {}.", dest.address()),
    )?;
    Ok(ExitCode::SUCCESS)
}

fn read(home: &Home) -> Result<(std::path::PathBuf, String)> {
    // The whole configuration must be valid before it is edited.
    home.config()?;
    let path = home.config_path();
    let text =
        fs::read_to_string(&path).with_context(|| format!("failed to read {}", path.display()))?;
    Ok((path, text))
}

/// Writes `new`, records the change, and puts `old` back if it cannot be recorded; then says
/// `done` and when it takes effect.
fn change(
    home: &Home,
    path: &Path,
    old: &str,
    new: &str,
    attrs: Vec<(&str, String)>,
    done: &str,
) -> Result<()> {
    crate::home::parse_config(new).context("the edited configuration would not be valid")?;
    replace_private(path, new)?;
    let recorded = (|| {
        let directory = identity::open_directory(home)?;
        directory
            .record(
                Kind::PolicyChange,
                &record::local_principal(),
                "seal",
                "",
                attrs,
            )
            .context("failed to queue the audit entry")?;
        let config = home.config()?;
        identity::record_outbox(home, &config, &directory)
    })();
    match recorded {
        Ok(r) => {
            let mut out = std::io::stdout().lock();
            writeln!(out, "{done} It takes effect when `sov serve` next starts.")?;
            writeln!(out, "{}", identity::recorded_line(r))?;
            Ok(())
        }
        Err(e) => {
            replace_private(path, old).context("failed to restore the configuration")?;
            Err(e.context("the change could not be recorded, so it was undone"))
        }
    }
}
