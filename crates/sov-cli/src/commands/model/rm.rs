//! `sov model rm NAME`.

use std::io::Write;
use std::process::ExitCode;

use anyhow::{Context, Result};
use sov_audit_core::entry::{Kind, Outcome};

use super::open_store;
use crate::home::Home;
use crate::record;

pub fn run(home: &Home, name: &str) -> Result<ExitCode> {
    let store = open_store(home)?;
    let log = record::open(home, &home.config()?)?;
    let result = store
        .remove(name)
        .with_context(|| format!("failed to remove model `{name}`"));
    let entry = match &result {
        Ok(removed) => record::append(
            &log,
            Kind::ModelRemove,
            &removed.name,
            Outcome::Ok,
            "",
            sov_kernel::node::digest(&removed.sha256),
            vec![],
        ),
        Err(err) => record::append(
            &log,
            Kind::ModelRemove,
            name,
            Outcome::Denied,
            &record::reason(err),
            None,
            vec![],
        ),
    };
    let closed = log.close().context("failed to close the audit record");
    let removed = result?;
    let entry = entry?;
    closed?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "Removed {} ({})", removed.name, removed.sha256)?;
    writeln!(out, "  audit entry: {}", entry.index)?;
    Ok(ExitCode::SUCCESS)
}
