//! `sov specialist rm NAME`.

use std::io::Write;
use std::process::ExitCode;

use anyhow::{Context, Result};
use sov_audit_core::entry::{Kind, Outcome};

use super::{entry_attrs, open_store};
use crate::home::Home;
use crate::record;

pub fn run(home: &Home, name: &str) -> Result<ExitCode> {
    let store = open_store(home)?;
    let log = record::open(home, &home.config()?)?;
    let result = store
        .remove(name)
        .with_context(|| format!("failed to remove specialist `{name}`"));
    let change = ("change", "specialist.remove".to_owned());
    let entry = match &result {
        Ok(removed) => {
            let mut attrs = entry_attrs(removed);
            attrs.push(change);
            record::append(
                &log,
                Kind::SpecialistChange,
                &removed.name,
                Outcome::Ok,
                "",
                sov_kernel::node::digest(&removed.base.sha256),
                attrs,
            )
        }
        Err(err) => record::append(
            &log,
            Kind::SpecialistChange,
            name,
            Outcome::Denied,
            &record::reason(err),
            None,
            vec![change],
        ),
    };
    let closed = log.close().context("failed to close the audit record");
    let removed = result?;
    let entry = entry?;
    closed?;
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "Removed specialist {} (manifest sha256 {})",
        removed.name,
        removed.sha256()
    )?;
    writeln!(out, "  audit entry: {}", entry.index)?;
    Ok(ExitCode::SUCCESS)
}
