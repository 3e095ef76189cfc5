//! `sov model list`.

use std::io::Write;
use std::process::ExitCode;

use anyhow::{Context, Result};

use super::{human_count, human_size, open_store};
use crate::home::Home;

pub fn run(home: &Home) -> Result<ExitCode> {
    let store = open_store(home)?;
    let models = store.list().context("failed to list the model store")?;
    let mut out = std::io::stdout().lock();
    if models.is_empty() {
        writeln!(
            out,
            "The model store is empty. Import a model with `sov model import FILE.gguf`."
        )?;
        return Ok(ExitCode::SUCCESS);
    }
    let width = models
        .iter()
        .map(|m| m.name.len())
        .max()
        .unwrap_or(4)
        .max(4);
    writeln!(
        out,
        "{:width$}  {:10}  {:>6}  {:8}  {:>7}  {:>10}  SHA256",
        "NAME", "ARCH", "PARAMS", "QUANT", "CONTEXT", "SIZE"
    )?;
    for m in &models {
        let ctx = m
            .gguf
            .context_length
            .map_or_else(|| "-".to_owned(), |c| c.to_string());
        writeln!(
            out,
            "{:width$}  {:10}  {:>6}  {:8}  {:>7}  {:>10}  {}",
            m.name,
            m.gguf.architecture,
            human_count(m.gguf.parameters),
            m.gguf.quantization,
            ctx,
            human_size(m.size),
            m.sha256.get(..12).unwrap_or(&m.sha256)
        )?;
    }
    Ok(ExitCode::SUCCESS)
}
