//! Issue 12's property test: random methods, paths and bodies at the public and authenticated
//! routes, with and without a token (or with a session cookie that was never issued). Whatever
//! arrives: no 5xx, every 4xx in OpenAI's error shape, and requests without a valid token add no
//! more entries than the failed-authentication limit lets through (the rest are counted, not
//! recorded).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::net::SocketAddr;
use std::sync::OnceLock;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Method, Request};
use proptest::prelude::*;
use serde_json::Value;
use sov_audit::{AuditLog, LogReader};
use sov_audit_core::entry::{Entry, Kind};
use sov_server::Limits;
use tower::ServiceExt as _;

struct Fixture {
    runtime: tokio::runtime::Runtime,
    app: axum::Router,
    log: AuditLog,
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .unwrap();
        let (log, _) = common::audit_log();
        let access = common::Setup::new(
            common::shared().0.clone(),
            sov_policy::Policies::starter().unwrap(),
            None,
            Limits::default(),
        );
        let state = common::state_with_access(common::engine(), 64 * 1024, log.clone(), access);
        Fixture {
            runtime,
            app: sov_server::app(state),
            log,
        }
    })
}

/// Entries written for callers without a valid token (the refusals of the auth layer).
fn unauthenticated_entries(log: &AuditLog) -> usize {
    let size = log.sign_now().unwrap();
    let reader = LogReader::open(log.dir()).unwrap();
    (0..size)
        .map(|i| Entry::decode(&reader.entry(i).unwrap()).unwrap())
        .filter(|e| e.kind == Kind::Refusal && e.principal.is_empty())
        .count()
}

const ROUTES: &[&str] = &[
    "/healthz",
    "/metrics",
    "/v1/models",
    "/v1/models/{}",
    "/v1/catalog",
    "/v1/chat/completions",
    "/v1/completions",
    "/v1/embeddings",
    "/v1/seal",
    "/v1/audit/checkpoint",
    "/v1/audit/vkeys",
    "/v1/audit/tile/{}",
    "/v1/audit/entries/{}",
    "/v1/audit/proof/{}",
    "/v1/audit/consistency/{}",
    "/v1/admin/principals",
    "/v1/admin/principals/{}",
    "/v1/admin/principals/{}/disable",
    "/v1/admin/tokens",
    "/v1/admin/tokens/{}/revoke",
    "/v1/admin/policies",
    "/v1/admin/policies/reload",
    "/v1/console/session",
];

fn method() -> impl Strategy<Value = Method> {
    prop_oneof![
        Just(Method::GET),
        Just(Method::POST),
        Just(Method::PUT),
        Just(Method::DELETE),
        Just(Method::PATCH),
        Just(Method::HEAD),
        Just(Method::OPTIONS),
        Just(Method::from_bytes(b"BREW").unwrap()),
    ]
}

fn path() -> impl Strategy<Value = String> {
    let param = prop_oneof![
        Just("smollm2".to_owned()),
        Just("0".to_owned()),
        Just("18446744073709551616".to_owned()),
        Just("-1".to_owned()),
        Just("0/000".to_owned()),
        Just("entries/000.p/3".to_owned()),
        Just("%00".to_owned()),
        Just("admin".to_owned()),
        "[a-zA-Z0-9_.~%-]{0,40}",
    ];
    prop_oneof![
        4 => (prop::sample::select(ROUTES), param).prop_map(|(r, p)| r.replace("{}", &p)),
        1 => "/[a-zA-Z0-9/._%-]{0,80}",
    ]
}

fn body() -> impl Strategy<Value = Vec<u8>> {
    let json = prop_oneof![
        Just(r#"{"model":"smollm2","messages":[{"role":"user","content":"Hi"}],"max_tokens":1}"#.to_owned()),
        Just(r#"{"model":"smollm2","prompt":"Hi","max_tokens":1,"temperature":0}"#.to_owned()),
        Just(r#"{"model":"smollm2","input":"Hi"}"#.to_owned()),
        Just(r#"{"name":"p","roles":["analyst"]}"#.to_owned()),
        Just(r#"{"principal":"nobody"}"#.to_owned()),
        Just(r#"{"token":"sov_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}"#.to_owned()),
        Just(r#"{"model":"smollm2","messages":[{"role":"user<|im_end|>","content":"x"}],"max_tokens":4294967295}"#.to_owned()),
        "[{}\\[\\]\":,a-z0-9 ]{0,200}",
    ];
    prop_oneof![
        Just(Vec::new()),
        json.prop_map(String::into_bytes),
        prop::collection::vec(any::<u8>(), 0..512),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn any_request_gets_a_shaped_bounded_answer(
        method in method(),
        path in path(),
        body in body(),
        auth in prop_oneof![Just(0u8), Just(1u8), Just(2u8), Just(3u8)],
        json_type in any::<bool>(),
    ) {
        let f = fixture();
        // Callers with and without a token come from different addresses, so the failed
        // authentications of one do not throttle the other.
        let (peer, token): (SocketAddr, Option<String>) = match auth {
            0 => (([127, 0, 0, 2], 1).into(), Some(common::bearer())),
            1 => (([127, 0, 0, 3], 1).into(), None),
            2 => (([127, 0, 0, 3], 1).into(), Some("Bearer sov_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA".to_owned())),
            _ => (([127, 0, 0, 3], 1).into(), None),
        };
        let mut req = Request::builder().method(method.clone()).uri(&path);
        if let Some(t) = &token {
            req = req.header("authorization", t);
        }
        if auth == 3 {
            // A session cookie that was never issued.
            req = req.header("cookie", "sov_session=sovs_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");
        }
        if json_type {
            req = req.header("content-type", "application/json");
        }
        let Ok(mut req) = req.body(Body::from(body)) else {
            // Not a URI hyper would have accepted either.
            return Ok(());
        };
        req.extensions_mut().insert(ConnectInfo(peer));
        let (status, bytes) = f.runtime.block_on(async {
            let res = f.app.clone().oneshot(req).await.unwrap();
            let status = res.status();
            (status, axum::body::to_bytes(res.into_body(), usize::MAX).await.unwrap())
        });
        prop_assert!(!status.is_server_error(), "{method} {path}: {status}: {:?}", String::from_utf8_lossy(&bytes));
        if status.is_client_error() && method != Method::HEAD {
            let v: Value = serde_json::from_slice(&bytes)
                .map_err(|e| TestCaseError::fail(format!("{method} {path}: {status}: not JSON: {e}: {:?}", String::from_utf8_lossy(&bytes))))?;
            prop_assert!(v["error"]["message"].is_string(), "{method} {path}: {v}");
            prop_assert!(v["error"]["type"].is_string(), "{method} {path}: {v}");
            prop_assert!(v["error"].get("code").is_some(), "{method} {path}: {v}");
        }
        // Only the failed-authentication limit's burst (10 from one address) may have entries
        // of their own; the rest are counted. Both addresses fail: the token holder's too, with
        // the sign-ins whose body holds no valid token.
        let grown = unauthenticated_entries(&f.log);
        prop_assert!(grown <= 20, "{grown} unauthenticated entries");
    }
}
