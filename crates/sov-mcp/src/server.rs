//! One MCP server's life: started through the seal's launcher ([`start`], before the node's
//! own seal), connected with rmcp ([`Started::connect`], inside the async runtime: over its
//! standard streams, or over streamable HTTP through the egress gate for a remote server),
//! called with a bounded wait ([`Server::call`]).

use std::collections::VecDeque;
use std::path::Path;
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rmcp::model::{CallToolRequestParams, CallToolResult, Tool as RemoteTool};
use rmcp::service::{RoleClient, RunningService, ServiceExt};
use rmcp::transport::async_rw::AsyncRwTransport;
use rmcp::transport::common::client_side_sse::FixedInterval;
use rmcp::transport::streamable_http_client::{
    StreamableHttpClientTransport, StreamableHttpClientTransportConfig,
};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use sov_tools::ToolError;
use tokio::io::AsyncReadExt;

use crate::declare::{Declared, Remote, Transport};
use crate::http::{Faults, GateClient, Limits, MAX_ERROR_BODY};

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

/// A server made ready before the node's seal, not yet spoken to: a process started by the
/// launcher, or a remote server's endpoint and credentials.
#[derive(Debug)]
pub struct Started {
    declared: Declared,
    how: How,
}

#[derive(Debug)]
enum How {
    Process(Child),
    Remote {
        remote: Remote,
        bearer: Option<String>,
    },
}

/// Makes `declared` ready: a stdio server is started through the seal's launcher `sov` (the
/// running binary), with `scratch` as its own folder (made owner-only if missing); a remote
/// server's bearer token file is read. Synchronous and thread-free: `sov serve` calls it
/// before it applies its own seal.
pub fn start(declared: &Declared, scratch: &Path, sov: &Path) -> Result<Started, McpError> {
    let fail = |reason: String| McpError {
        server: declared.name.clone(),
        reason,
    };
    declared.check().map_err(fail)?;
    if let Transport::Http(remote) = declared.transport().map_err(fail)? {
        let bearer = declared.bearer_token().map_err(fail)?;
        return Ok(Started {
            declared: declared.clone(),
            how: How::Remote { remote, bearer },
        });
    }
    make_private_dir(scratch).map_err(|e| fail(format!("{}: {e}", scratch.display())))?;
    let sandbox = declared
        .sandbox(scratch)
        .ok_or_else(|| fail("a stdio server needs a command".into()))?;
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
        how: How::Process(child),
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
    /// The process of a stdio server (none for a remote one).
    child: Option<Mutex<Child>>,
    /// A remote server's event stream faults (none for a stdio one).
    faults: Option<Faults>,
    stderr: Arc<Mutex<VecDeque<u8>>>,
    timeout: Duration,
}

impl Started {
    /// The process id of the launcher (the server, once it has started); none for a remote
    /// server.
    pub fn pid(&self) -> Option<u32> {
        match &self.how {
            How::Process(child) => Some(child.id()),
            How::Remote { .. } => None,
        }
    }

    /// Speaks to the server: the MCP handshake and its tool list, within [`START_TIMEOUT`]; a
    /// remote server through `gate` (each of its requests a recorded connection). A server
    /// that does not answer, answers wrongly or exits is an error that quotes the end of its
    /// standard error.
    pub async fn connect(self, gate: &sov_egress::Gate) -> Result<Server, McpError> {
        let name = self.declared.name.clone();
        let fail = |reason: String| McpError {
            server: name.clone(),
            reason,
        };
        let timeout = Duration::from_millis(self.declared.timeout_ms);
        let tail = Arc::new(Mutex::new(VecDeque::new()));
        let (served, child, faults) = match self.how {
            How::Process(mut child) => {
                let served = serve_stdio(&mut child, &tail).await;
                (served, Some(child), None)
            }
            How::Remote { remote, bearer } => {
                let client = gate_client(gate, &self.declared, &remote);
                let faults = client.faults();
                let served = serve_http(client, &remote, bearer).await;
                (served, None, Some(faults))
            }
        };
        let service = match served {
            Ok(service) => service,
            Err(why) => {
                let why = match child {
                    Some(mut child) => explained(why, &mut child, &tail).await,
                    None => why,
                };
                return Err(fail(why));
            }
        };
        let mut server = Server {
            declared: self.declared,
            info: String::new(),
            tools: Vec::new(),
            tools_sha256: String::new(),
            service,
            child: child.map(Mutex::new),
            faults,
            stderr: tail,
            timeout,
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

/// The MCP handshake with a started process over its standard streams (its standard error's
/// end kept in `tail`), within [`START_TIMEOUT`]; `Err` says why in words.
async fn serve_stdio(
    child: &mut Child,
    tail: &Arc<Mutex<VecDeque<u8>>>,
) -> Result<RunningService<RoleClient, ()>, String> {
    let pipes = (child.stdin.take(), child.stdout.take(), child.stderr.take());
    let (Some(stdin), Some(stdout), Some(stderr)) = pipes else {
        return Err("its standard streams were not connected".into());
    };
    let io = |e: std::io::Error| format!("its standard streams: {e}");
    let stdin = tokio::process::ChildStdin::from_std(stdin).map_err(io)?;
    let stdout = tokio::process::ChildStdout::from_std(stdout).map_err(io)?;
    let stderr = tokio::process::ChildStderr::from_std(stderr).map_err(io)?;
    tokio::spawn(keep_tail(stderr, tail.clone()));
    let transport = AsyncRwTransport::new_client(stdout, stdin).with_max_line_length(MAX_MESSAGE);
    handshake(().serve(transport)).await
}

/// The HTTP client of a remote server, through `gate`, recorded as `mcp NAME`.
fn gate_client(gate: &sov_egress::Gate, declared: &Declared, remote: &Remote) -> GateClient {
    // One exchange (the connection and the answer's head) may take the call's whole time.
    let exchange = Duration::from_millis(declared.timeout_ms).max(Duration::from_secs(5));
    let limits = Limits {
        json: MAX_MESSAGE,
        event: MAX_MESSAGE,
        error: MAX_ERROR_BODY,
    };
    let what = format!("mcp {}", declared.name);
    GateClient::new(gate.clone(), remote.addr, &what, exchange, limits)
}

/// The MCP handshake with a remote server over streamable HTTP, through `client`.
async fn serve_http(
    client: GateClient,
    remote: &Remote,
    bearer: Option<String>,
) -> Result<RunningService<RoleClient, ()>, String> {
    let mut config = StreamableHttpClientTransportConfig::with_uri(remote.url.clone());
    config.auth_header = bearer;
    config.max_sse_event_size = MAX_MESSAGE;
    config.max_json_response_size = MAX_MESSAGE;
    config.max_error_response_size = MAX_ERROR_BODY;
    config.max_concurrent_requests = 4;
    // The server's event stream is reopened a few times, then given up (each try is recorded).
    let mut retry = FixedInterval::default();
    retry.max_times = Some(3);
    config.retry_config = Arc::new(retry);
    // A session the server ends is not silently begun again: its tool list could differ from
    // the one recorded at start. Calls fail, saying so, until the node is restarted.
    config.reinit_on_expired_session = false;
    let transport = StreamableHttpClientTransport::with_client(client, config);
    handshake(().serve(transport)).await
}

async fn handshake<F, E>(serving: F) -> Result<RunningService<RoleClient, ()>, String>
where
    F: std::future::Future<Output = Result<RunningService<RoleClient, ()>, E>>,
    E: std::fmt::Display,
{
    match tokio::time::timeout(START_TIMEOUT, serving).await {
        Ok(Ok(service)) => Ok(service),
        Ok(Err(e)) => Err(format!("the MCP handshake failed: {e}")),
        Err(_) => Err(format!(
            "no answer to the MCP handshake within {} s",
            START_TIMEOUT.as_secs()
        )),
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
                let e = e.to_string();
                return Err(ToolError::Failed(self.explain(format!(
                    "the MCP server `{name}` failed: {}",
                    innermost(&e)
                ))));
            }
            Ok(Ok(answer)) => answer,
        };
        answer_value(answer)
    }

    /// `why`, with the process's exit status if it has exited and the end of its standard
    /// error if it wrote any, or a remote server's last event stream fault.
    fn explain(&self, why: String) -> String {
        let mut status = match self.child.as_ref().map(Mutex::lock) {
            Some(Ok(mut child)) => exit_note(&mut child),
            _ => String::new(),
        };
        if let Some(fault) = self.faults.as_ref().and_then(Faults::take) {
            status = format!("{status}; its event stream ended: {fault}");
        }
        format!("{why}{status}{}", stderr_note(&self.stderr))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // Its standard input closes with the connection, which asks a stdio server to exit;
        // the kill may be refused by the node's seal (signals are scoped to its own domain),
        // and the parent-death signal ends it with the node.
        if let Some(Ok(mut child)) = self.child.as_ref().map(Mutex::lock) {
            let _ = child.kill();
            let _ = child.try_wait();
        }
    }
}

/// The innermost part of an rmcp error's text: its transport errors wrap the cause in the
/// transport's type name (`Transport [rmcp::transport::worker::…] error: CAUSE`).
fn innermost(text: &str) -> &str {
    text.rsplit_once("] error: ")
        .map_or(text, |(_, cause)| cause)
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
