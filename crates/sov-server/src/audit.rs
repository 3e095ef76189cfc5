//! The audit layer: every request that acts becomes an entry in the Open Audit Record before
//! its answer leaves, and the read-only `/v1/audit/...` endpoints that publish the record.
//!
//! Which requests: every authenticated request with a method other than `GET`, `HEAD` or
//! `OPTIONS` (the inference and admin endpoints; a refused one, whatever the reason, too). A read
//! (`GET`) is recorded through its authorisation decisions ([`crate::auth`]): it carries the
//! headers of its last decision's entry; a read refused before any decision (a malformed path, an
//! unknown route) gets an entry of its own. A request whose client leaves before its answer is
//! ready gets an entry with outcome `cancelled` (status attribute `499`). Refused authentication
//! and rate limits are recorded by the auth layer; the public routes record nothing.
//!
//! What goes in: the route, the model and its SHA-256, token counts, the HTTP status and, for a
//! refusal, the error's type, code and parameter (never its message, which may quote the input).
//! Inputs and outputs enter only as salted commitments ([`sov_audit_core::entry::commitment`])
//! over the exact request body and the exact response body. The 32-byte salt is returned to the
//! caller in `Sov-Audit-Salt` and not kept, so the caller can later prove what was asked and
//! answered, and nobody else can test guesses against the record.
//!
//! When: a plain answer is held until its entry is durable, and then carries `Sov-Audit-Index`
//! and `Sov-Audit-Leaf` (base64 of the RFC 6962 leaf hash). A streamed answer is recorded twice:
//! an entry with outcome `started` before the first byte (its index and leaf are the headers), and
//! one when the stream ends (`ok`, or `cancelled` if the client left), carrying the output
//! commitment and the attribute `request` = the first entry's index. If the record cannot be
//! written, the request fails with 503 and no answer is given: no unrecorded action.
//!
//! A request body must arrive within [`crate::Timeouts::body`]; a slower one is answered 408
//! (recorded as a refusal) instead of holding a task for as long as the client likes.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Extension;
use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use futures::Stream;
use serde_json::Value;
use sov_audit::{Appended, AuditLog, Draft, LogReader};
use sov_audit_core::entry::{Committer, Entry, Kind, Outcome, clean_text, commitment};
use sov_audit_core::hash::Hash;
use sov_policy::{Action, Caller, Resource};

use crate::AppState;
use crate::error::{ApiError, ApiPath};

/// Header: the index of the request's entry in the record.
pub const INDEX_HEADER: &str = "sov-audit-index";
/// Header: base64 of the entry's RFC 6962 leaf hash.
pub const LEAF_HEADER: &str = "sov-audit-leaf";
/// Header: base64 of the 32-byte salt of the entry's input and output commitments.
pub const SALT_HEADER: &str = "sov-audit-salt";

type Pending = tokio::sync::oneshot::Receiver<Result<Appended, String>>;

/// What a handler tells the audit layer about its request (which model, how many tokens), and
/// what the layer tells handlers (who is calling).
#[derive(Debug, Clone, Default)]
pub(crate) struct AuditNote(Arc<Mutex<NoteData>>);

#[derive(Debug, Default)]
struct NoteData {
    model: Option<(String, Hash)>,
    attrs: BTreeMap<String, String>,
    failed: bool,
    caller: Option<Caller>,
    route: String,
    peer: Option<String>,
    kind: Option<Kind>,
    decisions: Vec<Pending>,
    /// Decisions submitted so far (their entries may still be pending).
    decided: usize,
}

impl AuditNote {
    fn new(caller: Option<Caller>, route: &str, peer: Option<String>) -> Self {
        Self(Arc::new(Mutex::new(NoteData {
            caller,
            route: route.to_owned(),
            peer,
            ..NoteData::default()
        })))
    }

    /// The authenticated caller.
    pub(crate) fn caller(&self) -> Option<Caller> {
        self.0.lock().ok().and_then(|d| d.caller.clone())
    }

    /// The request's entry is of `kind` (default: inference).
    pub(crate) fn kind(&self, kind: Kind) {
        if let Ok(mut d) = self.0.lock() {
            d.kind = Some(kind);
        }
    }

    /// `attrs` with the request's route and peer, sorted and cleaned for an entry.
    pub(crate) fn context_attrs(&self, mut attrs: Vec<(String, String)>) -> Vec<(String, String)> {
        if let Ok(d) = self.0.lock() {
            attrs.push(("route".to_owned(), d.route.clone()));
            if let Some(peer) = &d.peer {
                attrs.push(("peer".to_owned(), peer.clone()));
            }
        }
        attrs.sort();
        attrs.dedup_by(|a, b| a.0 == b.0);
        attrs
            .into_iter()
            .map(|(k, v)| (k, clean_text(&v, 1024)))
            .collect()
    }

    /// Submits a decision's entry; the answer waits until it is durable.
    pub(crate) fn decision(&self, log: &AuditLog, draft: Draft) {
        let (tx, rx) = tokio::sync::oneshot::channel();
        log.submit(draft, move |result| {
            let _ = tx.send(result.map_err(|e| chain(&e)));
        });
        if let Ok(mut d) = self.0.lock() {
            d.decisions.push(rx);
            d.decided += 1;
        }
    }

    /// How many decisions the request has submitted.
    fn decided(&self) -> usize {
        self.0.lock().map_or(0, |d| d.decided)
    }

    /// Waits for every decision entry; their indices, in order.
    async fn decisions_durable(&self) -> Result<Vec<Appended>, String> {
        let pending = match self.0.lock() {
            Ok(mut d) => std::mem::take(&mut d.decisions),
            Err(_) => return Err("the audit note was poisoned".into()),
        };
        let mut out = Vec::with_capacity(pending.len());
        for rx in pending {
            match rx.await {
                Ok(Ok(a)) => out.push(a),
                Ok(Err(e)) => return Err(e),
                Err(_) => return Err("the audit log stopped before answering".into()),
            }
        }
        Ok(out)
    }

    /// The request is served by model `name` with file digest `digest`.
    pub(crate) fn model(&self, name: &str, digest: Hash) {
        if let Ok(mut d) = self.0.lock() {
            d.model = Some((name.to_owned(), digest));
        }
    }

    /// A fact about the request (attribute keys: `a-z 0-9 _ . -`).
    pub(crate) fn attr(&self, key: &str, value: impl ToString) {
        if let Ok(mut d) = self.0.lock() {
            d.attrs.insert(key.to_owned(), value.to_string());
        }
    }

    /// The generation failed after the response had started.
    pub(crate) fn failed(&self) {
        if let Ok(mut d) = self.0.lock() {
            d.failed = true;
        }
    }

    fn snapshot(&self) -> Snapshot {
        match self.0.lock() {
            Ok(d) => Snapshot {
                model: d.model.clone(),
                attrs: d.attrs.clone(),
                failed: d.failed,
                principal: d
                    .caller
                    .as_ref()
                    .map(|c| c.principal.name.clone())
                    .unwrap_or_default(),
                kind: d.kind,
            },
            Err(_) => Snapshot {
                model: None,
                attrs: BTreeMap::new(),
                failed: true,
                principal: String::new(),
                kind: None,
            },
        }
    }
}

struct Snapshot {
    model: Option<(String, Hash)>,
    attrs: BTreeMap<String, String>,
    failed: bool,
    principal: String,
    kind: Option<Kind>,
}

/// Facts the layer knows before the handler runs.
#[derive(Clone)]
struct Context0 {
    route: String,
    peer: Option<String>,
    salt: [u8; 32],
    input: Hash,
}

/// The middleware (see the module docs).
pub(crate) async fn layer(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let route = clean_text(req.uri().path(), 1024);
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.to_string());
    let caller = req.extensions().get::<Caller>().cloned();
    let note = AuditNote::new(caller.clone(), &route, peer.clone());
    if caller.is_none() {
        // Only the public routes get here without a caller (the auth layer answers everything
        // else): they record nothing.
        return next.run(req).await;
    }
    let mut salt = [0u8; 32];
    if let Err(e) = getrandom::fill(&mut salt) {
        return ApiError::internal(&format!("no randomness for the audit salt: {e}"))
            .into_response();
    }
    if matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS) {
        let ctx = Context0 {
            route,
            peer,
            input: commitment("input", &salt, b""),
            salt,
        };
        let mut req = req;
        req.extensions_mut().insert(note.clone());
        let guard = Abandoned::new(state.audit(), &ctx, &note);
        let response = next.run(req).await;
        guard.disarm();
        return record_read(state.audit(), ctx, note, response).await;
    }
    let (parts, body) = req.into_parts();
    let limit = state.inner.config.max_body_bytes;
    let timeout = state.inner.config.timeouts.body;
    let mut ctx = Context0 {
        route,
        peer,
        input: commitment("input", &salt, b""),
        salt,
    };
    let mut guard = Abandoned::new(state.audit(), &ctx, &note);
    let read = tokio::time::timeout(timeout, axum::body::to_bytes(body, limit)).await;
    let (bytes, response) = match read {
        Ok(Ok(bytes)) => (bytes, None),
        Ok(Err(e)) => {
            let too_large = std::error::Error::source(&e)
                .is_some_and(|s| s.is::<http_body_util::LengthLimitError>());
            let refusal = if too_large {
                ApiError::too_large()
            } else {
                ApiError::invalid(format!("Failed to read the request body: {e}"), None)
            };
            (Bytes::new(), Some(refusal.into_response()))
        }
        Err(_) => (
            Bytes::new(),
            Some(ApiError::body_timeout(timeout).into_response()),
        ),
    };
    ctx.input = commitment("input", &ctx.salt, &bytes);
    guard.set_input(ctx.input);
    let response = match response {
        Some(r) => r,
        None => {
            let mut req = Request::from_parts(parts, Body::from(bytes));
            req.extensions_mut().insert(note.clone());
            next.run(req).await
        }
    };
    let is_stream = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"text/event-stream"));
    guard.disarm();
    if is_stream && response.status().is_success() {
        record_stream(state.audit(), ctx, note, response).await
    } else {
        record_whole(state.audit(), ctx, note, response).await
    }
}

/// Records a request whose caller left before its answer was ready (the server drops the
/// request's future, and this with it): an entry with outcome `cancelled`, the decisions made
/// so far and the input commitment, so no request ends without an entry of its own outcome.
/// Disarmed once the answer is in hand (its own entry is then written).
struct Abandoned {
    armed: Option<(AuditLog, Context0, AuditNote)>,
}

impl Abandoned {
    fn new(log: &AuditLog, ctx: &Context0, note: &AuditNote) -> Self {
        Self {
            armed: Some((log.clone(), ctx.clone(), note.clone())),
        }
    }

    /// The request's input commitment, once its body is read.
    fn set_input(&mut self, input: Hash) {
        if let Some((_, ctx, _)) = self.armed.as_mut() {
            ctx.input = input;
        }
    }

    fn disarm(mut self) {
        self.armed = None;
    }
}

impl Drop for Abandoned {
    fn drop(&mut self) {
        let Some((log, ctx, note)) = self.armed.take() else {
            return;
        };
        let snap = note.snapshot();
        let mut attrs = snap.attrs;
        attrs.insert("status".into(), "499".into());
        let decided = note.decided();
        if decided > 0 {
            attrs.insert("decisions".into(), decided.to_string());
        }
        let draft = draft(
            &ctx,
            &snap.principal,
            snap.kind.unwrap_or(Kind::Inference),
            Outcome::Cancelled,
            "the client went away before the answer".to_owned(),
            snap.model,
            None,
            attrs,
        );
        log.submit(draft, |result| {
            if let Err(e) = result {
                tracing::error!(error = %e, "failed to record an abandoned request");
            }
        });
    }
}

/// Records a read (`GET`): through its decisions, whose last entry's headers it carries; one
/// refused before any decision (a malformed path, an unknown route, a wrong method) gets an
/// entry of its own, so no authenticated refusal is missing from the record.
async fn record_read(
    log: &AuditLog,
    ctx: Context0,
    note: AuditNote,
    response: Response,
) -> Response {
    let decisions = match note.decisions_durable().await {
        Ok(d) => d,
        Err(e) => return unavailable(&e),
    };
    match decisions.last() {
        Some(last) => {
            let mut response = response;
            set_headers(response.headers_mut(), last, None);
            response
        }
        None if !response.status().is_success() => record_whole(log, ctx, note, response).await,
        // A read that needed no decision (the model list of a node serving no model).
        None => response,
    }
}

/// Records a plain response, then releases it with the audit headers.
async fn record_whole(
    log: &AuditLog,
    ctx: Context0,
    note: AuditNote,
    response: Response,
) -> Response {
    let (mut parts, body) = response.into_parts();
    let body = match axum::body::to_bytes(body, usize::MAX).await {
        Ok(b) => b,
        Err(e) => {
            return ApiError::internal(&format!("failed to buffer a response: {e}"))
                .into_response();
        }
    };
    let status = parts.status;
    let decisions = match note.decisions_durable().await {
        Ok(d) => d,
        Err(e) => return unavailable(&e),
    };
    let snap = note.snapshot();
    let mut attrs = snap.attrs;
    attrs.insert("status".into(), status.as_u16().to_string());
    if !decisions.is_empty() {
        attrs.insert("decision".into(), indices(&decisions));
    }
    let refused = status.is_client_error() || status == StatusCode::SERVICE_UNAVAILABLE;
    let kind = snap.kind.unwrap_or(Kind::Inference);
    let (kind, outcome) = if refused {
        (Kind::Refusal, Outcome::Denied)
    } else if status.is_success() && !snap.failed {
        (kind, Outcome::Ok)
    } else {
        (kind, Outcome::Error)
    };
    let model = snap.model;
    let principal = snap.principal;
    let reason = if status.is_success() {
        String::new()
    } else {
        error_summary(&body)
    };
    let output = commitment("output", &ctx.salt, &body);
    let draft = draft(
        &ctx,
        &principal,
        kind,
        outcome,
        reason,
        model,
        Some(output),
        attrs,
    );
    match append(log, draft).await {
        Ok(appended) => {
            set_headers(&mut parts.headers, &appended, Some(&ctx.salt));
            Response::from_parts(parts, Body::from(body))
        }
        Err(e) => unavailable(&e),
    }
}

/// Records the start of a streamed response, and arranges for its end to be recorded.
async fn record_stream(
    log: &AuditLog,
    ctx: Context0,
    note: AuditNote,
    response: Response,
) -> Response {
    let decisions = match note.decisions_durable().await {
        Ok(d) => d,
        Err(e) => return unavailable(&e),
    };
    let snap = note.snapshot();
    let mut attrs = snap.attrs;
    let model = snap.model;
    attrs.insert("status".into(), response.status().as_u16().to_string());
    attrs.insert("stream".into(), "true".into());
    if !decisions.is_empty() {
        attrs.insert("decision".into(), indices(&decisions));
    }
    let draft = draft(
        &ctx,
        &snap.principal,
        Kind::Inference,
        Outcome::Started,
        String::new(),
        model,
        None,
        attrs,
    );
    let started = match append(log, draft).await {
        Ok(a) => a,
        // Dropping the response drops the generation, which stops it.
        Err(e) => return unavailable(&e),
    };
    let (mut parts, body) = response.into_parts();
    set_headers(&mut parts.headers, &started, Some(&ctx.salt));
    let output = Committer::new("output", &ctx.salt);
    let stream = Audited {
        inner: body.into_data_stream(),
        end: Some(StreamEnd {
            log: log.clone(),
            ctx,
            note,
            output,
            started: started.index,
            finished: false,
        }),
    };
    Response::from_parts(parts, Body::from_stream(stream))
}

/// A response body that feeds every byte into the output commitment and records the stream's end.
struct Audited<S> {
    inner: S,
    end: Option<StreamEnd>,
}

struct StreamEnd {
    log: AuditLog,
    ctx: Context0,
    note: AuditNote,
    output: Committer,
    started: u64,
    finished: bool,
}

impl<S> Stream for Audited<S>
where
    S: Stream<Item = Result<Bytes, axum::Error>> + Unpin,
{
    type Item = Result<Bytes, axum::Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let polled = Pin::new(&mut self.inner).poll_next(cx);
        match &polled {
            Poll::Ready(Some(Ok(bytes))) => {
                if let Some(end) = self.end.as_mut() {
                    end.output.update(bytes);
                }
            }
            Poll::Ready(None) => {
                if let Some(mut end) = self.end.take() {
                    end.finished = true;
                    end.record();
                }
            }
            Poll::Ready(Some(Err(_))) => {
                if let Some(end) = self.end.as_mut() {
                    end.note.failed();
                }
            }
            Poll::Pending => {}
        }
        polled
    }
}

impl<S> Drop for Audited<S> {
    fn drop(&mut self) {
        // Dropped before the end: the client went away.
        if let Some(end) = self.end.take() {
            end.record();
        }
    }
}

impl StreamEnd {
    /// Appends the end-of-stream entry. The answer has already been sent, so nothing waits on
    /// it; a failure is logged.
    fn record(self) {
        let snap = self.note.snapshot();
        let (model, mut attrs, failed) = (snap.model, snap.attrs, snap.failed);
        attrs.insert("request".into(), self.started.to_string());
        attrs.insert("stream".into(), "true".into());
        let outcome = if !self.finished {
            Outcome::Cancelled
        } else if failed {
            Outcome::Error
        } else {
            Outcome::Ok
        };
        let output = self.output.finish();
        let draft = draft(
            &self.ctx,
            &snap.principal,
            Kind::Inference,
            outcome,
            String::new(),
            model,
            Some(output),
            attrs,
        );
        self.log.submit(draft, |result| {
            if let Err(e) = result {
                tracing::error!(error = %e, "failed to record the end of a streamed answer");
            }
        });
    }
}

#[allow(clippy::too_many_arguments)]
fn draft(
    ctx: &Context0,
    principal: &str,
    kind: Kind,
    outcome: Outcome,
    reason: String,
    model: Option<(String, Hash)>,
    output: Option<Hash>,
    mut attrs: BTreeMap<String, String>,
) -> Draft {
    attrs.insert("route".into(), ctx.route.clone());
    if let Some(peer) = &ctx.peer {
        attrs.insert("peer".into(), peer.clone());
    }
    let (resource, digest) = match model {
        Some((name, digest)) => (clean_text(&name, 1024), Some(digest)),
        None => (ctx.route.clone(), None),
    };
    Draft {
        kind,
        principal: clean_text(principal, 255),
        resource,
        outcome,
        reason,
        model: digest,
        input: Some(ctx.input),
        output,
        attrs: attrs
            .into_iter()
            .map(|(k, v)| (k, clean_text(&v, 1024)))
            .collect(),
    }
}

/// `type`, `code` and `param` of an OpenAI-shaped error body, never its free-text message.
fn error_summary(body: &[u8]) -> String {
    let Ok(v) = serde_json::from_slice::<Value>(body) else {
        return String::new();
    };
    let e = &v["error"];
    let mut parts = Vec::new();
    for key in ["type", "code", "param"] {
        if let Some(s) = e[key].as_str() {
            parts.push(format!("{key}={s}"));
        }
    }
    clean_text(&parts.join(" "), 512)
}

/// The indices of `entries`, comma-separated.
fn indices(entries: &[Appended]) -> String {
    entries
        .iter()
        .map(|a| a.index.to_string())
        .collect::<Vec<_>>()
        .join(",")
}

/// Appends `draft` and waits until it is durable.
pub(crate) async fn append(log: &AuditLog, draft: Draft) -> Result<Appended, String> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    log.submit(draft, move |result| {
        let _ = tx.send(result);
    });
    match rx.await {
        Ok(Ok(appended)) => Ok(appended),
        Ok(Err(e)) => Err(chain(&e)),
        Err(_) => Err("the audit log stopped before answering".into()),
    }
}

/// An error with its causes, for the server's log.
fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        s.push_str(": ");
        s.push_str(&cause.to_string());
        source = cause.source();
    }
    s
}

/// Sets the entry's index and leaf (and the commitment salt, for an entry with commitments).
pub(crate) fn set_headers(headers: &mut HeaderMap, appended: &Appended, salt: Option<&[u8; 32]>) {
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut pairs = vec![
        (INDEX_HEADER, appended.index.to_string()),
        (LEAF_HEADER, b64.encode(appended.leaf)),
    ];
    if let Some(salt) = salt {
        pairs.push((SALT_HEADER, b64.encode(salt)));
    }
    for (name, value) in pairs {
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

// ---- The read-only record: C2SP tlog-tiles under /v1/audit, plus entries and receipts. ----

/// The audit log as a resource of `read-audit`.
pub const AUDIT_RESOURCE: &str = "record";

/// Whether the caller may read the record (`read-audit` on `AuditLog::"record"`).
fn may_read(state: &AppState, note: &AuditNote) -> Result<(), ApiError> {
    state.authorize(
        note,
        Action::ReadAudit,
        &Resource::AuditLog(AUDIT_RESOURCE.to_owned()),
    )
}

fn reader(state: &AppState) -> Result<LogReader, ApiError> {
    LogReader::open(state.audit().dir()).map_err(|e| ApiError::internal(&chain(&e)))
}

fn text(body: Vec<u8>, cache: &'static str, content_type: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, cache),
        ],
        body,
    )
        .into_response()
}

/// `GET /v1/audit/checkpoint`: the latest signed checkpoint (C2SP tlog-checkpoint).
pub(crate) async fn checkpoint(
    State(state): State<AppState>,
    Extension(note): Extension<AuditNote>,
) -> Result<Response, ApiError> {
    may_read(&state, &note)?;
    let reader = reader(&state)?;
    Ok(text(
        reader.checkpoint().0.to_vec(),
        "no-cache",
        "text/plain; charset=utf-8",
    ))
}

/// `GET /v1/audit/vkeys`: the log's verifier keys, one signed-note vkey per line.
pub(crate) async fn vkeys(
    State(state): State<AppState>,
    Extension(note): Extension<AuditNote>,
) -> Result<Response, ApiError> {
    may_read(&state, &note)?;
    let body = reader(&state)?
        .file("vkeys")
        .map_err(|e| ApiError::internal(&chain(&e)))?;
    Ok(text(body, "no-cache", "text/plain; charset=utf-8"))
}

/// `GET /v1/audit/tile/{*path}`: hash tiles and entry bundles, at their C2SP paths.
pub(crate) async fn tile(
    State(state): State<AppState>,
    Extension(note): Extension<AuditNote>,
    ApiPath(path): ApiPath<String>,
) -> Result<Response, ApiError> {
    may_read(&state, &note)?;
    let path = format!("tile/{path}");
    let tile = sov_audit_core::tile::Tile::parse_path(&path)
        .map_err(|e| ApiError::not_found(&format!("{path} is not a tile path: {e}")))?;
    let body = reader(&state)?
        .file(&path)
        .map_err(|_| ApiError::not_found(&format!("{path} does not exist (yet)")))?;
    let cache = if tile.is_full() {
        "public, max-age=31536000, immutable"
    } else {
        "public, max-age=60"
    };
    Ok(text(body, cache, "application/octet-stream"))
}

/// Waits (up to about two checkpoint intervals) until `index` is covered by a signed checkpoint.
async fn covered(state: &AppState, index: u64) -> Result<LogReader, ApiError> {
    for _ in 0..30 {
        let reader = reader(state)?;
        if index < reader.checkpoint().1.size {
            return Ok(reader);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let size = reader(state)?.checkpoint().1.size;
    Err(ApiError::not_found(&format!(
        "the record's latest signed checkpoint covers entries 0 to {} and not entry {index}",
        size.saturating_sub(1)
    )))
}

/// `GET /v1/audit/entries/{index}`: one entry, decoded, as JSON (with its bytes in base64).
pub(crate) async fn entry(
    State(state): State<AppState>,
    Extension(note): Extension<AuditNote>,
    ApiPath(index): ApiPath<u64>,
) -> Result<Response, ApiError> {
    may_read(&state, &note)?;
    let reader = covered(&state, index).await?;
    let bytes = reader
        .entry(index)
        .map_err(|e| ApiError::internal(&chain(&e)))?;
    let entry = Entry::decode(&bytes).map_err(|e| ApiError::internal(&chain(&e)))?;
    let mut json: Value =
        serde_json::from_str(&entry.to_json()).map_err(|e| ApiError::internal(&chain(&e)))?;
    json["leaf"] = Value::String(
        base64::engine::general_purpose::STANDARD.encode(sov_audit_core::hash::leaf_hash(&bytes)),
    );
    json["bytes"] = Value::String(base64::engine::general_purpose::STANDARD.encode(&bytes));
    Ok(axum::Json(json).into_response())
}

/// `GET /v1/audit/proof/{index}`: a `c2sp.org/tlog-proof@v1` receipt for one entry, with the
/// entry's bytes as its `extra` data.
pub(crate) async fn proof(
    State(state): State<AppState>,
    Extension(note): Extension<AuditNote>,
    ApiPath(index): ApiPath<u64>,
) -> Result<Response, ApiError> {
    may_read(&state, &note)?;
    let reader = covered(&state, index).await?;
    let receipt = reader
        .receipt(index)
        .map_err(|e| ApiError::internal(&chain(&e)))?;
    Ok(text(
        receipt.to_bytes(),
        "no-cache",
        "text/plain; charset=utf-8",
    ))
}
