//! The gate itself: the one file allowed to open outbound connections (`tests/egress_lint.rs`).
//!
//! The order is fixed: check the declaration, connect only if declared, record the outcome,
//! and only once the entry is durable hand out the stream. A dropped future hands out nothing:
//! the stream, if any, is closed with it.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use sov_audit_core::entry::{Kind, Outcome, clean_text};
use sov_audit_core::record::{Appended, Draft, Record, RecordError};
use sov_seal::declare::Declaration;
use tokio::net::TcpStream;

/// Why the gate did not hand out a connection.
#[derive(Debug, thiserror::Error)]
pub enum EgressError {
    /// The destination is not declared (or the seal is offline): refused by the gate.
    #[error("{0} is not declared in [seal] outbound: refused (open it with `sov seal open`)")]
    Undeclared(SocketAddr),
    /// Offline: nothing leaves.
    #[error("the seal is offline: no outbound connection (to {0})")]
    Offline(SocketAddr),
    /// Declared, but the connection failed (refused by the peer or by the kernel, unreachable,
    /// no answer within the timeout).
    #[error("connecting to {addr} failed: {source}")]
    Connect {
        /// The destination.
        addr: SocketAddr,
        /// What the kernel said (`TimedOut` when the timeout passed).
        source: std::io::Error,
    },
    /// The attempt could not be recorded, so no connection is made.
    #[error("the audit record could not be written, so {0} is not contacted: {1}")]
    Record(SocketAddr, String),
}

/// The gate, with the declaration in force and the record it writes to.
#[derive(Debug, Clone)]
pub struct Gate {
    declaration: Declaration,
    log: Arc<dyn Record>,
    principal: String,
}

impl Gate {
    /// A gate for `declaration` (the one in force since start), recording into `log` as
    /// `principal` (the node itself: `system`).
    pub fn new(
        declaration: Declaration,
        log: Arc<dyn Record>,
        principal: impl Into<String>,
    ) -> Self {
        Self {
            declaration,
            log,
            principal: principal.into(),
        }
    }

    /// The declared purpose of `addr`, if it is a declared destination (never when offline).
    pub fn permitted(&self, addr: SocketAddr) -> Option<&str> {
        self.declaration
            .destination(addr)
            .map(|d| d.purpose.as_str())
    }

    /// Opens a TCP connection to `addr` for `what` (the caller's use, e.g. `upstream engine
    /// cardiology`), if declared, giving up after `timeout`. The attempt and its outcome are
    /// recorded, and the entry is durable, before the stream is returned; when the record
    /// fails, the result is [`EgressError::Record`] (a connection made is closed).
    pub async fn connect(
        &self,
        addr: SocketAddr,
        what: &str,
        timeout: Duration,
    ) -> Result<TcpStream, EgressError> {
        let Some(purpose) = self.permitted(addr) else {
            let err = if self.declaration.offline {
                EgressError::Offline(addr)
            } else {
                EgressError::Undeclared(addr)
            };
            self.record(addr, what, Outcome::Denied, &err.to_string(), None)
                .await?;
            return Err(err);
        };
        let purpose = purpose.to_owned();
        let attempt = match tokio::time::timeout(timeout, TcpStream::connect(addr)).await {
            Ok(result) => result,
            Err(_) => Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("no answer within {} ms", timeout.as_millis()),
            )),
        };
        match attempt {
            Ok(stream) => {
                self.record(addr, what, Outcome::Ok, "", Some(&purpose))
                    .await?;
                Ok(stream)
            }
            Err(source) => {
                let reason = if sov_seal::probe::refused_by_rule(&source) {
                    format!("declared, but refused by the kernel: {source}")
                } else {
                    format!("declared; the connection failed: {source}")
                };
                self.record(addr, what, Outcome::Error, &reason, Some(&purpose))
                    .await?;
                Err(EgressError::Connect { addr, source })
            }
        }
    }

    /// Records one attempt and waits, without blocking the runtime, until it is durable.
    async fn record(
        &self,
        addr: SocketAddr,
        what: &str,
        outcome: Outcome,
        reason: &str,
        purpose: Option<&str>,
    ) -> Result<Appended, EgressError> {
        let mut draft = Draft::new(
            Kind::EgressDecision,
            self.principal.clone(),
            format!("tcp://{addr}"),
            outcome,
        );
        draft.reason = clean_text(reason, 2048);
        draft.attrs.push(("use".into(), clean_text(what, 255)));
        if let Some(p) = purpose {
            draft.attrs.push(("purpose".into(), clean_text(p, 255)));
        }
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.log.submit(
            draft,
            Box::new(move |result| {
                // The receiver is gone only when the caller dropped the attempt.
                let _ = tx.send(result);
            }),
        );
        rx.await
            .unwrap_or_else(|_| Err(RecordError("the record stopped before answering".into())))
            .map_err(|e| EgressError::Record(addr, e.to_string()))
    }
}
