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
use sov_seal::start::Files;
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

/// The seal's files in the home, where `sov serve` stores them (`seal/`): the report of the
/// last start and the index of its seal.attestation entry.
fn files(home: &Home) -> Files {
    Files::in_home(home.root())
}

/// How the stored report stands against the record.
enum Attested {
    /// The entry at this index names the report's SHA-256.
    Yes(u64),
    /// Not checkable (yet): why.
    Unknown(String),
    /// The record's attestation names another report: the stored one was changed.
    Mismatch(u64, String),
}

/// Checks the stored report against its seal.attestation entry in the record.
fn attested(home: &Home, report_json: &[u8]) -> Attested {
    let path = files(home).attestation();
    let Ok(text) = fs::read_to_string(&path) else {
        return Attested::Unknown("no attestation index was noted".into());
    };
    let Ok(index) = text.trim().parse::<u64>() else {
        return Attested::Unknown(format!("{} is malformed", path.display()));
    };
    let reader = match sov_audit::LogReader::open(&home.audit_dir()) {
        Ok(r) => r,
        Err(e) => return Attested::Unknown(format!("the record cannot be read: {e}")),
    };
    if index >= reader.checkpoint().1.size {
        return Attested::Unknown(format!(
            "entry {index} is not yet covered by a signed checkpoint"
        ));
    }
    let entry = match reader
        .entry(index)
        .map_err(|e| e.to_string())
        .and_then(|b| sov_audit_core::entry::Entry::decode(&b).map_err(|e| e.to_string()))
    {
        Ok(e) => e,
        Err(e) => return Attested::Unknown(format!("entry {index} cannot be read: {e}")),
    };
    let named = entry
        .attrs
        .iter()
        .find(|(k, _)| k == "report_sha256")
        .map(|(_, v)| v.clone());
    match named {
        Some(hash)
            if entry.kind == Kind::SealAttestation
                && hash == sov_seal::report::digest(report_json) =>
        {
            Attested::Yes(index)
        }
        _ => Attested::Mismatch(index, named.unwrap_or_else(|| "no report hash".to_owned())),
    }
}

/// `sov seal status [--json]`
pub fn status(home: &Home, json: bool) -> Result<ExitCode> {
    let path = files(home).report();
    let bytes = match fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let declaration = home.config()?.seal;
            let mut out = std::io::stdout().lock();
            writeln!(
                out,
                "No seal report yet: `sov serve` applies the seal and writes its report when it starts."
            )?;
            writeln!(out, "Declared in {}:", home.config_path().display())?;
            write_declaration(&mut out, &declaration)?;
            return Ok(ExitCode::SUCCESS);
        }
        Err(e) => return Err(e).with_context(|| format!("failed to read {}", path.display())),
    };
    let report = sov_seal::Report::from_json(&bytes)
        .map_err(anyhow::Error::msg)
        .with_context(|| format!("{} is not a seal report", path.display()))?;
    let config = fs::read_to_string(home.config_path()).map_err(|e| e.to_string());
    let pending = sov_seal::report::pending_in(&report, config);
    let attested = attested(home, &bytes);
    if let Attested::Mismatch(index, named) = &attested {
        anyhow::bail!(
            "{} does not match the record: its SHA-256 is {}, but the seal.attestation entry {index} names {named}; the report was changed after the start",
            path.display(),
            sov_seal::report::digest(&bytes)
        );
    }
    let index = match &attested {
        Attested::Yes(index) => Some(*index),
        _ => None,
    };
    let mut out = std::io::stdout().lock();
    if json {
        let status = sov_seal::report::status_json(&report, &bytes, index, &pending);
        writeln!(out, "{}", serde_json::to_string_pretty(&status)?)?;
        return Ok(ExitCode::SUCCESS);
    }
    let running = std::path::Path::new(&format!("/proc/{}", report.pid)).exists();
    write!(out, "{}", report.to_text())?;
    let attestation = match &attested {
        Attested::Yes(index) => {
            format!("matches the audit record's seal.attestation entry {index}")
        }
        Attested::Unknown(why) | Attested::Mismatch(_, why) => {
            format!("not checked against the audit record: {why}")
        }
    };
    writeln!(
        out,
        "\nReport SHA-256 {} ({attestation}); server process {}: {}.",
        sov_seal::report::digest(&bytes),
        report.pid,
        if running { "running" } else { "not running" }
    )?;
    match &pending {
        Ok(p) if p.is_empty() => writeln!(
            out,
            "Pending changes: none (sov.toml matches the seal in force)."
        )?,
        Ok(p) => {
            writeln!(
                out,
                "Pending changes (take effect when `sov serve` next starts):"
            )?;
            for change in p {
                writeln!(out, "  - {change}")?;
            }
        }
        Err(e) => writeln!(
            out,
            "Pending changes: unknown, sov.toml cannot be read: {e}"
        )?,
    }
    Ok(ExitCode::SUCCESS)
}

fn write_declaration(out: &mut impl std::io::Write, d: &sov_seal::Declaration) -> Result<()> {
    writeln!(out, "  offline: {}", d.offline)?;
    if d.outbound.is_empty() {
        writeln!(out, "  outbound: none")?;
    }
    for dest in &d.outbound {
        writeln!(out, "  outbound: {dest}")?;
    }
    for p in &d.read_only {
        writeln!(out, "  read_only: {}", p.display())?;
    }
    for a in &d.listen {
        writeln!(out, "  listen: {a}")?;
    }
    Ok(())
}
