//! `sov audit tail [-n N] [--json]`.

use std::io::Write;
use std::process::ExitCode;

use anyhow::Result;

use super::{decode, entry_bytes, line, reader};
use crate::home::Home;

pub fn run(home: &Home, count: u64, json: bool) -> Result<ExitCode> {
    let reader = reader(home)?;
    let size = reader.checkpoint().1.size;
    let mut out = std::io::stdout().lock();
    for index in size.saturating_sub(count)..size {
        let entry = decode(index, &entry_bytes(&reader, index)?)?;
        if json {
            writeln!(out, "{}", entry.to_json())?;
        } else {
            writeln!(out, "{}", line(&entry))?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
