//! `sov model show NAME`: the manifest, in full.

use std::io::Write;
use std::process::ExitCode;

use anyhow::{Context, Result};

use super::{human_count, human_size, open_store};
use crate::home::Home;

pub fn run(home: &Home, name: &str) -> Result<ExitCode> {
    let store = open_store(home)?;
    let m = store
        .get(name)
        .with_context(|| format!("failed to read model `{name}`"))?;
    let g = &m.gguf;
    let mut out = std::io::stdout().lock();
    writeln!(out, "name:           {}", m.name)?;
    writeln!(out, "sha256:         {}", m.sha256)?;
    writeln!(
        out,
        "size:           {} ({} bytes)",
        human_size(m.size),
        m.size
    )?;
    writeln!(out, "architecture:   {}", g.architecture)?;
    if let Some(n) = &g.name {
        writeln!(out, "model name:     {n}")?;
    }
    writeln!(
        out,
        "parameters:     {} ({})",
        human_count(g.parameters),
        g.parameters
    )?;
    writeln!(out, "quantisation:   {}", g.quantization)?;
    writeln!(
        out,
        "context length: {}",
        g.context_length
            .map_or_else(|| "not stated".to_owned(), |c| c.to_string())
    )?;
    writeln!(
        out,
        "licence:        {}",
        g.license.as_deref().unwrap_or("not stated")
    )?;
    writeln!(
        out,
        "chat template:  {}",
        g.chat_template
            .as_ref()
            .map_or_else(|| "none".to_owned(), |t| format!("yes ({} bytes)", t.len()))
    )?;
    if let Some(t) = &m.chat_template {
        let why = match t.chosen_by {
            sov_models::ChosenBy::Owner => "named at import",
            sov_models::ChosenBy::Architecture => "implied by the architecture",
        };
        writeln!(
            out,
            "template used:  {} ({why}; sha256 {})",
            t.name, t.sha256
        )?;
    }
    writeln!(out, "source file:    {}", m.source_file_name)?;
    if let Some(c) = &m.converted_from {
        writeln!(
            out,
            "converted by:   {} {}",
            c.converter, c.converter_version
        )?;
        for f in c.archive.iter().chain(&c.files) {
            writeln!(
                out,
                "  from {} ({} bytes, sha256 {})",
                f.name, f.size, f.sha256
            )?;
        }
    }
    writeln!(out, "imported at:    {}", m.imported_at)?;
    writeln!(
        out,
        "signed by:      {} (Ed25519 + ML-DSA-65)",
        m.owner_key_id
    )?;
    Ok(ExitCode::SUCCESS)
}
