//! The egress gate: the only code in Sovereign that opens outbound connections.
//!
//! Whatever the node contacts (an upstream engine, an MCP tool server over HTTP, anything
//! later) is reached through [`Gate::connect`], which
//!
//! 1. checks the destination, address and port, against `[seal] outbound` (the
//!    [`sov_seal::Declaration`] in force since start; with `offline = true` nothing passes);
//! 2. tries the connection only if it is declared;
//! 3. records the attempt and its outcome as an `egress.decision` entry (`ok`, `denied` or
//!    `error`, with the caller's `use` and the declared `purpose`) and waits until the entry is
//!    durable; only then is the connection handed out. A record that cannot be written means
//!    no connection: nothing leaves unrecorded.
//!
//! A test (`tests/egress_lint.rs`) fails the build when code that opens connections, sends
//! datagrams or resolves names appears anywhere else in the workspace's sources (the seal's
//! probes aside, which try what the kernel must refuse), or when a product crate depends on a
//! network client library.
//!
//! # Why a crate of its own
//!
//! Its callers are async: upstream engines and MCP servers are reached from tokio tasks of the
//! server, so the connect is a tokio one and the recording does not block the runtime (the
//! entry goes through [`Record::submit`](sov_audit_core::record::Record::submit) and the task
//! awaits the answer). `sov-seal` stays free of tokio: the declaration, the kernel layers and
//! the report are synchronous, and `sov seal status` needs no runtime. And the one place that
//! opens connections is small enough to read whole.
//!
//! # The kernel and the gate
//!
//! The kernel layers of `sov-seal` bound what any code in the process can reach, the gate
//! included: Landlock lets TCP `connect()` through only to the declared **ports** (towards any
//! address), seccomp refuses every other way to a peer (UDP, raw and Unix sockets, MPTCP, TCP
//! Fast Open, `TCP_REPAIR`), and with `offline = true` a network namespace leaves nothing to
//! reach. The gate checks what the kernel cannot, the **address and port** together, and
//! records. A destination declared to the gate but missing from the kernel's rules is refused
//! by the kernel; the gate records that as an `error` whose reason says so.
//!
//! [`http::exchange`] speaks HTTP/1.1 (hyper's client) over a connection the gate hands out:
//! one request per connection, so every exchange is recorded like any connection.
//!
//! Destinations are IP addresses, never names: the gate takes a [`std::net::SocketAddr`] and
//! resolves nothing.

mod gate;
pub mod http;

pub use gate::{EgressError, Gate};
