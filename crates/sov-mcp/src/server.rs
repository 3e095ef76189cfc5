//! One MCP server's life: started through the seal's launcher ([`start`], before the node's
//! own seal), connected over its standard streams with rmcp ([`Started::connect`], inside the
//! async runtime), called with a bounded wait ([`Server::call`]).

use std::collections::VecDeque;
use std::path::Path;
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rmcp::model::{CallToolRequestParams, CallToolResult, Tool as RemoteTool};
use rmcp::service::{RoleClient, RunningService, ServiceExt};
use rmcp::transport::async_rw::AsyncRwTransport;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use sov_tools::ToolError;
use tokio::io::AsyncReadExt;

use crate::declare::Declared;

/// The longest one message from a server may be (a longer line is dropped by the transport,
/// and the call it answered ends at its time limit).
pub const MAX_MESSAGE: usize = 1 << 20;

/// The longest the handshake and the tool list may take.
pub const START_TIMEOUT: Duration = Duration::from_secs(10);

/// The most tools one server may offer.
pub const MAX_TOOLS: usize = 128;

/// How much of a server's standard error is kept (its last bytes), for the errors it explains.
const STDERR_TAIL: usize = 4 * 1024;

/// The most a tool's error text may be, as handed on.
pub const MAX_ERROR_TEXT: usize = 2 * 1024;

/// Why a server was not started, connected or served.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("MCP server `{server}`: {reason}")]
pub struct McpError {
    /// The server's declared name.
    pub server: String,
    /// Why, in words.
    pub reason: String,
}

/// A server's process, started by the launcher, not yet spoken to.
#[derive(Debug)]
pub struct Started {
    declared: Declared,
    child: Child,
}

/// Starts `declared` through the seal's launcher `sov` (the running binary), with `scratch` as
/// its own folder (made owner-only if missing). Synchronous and thread-free: `sov serve` calls
/// it before it applies its own seal.
pub fn start(declared: &Declared, scratch: &Path, sov: &Path) -> Result<Started, McpError> {
    let fail = |reason: String| McpError {
        server: declared.name.clone(),
        reason,
    };
    declared.check().map_err(fail)?;
    make_private_dir(scratch).map_err(|e| fail(format!("{}: {e}", scratch.display())))?;
    let sandbox = declared.sandbox(scratch);
    sandbox.check().map_err(|e| fail(e.0))?;
    let mut cmd = sandbox.command(sov, &declared.env).map_err(fail)?;
    let child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| fail(format!("starting the launcher {}: {e}", sov.display())))?;
    Ok(Started {
        declared: declared.clone(),
        child,
    })
}

fn make_private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

/// A connected server: its tools, and the connection to call them.
#[derive(Debug)]
pub struct Server {
    /// The declaration it was started from.
    pub declared: Declared,
    /// What it says it is (`serverInfo`: name and version), in words.
    pub info: String,
    /// The tools it offers, as it listed them.
    pub tools: Vec<RemoteTool>,
    /// The SHA-256 of the tool list (the JSON of `tools`, in the order listed).
    pub tools_sha256: String,
    service: RunningService<RoleClient, ()>,
    child: Mutex<Child>,
    stderr: Arc<Mutex<VecDeque<u8>>>,
    timeout: Duration,
}

impl Started {
    /// The process id of the launcher (the server, once it has started).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Speaks to the server: the MCP handshake and its tool list, within [`START_TIMEOUT`].
    /// A server that does not answer, answers wrongly or exits is an error that quotes the end
    /// of its standard error.
    pub async fn connect(mut self) -> Result<Server, McpError> {
        let name = self.declared.name.clone();
        let fail = |reason: String| McpError {
            server: name.clone(),
            reason,
        };
        let pipes = (
            self.child.stdin.take(),
            self.child.stdout.take(),
            self.child.stderr.take(),
        );
        let (Some(stdin), Some(stdout), Some(stderr)) = pipes else {
            return Err(fail("its standard streams were not connected".into()));
        };
        let io = |e: std::io::Error| fail(format!("its standard streams: {e}"));
        let stdin = tokio::process::ChildStdin::from_std(stdin).map_err(io)?;
        let stdout = tokio::process::ChildStdout::from_std(stdout).map_err(io)?;
        let stderr = tokio::process::ChildStderr::from_std(stderr).map_err(io)?;
        let tail = Arc::new(Mutex::new(VecDeque::new()));
        tokio::spawn(keep_tail(stderr, tail.clone()));
        let transport =
            AsyncRwTransport::new_client(stdout, stdin).with_max_line_length(MAX_MESSAGE);
        let mut server = Server {
            declared: self.declared.clone(),
            info: String::new(),
            tools: Vec::new(),
            tools_sha256: String::new(),
            // Replaced below; a placeholder cannot be made, so the handshake comes first.
            service: match tokio::time::timeout(START_TIMEOUT, ().serve(transport)).await {
                Ok(Ok(service)) => service,
                Ok(Err(e)) => {
                    let why = format!("the MCP handshake failed: {e}");
                    return Err(fail(explained(why, &mut self.child, &tail).await));
                }
                Err(_) => {
                    let why = format!(
                        "no answer to the MCP handshake within {} s",
                        START_TIMEOUT.as_secs()
                    );
                    return Err(fail(explained(why, &mut self.child, &tail).await));
                }
            },
            child: Mutex::new(self.child),
            stderr: tail,
            timeout: Duration::from_millis(self.declared.timeout_ms),
        };
        if let Some(info) = server.service.peer_info() {
            let who = info.server_info.as_ref().map_or_else(
                || "an unnamed server".to_owned(),
                |i| format!("{} {}", i.name, i.version),
            );
            server.info = format!("{who} (protocol {})", info.protocol_version);
        }
        let listed = tokio::time::timeout(START_TIMEOUT, server.service.list_all_tools()).await;
        let tools = match listed {
            Ok(Ok(tools)) => tools,
            Ok(Err(e)) => return Err(fail(server.explain(format!("listing its tools: {e}")))),
            Err(_) => {
                return Err(fail(server.explain(format!(
                    "no tool list within {} s",
                    START_TIMEOUT.as_secs()
                ))));
            }
        };
        if tools.len() > MAX_TOOLS {
            return Err(fail(format!(
                "it offers {} tools, more than {MAX_TOOLS}",
                tools.len()
            )));
        }
        let json = serde_json::to_vec(&tools).map_err(|e| fail(format!("its tool list: {e}")))?;
        server.tools_sha256 = hex::encode(Sha256::digest(&json));
        server.tools = tools;
        Ok(server)
    }
}

impl Server {
    /// Calls its tool `tool` with `arguments`, waiting at most the declared time. A tool that
    /// reports an error (`isError`), a closed connection, a malformed answer or no answer in
    /// time is a [`ToolError`] that says which.
    pub async fn call(
        &self,
        tool: &str,
        arguments: Map<String, Value>,
    ) -> Result<Value, ToolError> {
        let name = &self.declared.name;
        if self.service.is_transport_closed() {
            return Err(ToolError::Failed(
                self.explain(format!("the MCP server `{name}` has stopped")),
            ));
        }
        let params = CallToolRequestParams::new(tool.to_owned()).with_arguments(arguments);
        let answer = match tokio::time::timeout(self.timeout, self.service.call_tool(params)).await
        {
            Err(_) => {
                return Err(ToolError::Failed(format!(
                    "the MCP server `{name}` did not answer within {} ms",
                    self.timeout.as_millis()
                )));
            }
            Ok(Err(e)) => {
                return Err(ToolError::Failed(
                    self.explain(format!("the MCP server `{name}` failed: {e}")),
                ));
            }
            Ok(Ok(answer)) => answer,
        };
        answer_value(answer)
    }

    /// `why`, with the process's exit status if it has exited and the end of its standard
    /// error if it wrote any.
    fn explain(&self, why: String) -> String {
        let status = match self.child.lock() {
            Ok(mut child) => exit_note(&mut child),
            Err(_) => String::new(),
        };
        format!("{why}{status}{}", stderr_note(&self.stderr))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // Its standard input closes with the connection, which asks a stdio server to exit;
        // the kill may be refused by the node's seal (signals are scoped to its own domain),
        // and the parent-death signal ends it with the node.
        if let Ok(mut child) = self.child.lock() {
            let _ = child.kill();
            let _ = child.try_wait();
        }
    }
}

/// A tool's answer as the caller gets it: the result as the server sent it (its `content`,
/// and `structuredContent` when it has one), or its error text when it says `isError`.
pub fn answer_value(answer: CallToolResult) -> Result<Value, ToolError> {
    if answer.is_error == Some(true) {
        let text: Vec<String> = answer
            .content
            .iter()
            .filter_map(|c| c.as_text().map(|t| t.text.clone()))
            .collect();
        let mut text = text.join("\n");
        if text.is_empty() {
            text = "the tool reported an error without a message".into();
        }
        return Err(ToolError::Failed(bounded(text, MAX_ERROR_TEXT)));
    }
    let mut out = Map::new();
    let content =
        serde_json::to_value(&answer.content).map_err(|e| ToolError::Failed(e.to_string()))?;
    out.insert("content".into(), content);
    if let Some(structured) = answer.structured_content {
        out.insert("structuredContent".into(), structured);
    }
    Ok(Value::Object(out))
}

fn bounded(mut text: String, max: usize) -> String {
    if text.len() > max {
        let mut cut = max;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
        text.push_str(" …");
    }
    text
}

/// Keeps the last [`STDERR_TAIL`] bytes of what the server writes on its standard error.
async fn keep_tail(mut stderr: tokio::process::ChildStderr, tail: Arc<Mutex<VecDeque<u8>>>) {
    let mut buf = vec![0u8; 8 * 1024];
    loop {
        match stderr.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                let Ok(mut t) = tail.lock() else { return };
                t.extend(&buf[..n]);
                let excess = t.len().saturating_sub(STDERR_TAIL);
                t.drain(..excess);
            }
        }
    }
}

fn stderr_note(tail: &Mutex<VecDeque<u8>>) -> String {
    let Ok(t) = tail.lock() else {
        return String::new();
    };
    let bytes: Vec<u8> = t.iter().copied().collect();
    let text = String::from_utf8_lossy(&bytes);
    let text = text.trim();
    if text.is_empty() {
        return String::new();
    }
    let last: Vec<&str> = text.lines().rev().take(5).collect();
    let last: Vec<&str> = last.into_iter().rev().collect();
    format!(
        "; its standard error ends: {}",
        bounded(last.join(" | "), 1024)
    )
}

fn exit_note(child: &mut Child) -> String {
    match child.try_wait() {
        Ok(Some(status)) => format!(" (it exited: {status})"),
        _ => String::new(),
    }
}

/// The reason for a failed start: gives the process a moment to exit (a launcher that refused
/// exits at once) so its status and last words can be quoted.
async fn explained(why: String, child: &mut Child, tail: &Mutex<VecDeque<u8>>) -> String {
    for _ in 0..20 {
        if matches!(child.try_wait(), Ok(Some(_))) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    // The tail's reader may still be reading the last words.
    tokio::time::sleep(Duration::from_millis(50)).await;
    let status = exit_note(child);
    if status.is_empty() {
        let _ = child.kill();
        let _ = child.try_wait();
    }
    format!("{why}{status}{}", stderr_note(tail))
}
