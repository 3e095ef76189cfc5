//! `[[tools.mcp]]` in `sov.toml`: one MCP tool server the owner declares.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use sov_seal::launch::Sandbox;

/// The longest a call to a tool server may be waited for, in milliseconds (the kernel's bound
/// on any tool call is 10 s).
pub const MAX_TIMEOUT_MS: u64 = 9_000;

/// The longest a server's name may be: `<server>__<tool>` must stay a valid tool name.
pub const MAX_NAME: usize = 24;

/// One declared MCP server (stdio transport).
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Declared {
    /// The server's name: its tools are offered as `<name>__<tool>` (1 to 24 of a-z 0-9 -).
    pub name: String,
    /// The executable, absolute (a program, or a script with a `#!` line).
    pub command: PathBuf,
    /// Its arguments.
    #[serde(default)]
    pub args: Vec<String>,
    /// The SHA-256 (hex) of the executable's bytes; a server whose executable differs is not
    /// started.
    pub sha256: String,
    /// Paths outside the system's program folders it may read: its own installation (a
    /// virtual environment, an npm folder) and the data it serves.
    #[serde(default)]
    pub read_only: Vec<PathBuf>,
    /// Paths it may read and write.
    #[serde(default)]
    pub read_write: Vec<PathBuf>,
    /// Environment variables it is given (the rest of the environment is cleared). Their names
    /// are recorded, never their values.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// The longest one call is waited for, in milliseconds (1 to 9,000).
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    /// The SHA-256 its tool list must have (as `sov serve` reports it); a server offering
    /// another list is not served. Empty: any list, recorded.
    #[serde(default)]
    pub tools_sha256: String,
}

fn default_timeout_ms() -> u64 {
    5_000
}

impl Declared {
    /// Checks what can be checked without starting it; `Err` says what is wrong, in words.
    pub fn check(&self) -> Result<(), String> {
        let name_ok = !self.name.is_empty()
            && self.name.len() <= MAX_NAME
            && self
                .name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if !name_ok {
            return Err(format!(
                "`{}` is not a server name (1 to {MAX_NAME} of a-z 0-9 -)",
                self.name
            ));
        }
        if self.timeout_ms == 0 || self.timeout_ms > MAX_TIMEOUT_MS {
            return Err(format!("timeout_ms must be 1 to {MAX_TIMEOUT_MS}"));
        }
        let hex64 = |s: &str| s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit());
        if !self.tools_sha256.is_empty() && !hex64(&self.tools_sha256) {
            return Err("tools_sha256 must be empty or 64 hexadecimal digits".into());
        }
        for key in self.env.keys() {
            let ok = !key.is_empty()
                && key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
                && !key.as_bytes()[0].is_ascii_digit();
            if !ok {
                return Err(format!("`{key}` is not an environment variable name"));
            }
        }
        Ok(())
    }

    /// The sandbox it runs in, with `scratch` as its own folder.
    pub fn sandbox(&self, scratch: &Path) -> Sandbox {
        Sandbox {
            executable: self.command.clone(),
            args: self.args.clone(),
            sha256: self.sha256.to_ascii_lowercase(),
            read_only: self.read_only.clone(),
            read_write: self.read_write.clone(),
            scratch: scratch.to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]
    use super::*;

    fn declared(toml_text: &str) -> Result<Declared, toml::de::Error> {
        toml::from_str(toml_text)
    }

    const BASE: &str = "name = \"time\"\ncommand = \"/usr/bin/python3\"\nsha256 = \"aa\"\n";

    #[test]
    fn names_and_limits_are_checked() {
        let d = declared(BASE).unwrap();
        assert_eq!(d.timeout_ms, 5_000);
        assert!(d.check().is_ok());
        for (bad, says) in [
            ("name = \"Time\"", "not a server name"),
            ("name = \"a__b\"", "not a server name"),
            ("name = \"\"", "not a server name"),
            ("timeout_ms = 0", "timeout_ms"),
            ("timeout_ms = 60000", "timeout_ms"),
            ("tools_sha256 = \"xyz\"", "tools_sha256"),
            ("env = { \"1A\" = \"x\" }", "environment variable"),
        ] {
            let text = if bad.starts_with("name") {
                BASE.replacen("name = \"time\"", bad, 1)
            } else {
                format!("{BASE}{bad}\n")
            };
            let err = declared(&text).unwrap().check().unwrap_err();
            assert!(err.contains(says), "{bad}: {err}");
        }
    }

    #[test]
    fn unknown_fields_are_refused() {
        let err = declared(&format!("{BASE}network = true\n")).unwrap_err();
        assert!(err.to_string().contains("unknown field"), "{err}");
    }
}
