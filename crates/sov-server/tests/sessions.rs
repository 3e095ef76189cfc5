//! Console sessions over real HTTP: sign in with a token, act through the cookie, CSRF and
//! origin checks on every state-changing request, sign out, and every way a session ends
//! (signed out, idle, expired, its token revoked, its principal disabled), each refusal recorded.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use reqwest::{RequestBuilder, Response, StatusCode};
use serde_json::{Value, json};
use sov_audit_core::entry::{Entry, Kind, Outcome};
use sov_policy::SessionLimits;

use common::{Node, error_of, index_of, node, node_with};

/// A signed-in session: its cookie header value and CSRF token.
struct Session {
    cookie: String,
    csrf: String,
    id: String,
    set_cookie: String,
    entry: u64,
}

async fn sign_in(n: &Node, token: &str) -> Session {
    let res = sign_in_raw(n, json!({ "token": token }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let set_cookie = res.headers()["set-cookie"].to_str().unwrap().to_owned();
    let entry = index_of(&res);
    let v: Value = res.json().await.unwrap();
    let value = set_cookie
        .split(';')
        .next()
        .unwrap()
        .strip_prefix("sov_session=")
        .unwrap();
    Session {
        cookie: format!("sov_session={value}"),
        csrf: v["csrf_token"].as_str().unwrap().to_owned(),
        id: v["id"].as_str().unwrap().to_owned(),
        set_cookie,
        entry,
    }
}

fn sign_in_raw(n: &Node, body: Value) -> RequestBuilder {
    n.http
        .post(format!("{}/v1/console/session", n.base))
        .json(&body)
}

impl Session {
    fn get(&self, n: &Node, path: &str) -> RequestBuilder {
        n.http
            .get(format!("{}{path}", n.base))
            .header("cookie", &self.cookie)
    }

    /// A state-changing request through the session, with its CSRF token and the node's origin.
    fn post(&self, n: &Node, path: &str, body: Value) -> RequestBuilder {
        self.bare_post(n, path, body)
            .header("x-sov-csrf", &self.csrf)
            .header("origin", &n.base)
    }

    /// The same without CSRF token or origin.
    fn bare_post(&self, n: &Node, path: &str, body: Value) -> RequestBuilder {
        n.http
            .post(format!("{}{path}", n.base))
            .header("cookie", &self.cookie)
            .json(&body)
    }
}

fn entry(n: &Node, res: &Response) -> Entry {
    n.entries()[index_of(res) as usize].clone()
}

async fn add_user(n: &Node, name: &str) -> (String, String) {
    let res = n
        .post(
            "/v1/admin/principals",
            &n.admin,
            json!({"name": name, "roles": ["analyst"]}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let res = n
        .post("/v1/admin/tokens", &n.admin, json!({"principal": name}))
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let v: Value = res.json().await.unwrap();
    (
        v["token"].as_str().unwrap().to_owned(),
        v["id"].as_str().unwrap().to_owned(),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn a_session_signs_in_acts_and_signs_out_and_its_cookie_is_then_refused() {
    let n = node(common::generous()).await;
    let s = sign_in(&n, &n.admin).await;

    // The cookie: HttpOnly, SameSite=Strict, the whole site, the session's lifetime; not
    // Secure over plain HTTP.
    let attrs: Vec<&str> = s.set_cookie.split("; ").skip(1).collect();
    assert_eq!(
        attrs,
        ["HttpOnly", "SameSite=Strict", "Path=/", "Max-Age=43200"]
    );
    // The sign-in is an entry naming the principal, the token and the session; its body (the
    // token) is not committed to.
    let e = &n.entries()[s.entry as usize];
    assert_eq!((e.kind, e.outcome), (Kind::Session, Outcome::Ok));
    assert_eq!(e.principal, "admin");
    assert_eq!(e.attr("change"), Some("session.open"));
    assert_eq!(e.attr("session"), Some(s.id.as_str()));
    assert_eq!(e.attr("token"), Some(&n.admin[4..16]));
    assert!(e.input.is_none());

    // The cookie alone authenticates a read, and the session is shown again (for a reloaded
    // page) with the same CSRF token.
    let res = s.get(&n, "/v1/models").send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let shown: Value = s
        .get(&n, "/v1/console/session")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(shown["principal"], "admin");
    assert_eq!(shown["roles"], json!(["admin"]));
    assert_eq!(shown["csrf_token"], s.csrf.as_str());
    assert_eq!(shown["idle_timeout_s"], 1800);

    // A state-changing request without the CSRF token: refused, recorded, nothing changed.
    let body = json!({"name": "mallory", "roles": ["admin"]});
    let res = s
        .bare_post(&n, "/v1/admin/principals", body.clone())
        .send()
        .await
        .unwrap();
    let refused = entry(&n, &res);
    let (status, err) = error_of(res).await;
    assert_eq!(
        (status, err["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("csrf_failed"))
    );
    assert_eq!(
        (refused.kind, refused.principal.as_str()),
        (Kind::Refusal, "admin")
    );
    assert_eq!(refused.reason, "session: csrf_failed");
    assert_eq!(refused.attr("session"), Some(s.id.as_str()));
    // A wrong token, or the right one from another site's page: refused as well.
    let res = s
        .bare_post(&n, "/v1/admin/principals", body.clone())
        .header("x-sov-csrf", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(res).await.1["code"], "csrf_failed");
    let res = s
        .bare_post(&n, "/v1/admin/principals", body.clone())
        .header("x-sov-csrf", &s.csrf)
        .header("origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(res).await.1["code"], "cross_origin");
    let res = s
        .post(&n, "/v1/admin/principals", body.clone())
        .header("sec-fetch-site", "cross-site")
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(res).await.1["code"], "cross_origin");
    assert!(n.directory.principal("mallory").unwrap().is_none());

    // With the token and the node's origin it is carried out, decided by the same policies,
    // and the decision names the session.
    let res = s
        .post(&n, "/v1/admin/principals", body)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let decision = n
        .entries()
        .into_iter()
        .rev()
        .find(|e| e.kind == Kind::PolicyDecision && e.attr("action") == Some("manage-principals"))
        .unwrap();
    assert_eq!(decision.attr("session"), Some(s.id.as_str()));
    assert_eq!(decision.attr("token"), Some(&n.admin[4..16]));

    // Both a token and a cookie: refused, not settled by order.
    let res = s
        .get(&n, "/v1/models")
        .bearer_auth(&n.admin)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);

    // Sign out (a state-changing request: it needs the CSRF token too).
    let res = n
        .http
        .delete(format!("{}/v1/console/session", n.base))
        .header("cookie", &s.cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(res).await.1["code"], "csrf_failed");
    let res = n
        .http
        .delete(format!("{}/v1/console/session", n.base))
        .header("cookie", &s.cookie)
        .header("x-sov-csrf", &s.csrf)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let cleared = res.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(cleared.starts_with("sov_session=;"), "{cleared}");
    assert!(cleared.contains("Max-Age=0"), "{cleared}");
    let out = entry(&n, &res);
    assert_eq!((out.kind, out.outcome), (Kind::Session, Outcome::Ok));
    assert_eq!(out.attr("change"), Some("session.close"));
    assert_eq!(out.attr("session"), Some(s.id.as_str()));

    // The cookie replayed after sign-out: refused and recorded, and the browser told to drop it.
    let res = s.get(&n, "/v1/models").send().await.unwrap();
    assert!(
        res.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .contains("Max-Age=0")
    );
    let replay = entry(&n, &res);
    let (status, err) = error_of(res).await;
    assert_eq!(
        (status, err["code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("invalid_session"))
    );
    assert_eq!(
        (replay.kind, replay.reason.as_str()),
        (Kind::Refusal, "session: unknown")
    );
    let res = s
        .post(
            &n,
            "/v1/admin/principals",
            json!({"name": "eve", "roles": ["admin"]}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert!(n.directory.principal("eve").unwrap().is_none());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_session_ends_when_its_token_is_revoked_or_its_principal_disabled() {
    let n = node(common::generous()).await;
    let (token, id) = add_user(&n, "alice").await;
    let s = sign_in(&n, &token).await;
    assert_eq!(
        s.get(&n, "/v1/models").send().await.unwrap().status(),
        StatusCode::OK
    );
    // A session cannot do more than its principal: alice may not list principals.
    let res = s.get(&n, "/v1/admin/principals").send().await.unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    let res = n
        .post(
            &format!("/v1/admin/tokens/{id}/revoke"),
            &n.admin,
            json!({}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let res = s.get(&n, "/v1/models").send().await.unwrap();
    let e = entry(&n, &res);
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(e.reason, "session: token-revoked");
    assert_eq!(e.attr("session"), Some(s.id.as_str()));
    // And it stays ended (the session is gone, not only refused once).
    let res = s.get(&n, "/v1/models").send().await.unwrap();
    assert_eq!(entry(&n, &res).reason, "session: unknown");

    let (token, _) = add_user(&n, "bob").await;
    let s = sign_in(&n, &token).await;
    let res = n
        .post("/v1/admin/principals/bob/disable", &n.admin, json!({}))
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let res = s.get(&n, "/v1/models").send().await.unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(entry(&n, &res).reason, "session: principal-disabled");
}

#[tokio::test(flavor = "multi_thread")]
async fn idle_and_expired_sessions_are_refused() {
    let idle = SessionLimits {
        idle: Duration::from_millis(600),
        ..SessionLimits::default()
    };
    let n = node_with(common::generous(), idle).await;
    let s = sign_in(&n, &n.admin).await;
    // Used within the idle time, it lives on.
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(
            s.get(&n, "/v1/models").send().await.unwrap().status(),
            StatusCode::OK
        );
    }
    tokio::time::sleep(Duration::from_millis(700)).await;
    let res = s.get(&n, "/v1/models").send().await.unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(entry(&n, &res).reason, "session: idle");

    let short = SessionLimits {
        lifetime: Duration::from_millis(800),
        ..SessionLimits::default()
    };
    let n = node_with(common::generous(), short).await;
    let s = sign_in(&n, &n.admin).await;
    // Max-Age is rounded up: a cookie that outlives its session by under a second, never one
    // the browser drops at once.
    assert!(s.set_cookie.contains("Max-Age=1"), "{}", s.set_cookie);
    for _ in 0..2 {
        assert_eq!(
            s.get(&n, "/v1/models").send().await.unwrap().status(),
            StatusCode::OK
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    tokio::time::sleep(Duration::from_millis(400)).await;
    let res = s.get(&n, "/v1/models").send().await.unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(entry(&n, &res).reason, "session: expired");
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_sign_ins_are_refused_recorded_and_throttled_like_bad_tokens() {
    // The shipped defaults: 10 failed authentications a minute per address.
    let n = node(sov_server::Limits::default()).await;
    // A cross-site form post (not JSON): refused, no session, recorded.
    let res = n
        .http
        .post(format!("{}/v1/console/session", n.base))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("token={}", n.admin))
        .send()
        .await
        .unwrap();
    assert!(res.headers().get("set-cookie").is_none());
    let e = entry(&n, &res);
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert_eq!((e.kind, e.principal.as_str()), (Kind::Refusal, ""));
    // A good token posted from another site's page: refused before it is looked at.
    let res = sign_in_raw(&n, json!({ "token": n.admin }))
        .header("origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert!(res.headers().get("set-cookie").is_none());
    assert_eq!(error_of(res).await.1["code"], "cross_origin");
    // Extra fields, a wrong token: refused.
    let res = sign_in_raw(&n, json!({ "token": n.admin, "remember": true }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let mut statuses = Vec::new();
    for i in 0..10 {
        let res = sign_in_raw(&n, json!({ "token": format!("sov_{:0>43}", i) }))
            .send()
            .await
            .unwrap();
        assert!(res.headers().get("set-cookie").is_none());
        statuses.push(res.status().as_u16());
    }
    // The three bad bodies and the first seven guesses used up the address's ten failures.
    assert_eq!(&statuses[..7], &[401; 7]);
    assert!(statuses[7..].iter().all(|s| *s == 429), "{statuses:?}");
    let refusals: Vec<Entry> = n
        .entries()
        .into_iter()
        .filter(|e| e.kind == Kind::Refusal && e.resource == "/v1/console/session")
        .collect();
    assert_eq!(refusals.len(), 10);
    assert_eq!(refusals[3].reason, "sign-in: unknown");
    // A cookie that was never issued: refused (and the address is throttled by now).
    let res = n
        .http
        .get(format!("{}/v1/models", n.base))
        .header(
            "cookie",
            "sov_session=sovs_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test(flavor = "multi_thread")]
async fn behind_a_tls_proxy_the_cookie_is_secure() {
    let n = node(common::generous()).await;
    let res = sign_in_raw(&n, json!({ "token": n.admin }))
        .header("x-forwarded-proto", "https")
        .send()
        .await
        .unwrap();
    let cookie = res.headers()["set-cookie"].to_str().unwrap();
    assert!(cookie.ends_with("; Secure"), "{cookie}");
    // A forged or repeated cookie: refused.
    for cookie in [
        "sov_session=sovs_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA".to_owned(),
        "sov_session=<script>".to_owned(),
        "sov_session=a; sov_session=b".to_owned(),
    ] {
        let res = n
            .http
            .get(format!("{}/v1/models", n.base))
            .header("cookie", cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(error_of(res).await.1["code"], "invalid_session");
    }
}
