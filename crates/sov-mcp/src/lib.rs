//! MCP tool servers: declared by the owner in `[[tools.mcp]]`, each started by the seal's
//! launcher in a confinement of its own and spoken to with the official `rmcp` client over its
//! standard streams, or reached over streamable HTTP through the egress gate; their tools
//! offered to the node as `<server>__<tool>`.
//!
//! - [`declare`]: the declaration (command, arguments, the executable's SHA-256, the paths it
//!   may read and write, its environment, its time limit, an optional pinned tool list).
//! - [`server`]: [`start`] (the launcher's process, before the node's own seal),
//!   [`Started::connect`] (handshake and tool list, hashed), [`Server::call`] (bounded).
//! - [`http`]: rmcp's streamable HTTP client over the egress gate's connections, bounded.
//! - [`tool`]: a server's tool behind the kernel's [`sov_tools::Tool`] seam.
//!
//! What a started server may do is the launcher's ([`sov_seal::launch`]): no network, its own
//! files and the declared paths, the seal's seccomp filters. A remote server is reached only at
//! an address and port declared in `[seal] outbound`, each request over a connection the gate
//! decided and recorded. This crate decides nothing and records
//! nothing: the kernel authorises and receipts every call, `sov serve` records each start.

pub mod declare;
pub mod http;
pub mod server;
pub mod tool;

pub use declare::{Declared, Remote, Transport};
/// The MCP shapes a server sends, as rmcp decodes them.
pub use rmcp::model::{CallToolResult, ListToolsResult, Tool as RemoteTool};
pub use server::{McpError, Server, Started, start};
pub use tool::{McpTool, specs, tools};
