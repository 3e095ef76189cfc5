//! `sov model import FILE|DIR|ZIP [--name NAME] [--chat-template gemma|chatml|PATH.jinja]`.

use std::io::{IsTerminal, Write};
use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use sov_audit_core::entry::{Kind, Outcome};
use sov_keys::OwnerKeys;
use sov_models::{ImportOptions, ImportOutcome};

use super::{human_count, human_size, open_store};
use crate::home::Home;
use crate::record;

pub fn run(
    home: &Home,
    file: &Path,
    name: Option<&str>,
    chat_template: Option<&str>,
) -> Result<ExitCode> {
    let store = open_store(home)?;
    let owner =
        OwnerKeys::load(&home.keys_dir()).context("failed to load the owner's signing key")?;
    // Open the record first: an import that could not be recorded must not start.
    let log = record::open(home, &home.config()?)?;
    let result = options(name, chat_template).and_then(|o| import(&store, &owner, file, &o));
    let resource = name.map_or_else(|| file.display().to_string(), str::to_owned);
    let entry = match &result {
        Ok(outcome) => {
            let m = match outcome {
                ImportOutcome::Imported(m) | ImportOutcome::AlreadyPresent(m) => m,
            };
            let changed = matches!(outcome, ImportOutcome::Imported(_));
            let mut attrs = vec![
                ("changed", changed.to_string()),
                ("file", file.display().to_string()),
                ("size", m.size.to_string()),
            ];
            if let Some(c) = &m.converted_from {
                attrs.push((
                    "converter",
                    format!("{} {}", c.converter, c.converter_version),
                ));
            }
            if let Some(t) = &m.chat_template {
                attrs.push(("chat_template", t.name.clone()));
            }
            record::append(
                &log,
                Kind::ModelImport,
                &m.name,
                Outcome::Ok,
                "",
                sov_kernel::node::digest(&m.sha256),
                attrs,
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

/// The import's options; a named template is read and compiled first, so a broken one is
/// refused before anything is copied.
fn options(name: Option<&str>, chat_template: Option<&str>) -> Result<ImportOptions> {
    let chat_template = match chat_template {
        None => None,
        Some(spec) => {
            let choice = sov_models::templates::choose(spec)?;
            let text = sov_models::templates::text_of(&choice).map_err(anyhow::Error::msg)?;
            sov_engine::ChatTemplate::new(text, "", "")
                .with_context(|| format!("failed to compile chat template `{spec}`"))?;
            Some(choice)
        }
    };
    Ok(ImportOptions {
        name: name.map(str::to_owned),
        chat_template,
    })
}

fn import(
    store: &sov_models::ModelStore,
    owner: &OwnerKeys,
    file: &Path,
    options: &ImportOptions,
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
    let mut progress = |done, total| {
        bar.set_length(total);
        bar.set_position(done);
    };
    let outcome = if sov_models::convert::is_convertible(file) {
        store.import_converted(file, options, owner, &mut progress)
    } else {
        store.import_with(file, options, owner, &mut progress)
    };
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
    if let Some(c) = &m.converted_from {
        writeln!(
            out,
            "  converted from {} files by {} {}",
            c.files.len(),
            c.converter,
            c.converter_version
        )?;
    }
    if let Some(t) = &m.chat_template {
        writeln!(out, "  chat template: {} (sha256 {})", t.name, t.sha256)?;
    }
    Ok(())
}
