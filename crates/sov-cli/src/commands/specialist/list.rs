//! `sov specialist list`.

use std::io::Write;
use std::process::ExitCode;

use anyhow::{Context, Result};

use super::open_store;
use crate::home::Home;

/// Characters of the description shown per line.
const DESCRIPTION_WIDTH: usize = 60;

pub fn run(home: &Home) -> Result<ExitCode> {
    let store = open_store(home)?;
    let specialists = store
        .list()
        .context("failed to list the specialist store")?;
    let mut out = std::io::stdout().lock();
    if specialists.is_empty() {
        writeln!(
            out,
            "There are no specialists yet. Add one with `sov specialist add NAME --model BASE`."
        )?;
        return Ok(ExitCode::SUCCESS);
    }
    let width = |f: &dyn Fn(&sov_specialist::Manifest) -> usize, min: usize| {
        specialists.iter().map(f).max().unwrap_or(min).max(min)
    };
    let name_w = width(&|m| m.name.len(), 4);
    let base_w = width(&|m| m.base.name.len(), 4);
    let corpora_w = width(&|m| m.corpora.join(",").len(), 7);
    writeln!(
        out,
        "{:name_w$}  {:base_w$}  {:corpora_w$}  {:7}  {:5}  DESCRIPTION",
        "NAME", "BASE", "CORPORA", "ADAPTER", "TOOLS"
    )?;
    for m in &specialists {
        let corpora = if m.corpora.is_empty() {
            "-".to_owned()
        } else {
            m.corpora.join(",")
        };
        let adapter = if m.adapter.is_some() { "yes" } else { "-" };
        let description: String = m
            .description
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        let mut shown: String = description.chars().take(DESCRIPTION_WIDTH).collect();
        if description.chars().count() > DESCRIPTION_WIDTH {
            shown.push_str("...");
        }
        writeln!(
            out,
            "{:name_w$}  {:base_w$}  {:corpora_w$}  {:7}  {:5}  {shown}",
            m.name,
            m.base.name,
            corpora,
            adapter,
            m.tools.len(),
        )?;
    }
    Ok(ExitCode::SUCCESS)
}
