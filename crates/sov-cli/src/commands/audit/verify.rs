//! `sov audit verify [--json]`: the full offline check of the live record, with the keys this
//! node holds (not the ones in the record's folder, which an intruder could have replaced).

use std::io::Write;
use std::process::ExitCode;

use anyhow::{Context, Result};
use sov_audit::LogReader;
use sov_audit_core::entry::{json_str, rfc3339_ms};
use sov_audit_core::hash::hash_to_base64;
use sov_audit_core::verify::{LogFiles, verify_log};

use super::reader;
use crate::home::Home;
use crate::record;

/// The record's files, read through the reader (which copes with a writer advancing meanwhile).
struct Files<'a>(&'a LogReader);

impl LogFiles for Files<'_> {
    fn get(&mut self, path: &str) -> Result<Option<Vec<u8>>, String> {
        if path == "checkpoint" {
            return Ok(Some(self.0.checkpoint().0.to_vec()));
        }
        match self.0.file(path) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(sov_audit::AuditError::NotFound { .. }) => Ok(None),
            Err(e) => Err(e.to_string()),
        }
    }
}

pub fn run(home: &Home, json: bool) -> Result<ExitCode> {
    let config = home.config()?;
    let reader = reader(home)?;
    let keys = record::own_vkeys(home, &config)?;
    let published = reader
        .file("vkeys")
        .context("failed to read the record's vkeys")?;
    let expected: String = keys.iter().map(|k| format!("{}\n", k.encode())).collect();
    let vkeys_ok = published == expected.as_bytes();
    let result = verify_log(&mut Files(&reader), &keys);
    let mut out = std::io::stdout().lock();
    match (&result, vkeys_ok) {
        (Ok(report), true) => {
            if json {
                writeln!(
                    out,
                    "{{\"ok\":true,\"origin\":{},\"size\":{},\"root\":\"{}\"}}",
                    json_str(&report.origin),
                    report.size,
                    hash_to_base64(&report.root)
                )?;
            } else {
                writeln!(out, "origin:  {}", report.origin)?;
                writeln!(out, "entries: {}", report.size)?;
                writeln!(out, "root:    {}", hash_to_base64(&report.root))?;
                if let (Some(first), Some(last)) = (report.first_time_ms, report.last_time_ms) {
                    writeln!(
                        out,
                        "span:    {} to {}",
                        rfc3339_ms(first),
                        rfc3339_ms(last)
                    )?;
                }
                for (kind, n) in &report.kinds {
                    writeln!(out, "  {kind:<16} {n}")?;
                }
                writeln!(
                    out,
                    "OK: every entry, hash, tile, the chain and both checkpoint signatures verify"
                )?;
            }
            Ok(ExitCode::SUCCESS)
        }
        (Ok(_), false) => {
            let what = "the record's vkeys file does not match this node's log key";
            if json {
                writeln!(
                    out,
                    "{{\"ok\":false,\"failure\":{{\"location\":\"vkeys\",\"what\":{}}}}}",
                    json_str(what)
                )?;
            } else {
                eprintln!("FAILED: vkeys: {what}");
            }
            Ok(ExitCode::FAILURE)
        }
        (Err(failure), _) => {
            if json {
                writeln!(
                    out,
                    "{{\"ok\":false,\"failure\":{{\"location\":{},\"what\":{}}}}}",
                    json_str(&failure.location),
                    json_str(&failure.what)
                )?;
            } else {
                eprintln!("FAILED: {}: {}", failure.location, failure.what);
            }
            Ok(ExitCode::FAILURE)
        }
    }
}
