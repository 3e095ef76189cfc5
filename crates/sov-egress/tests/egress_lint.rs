//! The egress gate is the only way out: this test fails the build when code that opens network
//! connections, resolves names or sends datagrams appears anywhere in the product's sources
//! (every `src/` of the workspace's crates) outside `sov-egress/src/gate.rs` (the gate),
//! `sov-egress/src/http.rs` (HTTP over the gate's connections) and `sov-seal/src/probe.rs`
//! (the probes that must be refused), or when a product crate depends
//! on an HTTP or socket client library. Tests, benches and examples may use clients (they play
//! the callers); they are not scanned.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};

/// Calls and paths that open a connection, send a datagram or resolve a name.
const FORBIDDEN_CODE: [&str; 22] = [
    "TcpStream::connect",
    "TcpSocket",
    "UdpSocket",
    "UnixStream::connect",
    "UnixDatagram",
    "to_socket_addrs",
    "ToSocketAddrs",
    "lookup_host",
    "getaddrinfo",
    "gethostbyname",
    "socket::connect",
    "libc::connect",
    "libc::sendto",
    "socket2::",
    "reqwest::",
    "hyper::client",
    "hyper_util::client",
    "ureq::",
    "isahc::",
    "curl::",
    "surf::",
    "attohttpc::",
];

/// Client libraries a product crate must not depend on (dev-dependencies may).
const FORBIDDEN_CRATES: [&str; 8] = [
    "reqwest",
    "ureq",
    "isahc",
    "curl",
    "surf",
    "attohttpc",
    "socket2",
    "hickory-resolver",
];

/// The files allowed to open connections (the gate), to speak HTTP as a client over the
/// connections the gate hands out (`http.rs`: its only connection is `Gate::connect`'s), and to
/// try what the kernel must refuse (the probes).
const ALLOWED: [&str; 3] = [
    "crates/sov-egress/src/gate.rs",
    "crates/sov-egress/src/http.rs",
    "crates/sov-seal/src/probe.rs",
];

fn workspace() -> PathBuf {
    // Read at run time: a test binary built for another checkout keeps that checkout's path.
    let manifest = std::env::var_os("CARGO_MANIFEST_DIR")
        .map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), PathBuf::from);
    manifest.join("../..").canonicalize().unwrap()
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// `(line number, pattern)` of every forbidden use in `text`, comments aside.
fn forbidden_uses(text: &str) -> Vec<(usize, &'static str)> {
    let mut found = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let code = line.split("//").next().unwrap_or("");
        for pattern in FORBIDDEN_CODE {
            if code.contains(pattern) {
                found.push((i + 1, pattern));
            }
        }
    }
    found
}

/// Forbidden crates named in the `[dependencies]`-like sections of a manifest (not
/// `[dev-dependencies]`).
fn forbidden_dependencies(manifest: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut in_dependencies = false;
    for line in manifest.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            in_dependencies = line == "[dependencies]"
                || line == "[build-dependencies]"
                || (line.starts_with("[target.") && line.ends_with(".dependencies]"));
            continue;
        }
        if !in_dependencies {
            continue;
        }
        let name = line.split(['=', '.', ' ']).next().unwrap_or("").trim();
        if FORBIDDEN_CRATES.contains(&name) {
            found.push(name.to_owned());
        }
    }
    found
}

fn members(root: &Path) -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    for parent in ["crates", "bench"] {
        for entry in std::fs::read_dir(root.join(parent)).unwrap() {
            let dir = entry.unwrap().path();
            if dir.join("Cargo.toml").is_file() {
                dirs.push(dir);
            }
        }
    }
    dirs
}

#[test]
fn only_the_egress_gate_opens_network_connections() {
    let root = workspace();
    let mut violations = Vec::new();
    let mut scanned = 0;
    for member in members(&root) {
        let mut files = Vec::new();
        if member.join("src").is_dir() {
            rust_files(&member.join("src"), &mut files);
        }
        for file in files {
            let relative = file
                .strip_prefix(&root)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            scanned += 1;
            if ALLOWED.contains(&relative.as_str()) {
                continue;
            }
            let text = std::fs::read_to_string(&file).unwrap();
            for (line, pattern) in forbidden_uses(&text) {
                violations.push(format!("{relative}:{line}: `{pattern}`"));
            }
        }
        let manifest = std::fs::read_to_string(member.join("Cargo.toml")).unwrap();
        for name in forbidden_dependencies(&manifest) {
            violations.push(format!(
                "{}: depends on `{name}`",
                member
                    .join("Cargo.toml")
                    .strip_prefix(&root)
                    .unwrap()
                    .display()
            ));
        }
    }
    assert!(
        scanned > 50,
        "the scan found only {scanned} files under {}",
        root.display()
    );
    assert!(
        violations.is_empty(),
        "network-opening code outside the egress gate (sov_egress::Gate); go through the gate:\n{}",
        violations.join("\n")
    );
}

#[test]
fn the_lint_catches_what_it_looks_for() {
    let code = "fn f() {\n    // TcpStream::connect in a comment is fine\n    let s = std::net::TcpStream::connect(addr);\n    let u = UdpSocket::bind(a);\n}\n";
    assert_eq!(
        forbidden_uses(code),
        [(3, "TcpStream::connect"), (4, "UdpSocket")]
    );
    let manifest = "[dependencies]\nreqwest = \"0.12\"\nserde.workspace = true\nureq.workspace = true\n\n[dev-dependencies]\nreqwest.workspace = true\n";
    assert_eq!(forbidden_dependencies(manifest), ["reqwest", "ureq"]);
    // The gate itself is where connections are made; the scan would find it otherwise.
    let gate = std::fs::read_to_string(workspace().join(ALLOWED[0])).unwrap();
    assert!(!forbidden_uses(&gate).is_empty());
}
