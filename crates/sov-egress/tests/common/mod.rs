//! Helpers the gate's tests share: a real audit log, its `egress.decision` entries, a
//! declaration of one destination.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::SocketAddr;
use std::path::Path;

use sov_audit::{AuditLog, LogConfig};
use sov_audit_core::entry::{Entry, Kind};
use sov_keys::LogKey;
use sov_seal::declare::{Declaration, Destination};

/// A real audit log in `dir`, with a log key of its own.
pub fn open_log(dir: &Path) -> AuditLog {
    let keys = dir.join("keys");
    std::fs::create_dir_all(&keys).unwrap();
    let key = LogKey::init_or_load(&keys).unwrap();
    AuditLog::open(
        &dir.join("audit"),
        key,
        LogConfig::new("sovereign/egress-test", "egress-test"),
    )
    .unwrap()
    .0
}

/// The `egress.decision` entries durable so far, in order.
pub fn decisions(log: &AuditLog) -> Vec<Entry> {
    log.sign_now().unwrap();
    let reader = log.reader().unwrap();
    let size = reader.checkpoint().1.size;
    (0..size)
        .map(|i| Entry::decode(&reader.entry(i).unwrap()).unwrap())
        .filter(|e| e.kind == Kind::EgressDecision)
        .collect()
}

/// A declaration permitting `addr` only.
pub fn declaring(addr: SocketAddr, purpose: &str) -> Declaration {
    let mut declaration = Declaration::default();
    declaration
        .outbound
        .push(Destination::parse(&addr.to_string(), purpose).unwrap());
    declaration
}
