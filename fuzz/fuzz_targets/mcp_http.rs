//! What a remote MCP server answers over HTTP never panics the node and never gets past the
//! bounds: the bytes as a POST's answer (a status and a media type picked by the first byte,
//! the rest the body, delivered in chunks whose size the second byte picks) end as accepted,
//! one JSON-RPC message, a stream of events each within the event bound, or an error.
#![no_main]

use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use http_body::Frame;
use http_body_util::StreamBody;
use libfuzzer_sys::fuzz_target;
use rmcp::transport::streamable_http_client::StreamableHttpPostResponse;
use sov_mcp::http::{Faults, Limits, post_answer};

const LIMITS: Limits = Limits {
    json: 4096,
    event: 512,
    error: 256,
};

const KINDS: [&str; 5] = [
    "application/json",
    "text/event-stream",
    "text/event-stream; charset=utf-8",
    "text/html",
    "",
];
const STATUSES: [u16; 6] = [200, 202, 400, 401, 404, 500];

fuzz_target!(|data: &[u8]| {
    let [pick, chunk, body @ ..] = data else {
        return;
    };
    let status = STATUSES[usize::from(pick & 0x7) % STATUSES.len()];
    let kind = KINDS[usize::from(pick >> 3) % KINDS.len()];
    let awaits_no_response = pick & 0x80 != 0;
    let size = usize::from(*chunk).max(1);
    let frames: Vec<Result<Frame<Bytes>, std::io::Error>> = body
        .chunks(size)
        .map(|c| Ok(Frame::data(Bytes::copy_from_slice(c))))
        .collect();
    let mut response = http::Response::builder().status(status);
    if !kind.is_empty() {
        response = response.header(http::header::CONTENT_TYPE, kind);
    }
    let Ok(response) = response.body(StreamBody::new(futures::stream::iter(frames))) else {
        return;
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    runtime.block_on(async {
        let answer = post_answer(
            response,
            awaits_no_response,
            true,
            LIMITS,
            Duration::from_secs(1),
            &Faults::default(),
        )
        .await;
        if let Ok(StreamableHttpPostResponse::Sse(mut events, _)) = answer {
            while let Some(event) = events.next().await {
                if let Ok(event) = event {
                    let data = event.data.unwrap_or_default();
                    assert!(data.len() <= LIMITS.event, "{} bytes", data.len());
                }
            }
        }
    });
});
