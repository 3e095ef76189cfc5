//! Server-sent events framed here rather than by axum's `Sse`, so the request's output
//! commitment covers exactly the bytes that leave: each event is `data: <payload>\n\n`, and an
//! idle stream sends a `:\n\n` comment every [`KEEP_ALIVE`] so proxies keep it open.

use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use futures::future::BoxFuture;
use futures::stream;
use sov_kernel::Exchange;
use sov_kernel::exchange::Recorded;

use crate::record::set_headers;

/// How long a stream may be silent before a comment is sent.
pub(crate) const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// What the producer of a stream says next.
pub(crate) enum Next {
    /// Event payloads (each becomes one `data:` event); more follow.
    Events(Vec<String>),
    /// The last payloads; the stream then ends and its end is recorded.
    Last(Vec<String>),
}

/// One SSE event's bytes.
fn frame(payload: &str) -> String {
    format!("data: {payload}\n\n")
}

/// What produces a stream's payloads.
pub(crate) trait Step: Send + 'static {
    /// The next payloads; the end's facts go into `ex`.
    fn step<'a>(&'a mut self, ex: &'a mut Exchange) -> BoxFuture<'a, Next>;
}

/// A streamed answer whose start is `started`: `producer` is asked for each step's payloads;
/// a step silent for [`KEEP_ALIVE`] sends a comment and is asked again (its future is dropped,
/// so a step must be cancel-safe). Every byte sent is fed to the exchange's output commitment;
/// after the last payloads the exchange records the stream's end. Dropped early (the client
/// left), the exchange records `cancelled`.
pub(crate) fn respond(ex: Exchange, started: &Recorded, producer: impl Step) -> Response {
    let body = stream::unfold((Some(ex), producer), |(ex, mut producer)| async move {
        let mut ex = ex?;
        let next = tokio::time::timeout(KEEP_ALIVE, producer.step(&mut ex)).await;
        let (text, last) = match next {
            Err(_) => (":\n\n".to_owned(), false),
            Ok(Next::Events(p)) => (p.iter().map(|p| frame(p)).collect(), false),
            Ok(Next::Last(p)) => (p.iter().map(|p| frame(p)).collect(), true),
        };
        let bytes = Bytes::from(text);
        ex.feed_output(&bytes);
        let ex = if last {
            ex.finish_stream();
            None
        } else {
            Some(ex)
        };
        Some((Ok::<_, std::convert::Infallible>(bytes), (ex, producer)))
    });
    let mut response = Response::new(Body::from_stream(body));
    *response.status_mut() = StatusCode::OK;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    set_headers(headers, started);
    response
}
