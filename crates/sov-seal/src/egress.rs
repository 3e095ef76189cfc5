//! The egress gate: the only code in Sovereign that opens outbound connections (upstream
//! engines, tool servers, anything later). It checks the destination against the declaration
//! (address and port; the kernel's Landlock rules only know the port) and records every
//! attempt, allowed or refused, as an `egress.decision` entry in the audit record before the
//! caller gets the connection. A test (`tests/egress_lint.rs`) fails the build when
//! network-opening calls appear anywhere else.

use std::net::{IpAddr, SocketAddr, TcpStream};
use std::time::Duration;

use sov_audit_core::record::{Draft, Record};
use sov_audit_core::entry::{Kind, Outcome, clean_text};

use crate::declare::Declaration;

/// Why the gate did not hand out a connection.
#[derive(Debug, thiserror::Error)]
pub enum EgressError {
    /// The destination is not declared (or the seal is offline): refused by the gate.
    #[error("{0} is not declared in [seal] outbound: refused (open it with `sov seal open`)")]
    Undeclared(SocketAddr),
    /// Offline: nothing leaves.
    #[error("the seal is offline: no outbound connection (to {0})")]
    Offline(SocketAddr),
    /// Declared, but the connection failed (refused by the peer or by the kernel, unreachable).
    #[error("connecting to {addr} failed: {source}")]
    Connect {
        /// The destination.
        addr: SocketAddr,
        /// What the kernel said.
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
    log: std::sync::Arc<dyn Record>,
    principal: String,
}

impl Gate {
    /// A gate for `declaration` (the one in force since start), recording into `log` as
    /// `principal` (the node itself: `system`).
    pub fn new(
        declaration: Declaration,
        log: std::sync::Arc<dyn Record>,
        principal: impl Into<String>,
    ) -> Self {
        Self {
            declaration,
            log,
            principal: principal.into(),
        }
    }

    /// The declared purpose of `addr`, if it is a declared destination.
    pub fn permitted(&self, addr: SocketAddr) -> Option<&str> {
        if self.declaration.offline {
            return None;
        }
        self.declaration
            .outbound
            .iter()
            .find(|d| {
                d.port == addr.port()
                    && d.host
                        .parse::<IpAddr>()
                        .is_ok_and(|ip| same_ip(ip, addr.ip()))
            })
            .map(|d| d.purpose.as_str())
    }

    /// Opens a TCP connection to `addr` for `what` (the caller's use, e.g. `upstream engine
    /// cardiology`), if declared; the attempt and its outcome are recorded first.
    pub fn connect(
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
            self.record(addr, what, Outcome::Denied, &err.to_string(), None)?;
            return Err(err);
        };
        let purpose = purpose.to_owned();
        match TcpStream::connect_timeout(&addr, timeout) {
            Ok(stream) => {
                self.record(addr, what, Outcome::Ok, "", Some(&purpose))?;
                Ok(stream)
            }
            Err(source) => {
                let reason = if crate::probe::refused_by_rule(&source) {
                    format!("declared, but refused by the kernel: {source}")
                } else {
                    format!("declared; the connection failed: {source}")
                };
                self.record(addr, what, Outcome::Error, &reason, Some(&purpose))?;
                Err(EgressError::Connect { addr, source })
            }
        }
    }

    fn record(
        &self,
        addr: SocketAddr,
        what: &str,
        outcome: Outcome,
        reason: &str,
        purpose: Option<&str>,
    ) -> Result<(), EgressError> {
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
        self.log
            .append(draft)
            .map(drop)
            .map_err(|e| EgressError::Record(addr, e.to_string()))
    }
}

/// IPv4 and its IPv4-mapped IPv6 form are the same destination.
fn same_ip(a: IpAddr, b: IpAddr) -> bool {
    a.to_canonical() == b.to_canonical()
}
