//! Entries are assembled in one place: this test fails when an audit `Draft` is named in the
//! product's sources (every `src/` of the workspace's crates and benches) outside the crates
//! and files that own a kind of fact:
//!
//! - `sov-audit-core` and `sov-audit` (the record itself),
//! - `sov-kernel` (every request's entries and the node's own: load, start, stop, refusals),
//! - `sov-policy/src/store.rs` (identity changes, written in the same transaction as the change),
//! - `sov-seal/src/report.rs` (the seal's attestation),
//! - `sov-egress/src/gate.rs` (every outbound connection, decided and recorded before use).
//!
//! A front door (an HTTP handler, a CLI command) never builds an entry: it calls the kernel.
//! Tests may build drafts (they play recorders); they are not scanned, whether under `tests/` or
//! as test modules inside `src/` (files named `tests.rs` or `*_tests.rs`, or under `src/tests/`).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};

/// Directories (crates) whose sources may name `Draft`.
const ALLOWED_CRATES: [&str; 3] = [
    "crates/sov-audit-core/src/",
    "crates/sov-audit/src/",
    "crates/sov-kernel/src/",
];

/// Single files outside those crates that may: each must really use it (see the test).
const ALLOWED_FILES: [&str; 3] = [
    "crates/sov-policy/src/store.rs",
    "crates/sov-seal/src/report.rs",
    "crates/sov-egress/src/gate.rs",
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

/// Whether `relative` (a path under a crate's `src/`) is a test module.
fn is_test_module(relative: &str) -> bool {
    let name = relative.rsplit('/').next().unwrap_or("");
    name == "tests.rs" || name.ends_with("_tests.rs") || relative.contains("/src/tests/")
}

/// Whether `c` can be part of a Rust identifier.
fn ident(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// The 1-based numbers of the lines whose code (comments aside) names the identifier `Draft`.
fn draft_lines(text: &str) -> Vec<usize> {
    let mut found = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let code = line.split("//").next().unwrap_or("");
        let named = code.match_indices("Draft").any(|(at, _)| {
            let before = code[..at].chars().next_back();
            let after = code[at + "Draft".len()..].chars().next();
            !before.is_some_and(ident) && !after.is_some_and(ident)
        });
        if named {
            found.push(i + 1);
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
fn the_matcher_finds_the_identifier_and_only_it() {
    assert_eq!(draft_lines("let d = Draft {\n"), vec![1]);
    assert_eq!(draft_lines("x\nDraft::new(k, p, r, o)"), vec![2]);
    assert_eq!(draft_lines("use sov_audit::{Appended, Draft};"), vec![1]);
    assert_eq!(draft_lines("use sov_audit::Draft as D;"), vec![1]);
    assert!(draft_lines("// a Draft in a comment").is_empty());
    assert!(draft_lines("let drafts = DraftBox; let x = MyDraft;").is_empty());
    assert!(draft_lines("fn into_draft(self)").is_empty());
    assert!(is_test_module("crates/sov-seal/src/start_tests.rs"));
    assert!(is_test_module("crates/sov-models/src/tests/gguf.rs"));
    assert!(!is_test_module("crates/sov-seal/src/start.rs"));
}

#[test]
fn no_entry_is_assembled_outside_the_kernel_and_the_recorders() {
    let root = workspace();
    let mut violations = Vec::new();
    let mut scanned = 0;
    let mut used = Vec::new();
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
            if is_test_module(&relative) {
                continue;
            }
            scanned += 1;
            let lines = draft_lines(&std::fs::read_to_string(&file).unwrap());
            if lines.is_empty() || ALLOWED_CRATES.iter().any(|c| relative.starts_with(c)) {
                continue;
            }
            if ALLOWED_FILES.contains(&relative.as_str()) {
                used.push(relative);
                continue;
            }
            for line in lines {
                violations.push(format!("{relative}:{line}"));
            }
        }
    }
    assert!(scanned > 50, "scanned only {scanned} files under {root:?}");
    assert!(
        violations.is_empty(),
        "an audit Draft is built outside the kernel (call sov_kernel instead):\n{}",
        violations.join("\n")
    );
    // The allow list stays as small as the code: a file that no longer builds drafts leaves it.
    for file in ALLOWED_FILES {
        assert!(
            used.iter().any(|u| u == file),
            "{file} no longer names Draft: take it off ALLOWED_FILES"
        );
    }
}
