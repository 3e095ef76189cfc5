//! `sov model rm NAME`.

use std::io::Write;
use std::process::ExitCode;

use anyhow::{Context, Result};

use super::open_store;
use crate::home::Home;

pub fn run(home: &Home, name: &str) -> Result<ExitCode> {
    let store = open_store(home)?;
    let removed = store
        .remove(name)
        .with_context(|| format!("failed to remove model `{name}`"))?;
    writeln!(
        std::io::stdout().lock(),
        "Removed {} ({})",
        removed.name,
        removed.sha256
    )?;
    Ok(ExitCode::SUCCESS)
}
