//! `sov audit show N [--json]`.

use std::io::Write;
use std::process::ExitCode;

use anyhow::Result;
use sov_audit_core::hash::leaf_hash;

use super::{decode, entry_bytes, full, reader};
use crate::home::Home;

pub fn run(home: &Home, index: u64, json: bool) -> Result<ExitCode> {
    let reader = reader(home)?;
    let bytes = entry_bytes(&reader, index)?;
    let entry = decode(index, &bytes)?;
    let mut out = std::io::stdout().lock();
    if json {
        writeln!(out, "{}", entry.to_json())?;
    } else {
        write!(out, "{}", full(&entry, &leaf_hash(&bytes)))?;
    }
    Ok(ExitCode::SUCCESS)
}
