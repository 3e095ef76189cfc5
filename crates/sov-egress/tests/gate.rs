//! The gate against real loopback peers and the real audit log: what it hands out, what it
//! refuses, and the `egress.decision` entry it writes for each attempt, read back from the log.
//! Two small doubles of the recording seam stand in for a record that fails and one that is
//! slow to answer. The gate under the kernel's seal is tested in `sov-seal/tests/kernel.rs`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::{decisions, declaring, open_log};
use sov_audit::AuditLog;
use sov_audit_core::entry::{Entry, Outcome};
use sov_audit_core::record::{Done, Draft, Record, RecordError};
use sov_egress::{EgressError, Gate};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpListener;

const TIMEOUT: Duration = Duration::from_secs(2);

fn attr<'a>(e: &'a Entry, key: &str) -> Option<&'a str> {
    e.attrs
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

async fn listener() -> (TcpListener, SocketAddr) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    (listener, addr)
}

/// Whether `listener` accepts a connection within a short while.
async fn accepts(listener: &TcpListener) -> bool {
    tokio::time::timeout(Duration::from_millis(200), listener.accept())
        .await
        .is_ok()
}

#[tokio::test]
async fn a_declared_destination_connects_and_is_recorded_first() {
    let tmp = tempfile::tempdir().unwrap();
    let log = open_log(tmp.path());
    let (peer, addr) = listener().await;
    let gate = Gate::new(
        declaring(addr, "the cardiology engine"),
        Arc::new(log.clone()),
        "system",
    );
    assert_eq!(gate.permitted(addr), Some("the cardiology engine"));

    let mut stream = gate
        .connect(addr, "upstream engine cardiology", TIMEOUT)
        .await
        .unwrap();
    // The entry is durable when the stream is handed out.
    let entries = decisions(&log);
    assert_eq!(entries.len(), 1, "{entries:?}");
    let e = &entries[0];
    assert_eq!(e.outcome, Outcome::Ok);
    assert_eq!(e.principal, "system");
    assert_eq!(e.resource, format!("tcp://{addr}"));
    assert_eq!(e.reason, "");
    assert_eq!(attr(e, "use"), Some("upstream engine cardiology"));
    assert_eq!(attr(e, "purpose"), Some("the cardiology engine"));

    // And the stream reaches the peer.
    let (mut accepted, _) = peer.accept().await.unwrap();
    stream.write_all(b"ping").await.unwrap();
    let mut buf = [0; 4];
    accepted.read_exact(&mut buf).await.unwrap();
    assert_eq!(&buf, b"ping");
    log.close().unwrap();
}

#[tokio::test]
async fn an_undeclared_destination_is_refused_and_recorded() {
    let tmp = tempfile::tempdir().unwrap();
    let log = open_log(tmp.path());
    let (_declared, declared) = listener().await;
    let (peer, addr) = listener().await;
    let gate = Gate::new(
        declaring(declared, "declared"),
        Arc::new(log.clone()),
        "system",
    );
    assert_eq!(gate.permitted(addr), None);

    match gate.connect(addr, "tool server", TIMEOUT).await {
        Err(EgressError::Undeclared(a)) => assert_eq!(a, addr),
        other => panic!("expected a refusal: {other:?}"),
    }
    assert!(
        !accepts(&peer).await,
        "the undeclared peer saw a connection"
    );
    let entries = decisions(&log);
    assert_eq!(entries.len(), 1, "{entries:?}");
    let e = &entries[0];
    assert_eq!(e.outcome, Outcome::Denied);
    assert_eq!(e.resource, format!("tcp://{addr}"));
    assert!(
        e.reason.contains("not declared in [seal] outbound"),
        "{}",
        e.reason
    );
    assert_eq!(attr(e, "use"), Some("tool server"));
    assert_eq!(attr(e, "purpose"), None);
    log.close().unwrap();
}

#[tokio::test]
async fn offline_refuses_even_a_declared_destination() {
    let tmp = tempfile::tempdir().unwrap();
    let log = open_log(tmp.path());
    let (peer, addr) = listener().await;
    let mut declaration = declaring(addr, "declared");
    declaration.offline = true;
    let gate = Gate::new(declaration, Arc::new(log.clone()), "system");
    assert_eq!(gate.permitted(addr), None);

    match gate.connect(addr, "upstream engine", TIMEOUT).await {
        Err(EgressError::Offline(a)) => assert_eq!(a, addr),
        other => panic!("expected the offline refusal: {other:?}"),
    }
    assert!(
        !accepts(&peer).await,
        "an offline gate let a connection out"
    );
    let entries = decisions(&log);
    assert_eq!(entries.len(), 1, "{entries:?}");
    assert_eq!(entries[0].outcome, Outcome::Denied);
    assert!(
        entries[0].reason.contains("the seal is offline"),
        "{}",
        entries[0].reason
    );
    log.close().unwrap();
}

#[tokio::test]
async fn a_declared_port_with_nothing_listening_is_recorded_as_an_error() {
    let tmp = tempfile::tempdir().unwrap();
    let log = open_log(tmp.path());
    let addr = {
        let (closed, addr) = listener().await;
        drop(closed);
        addr
    };
    let gate = Gate::new(declaring(addr, "gone"), Arc::new(log.clone()), "system");

    match gate.connect(addr, "upstream engine", TIMEOUT).await {
        Err(EgressError::Connect { addr: a, source }) => {
            assert_eq!(a, addr);
            assert_eq!(
                source.kind(),
                std::io::ErrorKind::ConnectionRefused,
                "{source}"
            );
        }
        other => panic!("expected a connect failure: {other:?}"),
    }
    let entries = decisions(&log);
    assert_eq!(entries.len(), 1, "{entries:?}");
    let e = &entries[0];
    assert_eq!(e.outcome, Outcome::Error);
    assert!(
        e.reason.starts_with("declared; the connection failed: "),
        "not the kernel's refusal: {}",
        e.reason
    );
    assert_eq!(attr(e, "purpose"), Some("gone"));
    log.close().unwrap();
}

/// A record that refuses every entry, as a full disk would.
#[derive(Debug)]
struct Failing;

impl Record for Failing {
    fn submit(&self, _draft: Draft, done: Done) {
        done(Err(RecordError("the disk is full".into())));
    }
}

#[tokio::test]
async fn an_unrecorded_attempt_hands_out_nothing() {
    let (peer, addr) = listener().await;
    let gate = Gate::new(declaring(addr, "declared"), Arc::new(Failing), "system");

    match gate.connect(addr, "upstream engine", TIMEOUT).await {
        Err(EgressError::Record(a, reason)) => {
            assert_eq!(a, addr);
            assert_eq!(reason, "the disk is full");
        }
        other => panic!("expected the record failure: {other:?}"),
    }
    // The handshake was made (the outcome is what is recorded), but the caller got nothing:
    // the peer sees the connection closed without a byte.
    let (mut accepted, _) = tokio::time::timeout(TIMEOUT, peer.accept())
        .await
        .unwrap()
        .unwrap();
    let mut buf = [0; 1];
    assert_eq!(accepted.read(&mut buf).await.unwrap(), 0);

    // A refusal that cannot be recorded is a record failure too.
    let (_other, undeclared) = listener().await;
    assert!(matches!(
        gate.connect(undeclared, "tool server", TIMEOUT).await,
        Err(EgressError::Record(a, _)) if a == undeclared
    ));
}

/// The real log, answering each entry only after a delay, from another thread.
#[derive(Debug)]
struct Slow(AuditLog);

impl Record for Slow {
    fn submit(&self, draft: Draft, done: Done) {
        let log = self.0.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(300));
            Record::submit(&log, draft, done);
        });
    }
}

#[tokio::test(flavor = "current_thread")]
async fn waiting_for_the_record_does_not_block_the_runtime() {
    let tmp = tempfile::tempdir().unwrap();
    let log = open_log(tmp.path());
    let (_peer, addr) = listener().await;
    let gate = Gate::new(
        declaring(addr, "declared"),
        Arc::new(Slow(log.clone())),
        "system",
    );
    let ticks = Arc::new(AtomicUsize::new(0));
    let ticker = {
        let ticks = ticks.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_millis(10)).await;
                ticks.fetch_add(1, Ordering::SeqCst);
            }
        })
    };
    gate.connect(addr, "upstream engine", TIMEOUT)
        .await
        .unwrap();
    ticker.abort();
    // One thread runs both tasks: the ticker ran only because the gate yielded while waiting.
    let ticked = ticks.load(Ordering::SeqCst);
    assert!(
        ticked >= 10,
        "the runtime was blocked: {ticked} ticks in 300 ms"
    );
    assert_eq!(decisions(&log).len(), 1);
    log.close().unwrap();
}

#[test]
fn an_ipv4_mapped_address_is_the_same_destination() {
    let declared: SocketAddr = "127.0.0.1:8080".parse().unwrap();
    let gate = Gate::new(declaring(declared, "engine"), Arc::new(Failing), "system");
    let mapped: SocketAddr = "[::ffff:127.0.0.1]:8080".parse().unwrap();
    assert_eq!(gate.permitted(mapped), Some("engine"));
    let other_port: SocketAddr = "127.0.0.1:8081".parse().unwrap();
    assert_eq!(gate.permitted(other_port), None);
    let other_host: SocketAddr = "127.0.0.2:8080".parse().unwrap();
    assert_eq!(gate.permitted(other_host), None);
}
