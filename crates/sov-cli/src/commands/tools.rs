//! The node's tools: the built-in ones (`calculator`, `units`, `dates`) and the SQL databases
//! the owner declares in `[[tools.sql]]`, each checked when the node loads them.

use std::sync::Arc;

use anyhow::{Context, Result, bail};
use sov_kernel::Toolbox;
use sov_tools::sql::SqlTool;

use crate::home::{Config, Home};

/// The most a declared query limit may be.
const MAX_ROWS: usize = 10_000;
const MAX_TIMEOUT_MS: u64 = 60_000;

/// The tools `config` installs. A declared database must exist, and lie in the home or under
/// a `[seal] read_only` path (the sealed server could not read it otherwise).
pub(crate) fn toolbox(home: &Home, config: &Config) -> Result<Toolbox> {
    let mut tools = Toolbox::builtins();
    for db in &config.tools.sql {
        let name = &db.name;
        if !db.path.is_absolute() {
            bail!(
                "[[tools.sql]] `{name}`: path `{}` must be absolute",
                db.path.display()
            );
        }
        if !db.path.is_file() {
            bail!(
                "[[tools.sql]] `{name}`: no database file at {}",
                db.path.display()
            );
        }
        let readable = db.path.starts_with(home.root())
            || config.seal.read_only.iter().any(|p| db.path.starts_with(p));
        if !readable {
            bail!(
                "[[tools.sql]] `{name}`: {} is outside the home; add its folder to [seal] read_only so the sealed server may read it",
                db.path.display()
            );
        }
        if db.max_rows == 0 || db.max_rows > MAX_ROWS {
            bail!("[[tools.sql]] `{name}`: max_rows must be 1 to {MAX_ROWS}");
        }
        if db.timeout_ms == 0 || db.timeout_ms > MAX_TIMEOUT_MS {
            bail!("[[tools.sql]] `{name}`: timeout_ms must be 1 to {MAX_TIMEOUT_MS}");
        }
        let mut tool = SqlTool::new(name, db.path.clone(), &db.description);
        tool.max_rows = db.max_rows;
        tool.timeout = std::time::Duration::from_millis(db.timeout_ms);
        if let Err(e) = tools.add(Arc::new(tool)) {
            bail!("[[tools.sql]]: {e}");
        }
    }
    Ok(tools)
}

/// Starts every `[[tools.mcp]]` stdio server through the seal's launcher (this binary), each
/// with its own folder `mcp/NAME/` in the home, and reads each remote server's bearer token.
/// Called before `sov serve` applies its seal (whose Landlock domain would not let it execute
/// the launcher or read the token's file); `Err` names the server and why.
pub(crate) fn start_mcp(
    home: &Home,
    config: &Config,
) -> std::result::Result<Vec<sov_mcp::Started>, sov_mcp::McpError> {
    let mut names = std::collections::BTreeSet::new();
    let mut started = Vec::new();
    for declared in &config.tools.mcp {
        if !names.insert(declared.name.as_str()) {
            return Err(sov_mcp::McpError {
                server: declared.name.clone(),
                reason: "declared twice in [[tools.mcp]]".into(),
            });
        }
        let destinations = declared
            .destinations()
            .map_err(|reason| sov_mcp::McpError {
                server: declared.name.clone(),
                reason,
            })?;
        if let Some(addr) = destinations
            .iter()
            .find(|a| config.seal.destination(**a).is_none())
        {
            return Err(sov_mcp::McpError {
                server: declared.name.clone(),
                reason: format!(
                    "it would reach {addr}, which is not declared in [seal] outbound (or the seal is offline): declare it there too (`sov seal open {addr} --purpose ...`)"
                ),
            });
        }
        let sov = std::env::current_exe().map_err(|e| sov_mcp::McpError {
            server: declared.name.clone(),
            reason: format!("finding the launcher (this binary): {e}"),
        })?;
        let scratch = home.root().join("mcp").join(&declared.name);
        started.push(sov_mcp::start(declared, &scratch, &sov)?);
    }
    Ok(started)
}

/// Connects to each started server (inside the async runtime; a remote one through `gate`),
/// records a `tool.server` entry for each (its executable's or its address's, and its tool
/// list's SHA-256, whether the list changed since the last start, its confinement), and
/// returns the tools they offer. A server that does not connect, or offers a list other than
/// its pinned `tools_sha256`, stops the start (recorded).
pub(crate) async fn connect_mcp(
    home: &Home,
    started: Vec<sov_mcp::Started>,
    log: &sov_audit::AuditLog,
    gate: &sov_kernel::Gate,
) -> Result<Vec<Arc<dyn sov_tools::Tool>>> {
    use sov_audit_core::entry::{Kind, Outcome};
    use sov_kernel::node::NodeEntry;
    let mut out: Vec<Arc<dyn sov_tools::Tool>> = Vec::new();
    for s in started {
        let pid = s.pid();
        let connected = s.connect(gate).await;
        let (server, entry) = match connected {
            Err(e) => {
                let entry = NodeEntry::new(
                    Kind::ToolServer,
                    format!("mcp:{}", e.server),
                    Outcome::Error,
                )
                .reason(&e.reason);
                entry
                    .record_async(log, &crate::record::local_principal())
                    .await
                    .map_err(unrecorded)?;
                bail!("sov serve did not start: {e}");
            }
            Ok(server) => {
                let server = Arc::new(server);
                let entry = server_entry(home, &server, pid);
                (server, entry)
            }
        };
        let d = &server.declared;
        if !d.tools_sha256.is_empty() && !d.tools_sha256.eq_ignore_ascii_case(&server.tools_sha256)
        {
            let reason = format!(
                "it offers a tool list of SHA-256 {}, not the pinned tools_sha256 {}",
                server.tools_sha256, d.tools_sha256
            );
            let mut entry = entry;
            entry.outcome = Outcome::Denied;
            entry
                .reason(&reason)
                .record_async(log, &crate::record::local_principal())
                .await
                .map_err(unrecorded)?;
            bail!("sov serve did not start: MCP server `{}`: {reason}", d.name);
        }
        let (tools, skipped) = sov_mcp::tools(&server, tokio::runtime::Handle::current());
        let mut entry = entry.attr("offered", tools.len());
        if !skipped.is_empty() {
            entry = entry.attr("not_offered", skipped.join(","));
        }
        entry
            .record_async(log, &crate::record::local_principal())
            .await
            .map_err(unrecorded)?;
        remember_tools(home, &server);
        println!(
            "Tool server {}: {} tool(s) as {}__*, tool list SHA-256 {}",
            d.name,
            tools.len(),
            d.name,
            server.tools_sha256
        );
        out.extend(
            tools
                .into_iter()
                .map(|t| Arc::new(t) as Arc<dyn sov_tools::Tool>),
        );
    }
    Ok(out)
}

fn unrecorded(e: sov_kernel::Unrecorded) -> anyhow::Error {
    anyhow::anyhow!("failed to record a tool server's start: {}", e.0)
}

/// Where the last start's tool list SHA-256 of server `name` is kept (the server writes its
/// state folder under the seal).
fn tools_hash_file(home: &Home, name: &str) -> std::path::PathBuf {
    let state = home
        .identity_path()
        .parent()
        .map_or_else(|| home.root().join("state"), std::path::Path::to_owned);
    state.join("mcp").join(format!("{name}.tools.sha256"))
}

fn remember_tools(home: &Home, server: &sov_mcp::Server) {
    let file = tools_hash_file(home, &server.declared.name);
    let written = file
        .parent()
        .map_or(Ok(()), std::fs::create_dir_all)
        .and_then(|()| std::fs::write(&file, &server.tools_sha256));
    if let Err(e) = written {
        tracing::warn!(
            "could not note the tool list of `{}`: {e}",
            server.declared.name
        );
    }
}

/// The `tool.server` entry of a connected server (without its outcome's reason).
fn server_entry(
    home: &Home,
    server: &sov_mcp::Server,
    pid: Option<u32>,
) -> sov_kernel::node::NodeEntry {
    use sha2::{Digest, Sha256};
    use sov_audit_core::entry::{Kind, Outcome};
    let d = &server.declared;
    let previous = std::fs::read_to_string(tools_hash_file(home, &d.name)).unwrap_or_default();
    let previous = previous.trim();
    let changed = match previous {
        "" => "first start",
        p if p == server.tools_sha256 => "no",
        _ => "yes",
    };
    let names: Vec<&str> = server.tools.iter().map(|t| t.name.as_ref()).collect();
    let paths = |p: &[std::path::PathBuf]| {
        p.iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(",")
    };
    let mut entry =
        sov_kernel::node::NodeEntry::new(Kind::ToolServer, format!("mcp:{}", d.name), Outcome::Ok);
    match (&d.command, pid) {
        (Some(command), Some(pid)) => {
            let args = serde_json::to_vec(&d.args).unwrap_or_default();
            let confinement = sov_seal::launch::confinement(&d.destinations().unwrap_or_default());
            entry = entry
                .attr("transport", "stdio")
                .attr("command", command.display())
                .attr("executable_sha256", d.sha256.to_ascii_lowercase())
                // The arguments may hold what the owner would not publish: their digest only.
                .attr("args_sha256", hex::encode(Sha256::digest(&args)))
                .attr("confinement", confinement)
                .attr("read_only", paths(&d.read_only))
                .attr("read_write", paths(&d.read_write))
                .attr("pid", pid);
        }
        _ => {
            entry = entry
                .attr("transport", "streamable-http")
                .attr("url", d.url.as_deref().unwrap_or_default())
                .attr("through", "egress gate ([seal] outbound)")
                .attr("bearer_token", d.bearer_token_file.is_some());
        }
    }
    entry = entry
        .attr("server_info", &server.info)
        .attr("tools", names.join(","))
        .attr("tools_sha256", &server.tools_sha256)
        .attr("tools_changed", changed);
    if !previous.is_empty() && previous != server.tools_sha256 {
        entry = entry.attr("previous_tools_sha256", previous);
    }
    if !d.env.is_empty() {
        let keys: Vec<&str> = d.env.keys().map(String::as_str).collect();
        entry = entry.attr("env", keys.join(","));
    }
    if !d.outbound.is_empty() {
        entry = entry.attr("outbound", d.outbound.join(","));
    }
    entry
}

/// The names of the tools the declared MCP servers offer now (`SERVER__TOOL`): each started in
/// its sandbox (or reached through the egress gate, which records into `log`), asked for its
/// list, and stopped. No server start is recorded: nothing is served.
pub(crate) fn mcp_tool_names(
    home: &Home,
    config: &Config,
    log: &sov_audit::AuditLog,
) -> Result<Vec<String>> {
    let started = start_mcp(home, config)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("failed to start the async runtime")?;
    let gate = sov_kernel::Gate::new(config.seal.clone(), Arc::new(log.clone()), "system");
    runtime.block_on(async {
        let mut names = Vec::new();
        for s in started {
            let server = s.connect(&gate).await?;
            let (specs, _) = sov_mcp::specs(&server.declared.name, &server.tools);
            names.extend(specs.into_iter().map(|(_, spec)| spec.name));
        }
        Ok(names)
    })
}
