//! Who is calling, and may they: bearer tokens, Cedar decisions, rate limits.
//!
//! Every request is authenticated or explicitly public: the public routes are
//! [`PUBLIC_ROUTES`] (`GET`/`HEAD /healthz` and the console's files), with their method only,
//! and they record nothing.
//! Every other request, whatever its method and path (an unknown route or a wrong method too),
//! needs `Authorization: Bearer sov_...` or a console session's cookie (not both; see
//! [`crate::session`], whose sign-in takes the token in its body and is authenticated here
//! too). The [`layer`] authenticates the token against the directory (401 if it is missing,
//! malformed, sent twice, unknown, expired, revoked or its principal disabled) or the session
//! (401 if it is unknown, idle, expired or its token no longer admits; 403 for a state-changing
//! request without its CSRF token or from another site), applies the per-principal rate limit
//! (429), and limits failed attempts per peer address (429 before the token or the cookie is even
//! looked at, so guessing is throttled).
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

/// The routes anyone may call without a token: method and path (a path ending in `/*`: every
/// path under it). They record nothing: the health check, and the console's files, which hold
/// no data (its pages ask the API, signed in, for everything they show).
pub const PUBLIC_ROUTES: &[(&str, &str)] = &[
    ("GET", "/healthz"),
    ("HEAD", "/healthz"),
    ("GET", "/console"),
    ("HEAD", "/console"),
    ("GET", "/console/*"),
    ("HEAD", "/console/*"),
];

/// Whether a request is to a public route with that route's method.
pub fn is_public(method: &axum::http::Method, path: &str) -> bool {
    PUBLIC_ROUTES.iter().any(|(m, p)| {
        let matches = match p.strip_suffix('*') {
            Some(prefix) => path.starts_with(prefix),
            None => *p == path,
        };
        matches && method.as_str() == *m
    })
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

/// What a request presents to prove who is calling.
enum Presented<'a> {
    /// `Authorization: Bearer` (or nothing, or a malformed header).
    Bearer(Result<Option<&'a str>, Malformed>),
    /// The console's session cookie.
    Session(&'a str),
}

/// The request's credential: a bearer token or a session cookie, not both.
fn presented(req: &Request) -> Presented<'_> {
    let bearer = bearer(req);
    match crate::session::cookie(req.headers()) {
        Ok(None) => Presented::Bearer(bearer),
        Ok(Some(_)) if !matches!(bearer, Ok(None)) => {
            Presented::Bearer(Err(Malformed::TokenAndSession))
        }
        Ok(Some(secret)) => Presented::Session(secret),
        // The cookie sent twice: refused like a malformed session.
        Err(()) => Presented::Session(""),
    }
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

    if crate::session::is_sign_in(&req) {
        return sign_in(&state, req, &route, peer, &peer_key, now).await;
    }

    let guard = state.kernel().guard();
    let caller = match presented(&req) {
        Presented::Bearer(token) => match guard.authenticate(token) {
            Err(e) => return store_failed(&e),
            Ok(Err(auth)) => {
                let error = ApiError::unauthenticated(&auth);
                let reason = format!("authentication: {}", auth.code());
                let draft = refusal("", &route, peer, 401, &reason, auth.token_id());
                return failed(&state, &peer_key, now, draft, error).await;
            }
            Ok(Ok(caller)) => caller,
        },
        Presented::Session(secret) => match guard.resume(secret) {
            Err(e) => return store_failed(&e),
            Ok(Err(ended)) => {
                let error = ApiError::session_refused(&ended);
                let reason = format!("session: {}", ended.code());
                let mut draft = refusal("", &route, peer, 401, &reason, None);
                if let Some(id) = ended.session_id() {
                    draft.1 = draft.1.attr("session", id);
                }
                let secure = crate::session::behind_tls(req.headers());
                let mut response = failed(&state, &peer_key, now, draft, error).await;
                crate::session::clear_cookie(response.headers_mut(), secure);
                return response;
            }
            Ok(Ok(caller)) => {
                let checked = if crate::session::is_safe(req.method()) {
                    Ok(())
                } else {
                    crate::session::check_unsafe(req.headers(), secret)
                };
                if let Err(error) = checked {
                    let code = error.refusal().code.unwrap_or_default();
                    let reason = format!("session: {code}");
                    let (principal, entry) =
                        refusal(caller.name(), &route, peer, 403, &reason, caller.token_id());
                    let entry = entry.attr("session", caller.session_id().unwrap_or_default());
                    return refuse(&state, (principal, entry), error, None).await;
                }
                caller
            }
        },
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

/// 500: the identity database failed (not the caller's fault, so not a 401).
fn store_failed(e: &sov_policy::StoreError) -> Response {
    ApiError::internal(&format!("the identity database failed: {e}")).into_response()
}

/// A failed authentication: counted against the address, and recorded while the address and
/// the node are under their limits (counted into the summary entry otherwise).
async fn failed(
    state: &AppState,
    peer_key: &str,
    now: Instant,
    draft: (String, NodeEntry),
    error: ApiError,
) -> Response {
    let access = state.access();
    let _ = access.inner.failures.check(peer_key, now);
    if !access.inner.unrecorded.admit(now) {
        access
            .inner
            .unrecorded
            .count(peer_key, error.status().as_u16());
        return answer(error.into_response(), None, None);
    }
    refuse(state, draft, error, None).await
}

/// `POST /v1/console/session`: a token in the body instead of the header (see
/// [`crate::session`]); refused and throttled as a bearer token is.
async fn sign_in(
    state: &AppState,
    req: Request,
    route: &str,
    peer: Option<SocketAddr>,
    peer_key: &str,
    now: Instant,
) -> Response {
    let secure = crate::session::behind_tls(req.headers());
    let token = match crate::session::read_sign_in(state, req).await {
        Ok(token) => zeroize::Zeroizing::new(token),
        Err(error) => {
            let status = error.status().as_u16();
            let reason = format!(
                "sign-in: {}",
                error.refusal().code.unwrap_or_else(|| "invalid".into())
            );
            let draft = refusal("", route, peer, status, &reason, None);
            return failed(state, peer_key, now, draft, error).await;
        }
    };
    let caller = match state.kernel().guard().authenticate(Ok(Some(&token))) {
        Err(e) => return store_failed(&e),
        Ok(Err(auth)) => {
            let error = ApiError::unauthenticated(&auth);
            let reason = format!("sign-in: {}", auth.code());
            let draft = refusal("", route, peer, 401, &reason, auth.token_id());
            return failed(state, peer_key, now, draft, error).await;
        }
        Ok(Ok(caller)) => caller,
    };
    drop(token);
    if let Err(wait) = state.access().inner.requests.check(caller.name(), now) {
        let draft = refusal(
            caller.name(),
            route,
            peer,
            429,
            "rate limited: too many requests from this principal",
            caller.token_id(),
        );
        return refuse(
            state,
            draft,
            ApiError::rate_limited(wait, false),
            Some(wait),
        )
        .await;
    }
    let door = sov_kernel::Door {
        route: route.to_owned(),
        peer: peer.map(|p| p.to_string()),
        read: false,
    };
    match state.kernel().sign_in(caller, &door).await {
        Ok(signed) => crate::session::signed_in(&signed, secure),
        Err(sov_kernel::KernelError::Unrecorded(e)) => record::unavailable(&e.0),
        Err(e) => ApiError::internal(&e.to_string()).into_response(),
    }
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
