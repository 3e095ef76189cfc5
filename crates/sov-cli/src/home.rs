//! The data home: where the owner's configuration, keys and models live.
//!
//! ```text
//! ~/.sovereign/            (0700; --home or SOV_HOME to move it)
//!   sov.toml               the configuration, documented in place
//!   keys/                  the owner's and the audit log's signing keys (secret files 0600)
//!   models/                the content-addressed model store
//!   specialists/           signed specialist manifests and their LoRA adapters (see sov-specialist)
//!   audit/                 the Open Audit Record (C2SP tlog-tiles layout, see sov-audit)
//!   policies/              the Cedar policies in force (`*.cedar`; the starter set at first)
//!   state/identity.db      principals and API token hashes (SQLite, 0600)
//! ```

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::Deserialize;

/// The configuration file `sov init` writes. Every key is shown with its default value.
pub const DEFAULT_CONFIG: &str = r#"# Sovereign configuration.
# Every key is optional: the value shown is the default used when it is absent.
# An unknown key is an error, so a typo never silently falls back to a default.

[server]
# Where `sov serve` listens. Keep it on loopback unless a proxy with TLS is in front.
listen = "127.0.0.1:8787"
# Largest request body accepted, in bytes (larger ones get HTTP 413).
max_body_bytes = 4194304
# Seconds a request's head may take to arrive; also how long an idle keep-alive connection is
# kept waiting for its next request.
header_timeout_secs = 10
# Seconds a request's body may take to arrive, whole (slower ones get HTTP 408).
body_timeout_secs = 30
# Connections open at once, in all and from one client address (an IPv6 /64). A connection
# over either limit is answered HTTP 429 and closed.
max_connections = 512
max_connections_per_address = 64
# Models to load at start, by name. Empty: every model in the store.
models = []

[engine]
# CPU threads for llama.cpp. 0: every core. More threads than free cores is slower.
threads = 0
# Tokens one request may use, prompt and answer together (capped at the model's own limit).
context_length = 4096
# Requests generated at the same time (continuous batching).
parallel = 4
# Tokens per decoding step, shared by the running requests.
batch_size = 512
# Requests that may wait for a free slot; beyond that the server answers 503.
queue_depth = 64
# Inputs one embedding request may hold, and tokens in all of them together (HTTP 400 beyond).
max_embedding_inputs = 256
max_embedding_tokens = 16384
# Keep finished requests' KV cells and reuse a later prompt's cached start (a system prompt, a
# specialist's instructions, earlier turns): only the rest is read. No extra memory; a caller
# can tell from the timing that a prompt's start was read recently (docs/threat-model.md).
prompt_reuse = true

[chat]
# The model `sov chat` uses without --model. Empty: the only model in the store.
default_model = ""

[knowledge]
# The embedding model corpora are built and searched with, and the router embeds with.
# Empty: the only embedding-only model (e.g. all-minilm-l6-v2) in the store.
embedding_model = ""
# Largest document file `sov corpus add` accepts, in bytes.
max_document_bytes = 16777216

[router]
# The general model that answers `model: "auto"` when no specialist fits. Empty: such a request
# is refused (HTTP 404, code no_specialist_fits).
fallback = ""
# The least score a specialist needs to be chosen: the mean of the question's cosine similarity
# with the specialist's description and with the best passage the caller may read in its corpora.
threshold = 0.25

[audit]
# The longest a durable entry waits for a signed checkpoint that covers it, in milliseconds.
checkpoint_interval_ms = 1000
# The log's name (C2SP checkpoint origin and key name); fixed once the log exists.
# Empty: "sovereign/<node>".
origin = ""
# This node's name in every entry. Empty: "sov-" and 8 hex digits of the log key's hash.
node = ""

[limits]
# Requests one principal may make per minute (HTTP 429 beyond it), and how many at once.
requests_per_minute = 600
burst = 60
# Failed authentications one client address may make per minute before it is refused with
# HTTP 429 without its token being looked at (throttles token guessing).
failed_auth_per_minute = 10
# Entries of their own for refused requests without a valid token, per minute for the whole
# node; the others are counted into one summary entry every 10 seconds, so such traffic cannot
# grow the record at the rate it is sent.
unauthenticated_entries_per_minute = 600
# Console sessions (sign in once with a token, then an HttpOnly cookie): one ends this many
# minutes after sign-in, or after this many minutes without a request; a principal holds at most
# this many at once (a new one ends their least recently used). A restart ends them all.
session_lifetime_minutes = 720
session_idle_minutes = 30
sessions_per_principal = 16

# Tools beyond the built-in calculator, units and dates, which every node has. A read-only SQL
# database over an SQLite file (one SELECT per call; a file outside the home needs its folder
# in [seal] read_only), called as the tool NAME by any principal allowed `use-tool` on it:
# [[tools.sql]]
# name = "ledger"
# path = "/srv/ledger.db"
# description = "Account balances, one row per account"
# max_rows = 200
# timeout_ms = 2000
#
# An MCP tool server (stdio), started by `sov serve` in a sandbox of its own (no network unless
# outbound is declared; reads
# only the system's program folders, its executable and read_only; writes only its folder
# mcp/NAME/ in the home and read_write; seccomp; a cleared environment but for env). Its tools
# are NAME__TOOL, for any principal allowed `use-tool` on them. It runs only if its executable's
# SHA-256 is sha256; tools_sha256, when set, pins the tool list `sov serve` prints.
# [[tools.mcp]]
# name = "time"
# command = "/opt/mcp/venv/bin/mcp-server-time"
# args = []
# sha256 = "<sha256sum of the command>"
# read_only = ["/opt/mcp/venv"]
# read_write = []
# env = {}
# outbound = []          # "ADDRESS:PORT" it may connect to (each also in [seal] outbound)
# timeout_ms = 5000
# tools_sha256 = ""
#
# A remote MCP server (streamable HTTP), reached through the egress gate: its address and port
# must be declared in [seal] outbound below, and every request to it is a recorded connection.
# An IP address (no DNS lookup) and plain http for now (no TLS: use a link you control). A
# bearer token, if the server wants one, is read from an owner-only file and never recorded.
# [[tools.mcp]]
# name = "records"
# url = "http://10.0.0.9:3001/mcp"
# bearer_token_file = "/etc/sovereign/records.token"
# timeout_ms = 5000

[seal]
# The boundary: the one place a path out is opened. Change it with `sov seal open HOST:PORT
# --purpose TEXT` and `sov seal close HOST:PORT` (recorded in the audit record); a change takes
# effect at the next start. `sov serve` enforces it with the kernel (Landlock, seccomp, and a
# network namespace when offline) and reports how: `sov seal status`.
# Run the server in a network namespace with no usable interface: nothing leaves (fully
# offline). Contradicts declared outbound destinations.
offline = false
# Addresses `sov serve` may listen on (a start on another is refused). Empty: the one it is
# started with (server.listen or --listen).
listen = []
# Absolute paths outside the home the server may read. (It reads the whole home, and writes
# only its record, directory and seal reports: audit/, state/, seal/.)
read_only = []
# Permitted outbound destinations: an IP address (no DNS names: Sovereign makes no lookup), a
# TCP port and why, e.g. { host = "10.0.0.7", port = 8080, purpose = "cardiology engine" }.
outbound = []
"#;

/// The parsed configuration.
#[derive(Debug, Clone, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub server: ServerSection,
    pub engine: EngineSection,
    pub chat: ChatSection,
    pub knowledge: KnowledgeSection,
    pub router: RouterSection,
    pub audit: AuditSection,
    pub limits: LimitsSection,
    pub seal: sov_seal::Declaration,
    pub tools: ToolsSection,
}

/// `[tools]`: the tools the owner declares beyond the built-in ones.
#[derive(Debug, Clone, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields, default)]
pub struct ToolsSection {
    /// `[[tools.sql]]`: read-only SQL over an SQLite database.
    pub sql: Vec<SqlToolSection>,
    /// `[[tools.mcp]]`: an MCP tool server, started by `sov serve` in a sandbox of its own.
    pub mcp: Vec<sov_mcp::Declared>,
}

/// One `[[tools.sql]]` database.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SqlToolSection {
    /// The tool's name (1 to 64 of a-z A-Z 0-9 _ -).
    pub name: String,
    /// The database file, absolute.
    pub path: PathBuf,
    /// What it holds, for the model.
    #[serde(default)]
    pub description: String,
    /// The most rows one query returns.
    #[serde(default = "default_max_rows")]
    pub max_rows: usize,
    /// The longest one query may run, in milliseconds.
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
}

fn default_max_rows() -> usize {
    200
}

fn default_timeout_ms() -> u64 {
    2_000
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsSection {
    pub requests_per_minute: u32,
    pub burst: u32,
    pub failed_auth_per_minute: u32,
    pub unauthenticated_entries_per_minute: u32,
    pub session_lifetime_minutes: u64,
    pub session_idle_minutes: u64,
    pub sessions_per_principal: usize,
}

impl Default for LimitsSection {
    fn default() -> Self {
        let l = sov_server::Limits::default();
        let sessions = sov_policy::SessionLimits::default();
        Self {
            requests_per_minute: l.requests.per_minute,
            burst: l.requests.burst,
            failed_auth_per_minute: l.failures.per_minute,
            unauthenticated_entries_per_minute: l.unauthenticated_entries.per_minute,
            session_lifetime_minutes: sessions.lifetime.as_secs() / 60,
            session_idle_minutes: sessions.idle.as_secs() / 60,
            sessions_per_principal: sessions.per_principal,
        }
    }
}

impl LimitsSection {
    /// The console sessions' limits; zero is refused (no session could be used).
    pub fn sessions(&self) -> Result<sov_policy::SessionLimits> {
        if self.session_lifetime_minutes == 0
            || self.session_idle_minutes == 0
            || self.sessions_per_principal == 0
        {
            bail!(
                "[limits] session values must be at least 1 (zero would end every session at once)"
            );
        }
        Ok(sov_policy::SessionLimits {
            lifetime: std::time::Duration::from_secs(
                self.session_lifetime_minutes.saturating_mul(60),
            ),
            idle: std::time::Duration::from_secs(self.session_idle_minutes.saturating_mul(60)),
            per_principal: self.sessions_per_principal,
            ..sov_policy::SessionLimits::default()
        })
    }

    /// The server's limits; a zero rate is refused (it would lock everyone out).
    pub fn limits(&self) -> Result<sov_server::Limits> {
        if self.requests_per_minute == 0
            || self.burst == 0
            || self.failed_auth_per_minute == 0
            || self.unauthenticated_entries_per_minute == 0
        {
            bail!("[limits] values must be at least 1 (a zero rate would refuse every request)");
        }
        Ok(sov_server::Limits {
            requests: sov_policy::Rate {
                per_minute: self.requests_per_minute,
                burst: self.burst,
            },
            failures: sov_policy::Rate {
                per_minute: self.failed_auth_per_minute,
                burst: self.failed_auth_per_minute,
            },
            unauthenticated_entries: sov_policy::Rate {
                per_minute: self.unauthenticated_entries_per_minute,
                burst: (self.unauthenticated_entries_per_minute / 6).max(1),
            },
        })
    }
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct KnowledgeSection {
    pub embedding_model: String,
    pub max_document_bytes: u64,
}

impl Default for KnowledgeSection {
    fn default() -> Self {
        Self {
            embedding_model: String::new(),
            max_document_bytes: 16 * 1024 * 1024,
        }
    }
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct RouterSection {
    pub fallback: String,
    pub threshold: f32,
}

impl Default for RouterSection {
    fn default() -> Self {
        Self {
            fallback: String::new(),
            threshold: sov_kernel::Router::default().threshold,
        }
    }
}

impl RouterSection {
    /// The kernel's router; a threshold outside 0..=1 is refused.
    pub fn router(&self) -> Result<sov_kernel::Router> {
        if !(0.0..=1.0).contains(&self.threshold) {
            bail!("[router] threshold must be between 0 and 1");
        }
        Ok(sov_kernel::Router {
            fallback: (!self.fallback.is_empty()).then(|| self.fallback.clone()),
            threshold: self.threshold,
        })
    }
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct AuditSection {
    pub checkpoint_interval_ms: u64,
    pub origin: String,
    pub node: String,
}

impl Default for AuditSection {
    fn default() -> Self {
        Self {
            checkpoint_interval_ms: 1000,
            origin: String::new(),
            node: String::new(),
        }
    }
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ServerSection {
    pub listen: SocketAddr,
    pub max_body_bytes: usize,
    pub header_timeout_secs: u64,
    pub body_timeout_secs: u64,
    pub max_connections: usize,
    pub max_connections_per_address: usize,
    pub models: Vec<String>,
}

impl ServerSection {
    /// The HTTP layer's settings; zero limits are refused (they would refuse every request).
    pub fn server_config(&self, owner: String) -> Result<sov_server::ServerConfig> {
        if self.header_timeout_secs == 0
            || self.body_timeout_secs == 0
            || self.max_connections == 0
            || self.max_connections_per_address == 0
        {
            bail!("[server] timeouts and connection limits must be at least 1");
        }
        Ok(sov_server::ServerConfig {
            max_body_bytes: self.max_body_bytes,
            owner,
            timeouts: sov_server::Timeouts {
                header: std::time::Duration::from_secs(self.header_timeout_secs),
                body: std::time::Duration::from_secs(self.body_timeout_secs),
            },
            max_connections: self.max_connections,
            max_connections_per_address: self.max_connections_per_address,
        })
    }
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct EngineSection {
    pub threads: usize,
    pub context_length: u32,
    pub parallel: u32,
    pub batch_size: u32,
    pub queue_depth: usize,
    pub max_embedding_inputs: usize,
    pub max_embedding_tokens: usize,
    pub prompt_reuse: bool,
}

#[derive(Debug, Clone, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields, default)]
pub struct ChatSection {
    pub default_model: String,
}

impl Default for ServerSection {
    fn default() -> Self {
        let s = sov_server::ServerConfig::default();
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8787)),
            max_body_bytes: s.max_body_bytes,
            header_timeout_secs: s.timeouts.header.as_secs(),
            body_timeout_secs: s.timeouts.body.as_secs(),
            max_connections: s.max_connections,
            max_connections_per_address: s.max_connections_per_address,
            models: Vec::new(),
        }
    }
}

impl Default for EngineSection {
    fn default() -> Self {
        let e = sov_engine::EngineConfig::default();
        Self {
            threads: e.threads,
            context_length: e.context_length,
            parallel: e.parallel,
            batch_size: e.batch_size,
            queue_depth: e.queue_depth,
            max_embedding_inputs: e.max_embedding_inputs,
            max_embedding_tokens: e.max_embedding_tokens,
            prompt_reuse: e.prompt_reuse,
        }
    }
}

impl EngineSection {
    pub fn engine_config(&self) -> sov_engine::EngineConfig {
        sov_engine::EngineConfig {
            threads: self.threads,
            context_length: self.context_length,
            parallel: self.parallel,
            batch_size: self.batch_size,
            queue_depth: self.queue_depth,
            max_embedding_inputs: self.max_embedding_inputs,
            max_embedding_tokens: self.max_embedding_tokens,
            prompt_reuse: self.prompt_reuse,
        }
    }
}

/// A located home (which may not exist yet).
#[derive(Debug, Clone)]
pub struct Home {
    root: PathBuf,
}

impl Home {
    /// `--home`/`SOV_HOME` if given, else `~/.sovereign`.
    pub fn locate(explicit: Option<&Path>) -> Result<Self> {
        if let Some(path) = explicit {
            return Ok(Self {
                root: path.to_path_buf(),
            });
        }
        let Some(home) = std::env::var_os("HOME").filter(|h| !h.is_empty()) else {
            bail!("cannot find the data home: $HOME is not set; pass --home or set SOV_HOME");
        };
        Ok(Self {
            root: PathBuf::from(home).join(".sovereign"),
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }
    pub fn config_path(&self) -> PathBuf {
        self.root.join("sov.toml")
    }
    pub fn keys_dir(&self) -> PathBuf {
        self.root.join("keys")
    }
    pub fn models_dir(&self) -> PathBuf {
        self.root.join("models")
    }
    pub fn corpora_dir(&self) -> PathBuf {
        self.root.join("corpora")
    }
    pub fn specialists_dir(&self) -> PathBuf {
        self.root.join("specialists")
    }
    pub fn audit_dir(&self) -> PathBuf {
        self.root.join("audit")
    }
    pub fn policies_dir(&self) -> PathBuf {
        self.root.join("policies")
    }
    pub fn identity_path(&self) -> PathBuf {
        self.root.join("state").join("identity.db")
    }

    /// Fails with a hint when `sov init` has not been run.
    pub fn require_initialised(&self) -> Result<()> {
        if !self.config_path().is_file() {
            bail!(
                "no Sovereign home at {} (run `sov init` first, or pass --home)",
                self.root.display()
            );
        }
        Ok(())
    }

    /// Reads and checks `sov.toml`.
    pub fn config(&self) -> Result<Config> {
        self.require_initialised()?;
        let path = self.config_path();
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("failed to read {}", path.display()))?;
        parse_config(&text).with_context(|| format!("failed to parse {}", path.display()))
    }
}

/// Owner-only files, created synced or replaced atomically: the seal's writer, which `sov serve`
/// uses for its reports, is the one the other commands use too (one implementation).
pub use sov_seal::private_file::{replace as replace_private, write_new as write_new_private};

/// Moves `from` to `to` and syncs the folder of `to`, so the rename survives a power loss.
pub fn rename_durably(from: &Path, to: &Path) -> Result<()> {
    std::fs::rename(from, to)
        .with_context(|| format!("failed to move {} to {}", from.display(), to.display()))?;
    let parent = to.parent().unwrap_or(Path::new("."));
    std::fs::File::open(parent)
        .and_then(|d| d.sync_all())
        .with_context(|| format!("failed to sync {}", parent.display()))
}

/// Parses a configuration text.
pub fn parse_config(text: &str) -> Result<Config> {
    let config: Config = toml::from_str(text)?;
    config.seal.validate()?;
    Ok(config)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_written_config_is_the_default() {
        assert_eq!(parse_config(DEFAULT_CONFIG).unwrap(), Config::default());
        assert_eq!(parse_config("").unwrap(), Config::default());
    }

    #[test]
    fn unknown_keys_are_refused() {
        let err = parse_config("[server]\nlisten_addr = \"127.0.0.1:1\"\n").unwrap_err();
        assert!(
            format!("{err:#}").contains("unknown field `listen_addr`"),
            "{err:#}"
        );
    }
}
