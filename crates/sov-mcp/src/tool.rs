//! A server's tool as one of the node's tools: `<server>__<tool>`, decided and receipted by
//! the kernel like a built-in one.

use std::sync::Arc;

use rmcp::model::Tool as RemoteTool;
use serde_json::Value;
use sov_tools::{Tool, ToolError, ToolSpec};

use crate::server::Server;

/// Separates the server's name from its tool's in the name the node offers.
pub const SEPARATOR: &str = "__";

/// One tool of a connected server.
#[derive(Debug)]
pub struct McpTool {
    server: Arc<Server>,
    remote: String,
    spec: ToolSpec,
    version: String,
    runtime: tokio::runtime::Handle,
}

/// The node's tools for `server`'s tools, calling them on `runtime`, and the names of those it
/// offers that cannot be offered (see [`specs`]).
pub fn tools(server: &Arc<Server>, runtime: tokio::runtime::Handle) -> (Vec<McpTool>, Vec<String>) {
    let d = &server.declared;
    let version = match &d.url {
        Some(url) => format!(
            "mcp:{} url:{url} tools sha256:{}",
            d.name, server.tools_sha256
        ),
        None => format!(
            "mcp:{} executable sha256:{} tools sha256:{}",
            d.name,
            d.sha256.to_ascii_lowercase(),
            server.tools_sha256
        ),
    };
    let (specs, skipped) = specs(&server.declared.name, &server.tools);
    let offered = specs
        .into_iter()
        .map(|(remote, spec)| McpTool {
            server: server.clone(),
            remote,
            spec,
            version: version.clone(),
            runtime: runtime.clone(),
        })
        .collect();
    (offered, skipped)
}

/// What the node offers for the tools a server named `server` lists: each tool's own name and
/// its spec as `<server>__<tool>`, and the names of the tools left out (a name that is not a
/// valid function name once prefixed, or an input schema that is not an object).
pub fn specs(server: &str, listed: &[RemoteTool]) -> (Vec<(String, ToolSpec)>, Vec<String>) {
    let mut offered = Vec::new();
    let mut skipped = Vec::new();
    for remote in listed {
        let name = format!("{server}{SEPARATOR}{}", remote.name);
        let schema = Value::Object((*remote.input_schema).clone());
        if !sov_tools::valid_name(&name) || schema.get("type") != Some(&Value::from("object")) {
            skipped.push(remote.name.to_string());
            continue;
        }
        let description = remote
            .description
            .as_deref()
            .or(remote.title.as_deref())
            .unwrap_or_default();
        offered.push((
            remote.name.to_string(),
            ToolSpec {
                name,
                description: format!("{description} (MCP server `{server}`)"),
                parameters: schema,
            },
        ));
    }
    (offered, skipped)
}

impl Tool for McpTool {
    fn spec(&self) -> &ToolSpec {
        &self.spec
    }

    fn version(&self) -> String {
        self.version.clone()
    }

    /// Blocks on the runtime the server's connection runs on: the kernel calls every tool on a
    /// blocking thread (`spawn_blocking`), never on an async task, where this would panic (the
    /// kernel would answer with "the tool stopped").
    fn call(&self, args: &Value) -> Result<Value, ToolError> {
        let arguments = match args {
            Value::Object(map) => map.clone(),
            Value::Null => serde_json::Map::new(),
            other => {
                return Err(ToolError::Arguments(format!(
                    "the arguments must be a JSON object, not {other}"
                )));
            }
        };
        self.runtime
            .block_on(self.server.call(&self.remote, arguments))
    }
}
