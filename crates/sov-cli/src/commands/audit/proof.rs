//! `sov audit proof N > N.tlog-proof`: a receipt anyone can check with `sov-verify proof`.

use std::io::Write;
use std::process::ExitCode;

use anyhow::{Context, Result};

use super::{entry_bytes, reader};
use crate::home::Home;

pub fn run(home: &Home, index: u64) -> Result<ExitCode> {
    let reader = reader(home)?;
    // Checks coverage with a clear message before building the proof.
    entry_bytes(&reader, index)?;
    let receipt = reader
        .receipt(index)
        .with_context(|| format!("failed to build the receipt for entry {index}"))?;
    std::io::stdout().lock().write_all(&receipt.to_bytes())?;
    Ok(ExitCode::SUCCESS)
}
