//! Identity and permission over real HTTP: the token lifecycle, scopes, 401/403/429, the admin
//! endpoints, policy reloads, and the audit entry of every decision.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use reqwest::StatusCode;
use serde_json::{Value, json};
use sov_audit_core::entry::{Entry, Kind, Outcome};
use sov_policy::{Policies, Rate};
use sov_server::Limits;

use common::{error_of, index_of, node};

#[tokio::test(flavor = "multi_thread")]
async fn the_token_lifecycle_over_http() {
    let n = node(common::generous()).await;
    let policy_set = Policies::load_dir(&n.policies).unwrap().hash_hex();

    // Every way of not presenting a valid token is a 401 in OpenAI's shape, and recorded.
    let fake = format!("sov_{}", "A".repeat(43));
    for (header, why) in [
        (None, "didn't provide an API key"),
        (Some("Basic dXNlcjpwYXNz".to_owned()), "Bearer"),
        (Some("Bearer sk-123".to_owned()), "sov_"),
        (Some("Bearer sov_short".to_owned()), "43"),
        (Some(format!("Bearer {fake}")), "unknown"),
    ] {
        let mut req = n.http.get(format!("{}/v1/models", n.base));
        if let Some(h) = &header {
            req = req.header("authorization", h);
        }
        let res = req.send().await.unwrap();
        assert_eq!(res.headers()["www-authenticate"], "Bearer");
        let index = index_of(&res);
        let (status, err) = error_of(res).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{header:?}");
        assert_eq!(err["code"], "invalid_api_key");
        assert_eq!(err["type"], "invalid_request_error");
        assert!(
            err["message"].as_str().unwrap().contains(why),
            "{header:?}: {err}"
        );
        let e = &n.entries()[index as usize];
        assert_eq!((e.kind, e.outcome), (Kind::Refusal, Outcome::Denied));
        assert_eq!(e.attr("status"), Some("401"));
    }
    // /healthz alone is open.
    assert_eq!(n.get("/healthz", None).await.status(), StatusCode::OK);

    // The admin adds an analyst and issues a token; the analyst infers.
    let res = n
        .post(
            "/v1/admin/principals",
            &n.admin,
            json!({"name": "ana", "roles": ["analyst"], "attrs": {"department": "oncology", "clearance": "2"}}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let res = n
        .post("/v1/admin/principals", &n.admin, json!({"name": "ana"}))
        .await;
    assert_eq!(res.status(), StatusCode::CONFLICT);
    let (ana, ana_id) = n.issue(json!({"principal": "ana", "expires": "30m"})).await;
    assert!(ana.starts_with("sov_") && ana.len() == 47);
    let res = n.chat(&ana).await;
    assert_eq!(res.status(), StatusCode::OK);
    let inference = &n.entries()[index_of(&res) as usize];
    assert_eq!(inference.principal, "ana");
    // The inference entry names the decision that allowed it, with the policy set in force.
    let decision_index: u64 = inference.attr("decision").unwrap().parse().unwrap();
    let decision = &n.entries()[decision_index as usize];
    assert_eq!(decision.kind, Kind::PolicyDecision);
    assert_eq!(decision.outcome, Outcome::Ok);
    assert_eq!(decision.principal, "ana");
    assert_eq!(decision.resource, format!("Model::\"{}\"", common::MODEL));
    assert_eq!(decision.attr("action"), Some("infer"));
    assert_eq!(decision.attr("policy_set"), Some(policy_set.as_str()));
    assert_eq!(decision.attr("policies"), Some("analyst-use"));
    assert_eq!(decision.attr("token"), Some(ana_id.as_str()));

    // The analyst may not manage principals: 403 naming the action and the resource only.
    let res = n.get("/v1/admin/principals", Some(&ana)).await;
    let index = index_of(&res);
    let (status, err) = error_of(res).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(err["code"], "permission_denied");
    assert_eq!(
        err["message"],
        "You are not allowed to `manage-principals` on Node::\"test-node\"."
    );
    let denied = &n.entries()[index as usize];
    assert_eq!(
        (denied.kind, denied.outcome),
        (Kind::PolicyDecision, Outcome::Denied)
    );
    assert_eq!(denied.attr("policy_set"), Some(policy_set.as_str()));
    // The same for a name that does not exist: a refused caller learns nothing about names.
    let res = n.get("/v1/admin/principals/nobody", Some(&ana)).await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    let res = n.get("/v1/admin/principals/nobody", Some(&n.admin)).await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);

    // The listing never shows a secret.
    let res = n
        .get("/v1/admin/tokens?principal=ana", Some(&n.admin))
        .await;
    let text = res.text().await.unwrap();
    assert!(
        text.contains(&ana_id) && !text.contains(&ana[16..]),
        "{text}"
    );

    // Revoked: refused at once.
    let res = n
        .post(
            &format!("/v1/admin/tokens/{ana_id}/revoke"),
            &n.admin,
            json!({}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let (status, err) = error_of(n.chat(&ana).await).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(
        err["message"].as_str().unwrap().contains("revoked"),
        "{err}"
    );

    // Expired: a token whose time has passed is refused.
    let soon = time::OffsetDateTime::now_utc() + time::Duration::milliseconds(1500);
    let soon = soon
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let (brief, _) = n.issue(json!({"principal": "ana", "expires": soon})).await;
    assert_eq!(
        n.get("/v1/models", Some(&brief)).await.status(),
        StatusCode::OK
    );
    tokio::time::sleep(std::time::Duration::from_millis(1600)).await;
    let (status, err) = error_of(n.get("/v1/models", Some(&brief)).await).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(
        err["message"].as_str().unwrap().contains("expired"),
        "{err}"
    );

    // Disabled: every token of the principal is refused, and no new one is issued.
    let (fresh, _) = n.issue(json!({"principal": "ana"})).await;
    assert_eq!(
        n.get("/v1/models", Some(&fresh)).await.status(),
        StatusCode::OK
    );
    let res = n
        .post("/v1/admin/principals/ana/disable", &n.admin, json!({}))
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let (status, err) = error_of(n.get("/v1/models", Some(&fresh)).await).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(
        err["message"].as_str().unwrap().contains("disabled"),
        "{err}"
    );
    let res = n
        .post("/v1/admin/tokens", &n.admin, json!({"principal": "ana"}))
        .await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);

    // A scoped token: only its actions, whatever its principal's roles allow.
    let (audit_only, _) = n
        .issue(json!({"principal": "admin", "scope": ["read-audit"]}))
        .await;
    assert_eq!(
        n.get("/v1/audit/checkpoint", Some(&audit_only))
            .await
            .status(),
        StatusCode::OK
    );
    assert_eq!(n.chat(&audit_only).await.status(), StatusCode::FORBIDDEN);
    let models: Value = n
        .get("/v1/models", Some(&audit_only))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        models["data"],
        json!([]),
        "a model list shows only usable models"
    );

    // Every directory change is in the record, by whom, in order.
    let changes: Vec<(String, String, String)> = n
        .entries()
        .iter()
        .filter(|e| e.kind == Kind::IdentityChange && e.attr("outbox").is_some())
        .map(|e| {
            (
                e.principal.clone(),
                e.attr("change").unwrap().to_owned(),
                e.resource.clone(),
            )
        })
        .collect();
    let expected = [
        ("test", "principal.add", "admin"),
        ("test", "token.issue", "admin"),
        ("admin", "principal.add", "ana"),
        ("admin", "token.issue", "ana"),
        ("admin", "token.revoke", "ana"),
        ("admin", "token.issue", "ana"),
        ("admin", "token.issue", "ana"),
        ("admin", "principal.disable", "ana"),
        ("admin", "token.issue", "admin"),
    ];
    let expected: Vec<(String, String, String)> = expected
        .iter()
        .map(|(a, b, c)| ((*a).to_owned(), (*b).to_owned(), (*c).to_owned()))
        .collect();
    assert_eq!(changes, expected);
    assert!(n.directory.outbox().unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn brute_force_is_refused_rate_limited_and_recorded() {
    // The shipped defaults: 10 failed authentications a minute per address.
    let n = node(Limits::default()).await;
    let mut statuses = Vec::new();
    for i in 0..60 {
        let guess = format!("sov_{:0>43}", i);
        let res = n.get("/v1/models", Some(&guess)).await;
        if res.status() == StatusCode::TOO_MANY_REQUESTS {
            let wait: u64 = res.headers()["retry-after"]
                .to_str()
                .unwrap()
                .parse()
                .unwrap();
            assert!((1..=60).contains(&wait), "{wait}");
            let (_, err) = error_of(res).await;
            assert_eq!(err["code"], "rate_limit_exceeded");
            statuses.push(429);
        } else {
            statuses.push(res.status().as_u16());
        }
    }
    // The first ten guesses are looked up and refused; the rest are refused unseen.
    assert_eq!(&statuses[..10], &[401; 10]);
    assert!(statuses[10..].iter().all(|s| *s == 429), "{statuses:?}");
    // While the address is throttled, even a good token from it waits (the limit is per
    // address, before any lookup, so it cannot be used to test guesses).
    assert_eq!(
        n.get("/v1/models", Some(&n.admin)).await.status(),
        StatusCode::TOO_MANY_REQUESTS
    );
    // Every attempt is recorded: the ten looked-up guesses each with an entry of their own, the
    // 51 refused unseen counted into one summary entry (so guessing cannot grow the record at
    // the rate it is tried); the server is healthy and its record intact.
    let refusals = n
        .entries()
        .iter()
        .filter(|e| e.kind == Kind::Refusal && e.resource == "/v1/models")
        .count();
    assert_eq!(refusals, 10);
    n.access.flush_unrecorded(&n.log).await.unwrap();
    let entries = n.entries();
    let summary = entries.last().unwrap();
    assert_eq!(
        (summary.kind, summary.resource.as_str()),
        (Kind::Refusal, "unauthenticated")
    );
    assert_eq!(summary.attr("requests"), Some("51"));
    assert_eq!(summary.attr("statuses"), Some("429=51"));
    assert_eq!(summary.attr("addresses"), Some("127.0.0.1"));
    assert_eq!(n.get("/healthz", None).await.status(), StatusCode::OK);
    let report = sov_audit::LogReader::open(n.log.dir())
        .unwrap()
        .checkpoint()
        .1
        .size;
    assert!(report >= 11);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_principal_over_its_rate_gets_429_with_retry_after() {
    let limits = Limits {
        requests: Rate {
            per_minute: 60,
            burst: 5,
        },
        ..common::generous()
    };
    let n = node(limits).await;
    for _ in 0..5 {
        assert_eq!(
            n.get("/v1/models", Some(&n.admin)).await.status(),
            StatusCode::OK
        );
    }
    let res = n.get("/v1/models", Some(&n.admin)).await;
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(res.headers()["retry-after"], "1");
    let index = index_of(&res);
    let e = &n.entries()[index as usize];
    assert_eq!((e.kind, e.outcome), (Kind::Refusal, Outcome::Denied));
    assert_eq!(e.principal, "admin");
    assert_eq!(e.attr("status"), Some("429"));
    // One second later (60 per minute) it may call again.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    assert_eq!(
        n.get("/v1/models", Some(&n.admin)).await.status(),
        StatusCode::OK
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_policy_change_is_recorded_with_the_old_and_new_hashes() {
    let n = node(common::generous()).await;
    n.post(
        "/v1/admin/principals",
        &n.admin,
        json!({"name": "ana", "roles": ["analyst"]}),
    )
    .await;
    let (ana, _) = n.issue(json!({"principal": "ana"})).await;
    assert_eq!(
        n.get("/v1/audit/checkpoint", Some(&ana)).await.status(),
        StatusCode::FORBIDDEN
    );
    let old: Value = n
        .get("/v1/admin/policies", Some(&n.admin))
        .await
        .json()
        .await
        .unwrap();

    // Analysts may now read the record.
    std::fs::write(
        n.policies.join("auditors.cedar"),
        "@id(\"analyst-audit\")\npermit (principal in Role::\"analyst\", action == Action::\"read-audit\", resource);\n",
    )
    .unwrap();
    // Only an administrator may reload.
    assert_eq!(
        n.post("/v1/admin/policies/reload", &ana, json!({}))
            .await
            .status(),
        StatusCode::FORBIDDEN
    );
    let res = n
        .post("/v1/admin/policies/reload", &n.admin, json!({}))
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let new: Value = res.json().await.unwrap();
    assert_eq!(new["previous_hash"], old["hash"]);
    assert_ne!(new["hash"], old["hash"]);
    assert_eq!(
        n.get("/v1/audit/checkpoint", Some(&ana)).await.status(),
        StatusCode::OK
    );

    // An invalid file is refused with its line, and the set in force stays.
    std::fs::write(
        n.policies.join("broken.cedar"),
        "// oops\npermit (principal, action == Action::\"read-audit\", resource)\n",
    )
    .unwrap();
    let res = n
        .post("/v1/admin/policies/reload", &n.admin, json!({}))
        .await;
    let (status, err) = error_of(res).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(err["code"], "invalid_policy");
    assert!(
        err["message"].as_str().unwrap().contains("broken.cedar:2"),
        "{err}"
    );
    assert_eq!(
        n.get("/v1/audit/checkpoint", Some(&ana)).await.status(),
        StatusCode::OK
    );
    let now: Value = n
        .get("/v1/admin/policies", Some(&n.admin))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(now["hash"], new["hash"]);

    // Both attempts are in the record: the change with old and new hashes, the refusal with
    // the old hash and the reason.
    let changes: Vec<Entry> = n
        .entries()
        .into_iter()
        .filter(|e| e.kind == Kind::PolicyChange && e.resource == "policies")
        .collect();
    let ok: Vec<&Entry> = changes
        .iter()
        .filter(|e| e.outcome == Outcome::Ok && e.attr("new").is_some())
        .collect();
    assert_eq!(ok.len(), 2, "the first set noted, then the change");
    assert_eq!(ok[1].attr("old"), old["hash"].as_str());
    assert_eq!(ok[1].attr("new"), new["hash"].as_str());
    assert_eq!(ok[1].principal, "admin");
    let failed: Vec<&Entry> = changes
        .iter()
        .filter(|e| e.outcome == Outcome::Error)
        .collect();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].attr("old"), new["hash"].as_str());
    assert!(
        failed[0].reason.contains("broken.cedar:2"),
        "{}",
        failed[0].reason
    );
}
