//! Human and JSON output.

use std::fmt::Write as _;

use sov_audit_core::checkpoint::{Checkpoint, VerifiedBy};
use sov_audit_core::entry::{clean_text, hex, json_str, rfc3339_ms};
use sov_audit_core::hash::hash_to_base64;
use sov_audit_core::verify::{ConsistencyReport, Failure, LogReport, ReceiptReport};

/// What a command verified.
#[derive(Debug)]
pub enum Out {
    /// `log`.
    Log(LogReport),
    /// `proof`.
    Proof(ReceiptReport),
    /// `consistency`.
    Consistency {
        /// What verified.
        report: ConsistencyReport,
        /// Where the proof came from.
        from: String,
    },
}

/// Text from the verified data or from a failure, safe to print on a terminal.
fn safe(s: &str) -> String {
    clean_text(s, usize::MAX)
}

fn type_name(sig_type: u8) -> &'static str {
    match sig_type {
        0x01 => "Ed25519",
        0x04 => "Ed25519 cosignature/v1",
        0x06 => "ML-DSA-44 subtree/v1",
        _ => "unknown type",
    }
}

fn signer_human(v: &VerifiedBy) -> String {
    let mut s = format!(
        "{}+{:08x} ({}, 0x{:02x})",
        safe(&v.name),
        v.key_id,
        type_name(v.sig_type),
        v.sig_type
    );
    if let Some(ts) = v.timestamp {
        let _ = write!(s, ", signed {}", rfc3339_ms(ts.saturating_mul(1000)));
    }
    s
}

fn signers_json(v: &[VerifiedBy]) -> String {
    let items: Vec<String> = v
        .iter()
        .map(|v| {
            format!(
                "{{\"name\":{},\"key_id\":\"{:08x}\",\"type\":\"0x{:02x}\",\"algorithm\":{},\"timestamp\":{}}}",
                json_str(&v.name),
                v.key_id,
                v.sig_type,
                json_str(type_name(v.sig_type)),
                v.timestamp.map_or("null".to_owned(), |t| t.to_string())
            )
        })
        .collect();
    format!("[{}]", items.join(","))
}

fn checkpoint_json(c: &Checkpoint) -> String {
    format!(
        "{{\"origin\":{},\"size\":{},\"root\":\"{}\"}}",
        json_str(&c.origin),
        c.size,
        hash_to_base64(&c.root)
    )
}

fn line(out: &mut String, label: &str, value: &str) {
    let _ = writeln!(out, "{label:<11}{value}");
}

fn signed_by(out: &mut String, v: &[VerifiedBy]) {
    for (i, s) in v.iter().enumerate() {
        line(out, if i == 0 { "signed by" } else { "" }, &signer_human(s));
    }
}

fn opt_hex(h: Option<&[u8; 32]>) -> String {
    h.map_or("-".to_owned(), |h| hex(h))
}

impl Out {
    /// The human summary (without the final `OK`).
    pub fn human(&self) -> String {
        let mut out = String::new();
        match self {
            Out::Log(r) => {
                line(&mut out, "log", &safe(&r.origin));
                line(&mut out, "entries", &r.size.to_string());
                line(&mut out, "root", &hash_to_base64(&r.root));
                signed_by(&mut out, &r.verified_by);
                let kinds: Vec<String> = r.kinds.iter().map(|(k, n)| format!("{k} {n}")).collect();
                if !kinds.is_empty() {
                    line(&mut out, "kinds", &kinds.join(", "));
                }
                if let (Some(a), Some(b)) = (r.first_time_ms, r.last_time_ms) {
                    line(
                        &mut out,
                        "time span",
                        &format!("{} .. {}", rfc3339_ms(a), rfc3339_ms(b)),
                    );
                }
            }
            Out::Proof(r) => {
                let e = &r.entry;
                line(&mut out, "entry", &e.index.to_string());
                line(&mut out, "kind", &e.kind.name());
                line(&mut out, "time", &rfc3339_ms(e.time_ms));
                line(&mut out, "outcome", &e.outcome.name());
                line(&mut out, "node", &safe(&e.node));
                line(&mut out, "principal", &safe(&e.principal));
                line(&mut out, "resource", &safe(&e.resource));
                if !e.reason.is_empty() {
                    line(&mut out, "reason", &safe(&e.reason));
                }
                line(&mut out, "model", &opt_hex(e.model.as_ref()));
                line(&mut out, "input", &opt_hex(e.input.as_ref()));
                line(&mut out, "output", &opt_hex(e.output.as_ref()));
                for (k, v) in &e.attrs {
                    line(&mut out, "attr", &format!("{}={}", safe(k), safe(v)));
                }
                line(&mut out, "leaf", &hex(&r.leaf));
                line(
                    &mut out,
                    "in log",
                    &format!(
                        "{}, size {}, root {}",
                        safe(&r.checkpoint.origin),
                        r.checkpoint.size,
                        hash_to_base64(&r.checkpoint.root)
                    ),
                );
                signed_by(&mut out, &r.verified_by);
            }
            Out::Consistency { report, from } => {
                line(&mut out, "log", &safe(&report.new.origin));
                line(
                    &mut out,
                    "old",
                    &format!(
                        "size {}, root {}",
                        report.old.size,
                        hash_to_base64(&report.old.root)
                    ),
                );
                line(
                    &mut out,
                    "new",
                    &format!(
                        "size {}, root {}",
                        report.new.size,
                        hash_to_base64(&report.new.root)
                    ),
                );
                line(
                    &mut out,
                    "proof",
                    &format!("{} hashes, {}", report.proof_len, safe(from)),
                );
                signed_by(&mut out, &report.new_verified_by);
            }
        }
        out
    }

    /// The JSON object (one line).
    pub fn json(&self, command: &str) -> String {
        let head = format!("{{\"ok\":true,\"command\":{}", json_str(command));
        match self {
            Out::Log(r) => {
                let kinds: Vec<String> = r
                    .kinds
                    .iter()
                    .map(|(k, n)| format!("{}:{n}", json_str(k)))
                    .collect();
                let time = |t: Option<u64>| t.map_or("null".to_owned(), |t| t.to_string());
                let time_text =
                    |t: Option<u64>| t.map_or("null".to_owned(), |t| json_str(&rfc3339_ms(t)));
                format!(
                    "{head},\"origin\":{},\"size\":{},\"root\":\"{}\",\"verified_by\":{},\"kinds\":{{{}}},\"first_time_ms\":{},\"last_time_ms\":{},\"first_time\":{},\"last_time\":{}}}",
                    json_str(&r.origin),
                    r.size,
                    hash_to_base64(&r.root),
                    signers_json(&r.verified_by),
                    kinds.join(","),
                    time(r.first_time_ms),
                    time(r.last_time_ms),
                    time_text(r.first_time_ms),
                    time_text(r.last_time_ms),
                )
            }
            Out::Proof(r) => format!(
                "{head},\"index\":{},\"leaf\":\"{}\",\"entry\":{},\"checkpoint\":{},\"verified_by\":{}}}",
                r.index,
                hex(&r.leaf),
                r.entry.to_json(),
                checkpoint_json(&r.checkpoint),
                signers_json(&r.verified_by)
            ),
            Out::Consistency { report, from } => format!(
                "{head},\"old\":{},\"new\":{},\"proof_hashes\":{},\"proof_from\":{},\"old_verified_by\":{},\"new_verified_by\":{}}}",
                checkpoint_json(&report.old),
                checkpoint_json(&report.new),
                report.proof_len,
                json_str(from),
                signers_json(&report.old_verified_by),
                signers_json(&report.new_verified_by)
            ),
        }
    }
}

/// Reports a verification failure: `FAILED: location: what` on stderr, or the JSON object on
/// stdout.
pub fn failure(command: &str, f: &Failure, json: bool) {
    if json {
        outln!(
            "{{\"ok\":false,\"command\":{},\"failure\":{{\"location\":{},\"what\":{}}}}}",
            json_str(command),
            json_str(&f.location),
            json_str(&f.what)
        );
    } else {
        errln!("FAILED: {}: {}", safe(&f.location), safe(&f.what));
    }
}

/// Reports a usage error (exit status 2).
pub fn usage_error(message: &str, json: bool) {
    if json {
        outln!("{{\"ok\":false,\"usage_error\":{}}}", json_str(message));
    } else {
        errln!(
            "sov-verify: {}\n(run `sov-verify --help` for usage)",
            safe(message)
        );
    }
}
