//! `sov audit verify [--json]`: the full offline check of the live record, with the keys this
//! node holds (not the ones in the record's folder, which an intruder could have replaced).
//!
//! Besides the published files (checkpoint, tiles, bundles) it checks the write-ahead log they
//! are derived from (`entries.wal`): it must scan as the server's open scans it, hold every entry
//! the checkpoint covers, byte for byte as in the bundles. A damaged WAL stops the server from
//! starting, so a verify that passed on the tiles alone would say OK about a record that no
//! longer opens.

use std::io::Write;
use std::process::ExitCode;

use anyhow::{Context, Result};
use sov_audit::{AuditError, LogReader};
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
            Err(AuditError::NotFound { .. }) => Ok(None),
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
    let wal = reader.verify_wal();
    let mut out = std::io::stdout().lock();
    let report = match (&result, vkeys_ok, &wal) {
        (Err(failure), _, _) => Err((failure.location.clone(), failure.what.clone())),
        (Ok(_), false, _) => Err((
            "vkeys".to_owned(),
            "the record's vkeys file does not match this node's log key".to_owned(),
        )),
        (Ok(_), true, Err(e)) => Err(wal_failure(e)),
        (Ok(report), true, Ok(wal)) => Ok((report, wal)),
    };
    let (report, wal) = match report {
        Ok(ok) => ok,
        Err((location, what)) => {
            if json {
                writeln!(
                    out,
                    "{{\"ok\":false,\"failure\":{{\"location\":{},\"what\":{}}}}}",
                    json_str(&location),
                    json_str(&what)
                )?;
            } else {
                eprintln!("FAILED: {location}: {what}");
            }
            return Ok(ExitCode::FAILURE);
        }
    };
    if json {
        writeln!(
            out,
            "{{\"ok\":true,\"origin\":{},\"size\":{},\"root\":\"{}\",\"wal\":{{\"entries\":{},\"bytes\":{},\"torn_tail_bytes\":{}}}}}",
            json_str(&report.origin),
            report.size,
            hash_to_base64(&report.root),
            wal.entries,
            wal.valid_bytes,
            wal.torn_tail_bytes
        )?;
        return Ok(ExitCode::SUCCESS);
    }
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
        "wal:     {} entries, {} bytes",
        wal.entries, wal.valid_bytes
    )?;
    if wal.torn_tail_bytes > 0 {
        writeln!(
            out,
            "         then {} bytes of a torn last write (cut at the next start; not damage)",
            wal.torn_tail_bytes
        )?;
    }
    writeln!(
        out,
        "OK: every entry, hash, tile, the chain, both checkpoint signatures and the write-ahead log verify"
    )?;
    Ok(ExitCode::SUCCESS)
}

/// Where and what, for a write-ahead log that fails the check.
fn wal_failure(e: &AuditError) -> (String, String) {
    let location = match e {
        AuditError::WalMismatch { index, offset, .. } => {
            format!("entries.wal entry {index} (byte {offset})")
        }
        AuditError::Corrupt { offset, .. } => format!("entries.wal byte {offset}"),
        _ => "entries.wal".to_owned(),
    };
    let mut what = e.to_string();
    let mut cur = std::error::Error::source(e);
    while let Some(c) = cur {
        what.push_str(": ");
        what.push_str(&c.to_string());
        cur = c.source();
    }
    (location, what)
}
