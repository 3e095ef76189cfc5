//! HTTP over the gate's connections (`sov_egress::http::exchange`) against real loopback
//! peers and the real audit log: an answer arrives over a recorded connection, an undeclared
//! destination is refused before anything is sent, a peer that never answers or sends an
//! endless head is cut off.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::{decisions, declaring, open_log};
use http_body_util::{BodyExt, Full};
use sov_audit::AuditLog;
use sov_audit_core::entry::Outcome;
use sov_egress::http::{HttpError, exchange};
use sov_egress::{EgressError, Gate};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpListener;

/// One exchange with `peer` through a gate that permits `declared`.
async fn send(
    log: &AuditLog,
    declared: SocketAddr,
    peer: SocketAddr,
    timeout: Duration,
) -> Result<http::Response<sov_egress::http::Incoming>, HttpError> {
    let gate = Gate::new(
        declaring(declared, "a test peer"),
        Arc::new(log.clone()),
        "system",
    );
    exchange(&gate, peer, "mcp test", timeout, request()).await
}

fn request() -> http::Request<Full<Bytes>> {
    http::Request::builder()
        .method("POST")
        .uri("/mcp")
        .header("host", "peer")
        .body(Full::new(Bytes::from_static(b"{\"hello\":1}")))
        .unwrap()
}

/// A peer that reads one request and answers with `answer`, once.
async fn peer(answer: Vec<u8>) -> (SocketAddr, tokio::task::JoinHandle<Vec<u8>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.unwrap();
        let mut got = vec![0u8; 4096];
        let n = stream.read(&mut got).await.unwrap();
        got.truncate(n);
        let _ = stream.write_all(&answer).await;
        // Keep the connection until the client is done with it.
        let mut rest = Vec::new();
        let _ = stream.read_to_end(&mut rest).await;
        got
    });
    (addr, task)
}

#[tokio::test]
async fn an_answer_arrives_over_a_recorded_connection() {
    let tmp = tempfile::tempdir().unwrap();
    let log = open_log(tmp.path());
    let (addr, task) = peer(
        b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 7\r\n\r\n{\"a\":1}"
            .to_vec(),
    )
    .await;
    let response = send(&log, addr, addr, Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(&body[..], b"{\"a\":1}");
    let sent = String::from_utf8(task.await.unwrap()).unwrap();
    assert!(sent.starts_with("POST /mcp HTTP/1.1\r\n"), "{sent}");
    assert!(sent.ends_with("{\"hello\":1}"), "{sent}");
    let entries = decisions(&log);
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].outcome, Outcome::Ok);
    assert_eq!(entries[0].resource, format!("tcp://{addr}"));
}

#[tokio::test]
async fn an_undeclared_destination_gets_nothing_sent() {
    let tmp = tempfile::tempdir().unwrap();
    let log = open_log(tmp.path());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let other: SocketAddr = "127.0.0.1:9".parse().unwrap();
    let err = send(&log, other, addr, Duration::from_secs(5))
        .await
        .unwrap_err();
    assert!(
        matches!(err, HttpError::Egress(EgressError::Undeclared(a)) if a == addr),
        "{err}"
    );
    assert!(
        tokio::time::timeout(Duration::from_millis(200), listener.accept())
            .await
            .is_err()
    );
    assert_eq!(decisions(&log)[0].outcome, Outcome::Denied);
}

#[tokio::test]
async fn a_peer_that_never_answers_or_sends_an_endless_head_is_cut_off() {
    let tmp = tempfile::tempdir().unwrap();
    let log = open_log(tmp.path());
    // Silent: the time limit.
    let (addr, _task) = peer(Vec::new()).await;
    let began = Instant::now();
    let err = send(&log, addr, addr, Duration::from_millis(500))
        .await
        .unwrap_err();
    assert!(matches!(err, HttpError::Timeout { .. }), "{err}");
    assert!(began.elapsed() < Duration::from_secs(3));
    // A head that never ends: refused past the bound, not kept.
    let mut endless = b"HTTP/1.1 200 OK\r\n".to_vec();
    for i in 0..20_000 {
        endless.extend_from_slice(format!("x-filler-{i}: {}\r\n", "y".repeat(20)).as_bytes());
    }
    let (addr, _task) = peer(endless).await;
    let err = send(&log, addr, addr, Duration::from_secs(5))
        .await
        .unwrap_err();
    assert!(matches!(err, HttpError::Protocol { .. }), "{err}");
}
