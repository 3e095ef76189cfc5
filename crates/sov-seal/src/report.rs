//! The seal report: each control, what is declared, which layer enforces it, the probe results
//! that back the claim, and plainly what the seal does not cover. Written at every start (its
//! SHA-256 goes into the audit record's seal attestation entry) and shown by `sov seal status`
//! and `GET /v1/seal`, with the declaration changes that wait for the next start.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use sov_audit_core::entry::{Kind, Outcome, clean_text};
use sov_audit_core::record::{Appended, Draft, Record, RecordError};

use crate::confine::{Confinement, Layer, LayerStatus, Rules};
use crate::declare::Declaration;
use crate::probe::Probe;

/// The report's format name (first field of its JSON).
pub const FORMAT: &str = "sovereign-seal-report/1";

/// One control of the seal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Control {
    /// What it governs (`inbound`, `outbound`, `filesystem`, ...).
    pub name: String,
    /// What the declaration says, in words.
    pub declared: String,
    /// Who enforces it: `kernel (landlock): ...`, `application (...)`; empty: nothing.
    pub enforced_by: Vec<String>,
    /// `kernel` (a kernel layer in force and every probe held), `application` (only the
    /// application's own check), or `nothing`.
    pub level: String,
    /// The probes that back the claim (names in [`Report::probes`]).
    pub probes: Vec<String>,
}

/// The report written at start.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    /// [`FORMAT`].
    pub format: String,
    /// When the seal was applied (RFC 3339, UTC).
    pub started_at: String,
    /// The server's process id.
    pub pid: u32,
    /// The kernel it runs on (`uname -sr`).
    pub kernel: String,
    /// The address the server listens on.
    pub listen: String,
    /// The declaration in force (as read at start).
    pub declaration: Declaration,
    /// Threads when the seal was applied (1 when done right).
    pub threads: usize,
    /// Each kernel layer.
    pub layers: Vec<LayerStatus>,
    /// Each control.
    pub controls: Vec<Control>,
    /// Every probe, as run right after the seal.
    pub probes: Vec<Probe>,
    /// What the seal does not cover.
    pub not_covered: Vec<String>,
    /// Every declared layer in force and every probe held.
    pub sealed: bool,
}

/// What the seal never covers, whatever the layers.
const NEVER_COVERED: [&str; 7] = [
    "the host's root user, and anyone who can change this machine's kernel, boot or configuration",
    "the kernel and the hypervisor themselves: a flaw there can undo every layer",
    "hardware and firmware",
    "physical access to the machine and its disks",
    "side channels (timing, power, shared caches)",
    "what people do with the answers once they leave the API",
    "who may call the API: that is the tokens and policies, not the seal (and there is no TLS: use a proxy for remote clients)",
];

impl Report {
    /// The report for a seal applied with `rules` (from `declaration`), serving on `listen`.
    pub(crate) fn new(
        started_at: String,
        listen: String,
        declaration: &Declaration,
        rules: &Rules,
        confinement: &Confinement,
        probes: Vec<Probe>,
    ) -> Self {
        let mut probes = probes;
        if let Some(p) = &confinement.netns_probe {
            probes.insert(0, p.clone());
        }
        let kernel = nix::sys::utsname::uname().map_or_else(
            |e| format!("unknown ({e})"),
            |u| {
                format!(
                    "{} {}",
                    u.sysname().to_string_lossy(),
                    u.release().to_string_lossy()
                )
            },
        );
        let controls = controls(declaration, &listen, rules, confinement, &probes);
        let not_covered = not_covered(confinement);
        let sealed = confinement.layers.iter().all(|l| !l.declared || l.in_force)
            && probes.iter().all(|p| p.holds);
        Self {
            format: FORMAT.into(),
            started_at,
            pid: std::process::id(),
            kernel,
            listen,
            declaration: declaration.clone(),
            threads: confinement.threads,
            layers: confinement.layers.clone(),
            controls,
            probes,
            not_covered,
            sealed,
        }
    }

    /// The report as stored and served (pretty JSON, fields in a fixed order).
    pub fn to_json(&self) -> Result<String, String> {
        let mut text = serde_json::to_string_pretty(self)
            .map_err(|e| format!("the seal report cannot be written as JSON: {e}"))?;
        text.push('\n');
        Ok(text)
    }

    /// Parses a stored report.
    pub fn from_json(bytes: &[u8]) -> Result<Self, String> {
        let report: Self = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
        if report.format != FORMAT {
            return Err(format!(
                "unknown report format `{}` (expected {FORMAT})",
                report.format
            ));
        }
        Ok(report)
    }

    /// The status of `layer`.
    pub fn layer(&self, layer: Layer) -> Option<&LayerStatus> {
        self.layers.iter().find(|l| l.layer == layer)
    }

    /// Declared layers that are not in force.
    pub fn missing_layers(&self) -> Vec<&LayerStatus> {
        self.layers
            .iter()
            .filter(|l| l.declared && !l.in_force)
            .collect()
    }

    /// Probes whose result is not what the seal promises.
    pub fn failed_probes(&self) -> Vec<&Probe> {
        self.probes.iter().filter(|p| !p.holds).collect()
    }

    /// One line for the start-up output and the attestation entry.
    pub fn summary(&self) -> String {
        let on: Vec<&str> = self
            .layers
            .iter()
            .filter(|l| l.in_force)
            .map(|l| l.layer.name())
            .collect();
        let held = self.probes.iter().filter(|p| p.holds).count();
        format!(
            "{}: layers in force: {}; probes held: {held}/{}",
            if self.sealed {
                "sealed"
            } else {
                "NOT fully sealed"
            },
            if on.is_empty() {
                "none".to_owned()
            } else {
                on.join(", ")
            },
            self.probes.len()
        )
    }

    /// The report for people (`sov seal status`).
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "Seal of the server started {} (pid {}), listening on {}, on {}",
            self.started_at, self.pid, self.listen, self.kernel
        );
        let _ = writeln!(out, "{}", self.summary());
        let _ = writeln!(
            out,
            "\nLayers (applied with {} thread(s) in the process):",
            self.threads
        );
        for l in &self.layers {
            let state = match (l.declared, l.in_force) {
                (_, true) => "in force",
                (true, false) => "NOT IN FORCE",
                (false, false) => "not declared",
            };
            let _ = writeln!(out, "  {:<9} {state}: {}", l.layer.name(), l.detail);
        }
        let _ = writeln!(out, "\nControls:");
        for c in &self.controls {
            let _ = writeln!(out, "  {} [{}]: {}", c.name, c.level, c.declared);
            if c.enforced_by.is_empty() {
                let _ = writeln!(out, "      enforced by: nothing");
            }
            for by in &c.enforced_by {
                let _ = writeln!(out, "      enforced by {by}");
            }
            for name in &c.probes {
                if let Some(p) = self.probes.iter().find(|p| &p.name == name) {
                    let _ = writeln!(
                        out,
                        "      probe {}: {} -> {} ({})",
                        p.name,
                        p.tried,
                        p.result,
                        if p.holds {
                            "as promised"
                        } else {
                            "NOT as promised"
                        }
                    );
                }
            }
        }
        let _ = writeln!(out, "\nNot covered by the seal:");
        for n in &self.not_covered {
            let _ = writeln!(out, "  - {n}");
        }
        out
    }
}

/// SHA-256 of a stored report, in hex (the value in the attestation entry).
pub fn digest(report_json: &[u8]) -> String {
    hex::encode(Sha256::digest(report_json))
}

fn controls(
    declaration: &Declaration,
    listen: &str,
    rules: &Rules,
    confinement: &Confinement,
    probes: &[Probe],
) -> Vec<Control> {
    let on = |layer: Layer| confinement.in_force(layer);
    let held = |names: &[&str]| {
        names
            .iter()
            .all(|n| probes.iter().any(|p| p.name == *n && p.holds))
    };
    let control = |name: &str,
                   declared: String,
                   kernel: Vec<String>,
                   application: Option<&str>,
                   names: &[&str]| {
        let level = if !kernel.is_empty() && held(names) {
            "kernel"
        } else if application.is_some() {
            "application"
        } else {
            "nothing"
        };
        let mut enforced_by = kernel;
        if let Some(app) = application {
            enforced_by.push(format!("application: {app}"));
        }
        Control {
            name: name.into(),
            declared,
            enforced_by,
            level: level.into(),
            probes: names.iter().map(|n| (*n).to_owned()).collect(),
        }
    };
    let paths = |p: &[std::path::PathBuf]| {
        if p.is_empty() {
            "none".to_owned()
        } else {
            p.iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        }
    };

    let mut out = Vec::new();
    let mut kernel = Vec::new();
    if on(Layer::Landlock) {
        kernel.push("kernel (landlock): no new TCP listening port after start".to_owned());
    }
    out.push(control(
        "inbound",
        format!("listen on {listen} only"),
        kernel,
        Some("one listener, bound before the seal"),
        &["bind-undeclared"],
    ));

    let declared_out = if declaration.outbound.is_empty() {
        "no outbound destination".to_owned()
    } else {
        declaration
            .outbound
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("; ")
    };
    let mut kernel = Vec::new();
    let mut names = vec!["connect-undeclared"];
    names.extend(crate::probe::PAST_CONNECT);
    names.push("socket-udp");
    if on(Layer::Netns) {
        kernel.push("kernel (netns): a network namespace with no usable interface".to_owned());
        names.insert(0, "netns-isolated");
    }
    if on(Layer::Landlock) {
        let ports: Vec<String> = rules.connect_ports.iter().map(u16::to_string).collect();
        kernel.push(if ports.is_empty() {
            "kernel (landlock): no TCP connect at all".to_owned()
        } else {
            format!(
                "kernel (landlock): TCP connect only to port(s) {}",
                ports.join(", ")
            )
        });
    }
    if on(Layer::Seccomp) {
        kernel.push("kernel (seccomp): TCP sockets only (no UDP, raw, MPTCP or SCTP sockets); no TCP Fast Open (MSG_FASTOPEN, TCP_FASTOPEN_CONNECT) or TCP_REPAIR, the ways to a peer past connect()".to_owned());
    }
    out.push(control(
        "outbound",
        if declaration.offline {
            format!("offline: nothing leaves ({declared_out})")
        } else {
            declared_out
        },
        kernel,
        Some("the egress gate checks address and port and records every attempt"),
        &names,
    ));

    out.push(control(
        "filesystem",
        format!(
            "read-write: {}; read-only: {}; nothing else",
            paths(&rules.read_write),
            paths(&rules.read_only)
        ),
        if on(Layer::Landlock) {
            vec!["kernel (landlock): access only beneath the roots".to_owned()]
        } else {
            Vec::new()
        },
        None,
        &[
            "read-outside",
            "write-outside",
            "read-config",
            "write-config",
        ],
    ));

    out.push(control(
        "local sockets and the host's network",
        "no Unix or netlink sockets (no local daemons, no network configuration)".to_owned(),
        if on(Layer::Seccomp) {
            vec!["kernel (seccomp): socket kinds refused".to_owned()]
        } else {
            Vec::new()
        },
        None,
        &["socket-unix", "socket-netlink"],
    ));

    let mut kernel = Vec::new();
    if on(Layer::Seccomp) {
        kernel.push(
            "kernel (seccomp): ptrace, process memory access, taking another process's descriptors and new namespaces refused".to_owned(),
        );
    }
    if on(Layer::Landlock) {
        kernel.push("kernel (landlock): no signals to processes outside the seal".to_owned());
    }
    out.push(control(
        "other processes and namespaces",
        "no tracing of or reading from other processes; no new namespaces".to_owned(),
        kernel,
        None,
        &["new-namespace", "read-process-memory", "pidfd-getfd"],
    ));
    out
}

fn not_covered(confinement: &Confinement) -> Vec<String> {
    let mut out: Vec<String> = NEVER_COVERED.iter().map(|s| (*s).to_owned()).collect();
    out.push(
        "what was opened before the seal: the listening socket, standard output and error"
            .to_owned(),
    );
    if confinement.in_force(Layer::Landlock) {
        out.push("Landlock filters TCP by port, not by address: a declared port is open towards every address (the egress gate checks the address, in the application)".to_owned());
    } else {
        out.push("Landlock is not in force: the kernel does not stop reads and writes outside the roots, nor TCP connects to undeclared ports".to_owned());
    }
    if !confinement.in_force(Layer::Seccomp) {
        out.push("seccomp is not in force: UDP, raw, netlink and Unix sockets can be created (Landlock on this kernel does not filter UDP or Unix sockets), and ptrace and new namespaces are not refused".to_owned());
        out.push("seccomp is not in force: TCP Fast Open (MSG_FASTOPEN in sendto, sendmsg, sendmmsg) and MPTCP sockets reach any port, whatever Landlock's rules (Landlock hooks only connect() and bind() on TCP sockets)".to_owned());
    }
    if !confinement.in_force(Layer::Netns) {
        out.push("no network namespace (offline = false): the process shares the host's network, limited by the rules above".to_owned());
    }
    out
}

/// The declaration changes that wait for the next start: `in_force` (from the report) against
/// `current` (sov.toml now). Empty when nothing changed.
pub fn pending(in_force: &Declaration, current: &Declaration) -> Vec<String> {
    let mut out = Vec::new();
    if in_force.offline != current.offline {
        out.push(format!(
            "offline: {} -> {}",
            in_force.offline, current.offline
        ));
    }
    for d in &current.outbound {
        match in_force
            .outbound
            .iter()
            .find(|o| o.host == d.host && o.port == d.port)
        {
            None => out.push(format!("open {d}")),
            Some(o) if o.purpose != d.purpose => {
                out.push(format!(
                    "purpose of {}: {} -> {}",
                    d.address(),
                    o.purpose,
                    d.purpose
                ));
            }
            Some(_) => {}
        }
    }
    for d in &in_force.outbound {
        if !current
            .outbound
            .iter()
            .any(|c| c.host == d.host && c.port == d.port)
        {
            out.push(format!("close {}", d.address()));
        }
    }
    for p in &current.read_only {
        if !in_force.read_only.contains(p) {
            out.push(format!("read_only add {}", p.display()));
        }
    }
    for p in &in_force.read_only {
        if !current.read_only.contains(p) {
            out.push(format!("read_only remove {}", p.display()));
        }
    }
    for a in &current.listen {
        if !in_force.listen.contains(a) {
            out.push(format!("listen add {a}"));
        }
    }
    for a in &in_force.listen {
        if !current.listen.contains(a) {
            out.push(format!("listen remove {a}"));
        }
    }
    out
}

/// Records the report as a `seal.attestation` entry: its SHA-256 (of `report_json`, the bytes
/// stored beside the record), the layers and the probe count; outcome `ok` only when
/// [`Report::sealed`], otherwise `error` with what is missing as the reason.
pub(crate) fn attest(
    log: &dyn Record,
    principal: &str,
    report: &Report,
    report_json: &[u8],
) -> Result<Appended, RecordError> {
    let mut draft = Draft::new(
        Kind::SealAttestation,
        principal,
        "seal",
        if report.sealed {
            Outcome::Ok
        } else {
            Outcome::Error
        },
    );
    if !report.sealed {
        let mut why: Vec<String> = report
            .missing_layers()
            .iter()
            .map(|l| format!("{} not in force", l.layer))
            .collect();
        why.extend(
            report
                .failed_probes()
                .iter()
                .map(|p| format!("probe {}: {}", p.name, p.result)),
        );
        draft.reason = clean_text(&why.join("; "), 2048);
    }
    let layers: Vec<String> = report
        .layers
        .iter()
        .map(|l| format!("{}={}", l.layer, if l.in_force { "on" } else { "off" }))
        .collect();
    let held = report.probes.iter().filter(|p| p.holds).count();
    draft.attrs = vec![
        ("report_sha256".into(), digest(report_json)),
        ("layers".into(), layers.join(",")),
        (
            "probes_held".into(),
            format!("{held}/{}", report.probes.len()),
        ),
        ("kernel".into(), clean_text(&report.kernel, 255)),
    ];
    // Each probe's answer, so that every refusal the seal claims is in the record itself.
    for p in &report.probes {
        draft
            .attrs
            .push((format!("probe.{}", p.name), clean_text(&p.result, 255)));
    }
    log.append(draft)
}

/// The declaration changes waiting for the next start: the report's declaration against
/// `config_text` (sov.toml as it is now, or why it could not be read).
pub fn pending_in(
    report: &Report,
    config_text: Result<String, String>,
) -> Result<Vec<String>, String> {
    let text = config_text?;
    let current = crate::declare::read(&text).map_err(|e| e.to_string())?;
    Ok(pending(&report.declaration, &current))
}

/// The seal's status as `GET /v1/seal` and `sov seal status --json` show it: the report of the
/// last start, its SHA-256, the index of its seal.attestation entry (null when not known), and
/// the changes waiting for the next start (`pending`; null with `pending_error` when sov.toml
/// cannot be read).
pub fn status_json(
    report: &Report,
    report_json: &[u8],
    attestation: Option<u64>,
    pending: &Result<Vec<String>, String>,
) -> serde_json::Value {
    let (pending, pending_error) = match pending {
        Ok(p) => (serde_json::json!(p), serde_json::Value::Null),
        Err(e) => (serde_json::Value::Null, serde_json::json!(e)),
    };
    serde_json::json!({
        "report": report,
        "report_sha256": digest(report_json),
        "attestation_index": attestation,
        "pending": pending,
        "pending_error": pending_error,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::declare::Destination;

    /// A confinement as `apply` would describe it (the kernel itself is tested in
    /// tests/kernel.rs; this is the report's logic).
    fn confinement(netns: bool, landlock: bool, seccomp: bool) -> Confinement {
        let status = |layer, declared, in_force| LayerStatus {
            layer,
            declared,
            in_force,
            detail: String::new(),
        };
        Confinement {
            threads: 1,
            layers: vec![
                status(Layer::Netns, netns, netns),
                status(Layer::Landlock, true, landlock),
                status(Layer::Seccomp, true, seccomp),
            ],
            netns_probe: None,
        }
    }

    fn probe(name: &str, holds: bool) -> Probe {
        Probe {
            name: name.into(),
            tried: String::new(),
            expect: "refused".into(),
            result: String::new(),
            holds,
        }
    }

    fn threat_model() -> String {
        let path =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/threat-model.md");
        std::fs::read_to_string(path).unwrap()
    }

    #[test]
    fn the_threat_model_says_what_the_report_says() {
        let doc = threat_model();
        for mask in 0..8 {
            let c = confinement(mask & 1 != 0, mask & 2 != 0, mask & 4 != 0);
            for line in not_covered(&c) {
                assert!(
                    doc.contains(&format!("- {line}\n")),
                    "docs/threat-model.md lacks: {line}"
                );
            }
            let rules = Rules::default();
            for control in controls(&Declaration::default(), "127.0.0.1:8787", &rules, &c, &[]) {
                for name in &control.probes {
                    assert!(
                        doc.contains(&format!("`{name}`")),
                        "docs/threat-model.md lacks probe {name}"
                    );
                }
                assert!(
                    doc.contains(&format!("| {} |", control.name)),
                    "docs/threat-model.md lacks control {}",
                    control.name
                );
            }
        }
    }

    #[test]
    fn a_control_is_kernel_enforced_only_with_its_layer_and_its_probes() {
        let names = [
            "connect-undeclared",
            "socket-udp",
            "read-outside",
            "write-outside",
            "read-config",
            "write-config",
            "bind-undeclared",
            "socket-unix",
            "socket-netlink",
            "new-namespace",
            "read-process-memory",
            "pidfd-getfd",
            "tcp-fast-open",
            "tcp-fast-open-sendmsg",
            "tcp-fast-open-sendmmsg",
            "tcp-fastopen-connect",
            "tcp-repair",
            "mptcp-socket",
            "sctp-socket",
        ];
        let all: Vec<Probe> = names.iter().map(|n| probe(n, true)).collect();
        let level = |c: &Confinement, probes: &[Probe], name: &str| {
            controls(&Declaration::default(), "x", &Rules::default(), c, probes)
                .into_iter()
                .find(|k| k.name == name)
                .unwrap()
                .level
        };
        let whole = confinement(false, true, true);
        for name in [
            "inbound",
            "outbound",
            "filesystem",
            "local sockets and the host's network",
        ] {
            assert_eq!(level(&whole, &all, name), "kernel", "{name}");
        }
        let no_landlock = confinement(false, false, true);
        assert_eq!(level(&no_landlock, &all, "filesystem"), "nothing");
        assert_eq!(level(&no_landlock, &all, "inbound"), "application");
        // A failed probe demotes the claim even with the layer in force.
        let mut failed = all.clone();
        failed[2].holds = false;
        assert_eq!(level(&whole, &failed, "filesystem"), "nothing");
        assert_eq!(level(&whole, &failed, "outbound"), "kernel");
    }

    #[test]
    fn tcp_fast_open_allowed_is_not_reported_as_kernel_enforced() {
        // Landlock in force with no port: the report said "no TCP connect at all" while
        // sendto(MSG_FASTOPEN) reached an undeclared listener.
        let whole = confinement(false, true, true);
        let outbound = |probes: &[Probe]| {
            controls(
                &Declaration::default(),
                "x",
                &Rules::default(),
                &whole,
                probes,
            )
            .into_iter()
            .find(|k| k.name == "outbound")
            .unwrap()
        };
        let mut probes = vec![
            probe("connect-undeclared", true),
            probe("socket-udp", true),
            probe("tcp-fast-open", false),
        ];
        assert_eq!(outbound(&probes).level, "application");
        probes[2].holds = true;
        assert_ne!(
            outbound(&probes).level,
            "kernel",
            "the other paths' probes are missing"
        );
    }

    #[test]
    fn pending_changes_name_what_differs_from_the_seal_in_force() {
        let in_force = Declaration {
            outbound: vec![Destination::parse("10.0.0.1:80", "a").unwrap()],
            ..Declaration::default()
        };
        assert!(pending(&in_force, &in_force).is_empty());
        let mut now = in_force.clone();
        now.outbound = vec![
            Destination::parse("10.0.0.1:80", "b").unwrap(),
            Destination::parse("10.0.0.2:443", "c").unwrap(),
        ];
        now.read_only.push("/srv/x".into());
        assert_eq!(
            pending(&in_force, &now),
            [
                "purpose of 10.0.0.1:80: a -> b",
                "open 10.0.0.2:443 (c)",
                "read_only add /srv/x"
            ]
        );
        let closed = Declaration::default();
        assert_eq!(pending(&in_force, &closed), ["close 10.0.0.1:80"]);
    }
}
