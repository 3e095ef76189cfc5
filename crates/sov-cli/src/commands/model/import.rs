//! `sov model import FILE [--name NAME]`.

use std::io::{IsTerminal, Write};
use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use sov_keys::OwnerKeys;
use sov_models::ImportOutcome;

use super::{human_count, human_size, open_store};
use crate::home::Home;

pub fn run(home: &Home, file: &Path, name: Option<&str>) -> Result<ExitCode> {
    let store = open_store(home)?;
    let owner =
        OwnerKeys::load(&home.keys_dir()).context("failed to load the owner's signing key")?;
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
    let outcome = store.import(file, name, &owner, &mut |done, total| {
        bar.set_length(total);
        bar.set_position(done);
    });
    bar.finish_and_clear();
    let outcome = outcome.with_context(|| format!("failed to import {}", file.display()))?;
    let mut out = std::io::stdout().lock();
    let (verb, m) = match &outcome {
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
    Ok(ExitCode::SUCCESS)
}
