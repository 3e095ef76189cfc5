//! The recording layer: every authenticated request becomes a kernel [`Exchange`] before its
//! handler runs, and its entry is written (by the kernel) before its answer leaves.
//!
//! Which requests: every authenticated one (the public routes record nothing; refused
//! authentication and rate limits are recorded by [`crate::auth`]). What an entry holds, and
//! when a stream or a read is recorded, is the kernel's ([`sov_kernel::exchange`]); this layer
//! adds only what is HTTP's: the route and the peer address, the status code, and the
//! commitments to the exact request body and the exact response body. The 32-byte salt of the
//! commitments is returned to the caller in `Sov-Audit-Salt` and not kept, so the caller can
//! later prove what was asked and answered, and nobody else can test guesses against the
//! record. The entry's index and leaf go back in `Sov-Audit-Index` and `Sov-Audit-Leaf`.
//!
//! Ownership, not shared notes: the layer makes the exchange, reads the body (within
//! [`crate::Timeouts::body`], else 408) and commits to it, then hands the exchange to the
//! handler through a take-once [`Handoff`] (request extensions must be `Clone`, so it travels
//! in a slot). A handler takes it ([`Door`]), uses it, and puts it back with its answer, or keeps
//! it inside a streamed body, which then records the stream's end. A request rejected before its
//! handler ran (no route, wrong method, a body that does not parse) leaves it in the slot, and
//! the layer ends it with the typed refusal the error put in the response's extensions. If the
//! record cannot be written, the request fails with 503 and no answer is given.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use sov_audit::Appended;
use sov_kernel::exchange::Recorded;
use sov_kernel::{Door as Route, End, Exchange, Refusal};
use sov_policy::Caller;

use crate::AppState;
use crate::error::ApiError;

/// Header: the index of the request's entry in the record.
pub const INDEX_HEADER: &str = "sov-audit-index";
/// Header: base64 of the entry's RFC 6962 leaf hash.
pub const LEAF_HEADER: &str = "sov-audit-leaf";
/// Header: base64 of the 32-byte salt of the entry's input and output commitments.
pub const SALT_HEADER: &str = "sov-audit-salt";

/// The take-once slot an exchange travels in between this layer and the handler.
#[derive(Debug, Clone)]
pub(crate) struct Handoff(Arc<Mutex<Option<Exchange>>>);

impl Handoff {
    fn new(ex: Exchange) -> Self {
        Self(Arc::new(Mutex::new(Some(ex))))
    }

    fn take(&self) -> Option<Exchange> {
        match self.0.lock() {
            Ok(mut slot) => slot.take(),
            Err(poisoned) => poisoned.into_inner().take(),
        }
    }

    fn put(&self, ex: Exchange) {
        match self.0.lock() {
            Ok(mut slot) => *slot = Some(ex),
            Err(poisoned) => *poisoned.into_inner() = Some(ex),
        }
    }
}

/// A handler's access to its request's exchange: an extractor with its own rejection (a 500:
/// only a handler on a public route, a bug, runs without one).
#[derive(Debug)]
pub(crate) struct Door(Handoff);

impl<S: Send + Sync> FromRequestParts<S> for Door {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Handoff>()
            .cloned()
            .map(Door)
            .ok_or_else(|| ApiError::internal("a handler ran without an audited exchange"))
    }
}

impl Door {
    /// Runs `f` with the exchange, then hands it back to the layer, which records the answer.
    pub(crate) async fn with<T>(
        self,
        f: impl AsyncFnOnce(&mut Exchange) -> Result<T, ApiError>,
    ) -> Result<T, ApiError> {
        let mut ex = self.take()?;
        let out = f(&mut ex).await;
        self.0.put(ex);
        out
    }

    /// Takes the exchange for good (a streamed answer records its own end).
    pub(crate) fn take(&self) -> Result<Exchange, ApiError> {
        self.0
            .take()
            .ok_or_else(|| ApiError::internal("the request's exchange was taken twice"))
    }

    /// Hands the exchange back (the answer is not a stream after all).
    pub(crate) fn put(&self, ex: Exchange) {
        self.0.put(ex);
    }
}

/// The middleware (see the module docs).
pub(crate) async fn layer(State(state): State<AppState>, req: Request, next: Next) -> Response {
    // Only the public routes get here without a caller (the auth layer answers everything
    // else): they record nothing.
    let Some(caller) = req.extensions().get::<Caller>().cloned() else {
        return next.run(req).await;
    };
    let route = Route {
        route: req.uri().path().to_owned(),
        peer: req
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.to_string()),
        read: matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS),
    };
    let read = route.read;
    let mut ex = match state.kernel().begin(caller, route) {
        Ok(ex) => ex,
        Err(e) => return ApiError::internal(&e.to_string()).into_response(),
    };
    let req = if read {
        req
    } else {
        let (parts, body) = req.into_parts();
        let limit = state.config().max_body_bytes;
        let timeout = state.config().timeouts.body;
        let bytes = match tokio::time::timeout(timeout, axum::body::to_bytes(body, limit)).await {
            Ok(Ok(bytes)) => bytes,
            Ok(Err(e)) => {
                let too_large = std::error::Error::source(&e)
                    .is_some_and(|s| s.is::<http_body_util::LengthLimitError>());
                let refusal = if too_large {
                    ApiError::too_large()
                } else {
                    ApiError::invalid(format!("Failed to read the request body: {e}"), None)
                };
                return finish(ex, refusal.into_response()).await;
            }
            Err(_) => return finish(ex, ApiError::body_timeout(timeout).into_response()).await,
        };
        ex.commit_input(&bytes);
        Request::from_parts(parts, Body::from(bytes))
    };
    let handoff = Handoff::new(ex);
    let mut req = req;
    req.extensions_mut().insert(handoff.clone());
    let response = next.run(req).await;
    match handoff.take() {
        Some(ex) => finish(ex, response).await,
        // A streamed answer: its body holds the exchange and records the stream's end.
        None => response,
    }
}

/// How a request ended, from its status and the refusal its error noted.
fn end_of(response: &Response) -> End {
    let status = response.status();
    let refusal = || {
        response
            .extensions()
            .get::<Refusal>()
            .cloned()
            .unwrap_or_default()
    };
    if status.is_success() {
        End::Answered
    } else if status.is_client_error() || status == StatusCode::SERVICE_UNAVAILABLE {
        End::Refused(refusal())
    } else {
        End::Failed(refusal())
    }
}

/// Ends the exchange with its entry (over the exact response body), then releases the
/// response with the audit headers.
async fn finish(mut ex: Exchange, response: Response) -> Response {
    let end = end_of(&response);
    let (mut parts, body) = response.into_parts();
    let body: Bytes = match axum::body::to_bytes(body, usize::MAX).await {
        Ok(b) => b,
        Err(e) => {
            return ApiError::internal(&format!("failed to buffer a response: {e}"))
                .into_response();
        }
    };
    ex.feed_output(&body);
    match ex.finish(end, Some(parts.status.as_u16())).await {
        Ok(recorded) => {
            if let Some(r) = recorded {
                set_headers(&mut parts.headers, &r);
            }
            Response::from_parts(parts, Body::from(body))
        }
        Err(e) => unavailable(&e.0),
    }
}

/// Sets the entry's index and leaf (and the commitment salt, for an entry with commitments).
pub(crate) fn set_headers(headers: &mut HeaderMap, recorded: &Recorded) {
    set_entry_headers(headers, &recorded.appended);
    if let Some(salt) = &recorded.salt {
        let b64 = base64::engine::general_purpose::STANDARD;
        if let Ok(v) = HeaderValue::from_str(&b64.encode(salt)) {
            headers.insert(SALT_HEADER, v);
        }
    }
}

/// Sets an entry's index and leaf.
pub(crate) fn set_entry_headers(headers: &mut HeaderMap, appended: &Appended) {
    let b64 = base64::engine::general_purpose::STANDARD;
    for (name, value) in [
        (INDEX_HEADER, appended.index.to_string()),
        (LEAF_HEADER, b64.encode(appended.leaf)),
    ] {
        if let Ok(v) = HeaderValue::from_str(&value) {
            headers.insert(name, v);
        }
    }
}

/// 503: the record could not be written, so the request is not answered.
pub(crate) fn unavailable(detail: &str) -> Response {
    tracing::error!(
        detail,
        "the audit record could not be written; the request is refused"
    );
    ApiError::audit_unavailable().into_response()
}
