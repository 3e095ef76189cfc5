//! `sov audit export DIR`: a static copy of the record that any file server can serve and
//! `sov-verify log DIR --key ...` checks offline.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result};

use super::reader;
use crate::home::Home;
use crate::record;

pub fn run(home: &Home, dir: &Path) -> Result<ExitCode> {
    let reader = reader(home)?;
    let vkeys = record::own_vkeys(home, &home.config()?)?;
    let size = reader
        .export(dir)
        .with_context(|| format!("failed to export the audit record to {}", dir.display()))?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "Exported {size} entries to {}", dir.display())?;
    writeln!(
        out,
        "Verify it anywhere with `sov-verify log {} --key KEYS`, where KEYS holds the log's verifier keys, obtained from a source you trust (not from the copy itself):",
        dir.display()
    )?;
    for v in &vkeys {
        writeln!(out, "  {}", v.encode())?;
    }
    Ok(ExitCode::SUCCESS)
}
