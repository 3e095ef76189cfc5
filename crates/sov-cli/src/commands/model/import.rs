//! `sov model import FILE [--name NAME]`.

use std::io::{IsTerminal, Write};
use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use sov_audit_core::entry::{Kind, Outcome};
use sov_keys::OwnerKeys;
use sov_models::ImportOutcome;

use super::{human_count, human_size, open_store};
use crate::home::Home;
use crate::record;

pub fn run(home: &Home, file: &Path, name: Option<&str>) -> Result<ExitCode> {
    let store = open_store(home)?;
    let owner =
        OwnerKeys::load(&home.keys_dir()).context("failed to load the owner's signing key")?;
    // Open the record first: an import that could not be recorded must not start.
    let log = record::open(home, &home.config()?)?;
    let result = import(&store, &owner, file, name);
    let resource = name.map_or_else(|| file.display().to_string(), str::to_owned);
    let entry = match &result {
        Ok(outcome) => {
            let m = match outcome {
                ImportOutcome::Imported(m) | ImportOutcome::AlreadyPresent(m) => m,
            };
            let changed = matches!(outcome, ImportOutcome::Imported(_));
            record::append(
                &log,
                Kind::ModelImport,
                &m.name,
                Outcome::Ok,
                "",
                sov_kernel::node::digest(&m.sha256),
                vec![
                    ("changed", changed.to_string()),
                    ("file", file.display().to_string()),
                    ("size", m.size.to_string()),
                ],
            )
        }
        Err(err) => record::append(
            &log,
            Kind::ModelImport,
            &resource,
            Outcome::Denied,
            &record::reason(err),
            None,
            vec![("file", file.display().to_string())],
        ),
    };
    let closed = log.close().context("failed to close the audit record");
    let outcome = result?;
    let entry = entry?;
    closed?;
    let mut out = std::io::stdout().lock();
    print(&mut out, &outcome)?;
    writeln!(out, "  audit entry: {}", entry.index)?;
    Ok(ExitCode::SUCCESS)
}

fn import(
    store: &sov_models::ModelStore,
    owner: &OwnerKeys,
    file: &Path,
    name: Option<&str>,
) -> Result<ImportOutcome> {
    let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr());
    if !std::io::stderr().is_terminal() {
        bar.set_draw_target(ProgressDrawTarget::hidden());
    }
    bar.set_style(
        ProgressStyle::with_template(
            "hashing {bytes}/{total_bytes} [{bar:30}] {binary_bytes_per_sec}, {eta} left",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    let outcome = store.import(file, name, owner, &mut |done, total| {
        bar.set_length(total);
        bar.set_position(done);
    });
    bar.finish_and_clear();
    outcome.with_context(|| format!("failed to import {}", file.display()))
}

fn print(out: &mut impl Write, outcome: &ImportOutcome) -> Result<()> {
    let (verb, m) = match outcome {
        ImportOutcome::Imported(m) => ("Imported", m),
        ImportOutcome::AlreadyPresent(m) => ("Already in the store, nothing changed:", m),
    };
    writeln!(
        out,
        "{verb} {} ({} {}, {} parameters, {})",
        m.name,
        m.gguf.architecture,
        m.gguf.quantization,
        human_count(m.gguf.parameters),
        human_size(m.size)
    )?;
    writeln!(out, "  sha256: {}", m.sha256)?;
    Ok(())
}
