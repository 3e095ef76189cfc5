//! `[[tools.mcp]]` in `sov.toml`: one MCP tool server the owner declares, started by the node
//! (`command`) or reached over the network (`url`).

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use serde::Deserialize;
use sov_seal::launch::Sandbox;

/// The longest a call to a tool server may be waited for, in milliseconds (the kernel's bound
/// on any tool call is 10 s).
pub const MAX_TIMEOUT_MS: u64 = 9_000;

/// The longest a server's name may be: `<server>__<tool>` must stay a valid tool name.
pub const MAX_NAME: usize = 24;

/// One declared MCP server: a program spoken to over its standard streams (`command`), or a
/// remote server spoken to over streamable HTTP through the egress gate (`url`).
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Declared {
    /// The server's name: its tools are offered as `<name>__<tool>` (1 to 24 of a-z 0-9 -).
    pub name: String,
    /// The executable, absolute (a program, or a script with a `#!` line): a stdio server.
    #[serde(default)]
    pub command: Option<PathBuf>,
    /// Its arguments.
    #[serde(default)]
    pub args: Vec<String>,
    /// The SHA-256 (hex) of the executable's bytes; a server whose executable differs is not
    /// started.
    #[serde(default)]
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
    /// Destinations it may connect to over TCP, `ADDRESS:PORT` (each also declared in
    /// `[seal] outbound`). Empty (the default): no network at all.
    #[serde(default)]
    pub outbound: Vec<String>,
    /// A remote server's endpoint, `http://ADDRESS:PORT/PATH` with an IP address (Sovereign
    /// resolves no names), reached through the egress gate: its address and port must be
    /// declared in `[seal] outbound`.
    #[serde(default)]
    pub url: Option<String>,
    /// A file holding the bearer token a remote server wants (`Authorization: Bearer`), read
    /// when the node starts; owner-only (mode 0600 or stricter). Never recorded.
    #[serde(default)]
    pub bearer_token_file: Option<PathBuf>,
    /// The longest one call is waited for, in milliseconds (1 to 9,000).
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    /// The SHA-256 its tool list must have (as `sov serve` reports it); a server offering
    /// another list is not served. Empty: any list, recorded.
    #[serde(default)]
    pub tools_sha256: String,
}

/// How a declared server is reached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transport {
    /// A program started in the launcher's sandbox, spoken to over its standard streams.
    Stdio(PathBuf),
    /// A remote server, over streamable HTTP through the egress gate.
    Http(Remote),
}

/// A remote server's endpoint, as the gate and HTTP need it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Remote {
    /// Where to connect (checked by the gate against `[seal] outbound`).
    pub addr: SocketAddr,
    /// The URL as declared.
    pub url: String,
    /// The request target: the URL's path and query.
    pub target: String,
}

/// The longest a bearer token file may be.
const MAX_TOKEN: usize = 4096;

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
        self.transport().map(|_| ())
    }

    /// How it is reached: a `command` or a `url`, never both; `Err` says what is wrong.
    pub fn transport(&self) -> Result<Transport, String> {
        match (&self.command, &self.url) {
            (Some(command), None) => {
                if self.bearer_token_file.is_some() {
                    return Err("bearer_token_file is for a remote server (url)".into());
                }
                if self.sha256.is_empty() {
                    return Err("a command needs the sha256 of its executable".into());
                }
                self.destinations()?;
                Ok(Transport::Stdio(command.clone()))
            }
            (None, Some(url)) => {
                let local_only = [
                    ("args", !self.args.is_empty()),
                    ("sha256", !self.sha256.is_empty()),
                    ("read_only", !self.read_only.is_empty()),
                    ("read_write", !self.read_write.is_empty()),
                    ("env", !self.env.is_empty()),
                    ("outbound", !self.outbound.is_empty()),
                ];
                if let Some((field, _)) = local_only.iter().find(|(_, set)| *set) {
                    return Err(format!(
                        "{field} is for a server Sovereign starts (command), not a remote one (url)"
                    ));
                }
                remote(url).map(Transport::Http)
            }
            (Some(_), Some(_)) => Err("declare a command or a url, not both".into()),
            (None, None) => {
                Err("declare a command (a stdio server) or a url (a remote server)".into())
            }
        }
    }

    /// Its `outbound` destinations, read: an IP address in its usual form and a port each.
    pub fn destinations(&self) -> Result<Vec<SocketAddr>, String> {
        self.outbound
            .iter()
            .map(|text| {
                let bad = |why: &str| format!("outbound `{text}`: {why}");
                let addr: SocketAddr = text.parse().map_err(|_| {
                    bad("write ADDRESS:PORT with an IP address (Sovereign makes no DNS lookup)")
                })?;
                if addr.port() == 0 {
                    return Err(bad("a port is needed"));
                }
                if addr.to_string() != *text {
                    return Err(bad(&format!("write it as {addr}")));
                }
                Ok(addr)
            })
            .collect()
    }

    /// The bearer token in `bearer_token_file`, if one is declared: read now (before the
    /// seal), refused when others may read the file, when it is empty or too long, or when it
    /// is not one line of visible ASCII.
    pub fn bearer_token(&self) -> Result<Option<String>, String> {
        use std::os::unix::fs::MetadataExt;
        let Some(file) = &self.bearer_token_file else {
            return Ok(None);
        };
        let what = |e: std::io::Error| format!("bearer_token_file {}: {e}", file.display());
        let meta = std::fs::metadata(file).map_err(what)?;
        if meta.mode() & 0o077 != 0 {
            return Err(format!(
                "bearer_token_file {} may be read by others (mode {:o}): chmod 600 it",
                file.display(),
                meta.mode() & 0o777
            ));
        }
        if meta.len() > MAX_TOKEN as u64 {
            return Err(format!(
                "bearer_token_file {} is longer than {MAX_TOKEN} bytes",
                file.display()
            ));
        }
        let text = std::fs::read_to_string(file).map_err(what)?;
        let token = text.trim();
        if token.is_empty() || !token.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(format!(
                "bearer_token_file {} must hold one token of visible ASCII characters",
                file.display()
            ));
        }
        Ok(Some(token.to_owned()))
    }

    /// The sandbox a stdio server runs in, with `scratch` as its own folder (`None` for a
    /// remote server).
    pub fn sandbox(&self, scratch: &Path) -> Option<Sandbox> {
        Some(Sandbox {
            executable: self.command.clone()?,
            args: self.args.clone(),
            sha256: self.sha256.to_ascii_lowercase(),
            read_only: self.read_only.clone(),
            read_write: self.read_write.clone(),
            scratch: scratch.to_owned(),
            outbound: self.destinations().unwrap_or_default(),
        })
    }
}

/// Reads `url` as a remote endpoint: `http`, an IP address, a port (80 if none), a path.
fn remote(url: &str) -> Result<Remote, String> {
    let bad = |why: &str| format!("url `{url}`: {why}");
    let rest = if let Some(rest) = url.strip_prefix("http://") {
        rest
    } else if url.starts_with("https://") {
        return Err(bad(
            "TLS to a remote MCP server is not offered yet: reach it over http on a link the institution controls (loopback, a private network, a tunnel)",
        ));
    } else {
        return Err(bad("it must start with http://"));
    };
    let (authority, path) = match rest.find(['/', '?', '#']) {
        Some(i) => rest.split_at(i),
        None => (rest, "/"),
    };
    if path.contains('#') {
        return Err(bad("a fragment has no meaning here"));
    }
    if authority.contains('@') {
        return Err(bad("credentials in the URL: use bearer_token_file"));
    }
    let addr: SocketAddr = match authority.parse() {
        Ok(addr) => addr,
        Err(_) => {
            // No port: the default, 80.
            let host = authority.trim_start_matches('[').trim_end_matches(']');
            let ip: IpAddr = host.parse().map_err(|_| {
                bad("the host must be an IP address with an optional port (Sovereign makes no DNS lookup)")
            })?;
            SocketAddr::new(ip, 80)
        }
    };
    let target = if path.starts_with('/') {
        path.to_owned()
    } else {
        format!("/{path}")
    };
    if !target.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(bad(
            "the path must be visible ASCII (percent-encode the rest)",
        ));
    }
    Ok(Remote {
        addr,
        url: url.to_owned(),
        target,
    })
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
    fn a_server_is_a_command_or_a_url() {
        let url = "name = \"far\"\nurl = \"http://10.0.0.7:8080/mcp\"\n";
        let d = declared(url).unwrap();
        assert_eq!(
            d.transport().unwrap(),
            Transport::Http(Remote {
                addr: "10.0.0.7:8080".parse().unwrap(),
                url: "http://10.0.0.7:8080/mcp".into(),
                target: "/mcp".into(),
            })
        );
        assert!(d.sandbox(Path::new("/tmp")).is_none());
        let v6 = declared("name = \"far\"\nurl = \"http://[::1]\"\n").unwrap();
        let Transport::Http(r) = v6.transport().unwrap() else {
            panic!("not http")
        };
        assert_eq!(
            (r.addr, r.target.as_str()),
            ("[::1]:80".parse().unwrap(), "/")
        );
        for (bad, says) in [
            ("url = \"https://10.0.0.7/mcp\"", "TLS"),
            ("url = \"http://mcp.example.org/mcp\"", "IP address"),
            ("url = \"ftp://10.0.0.7/\"", "http://"),
            ("url = \"http://u:p@10.0.0.7/\"", "credentials"),
            ("url = \"http://10.0.0.7/a b\"", "visible ASCII"),
            (
                "url = \"http://10.0.0.7/\"\nsha256 = \"aa\"",
                "sha256 is for",
            ),
            ("url = \"http://10.0.0.7/\"\nargs = [\"x\"]", "args is for"),
            (
                "url = \"http://10.0.0.7/\"\ncommand = \"/bin/true\"",
                "not both",
            ),
            ("timeout_ms = 10", "a command (a stdio server) or a url"),
        ] {
            let d = declared(&format!("name = \"far\"\n{bad}\n")).unwrap();
            let err = d.check().unwrap_err();
            assert!(err.contains(says), "{bad}: {err}");
        }
        let unpinned = BASE.replace("sha256 = \"aa\"\n", "");
        let err = declared(&unpinned).unwrap().check().unwrap_err();
        assert!(err.contains("needs the sha256"), "{err}");
        let reaching = format!("{BASE}outbound = [\"127.0.0.1:5432\"]\n");
        let d = declared(&reaching).unwrap();
        assert_eq!(
            d.sandbox(Path::new("/tmp")).unwrap().outbound,
            ["127.0.0.1:5432".parse().unwrap()]
        );
        for (bad, says) in [
            ("outbound = [\"db.example.org:5432\"]", "IP address"),
            ("outbound = [\"127.0.0.1:0\"]", "a port is needed"),
            ("outbound = [\"127.000.0.1:5432\"]", "IP address"),
        ] {
            let err = declared(&format!("{BASE}{bad}\n"))
                .unwrap()
                .check()
                .unwrap_err();
            assert!(err.contains(says), "{bad}: {err}");
        }
        let remote_out =
            "name = \"far\"\nurl = \"http://10.0.0.7/\"\noutbound = [\"10.0.0.7:80\"]\n";
        let err = declared(remote_out).unwrap().check().unwrap_err();
        assert!(err.contains("outbound is for"), "{err}");
        let stdio = format!("{BASE}bearer_token_file = \"/tmp/t\"\n");
        let err = declared(&stdio).unwrap().check().unwrap_err();
        assert!(err.contains("remote server"), "{err}");
    }

    #[test]
    fn a_bearer_token_file_must_be_owner_only_and_one_token() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("token");
        let with = |text: &str, mode: u32| {
            std::fs::write(&file, text).unwrap();
            std::fs::set_permissions(&file, std::fs::Permissions::from_mode(mode)).unwrap();
            let toml_text = format!(
                "name = \"far\"\nurl = \"http://127.0.0.1:9/\"\nbearer_token_file = {:?}\n",
                file.display().to_string()
            );
            declared(&toml_text).unwrap().bearer_token()
        };
        assert_eq!(
            with("s3cret-token\n", 0o600).unwrap().as_deref(),
            Some("s3cret-token")
        );
        assert!(
            with("s3cret-token\n", 0o644)
                .unwrap_err()
                .contains("chmod 600")
        );
        assert!(
            with("two words\n", 0o600)
                .unwrap_err()
                .contains("one token")
        );
        assert!(with("\n", 0o400).unwrap_err().contains("one token"));
    }

    #[test]
    fn unknown_fields_are_refused() {
        let err = declared(&format!("{BASE}network = true\n")).unwrap_err();
        assert!(err.to_string().contains("unknown field"), "{err}");
    }
}
