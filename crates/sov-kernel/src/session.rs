//! Signing in and out: a session is opened with a token and ends by signing out, each a
//! `session` entry (`change` = `session.open` / `session.close`) naming the principal, the token
//! and the session. What a session is, and how it ends by itself, is `sov_policy::session`'s;
//! the token is authenticated (and a refused one recorded) by the door, as any bearer token is.

use sov_audit_core::entry::{Kind, Outcome, rfc3339_ms};
use sov_policy::{Caller, Opened};

use crate::Kernel;
use crate::exchange::{Door, Exchange};
use crate::infer::KernelError;
use crate::node::NodeEntry;

/// A session opened, with its entry.
#[derive(Debug)]
pub struct SignedIn {
    /// Who signed in (acting through the new session).
    pub caller: Caller,
    /// The session's secrets and what may be shown of it.
    pub opened: Opened,
    /// The `session.open` entry.
    pub appended: sov_audit_core::record::Appended,
}

impl Kernel {
    /// Opens a session for `caller` (just authenticated with a bearer token) at `door`,
    /// recorded before it is handed out: a session whose entry cannot be written is closed again.
    pub async fn sign_in(&self, caller: Caller, door: &Door) -> Result<SignedIn, KernelError> {
        let (caller, opened) = self
            .guard()
            .open_session(caller)
            .map_err(KernelError::Store)?;
        let info = &opened.info;
        let mut entry = NodeEntry::new(Kind::Session, door.route.clone(), Outcome::Ok)
            .attr("change", "session.open")
            .attr("token", &info.token)
            .attr("session", &info.id)
            .attr("expires_at", rfc3339_ms(info.expires_ms))
            .attr("idle_timeout_s", info.idle.as_secs())
            .attr("route", &door.route);
        if let Some(peer) = &door.peer {
            entry = entry.attr("peer", peer);
        }
        match entry.record_async(self.log(), caller.name()).await {
            Ok(appended) => Ok(SignedIn {
                caller,
                opened,
                appended,
            }),
            Err(e) => {
                self.guard().sign_out(&caller);
                Err(KernelError::Unrecorded(e))
            }
        }
    }

    /// Ends the session the request came through; `false` if it came with a token, not a
    /// session (nothing to end). The request's own entry, of kind `session`, records it.
    pub fn sign_out(&self, ex: &mut Exchange) -> bool {
        ex.set_kind(Kind::Session);
        ex.attr("change", "session.close");
        self.guard().sign_out(ex.caller())
    }
}
