//! MCP's streamable HTTP transport through the egress gate: rmcp's
//! [`StreamableHttpClient`] over [`sov_egress::http::exchange`], so every request a remote
//! server gets goes over a connection the gate decided and recorded.
//!
//! rmcp drives the protocol (the session, the POSTs, the server's event stream); this client
//! sends each request and reads each answer, bounded: a JSON answer and one server-sent event
//! at most [`MAX_MESSAGE`](crate::server::MAX_MESSAGE) bytes, an error page's quoted text at
//! most [`MAX_ERROR_BODY`], a JSON answer read within the exchange's time limit. An answer it
//! cannot use is an error that says what came back.

use std::borrow::Cow;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures::stream::{BoxStream, StreamExt};
use http::header::{ACCEPT, AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE, HOST};
use http::{HeaderName, HeaderValue, Method, Request, Response, StatusCode};
use http_body::Body;
use http_body_util::{BodyExt, Full};
use rmcp::model::{ClientJsonRpcMessage, JsonRpcMessage, ServerJsonRpcMessage};
use rmcp::transport::streamable_http_client::{
    StreamableHttpClient, StreamableHttpError, StreamableHttpPostResponse,
};
use sov_egress::Gate;
use sse_stream::{Sse, SseStream};

/// The most of an error answer's body that is read and quoted.
pub const MAX_ERROR_BODY: usize = 4 * 1024;

const SESSION_ID: &str = "mcp-session-id";
const LAST_EVENT_ID: &str = "last-event-id";
const EVENT_STREAM: &str = "text/event-stream";
const JSON: &str = "application/json";

/// Why a request to a remote server failed, below MCP.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// The gate refused or failed the connection, or HTTP broke before the answer's head.
    #[error(transparent)]
    Exchange(#[from] sov_egress::http::HttpError),
    /// The answer's body could not be read, or was too long.
    #[error(transparent)]
    Body(#[from] BodyError),
    /// The request could not be made (a header rmcp gave that HTTP refuses).
    #[error("making the request: {0}")]
    Request(#[from] http::Error),
    /// The message could not be encoded.
    #[error("encoding the message: {0}")]
    Json(#[from] serde_json::Error),
}

/// Why an answer's body was not read whole.
#[derive(Debug, Clone, thiserror::Error)]
pub enum BodyError {
    /// Longer than allowed.
    #[error("the answer is longer than {0} bytes")]
    TooLarge(usize),
    /// One server-sent event longer than allowed.
    #[error("one of its events is longer than {0} bytes")]
    EventTooLarge(usize),
    /// Not all there within the time limit.
    #[error("the answer did not arrive whole within {} ms", .0.as_millis())]
    Timeout(Duration),
    /// The connection broke while it was read.
    #[error("reading the answer: {0}")]
    Read(String),
}

type Failure = StreamableHttpError<HttpError>;

/// The last fault of a server's event streams (an event too long, a broken body): rmcp ends
/// the call such a stream carried with a bare "closed", and this says why.
#[derive(Debug, Clone, Default)]
pub struct Faults(Arc<Mutex<Option<String>>>);

impl Faults {
    fn note(&self, fault: &BodyError) {
        if let Ok(mut last) = self.0.lock() {
            *last = Some(fault.to_string());
        }
    }

    /// The last fault noted, taken (none since the last take: `None`).
    pub fn take(&self) -> Option<String> {
        self.0.lock().ok().and_then(|mut last| last.take())
    }
}

/// The HTTP client of one remote server: where it is, the `Host` it is addressed as, what the
/// gate records as the use, and the time limit of one exchange.
#[derive(Debug, Clone)]
pub struct GateClient {
    gate: Gate,
    addr: SocketAddr,
    host: HeaderValue,
    what: Arc<str>,
    timeout: Duration,
    limits: Limits,
    faults: Faults,
}

/// The bounds this client applies (rmcp's own configured limits are set to the same).
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// A JSON answer.
    pub json: usize,
    /// One server-sent event.
    pub event: usize,
    /// The quoted part of an error answer.
    pub error: usize,
}

impl GateClient {
    /// A client for the server at `addr`, through `gate`, recorded as `what`.
    pub fn new(
        gate: Gate,
        addr: SocketAddr,
        what: &str,
        timeout: Duration,
        limits: Limits,
    ) -> Self {
        let host = HeaderValue::from_str(&addr.to_string())
            .unwrap_or_else(|_| HeaderValue::from_static("localhost"));
        Self {
            gate,
            addr,
            host,
            what: what.into(),
            timeout,
            limits,
            faults: Faults::default(),
        }
    }

    /// Where the faults of its event streams are noted.
    pub fn faults(&self) -> Faults {
        self.faults.clone()
    }

    fn request(
        &self,
        method: Method,
        uri: &str,
        session_id: Option<&str>,
        auth: Option<String>,
        headers: HashMap<HeaderName, HeaderValue>,
    ) -> http::request::Builder {
        let mut builder = Request::builder()
            .method(method)
            .uri(target(uri))
            .header(HOST, self.host.clone());
        if let Some(token) = auth
            && let Ok(mut value) = HeaderValue::from_str(&format!("Bearer {token}"))
        {
            // Shown as "Sensitive" by any Debug output, never as the token.
            value.set_sensitive(true);
            builder = builder.header(AUTHORIZATION, value);
        }
        if let Some(id) = session_id {
            builder = builder.header(SESSION_ID, id);
        }
        for (name, value) in headers {
            builder = builder.header(name, value);
        }
        builder
    }

    async fn send(
        &self,
        request: Result<Request<Full<Bytes>>, http::Error>,
    ) -> Result<Response<sov_egress::http::Incoming>, Failure> {
        let request = request.map_err(|e| StreamableHttpError::Client(e.into()))?;
        sov_egress::http::exchange(&self.gate, self.addr, &self.what, self.timeout, request)
            .await
            .map_err(|e| StreamableHttpError::Client(e.into()))
    }
}

/// The request target of `uri`: its path and query (origin form; the connection is the
/// gate's, to the declared address, whatever authority the URI names).
fn target(uri: &str) -> String {
    let after_scheme = uri.split_once("://").map_or(uri, |(_, rest)| rest);
    match after_scheme.find('/') {
        Some(i) => after_scheme[i..].to_owned(),
        None => "/".to_owned(),
    }
}

impl StreamableHttpClient for GateClient {
    type Error = HttpError;

    /// rmcp's `*_with_*` variants, which pass its configured limits, are left to their
    /// defaults (which call this): this client's own [`Limits`] always apply.
    async fn post_message(
        &self,
        uri: Arc<str>,
        message: ClientJsonRpcMessage,
        session_id: Option<Arc<str>>,
        auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
    ) -> Result<StreamableHttpPostResponse, Failure> {
        let body =
            serde_json::to_vec(&message).map_err(|e| StreamableHttpError::Client(e.into()))?;
        let request = self
            .request(
                Method::POST,
                &uri,
                session_id.as_deref(),
                auth_header,
                custom_headers,
            )
            .header(CONTENT_TYPE, JSON)
            .header(ACCEPT, format!("{JSON}, {EVENT_STREAM}"))
            .body(Full::new(Bytes::from(body)));
        let response = self.send(request).await?;
        let awaits_no_response = !matches!(message, JsonRpcMessage::Request(_));
        post_answer(
            response,
            awaits_no_response,
            session_id.is_some(),
            self.limits,
            self.timeout,
            &self.faults,
        )
        .await
    }

    async fn delete_session(
        &self,
        uri: Arc<str>,
        session_id: Arc<str>,
        auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
    ) -> Result<(), Failure> {
        let request = self
            .request(
                Method::DELETE,
                &uri,
                Some(&session_id),
                auth_header,
                custom_headers,
            )
            .body(Full::new(Bytes::new()));
        let status = self.send(request).await?.status();
        if status.is_success() || status == StatusCode::METHOD_NOT_ALLOWED {
            return Ok(());
        }
        Err(unexpected(format!("ending the session: HTTP {status}")))
    }

    async fn get_stream(
        &self,
        uri: Arc<str>,
        session_id: Option<Arc<str>>,
        last_event_id: Option<String>,
        auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
    ) -> Result<BoxStream<'static, Result<Sse, sse_stream::Error>>, Failure> {
        let mut builder = self
            .request(
                Method::GET,
                &uri,
                session_id.as_deref(),
                auth_header,
                custom_headers,
            )
            .header(ACCEPT, EVENT_STREAM);
        if let Some(id) = last_event_id {
            builder = builder.header(LAST_EVENT_ID, id);
        }
        let response = self.send(builder.body(Full::new(Bytes::new()))).await?;
        let status = response.status();
        if status == StatusCode::METHOD_NOT_ALLOWED {
            return Err(StreamableHttpError::ServerDoesNotSupportSse);
        }
        if !status.is_success() {
            let limits = self.limits;
            let text = error_text(response.into_body(), limits.error, self.timeout).await;
            return Err(unexpected(format!(
                "opening its event stream: HTTP {status}{text}"
            )));
        }
        if !is(content_type(&response).as_deref(), EVENT_STREAM) {
            return Err(StreamableHttpError::UnexpectedContentType(content_type(
                &response,
            )));
        }
        Ok(events(
            response.into_body(),
            self.limits.event,
            &self.faults,
        ))
    }
}

fn unexpected(text: String) -> Failure {
    StreamableHttpError::UnexpectedServerResponse(Cow::Owned(text))
}

fn content_type<B>(response: &Response<B>) -> Option<String> {
    response
        .headers()
        .get(CONTENT_TYPE)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
}

/// Whether the media type `value` (parameters aside) is `expected`.
fn is(value: Option<&str>, expected: &str) -> bool {
    value.is_some_and(|v| {
        v.split(';')
            .next()
            .unwrap_or("")
            .trim()
            .eq_ignore_ascii_case(expected)
    })
}

/// What a POST's answer means for rmcp: accepted, one JSON-RPC message, or a stream of
/// events; each bounded by `limits`, a JSON body read within `timeout`, an event stream's
/// fault noted in `faults`. Public for the fuzz target, which feeds it answers a server could
/// send.
pub async fn post_answer<B>(
    response: Response<B>,
    awaits_no_response: bool,
    session_was_attached: bool,
    limits: Limits,
    timeout: Duration,
    faults: &Faults,
) -> Result<StreamableHttpPostResponse, Failure>
where
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: std::fmt::Display,
{
    let status = response.status();
    let session = response
        .headers()
        .get(SESSION_ID)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let kind = content_type(&response);
    if matches!(status, StatusCode::ACCEPTED | StatusCode::NO_CONTENT) {
        return Ok(StreamableHttpPostResponse::Accepted);
    }
    if status == StatusCode::NOT_FOUND && session_was_attached {
        return Err(StreamableHttpError::SessionExpired);
    }
    if matches!(status, StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN) {
        let text = error_text(response.into_body(), limits.error, timeout).await;
        return Err(unexpected(format!(
            "HTTP {status}: the server refused this node's credentials (bearer_token_file){text}"
        )));
    }
    if !status.is_success() {
        // A JSON-RPC error may come with a 4xx status: it is the answer to the request.
        if is(kind.as_deref(), JSON)
            && let Ok(body) = read_bounded(response.into_body(), limits.json, timeout).await
        {
            if let Ok(error @ JsonRpcMessage::Error(_)) =
                serde_json::from_slice::<ServerJsonRpcMessage>(&body)
            {
                return Ok(StreamableHttpPostResponse::Json(error, session));
            }
            return Err(unexpected(format!(
                "HTTP {status}: {}",
                preview(&body, limits.error)
            )));
        }
        return Err(unexpected(format!("HTTP {status}")));
    }
    let empty = response
        .headers()
        .get(CONTENT_LENGTH)
        .is_some_and(|v| v.as_bytes() == b"0");
    if empty && awaits_no_response {
        return Ok(StreamableHttpPostResponse::Accepted);
    }
    if is(kind.as_deref(), EVENT_STREAM) {
        return Ok(StreamableHttpPostResponse::Sse(
            events(response.into_body(), limits.event, faults),
            session,
        ));
    }
    if is(kind.as_deref(), JSON) {
        let body = read_bounded(response.into_body(), limits.json, timeout)
            .await
            .map_err(|e| StreamableHttpError::Client(e.into()))?;
        return match serde_json::from_slice::<ServerJsonRpcMessage>(&body) {
            Ok(message) => Ok(StreamableHttpPostResponse::Json(message, session)),
            Err(_) if awaits_no_response => Ok(StreamableHttpPostResponse::Accepted),
            Err(e) => Err(unexpected(format!(
                "an answer that is not JSON-RPC ({e}): {}",
                preview(&body, limits.error)
            ))),
        };
    }
    if awaits_no_response {
        return Ok(StreamableHttpPostResponse::Accepted);
    }
    Err(StreamableHttpError::UnexpectedContentType(kind))
}

/// The body, whole, if it is at most `max` bytes and arrives within `timeout`.
async fn read_bounded<B>(body: B, max: usize, timeout: Duration) -> Result<Bytes, BodyError>
where
    B: Body<Data = Bytes>,
    B::Error: std::fmt::Display,
{
    let mut body = std::pin::pin!(body);
    let read = async {
        let mut whole = Vec::new();
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| BodyError::Read(e.to_string()))?;
            if let Ok(data) = frame.into_data() {
                if whole.len() + data.len() > max {
                    return Err(BodyError::TooLarge(max));
                }
                whole.extend_from_slice(&data);
            }
        }
        Ok(Bytes::from(whole))
    };
    tokio::time::timeout(timeout, read)
        .await
        .unwrap_or(Err(BodyError::Timeout(timeout)))
}

/// `": "` and the start of an error answer's text, or nothing when it has none.
async fn error_text<B>(body: B, max: usize, timeout: Duration) -> String
where
    B: Body<Data = Bytes>,
    B::Error: std::fmt::Display,
{
    let mut body = std::pin::pin!(body);
    let mut kept = Vec::new();
    let read = async {
        while kept.len() < max {
            match body.frame().await {
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        kept.extend_from_slice(&data);
                    }
                }
                _ => break,
            }
        }
    };
    let _ = tokio::time::timeout(timeout, read).await;
    if kept.is_empty() {
        return String::new();
    }
    format!(": {}", preview(&kept, max))
}

/// The start of `bytes` as text, on one line, at most `max` bytes.
fn preview(bytes: &[u8], max: usize) -> String {
    let text = String::from_utf8_lossy(&bytes[..bytes.len().min(max)]);
    let line: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let line = line.trim();
    if line.is_empty() {
        "(an empty body)".into()
    } else {
        line.to_owned()
    }
}

/// The server-sent events of `body`, none longer than `max` bytes: a longer one ends the
/// stream with an error, before it is parsed or kept (noted in `faults`).
fn events<B>(
    body: B,
    max: usize,
    faults: &Faults,
) -> BoxStream<'static, Result<Sse, sse_stream::Error>>
where
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: std::fmt::Display,
{
    let faults = faults.clone();
    let bounded = body
        .into_data_stream()
        .scan(EventBound::new(max), move |bound, chunk| {
            let next = if bound.failed {
                None
            } else {
                let next = match chunk {
                    Ok(bytes) => bound.observe(&bytes).map(|()| bytes),
                    Err(e) => {
                        bound.failed = true;
                        Err(BodyError::Read(e.to_string()))
                    }
                };
                if let Err(fault) = &next {
                    faults.note(fault);
                }
                Some(next)
            };
            futures::future::ready(next)
        });
    SseStream::from_bytes_stream(bounded).boxed()
}

/// Counts the bytes of the event being received (since the last blank line).
#[derive(Debug)]
struct EventBound {
    max: usize,
    current: usize,
    at_line_start: bool,
    failed: bool,
}

impl EventBound {
    fn new(max: usize) -> Self {
        Self {
            max,
            current: 0,
            at_line_start: true,
            failed: false,
        }
    }

    fn observe(&mut self, bytes: &[u8]) -> Result<(), BodyError> {
        for &b in bytes {
            self.current += 1;
            match b {
                b'\n' if self.at_line_start => self.current = 0,
                b'\n' => self.at_line_start = true,
                b'\r' => {}
                _ => self.at_line_start = false,
            }
            if self.current > self.max {
                self.failed = true;
                return Err(BodyError::EventTooLarge(self.max));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]
    use super::*;

    const LIMITS: Limits = Limits {
        json: 64,
        event: 48,
        error: 16,
    };

    fn answer(status: u16, kind: &str, body: &str) -> Response<Full<Bytes>> {
        Response::builder()
            .status(status)
            .header(CONTENT_TYPE, kind)
            .header(SESSION_ID, "s-1")
            .body(Full::new(Bytes::from(body.to_owned())))
            .unwrap()
    }

    fn run<F: std::future::Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap()
            .block_on(f)
    }

    async fn post(response: Response<Full<Bytes>>) -> Result<StreamableHttpPostResponse, Failure> {
        post_answer(
            response,
            false,
            true,
            LIMITS,
            Duration::from_secs(5),
            &Faults::default(),
        )
        .await
    }

    #[test]
    fn answers_are_read_within_their_bounds() {
        run(async {
            let ok = r#"{"jsonrpc":"2.0","id":1,"result":{}}"#;
            match post(answer(200, "application/json; charset=utf-8", ok)).await {
                Ok(StreamableHttpPostResponse::Json(_, Some(s))) => assert_eq!(s, "s-1"),
                other => panic!("{other:?}"),
            }
            let long = format!(
                r#"{{"jsonrpc":"2.0","id":1,"result":{{"x":"{}"}}}}"#,
                "a".repeat(64)
            );
            let err = post(answer(200, JSON, &long)).await.unwrap_err();
            assert!(err.to_string().contains("longer than 64"), "{err}");
            let err = post(answer(200, JSON, "<html>no</html>"))
                .await
                .unwrap_err();
            assert!(err.to_string().contains("not JSON-RPC"), "{err}");
            let err = post(answer(200, "text/plain", "hi")).await.unwrap_err();
            assert!(
                matches!(err, StreamableHttpError::UnexpectedContentType(_)),
                "{err}"
            );
            let err = post(answer(500, "text/html", "<p>broken</p>"))
                .await
                .unwrap_err();
            assert!(err.to_string().contains("HTTP 500"), "{err}");
            let err = post(answer(401, "text/plain", "no")).await.unwrap_err();
            assert!(err.to_string().contains("credentials"), "{err}");
            let err = post(answer(404, JSON, "{}")).await.unwrap_err();
            assert!(matches!(err, StreamableHttpError::SessionExpired), "{err}");
            let rpc_error = r#"{"jsonrpc":"2.0","id":1,"error":{"code":-32600,"message":"bad"}}"#;
            assert!(matches!(
                post(answer(400, JSON, rpc_error)).await,
                Ok(StreamableHttpPostResponse::Json(
                    JsonRpcMessage::Error(_),
                    _
                ))
            ));
            assert!(matches!(
                post(answer(202, "", "")).await,
                Ok(StreamableHttpPostResponse::Accepted)
            ));
        });
    }

    #[test]
    fn an_event_longer_than_the_bound_ends_the_stream() {
        run(async {
            let short = "event: message\ndata: {\"a\":1}\n\n";
            let stream_of = |body: String| async move {
                match post(answer(200, EVENT_STREAM, &body)).await {
                    Ok(StreamableHttpPostResponse::Sse(stream, _)) => stream,
                    other => panic!("not a stream: {other:?}"),
                }
            };
            let mut fine = stream_of(format!("{short}{short}")).await;
            for _ in 0..2 {
                let event = fine.next().await.unwrap().unwrap();
                assert_eq!(event.data.as_deref(), Some("{\"a\":1}"));
            }
            assert!(fine.next().await.is_none());
            let mut long = stream_of(format!("{short}data: {}\n\n{short}", "x".repeat(100))).await;
            let err = long.next().await.unwrap().unwrap_err();
            assert!(err.to_string().contains("longer than 48"), "{err}");
            assert!(long.next().await.is_none());
        });
    }

    #[test]
    fn many_short_events_pass_and_blank_lines_reset_the_count() {
        let mut bound = EventBound::new(10);
        for _ in 0..100 {
            bound.observe(b"data: 1\n\n").unwrap();
        }
        bound.observe(b"data: 1\r\n\r\n").unwrap();
        assert!(bound.observe(b"data: 12345\n").is_err());
    }

    #[test]
    fn the_target_is_the_path_and_query() {
        assert_eq!(target("http://10.0.0.7:8080/mcp?x=1"), "/mcp?x=1");
        assert_eq!(target("http://10.0.0.7:8080"), "/");
        assert_eq!(target("/mcp"), "/mcp");
    }
}
