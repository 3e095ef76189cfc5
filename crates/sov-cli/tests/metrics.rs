//! `/metrics` on a served home: refused without a token (401) and without `read-metrics`
//! (403), served to the starter role `monitor` (which may do nothing else), and read by the
//! Prometheus project's own text-format parser (`metrics_client.py`); what it counts follows
//! what the node did. Needs SOV_TEST_MODEL and SOV_TEST_PYTHON (`bash scripts/test`).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{client, entries, env_path, home_with_starter, sov, start};
use serde_json::{Value, json};

/// The parsed samples: (name, labels, value).
fn parse(body: &str) -> (Value, Vec<(String, Value, f64)>) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("metrics.txt");
    std::fs::write(&file, body).unwrap();
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/metrics_client.py");
    let v = client(
        &env_path("SOV_TEST_PYTHON"),
        &script,
        &[file.to_str().unwrap()],
        &[],
    );
    let samples = v["samples"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["name"].as_str().unwrap().to_owned(),
                s["labels"].clone(),
                s["value"].as_f64().unwrap(),
            )
        })
        .collect();
    (v["families"].clone(), samples)
}

/// The value of the one sample named `name` whose labels include `labels`.
fn value(samples: &[(String, Value, f64)], name: &str, labels: Value) -> f64 {
    let found: Vec<f64> = samples
        .iter()
        .filter(|(n, l, _)| {
            n == name
                && labels
                    .as_object()
                    .unwrap()
                    .iter()
                    .all(|(k, v)| l.get(k) == Some(v))
        })
        .map(|(_, _, v)| *v)
        .collect();
    assert_eq!(found.len(), 1, "{name} {labels}: {found:?} in {samples:?}");
    found[0]
}

#[test]
fn metrics_are_for_monitors_and_parse_as_prometheus_text() {
    let (_dir, home) = home_with_starter();
    sov(&home, &["principal", "add", "ana", "--role", "analyst"]);
    sov(&home, &["principal", "add", "scraper", "--role", "monitor"]);
    let ana = sov(&home, &["token", "issue", "ana"]).trim().to_owned();
    let scraper = sov(&home, &["token", "issue", "scraper"]).trim().to_owned();
    let (server, base, _) = start(&home);
    let root = base.trim_end_matches("/v1").to_owned();
    let http = reqwest::blocking::Client::new();
    let get = |token: Option<&str>| {
        let mut r = http.get(format!("{root}/metrics"));
        if let Some(t) = token {
            r = r.bearer_auth(t);
        }
        r.send().unwrap()
    };
    assert_eq!(get(None).status(), 401);
    assert_eq!(get(Some(&ana)).status(), 403);
    let chat = |token: &str| {
        http.post(format!("{base}/chat/completions"))
            .bearer_auth(token)
            .json(
                &json!({"model": "smollm2", "max_tokens": 8, "temperature": 0,
                "messages": [{"role": "user", "content": "Say hello."}]}),
            )
            .timeout(std::time::Duration::from_secs(120))
            .send()
            .unwrap()
    };
    let answered: Value = chat(&ana).json().unwrap();
    let generated = answered["usage"]["completion_tokens"].as_f64().unwrap();
    let prompt = answered["usage"]["prompt_tokens"].as_f64().unwrap();
    // A monitor reads the metrics and nothing else.
    assert_eq!(chat(&scraper).status(), 403);
    let r = get(Some(&scraper));
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers()["content-type"],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    let body = r.text().unwrap();
    drop(server);

    let (families, samples) = parse(&body);
    for (family, kind) in [
        ("sov_http_requests", "counter"),
        ("sov_http_request_duration_seconds", "histogram"),
        ("sov_refusals", "counter"),
        ("sov_engine_generated_tokens", "counter"),
        ("sov_engine_prompt_tokens_reused", "counter"),
        ("sov_engine_decode_steps", "counter"),
        ("sov_engine_decode_outputs", "counter"),
        ("sov_engine_queued", "gauge"),
        ("sov_audit_append_duration_seconds", "histogram"),
        ("sov_seal_layer", "gauge"),
    ] {
        assert_eq!(families[family], kind, "{family}: {families}");
    }
    let requests = |route: &str, method: &str, status: &str| {
        value(
            &samples,
            "sov_http_requests_total",
            json!({"route": route, "method": method, "status": status}),
        )
    };
    assert_eq!(requests("/v1/chat/completions", "POST", "200"), 1.0);
    assert_eq!(requests("/v1/chat/completions", "POST", "403"), 1.0);
    assert_eq!(requests("/metrics", "GET", "401"), 1.0);
    assert_eq!(requests("/metrics", "GET", "403"), 1.0);
    let refused = |code: &str| {
        value(
            &samples,
            "sov_refusals_total",
            json!({"type": "invalid_request_error", "code": code}),
        )
    };
    assert_eq!(refused("invalid_api_key"), 1.0);
    assert_eq!(refused("permission_denied"), 2.0);
    // The chat's latency is in its histogram: one observation, under +Inf.
    let chat_route = json!({"route": "/v1/chat/completions"});
    assert_eq!(
        value(
            &samples,
            "sov_http_request_duration_seconds_count",
            chat_route.clone()
        ),
        2.0
    );
    assert!(
        value(
            &samples,
            "sov_http_request_duration_seconds_sum",
            chat_route
        ) > 0.0
    );
    // The engine counted what the answer's usage says.
    let model = json!({"model": "smollm2"});
    assert_eq!(
        value(&samples, "sov_engine_generated_tokens_total", model.clone()),
        generated
    );
    assert_eq!(
        value(&samples, "sov_engine_prompt_tokens_total", model.clone()),
        prompt
    );
    // One answer so far: nothing was cached before it.
    assert_eq!(
        value(
            &samples,
            "sov_engine_prompt_tokens_reused_total",
            model.clone()
        ),
        0.0
    );
    // One answer alone: one sequence sampled per step, one step per token (the end token, if
    // the answer stopped on it, was sampled too).
    let steps = value(&samples, "sov_engine_decode_steps_total", model.clone());
    let outputs = value(&samples, "sov_engine_decode_outputs_total", model.clone());
    assert_eq!(steps, outputs);
    assert!(
        outputs >= generated && outputs <= generated + 1.0,
        "{outputs} / {generated}"
    );
    assert_eq!(value(&samples, "sov_engine_queued", model.clone()), 0.0);
    assert_eq!(value(&samples, "sov_engine_slots", model.clone()), 4.0);
    assert_eq!(
        value(
            &samples,
            "sov_engine_generations_total",
            json!({"model": "smollm2", "outcome": "completed"})
        ),
        1.0
    );
    // The record: every entry appended since the start was timed (an append still being
    // acknowledged while the metrics were read may be counted in one and not yet the other).
    let appended = value(&samples, "sov_audit_entries_total", json!({}));
    assert!(appended >= 5.0, "{appended}");
    let timed = value(
        &samples,
        "sov_audit_append_duration_seconds_count",
        json!({}),
    );
    assert!(
        (appended - timed).abs() <= 2.0,
        "{appended} appended, {timed} timed"
    );
    assert!(value(&samples, "sov_audit_wal_bytes", json!({})) > 0.0);
    assert_eq!(value(&samples, "sov_audit_healthy", json!({})), 1.0);
    // The seal as the report says it.
    assert_eq!(
        value(&samples, "sov_seal_probes", json!({"result": "failed"})),
        0.0
    );
    assert!(value(&samples, "sov_seal_probes", json!({"result": "held"})) > 0.0);
    assert_eq!(
        value(&samples, "sov_seal_layer", json!({"layer": "landlock"})),
        1.0
    );
    // Each read was decided and recorded.
    let decisions: Vec<Value> = entries(&home)
        .into_iter()
        .filter(|e| e["kind"] == "policy.decision" && e["attrs"]["action"] == "read-metrics")
        .collect();
    let outcomes: Vec<&str> = decisions
        .iter()
        .map(|e| e["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(outcomes, ["denied", "ok"], "{decisions:?}");
}
