//! `sov audit ...`: read, prove, export and verify the Open Audit Record.
//!
//! These commands only read the record's files (through [`LogReader`]), so they work while
//! `sov serve` is writing it. They see what the latest signed checkpoint covers, which is at most
//! `audit.checkpoint_interval_ms` behind the newest durable entry.

pub mod export;
pub mod proof;
pub mod show;
pub mod tail;
pub mod verify;

use anyhow::{Context, Result, bail};
use sov_audit::LogReader;
use sov_audit_core::entry::{Entry, hex, rfc3339_ms};

use crate::home::Home;

pub(crate) fn reader(home: &Home) -> Result<LogReader> {
    home.require_initialised()?;
    let dir = home.audit_dir();
    if !dir.join("checkpoint").is_file() {
        bail!(
            "there is no audit record at {} yet (it starts with the first recorded action)",
            dir.display()
        );
    }
    LogReader::open(&dir)
        .with_context(|| format!("failed to read the audit record at {}", dir.display()))
}

/// The bytes of entry `index`, which must be covered by the latest signed checkpoint.
pub(crate) fn entry_bytes(reader: &LogReader, index: u64) -> Result<Vec<u8>> {
    let size = reader.checkpoint().1.size;
    if index >= size {
        bail!(
            "the latest signed checkpoint covers {size} entries (0 to {}), not entry {index}; a newer entry is covered within a second while `sov serve` runs",
            size.saturating_sub(1)
        );
    }
    reader
        .entry(index)
        .with_context(|| format!("failed to read entry {index}"))
}

pub(crate) fn decode(index: u64, bytes: &[u8]) -> Result<Entry> {
    Entry::decode(bytes).with_context(|| format!("entry {index} does not decode"))
}

/// One line per entry, for `tail` (the kind's column fits the longest name, `specialist.change`).
pub(crate) fn line(e: &Entry) -> String {
    format!(
        "{:>7}  {}  {:<17} {:<9} {:<16} {}",
        e.index,
        rfc3339_ms(e.time_ms),
        e.kind.name(),
        e.outcome.name(),
        e.principal,
        e.resource
    )
}

/// Every field, for `show`.
pub(crate) fn full(e: &Entry, leaf: &[u8; 32]) -> String {
    let opt = |h: &Option<[u8; 32]>| h.as_ref().map_or_else(|| "-".to_owned(), |h| hex(h));
    let mut s = String::new();
    s.push_str(&format!("index:     {}\n", e.index));
    s.push_str(&format!(
        "time:      {} ({} ms)\n",
        rfc3339_ms(e.time_ms),
        e.time_ms
    ));
    s.push_str(&format!(
        "kind:      {} ({})\n",
        e.kind.name(),
        e.kind.code()
    ));
    s.push_str(&format!("node:      {}\n", e.node));
    s.push_str(&format!("principal: {}\n", e.principal));
    s.push_str(&format!("resource:  {}\n", e.resource));
    s.push_str(&format!("outcome:   {}\n", e.outcome.name()));
    if !e.reason.is_empty() {
        s.push_str(&format!("reason:    {}\n", e.reason));
    }
    s.push_str(&format!("model:     {}\n", opt(&e.model)));
    s.push_str(&format!("input:     {}\n", opt(&e.input)));
    s.push_str(&format!("output:    {}\n", opt(&e.output)));
    for (k, v) in &e.attrs {
        s.push_str(&format!("{:<10} {v}\n", format!("{k}:")));
    }
    s.push_str(&format!("prev:      {}\n", hex(&e.prev)));
    s.push_str(&format!("leaf:      {}\n", hex(leaf)));
    s
}
