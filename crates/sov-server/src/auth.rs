//! Who is calling, and may they: bearer tokens, Cedar decisions, rate limits.
//!
//! Every request is authenticated or explicitly public: the public routes are
//! [`PUBLIC_ROUTES`] (`GET`/`HEAD /healthz`), with their method only, and they record nothing.
//! Every other request, whatever its method and path (an unknown route or a wrong method too),
//! needs `Authorization: Bearer sov_...`. The [`layer`] authenticates the token against the
//! directory (401 if it is missing, malformed, sent twice, unknown, expired, revoked or its
//! principal disabled), applies the per-principal rate limit (429), and limits failed attempts per
//! peer address (429 before the token is even looked at, so guessing is throttled).
//!
//! Refusals are audit entries, written before the answer leaves, but requests without a valid
//! token cannot grow the record at the rate they are sent: an unauthenticated refusal gets an
//! entry of its own only while its address is under the failed-authentication limit and the node
//! is under [`Limits::unauthenticated_entries`]; the others (the 429s of a throttled address, a
//! flood from many addresses) are counted, and the count becomes one summary entry per
//! [`crate::FLUSH_INTERVAL`] ([`Access::flush_unrecorded`]). So nothing refused goes unrecorded,
//! and the record grows by a bounded number of entries a minute whatever the traffic.
//!
//! Handlers then ask the kernel (`Kernel::authorize`) for each action on each resource: every
//! decision, allow or deny, is a `policy.decision` entry carrying the action, the hash of the
//! policy set in force and the policies that decided it, and an allowed one is the `Permit` the
//! action takes; a denial is a 403 that names the action and the resource and nothing internal.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sov_audit_core::entry::{Kind, Outcome, clean_text};
use sov_kernel::node::NodeEntry;
use sov_policy::token::Malformed;
use sov_policy::{Rate, RateLimiter};

use crate::AppState;
use crate::error::ApiError;
use crate::record;

/// The routes anyone may call without a token: method and path. They record nothing.
pub const PUBLIC_ROUTES: &[(&str, &str)] = &[("GET", "/healthz"), ("HEAD", "/healthz")];

/// Whether a request is to a public route with that route's method.
pub fn is_public(method: &axum::http::Method, path: &str) -> bool {
    PUBLIC_ROUTES
        .iter()
        .any(|(m, p)| *p == path && method.as_str() == *m)
}

/// Rate limits of the HTTP API.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limits {
    /// Requests per principal.
    pub requests: Rate,
    /// Failed authentications per peer address.
    pub failures: Rate,
    /// Entries of their own for unauthenticated refusals, for the whole node; beyond it they are
    /// counted into a summary entry.
    pub unauthenticated_entries: Rate,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            requests: Rate {
                per_minute: 600,
                burst: 60,
            },
            failures: Rate {
                per_minute: 10,
                burst: 10,
            },
            unauthenticated_entries: Rate {
                per_minute: 600,
                burst: 100,
            },
        }
    }
}

/// The HTTP door's own limits: requests per principal, failed authentications per address, and
/// the unauthenticated refusals counted instead of recorded one by one.
#[derive(Debug, Clone)]
pub struct Access {
    inner: Arc<AccessInner>,
}

#[derive(Debug)]
struct AccessInner {
    requests: RateLimiter,
    failures: RateLimiter,
    unrecorded: crate::throttle::Unrecorded,
}

/// How many principals and peers the rate limiters track at most.
const MAX_TRACKED: usize = 65_536;

impl Access {
    /// The door's limits.
    pub fn new(limits: Limits) -> Self {
        Self {
            inner: Arc::new(AccessInner {
                requests: RateLimiter::new(limits.requests, MAX_TRACKED),
                failures: RateLimiter::new(limits.failures, MAX_TRACKED),
                unrecorded: crate::throttle::Unrecorded::new(limits.unauthenticated_entries),
            }),
        }
    }

    /// Records the unauthenticated refusals that were counted instead of recorded one by one
    /// since the last call, as one summary entry (nothing if there were none). Called by
    /// [`crate::serve`] every [`crate::FLUSH_INTERVAL`] and when it stops.
    pub async fn flush_unrecorded(&self, log: &sov_audit::AuditLog) -> Result<(), String> {
        let Some((entry, counts)) = self.inner.unrecorded.take() else {
            return Ok(());
        };
        match entry.record_async(log, "").await {
            Ok(_) => Ok(()),
            Err(e) => {
                self.inner.unrecorded.put_back(counts);
                Err(e.0)
            }
        }
    }

    /// Counts an unauthenticated refusal that gets no entry of its own (see the module docs).
    pub(crate) fn count_unrecorded(&self, peer_key: &str, status: u16) {
        self.inner.unrecorded.count(peer_key, status);
    }
}

/// The peer's address (without the port: one client opens many connections).
fn peer_of(req: &Request) -> Option<SocketAddr> {
    req.extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0)
}

/// The key a peer's failed authentications are counted under: its IPv4 address, or the /64 of
/// its IPv6 address (one host is usually given a whole /64, so counting single addresses would
/// let it rotate through 2^64 of them).
pub(crate) fn peer_key(peer: Option<SocketAddr>) -> String {
    match peer.map(|p| p.ip()) {
        None => "unknown".to_owned(),
        Some(std::net::IpAddr::V4(v4)) => v4.to_string(),
        Some(std::net::IpAddr::V6(v6)) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = v6.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
    }
}

/// The bearer token of a request: `None` if there is no Authorization header. Two headers are
/// malformed, not "the first one wins": a proxy and a client disagreeing about who is calling
/// must not be settled silently.
fn bearer(req: &Request) -> Result<Option<&str>, Malformed> {
    let mut values = req.headers().get_all(header::AUTHORIZATION).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(Malformed::Repeated);
    }
    let value = value.to_str().map_err(|_| Malformed::Scheme)?;
    let (scheme, token) = value.trim().split_once(' ').ok_or(Malformed::Scheme)?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(Malformed::Scheme);
    }
    Ok(Some(token.trim()))
}

/// The middleware (see the module docs).
pub(crate) async fn layer(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    if is_public(req.method(), req.uri().path()) {
        return next.run(req).await;
    }
    let access = state.access();
    let route = clean_text(req.uri().path(), 1024);
    let peer = peer_of(&req);
    let peer_key = peer_key(peer);
    let now = Instant::now();

    // A peer that has failed too often is refused before its token is looked at.
    // Its refusal is counted into the next summary entry, not recorded on its own: the address
    // has used up its entries for now.
    if let Err(wait) = access.inner.failures.peek(&peer_key, now) {
        access.inner.unrecorded.count(&peer_key, 429);
        return answer(
            ApiError::rate_limited(wait, true).into_response(),
            None,
            Some(wait),
        );
    }

    let result = state.kernel().guard().authenticate(bearer(&req));
    let caller = match result {
        Err(e) => {
            return ApiError::internal(&format!("the identity database failed: {e}"))
                .into_response();
        }
        Ok(Err(auth)) => {
            let _ = access.inner.failures.check(&peer_key, now);
            let error = ApiError::unauthenticated(&auth);
            if !access.inner.unrecorded.admit(now) {
                access.inner.unrecorded.count(&peer_key, 401);
                return answer(error.into_response(), None, None);
            }
            let reason = format!("authentication: {}", auth.code());
            let draft = refusal("", &route, peer, 401, &reason, auth.token_id());
            return refuse(&state, draft, error, None).await;
        }
        Ok(Ok(caller)) => caller,
    };
    if let Err(wait) = access.inner.requests.check(caller.name(), now) {
        let draft = refusal(
            caller.name(),
            &route,
            peer,
            429,
            "rate limited: too many requests from this principal",
            caller.token_id(),
        );
        return refuse(
            &state,
            draft,
            ApiError::rate_limited(wait, false),
            Some(wait),
        )
        .await;
    }
    req.extensions_mut().insert(caller);
    next.run(req).await
}

/// A request turned away before it had a caller (or over its principal's rate).
fn refusal(
    principal: &str,
    route: &str,
    peer: Option<SocketAddr>,
    status: u16,
    reason: &str,
    token: Option<&str>,
) -> (String, NodeEntry) {
    let mut entry = NodeEntry::new(Kind::Refusal, route, Outcome::Denied)
        .reason(reason)
        .attr("route", route)
        .attr("status", status);
    if let Some(p) = peer {
        entry = entry.attr("peer", p);
    }
    if let Some(t) = token {
        entry = entry.attr("token", t);
    }
    (principal.to_owned(), entry)
}

/// Records a refusal, then answers it (503 if it cannot be recorded).
async fn refuse(
    state: &AppState,
    (principal, entry): (String, NodeEntry),
    error: ApiError,
    retry_after: Option<Duration>,
) -> Response {
    match entry.record_async(state.kernel().log(), &principal).await {
        Ok(appended) => answer(error.into_response(), Some(&appended), retry_after),
        Err(e) => record::unavailable(&e.0),
    }
}

/// A refusal's answer: its entry's headers (if it has an entry of its own), `Retry-After`, and
/// `WWW-Authenticate` on a 401.
fn answer(
    mut response: Response,
    appended: Option<&sov_audit::Appended>,
    retry_after: Option<Duration>,
) -> Response {
    if let Some(appended) = appended {
        record::set_entry_headers(response.headers_mut(), appended);
    }
    if let Some(wait) = retry_after {
        let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
        if let Ok(v) = HeaderValue::from_str(&secs.max(1).to_string()) {
            response.headers_mut().insert(header::RETRY_AFTER, v);
        }
    }
    if response.status() == axum::http::StatusCode::UNAUTHORIZED {
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    }
    response
}
