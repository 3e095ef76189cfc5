//! HTTP/1.1 over a connection the gate hands out: the one place Sovereign speaks HTTP as a
//! client (`tests/egress_lint.rs` allows `hyper::client` here and in the gate only).
//!
//! [`exchange`] asks the gate for a connection to the destination (checked against
//! `[seal] outbound` and recorded, as every connection is), sends one request over it with
//! hyper's HTTP/1.1 client, and returns the response once its head has arrived, within the
//! timeout. Each exchange has a connection of its own, so every exchange is one
//! `egress.decision` entry; the connection closes when the response's body is dropped or read
//! to its end. The body is the caller's to read, and to bound.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
/// A response's body as it arrives.
pub use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;

use crate::gate::{EgressError, Gate};

/// Why an exchange did not return a response.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// The gate did not hand out a connection (undeclared, offline, failed, unrecorded).
    #[error(transparent)]
    Egress(#[from] EgressError),
    /// The peer broke HTTP/1.1 or closed the connection.
    #[error("HTTP with {addr}: {source}")]
    Protocol {
        /// The destination.
        addr: SocketAddr,
        /// What hyper found.
        source: hyper::Error,
    },
    /// No response head within the timeout.
    #[error("{addr} sent no response within {} ms", .timeout.as_millis())]
    Timeout {
        /// The destination.
        addr: SocketAddr,
        /// The time waited, the connection included.
        timeout: Duration,
    },
}

/// The longest a response head may be (hyper's read buffer, which bounds the head it parses).
pub const MAX_HEAD: usize = 64 * 1024;

/// Sends `request` to `addr` for `what` (the caller's use, recorded) on a new connection from
/// `gate`, and returns the response once its head has arrived; the connection and the head
/// together may take at most `timeout`. The body streams after that, bounded by the caller.
pub async fn exchange(
    gate: &Gate,
    addr: SocketAddr,
    what: &str,
    timeout: Duration,
    request: Request<Full<Bytes>>,
) -> Result<Response<Incoming>, HttpError> {
    let attempt = async {
        let stream = gate.connect(addr, what, timeout).await?;
        let protocol = |source| HttpError::Protocol { addr, source };
        let (mut sender, connection) = hyper::client::conn::http1::Builder::new()
            .max_buf_size(MAX_HEAD)
            .handshake(TokioIo::new(stream))
            .await
            .map_err(protocol)?;
        // The connection is driven beside the caller until the body is done or dropped.
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!("HTTP connection to {addr} ended: {e}");
            }
        });
        sender.send_request(request).await.map_err(protocol)
    };
    match tokio::time::timeout(timeout, attempt).await {
        Ok(result) => result,
        Err(_) => Err(HttpError::Timeout { addr, timeout }),
    }
}
