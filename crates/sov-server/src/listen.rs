//! The accept loop: HTTP/1.1 connections with bounded time and bounded numbers.
//!
//! axum's own `serve` has no timeouts and no connection limits, so a client could hold a
//! connection (and its task and descriptor) for as long as it liked by trickling a header or a
//! body, and the only bound was the process's descriptor limit. Here:
//! - **Header timeout** ([`Timeouts::header`]): a request's head must arrive within it, and an
//!   idle keep-alive connection is closed when it runs out while waiting for the next request
//!   (hyper starts the timer when it begins to wait for a head).
//! - **Body timeout** ([`Timeouts::body`]): enforced where the body is read (the audit layer),
//!   answered 408.
//! - **Connections**: at most [`ServerConfig::max_connections`] at once, and at most
//!   [`ServerConfig::max_connections_per_address`] from one address (an IPv6 client is counted by
//!   its /64). A connection over a limit is answered 429 in OpenAI's shape and closed, without
//!   reading it; it is counted into the next unauthenticated-refusals summary entry.
//! - Only HTTP/1.1 (and 1.0) is served: every client of the OpenAI API speaks it, and one
//!   protocol is one set of limits to get right.
//!
//! Shutdown is graceful: the listener closes, each connection finishes its request in flight,
//! and the counted refusals are recorded.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::io::AsyncWriteExt as _;
use tokio::sync::watch;
use tower::ServiceExt as _;

use crate::{AppState, ServerConfig, app};

/// How often the unauthenticated refusals counted without an entry of their own are recorded
/// as one summary entry.
pub const FLUSH_INTERVAL: Duration = Duration::from_secs(10);

/// Time limits of a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// A request's head (request line and headers) must arrive within this; it also closes a
    /// keep-alive connection that waits this long for its next request.
    pub header: Duration,
    /// A request's body must arrive within this, whole.
    pub body: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            header: Duration::from_secs(10),
            body: Duration::from_secs(30),
        }
    }
}

/// Open connections, in all and by address.
#[derive(Debug)]
struct Connections {
    max: usize,
    per_address: usize,
    open: Mutex<(usize, HashMap<String, usize>)>,
}

/// One admitted connection; gives its place back when dropped.
struct Slot {
    conns: Arc<Connections>,
    key: String,
}

impl Connections {
    fn admit(self: &Arc<Self>, key: &str) -> Option<Slot> {
        let mut open = match self.open.lock() {
            Ok(o) => o,
            Err(p) => p.into_inner(),
        };
        let (total, by) = &mut *open;
        let mine = by.get(key).copied().unwrap_or(0);
        if *total >= self.max || mine >= self.per_address {
            return None;
        }
        *total += 1;
        by.insert(key.to_owned(), mine + 1);
        Some(Slot {
            conns: Arc::clone(self),
            key: key.to_owned(),
        })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = match self.conns.open.lock() {
            Ok(o) => o,
            Err(p) => p.into_inner(),
        };
        let (total, by) = &mut *open;
        *total = total.saturating_sub(1);
        if let Some(n) = by.get_mut(&self.key) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                by.remove(&self.key);
            }
        }
    }
}

/// The answer to a connection over a limit.
const TOO_MANY: &[u8] = b"HTTP/1.1 429 Too Many Requests\r\ncontent-type: application/json\r\nconnection: close\r\nretry-after: 1\r\ncontent-length: 150\r\n\r\n{\"error\":{\"message\":\"Too many open connections from this address or to this server.\",\"type\":\"requests\",\"param\":null,\"code\":\"rate_limit_exceeded\"}}";

/// Serves `app` on an already-bound listener until `shutdown` completes.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let config: ServerConfig = state.inner.config.clone();
    let router = app(state.clone());
    let conns = Arc::new(Connections {
        max: config.max_connections.max(1),
        per_address: config.max_connections_per_address.max(1),
        open: Mutex::new((0, HashMap::new())),
    });
    // Dropped when the server stops accepting: each connection then shuts down gracefully.
    let (stop_tx, stop_rx) = watch::channel(());
    // Each connection holds a receiver; the loop waits for them all to go.
    let (done_tx, done_rx) = watch::channel(());
    let flusher = tokio::spawn(flush_every(state.clone()));
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            () = &mut shutdown => break,
        };
        let (stream, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                // Out of descriptors, or a connection reset before it was accepted: wait a
                // little instead of spinning, and go on.
                tracing::warn!(error = %e, "accepting a connection failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let key = crate::auth::peer_key(Some(peer));
        let Some(slot) = conns.admit(&key) else {
            state.access().count_unrecorded(&key, 429);
            tokio::spawn(async move {
                let mut stream = stream;
                let _ =
                    tokio::time::timeout(Duration::from_secs(1), stream.write_all(TOO_MANY)).await;
            });
            continue;
        };
        let service = router
            .clone()
            .map_request(move |mut req: hyper::Request<Incoming>| {
                req.extensions_mut().insert(ConnectInfo(peer));
                req.map(Body::new)
            });
        let service = TowerToHyperService::new(service);
        let stop = stop_rx.clone();
        let done = done_rx.clone();
        let header = config.timeouts.header;
        tokio::spawn(async move {
            let _slot = slot;
            let _done = done;
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(header)
                .keep_alive(true);
            let conn = builder.serve_connection(TokioIo::new(stream), service);
            let mut conn = std::pin::pin!(conn);
            let mut stop = stop;
            let mut stopping = false;
            loop {
                tokio::select! {
                    result = conn.as_mut() => {
                        if let Err(e) = result {
                            tracing::debug!(error = %e, %peer, "connection ended with an error");
                        }
                        break;
                    }
                    changed = stop.changed(), if !stopping => {
                        let _: Result<(), _> = changed;
                        stopping = true;
                        conn.as_mut().graceful_shutdown();
                    }
                }
            }
        });
    }
    drop(listener);
    drop(stop_tx);
    drop(done_rx);
    done_tx.closed().await;
    flusher.abort();
    if let Err(e) = state.access().flush_unrecorded(state.kernel().log()).await {
        tracing::error!(error = %e, "failed to record the last unauthenticated-refusals summary");
    }
    Ok(())
}

/// Records the counted unauthenticated refusals every [`FLUSH_INTERVAL`].
async fn flush_every(state: AppState) -> Infallible {
    let mut tick = tokio::time::interval(FLUSH_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if let Err(e) = state.access().flush_unrecorded(state.kernel().log()).await {
            tracing::error!(error = %e, "failed to record the unauthenticated-refusals summary; the counts are kept for the next try");
        }
    }
}
