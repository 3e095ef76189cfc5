//! Every bad input gets OpenAI's error shape with the right status (snapshots of the bodies).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;

async fn call(
    app: axum::Router,
    method: &str,
    uri: &str,
    body: impl Into<Body>,
) -> (StatusCode, Value) {
    let req = Request::builder()
        .method(method)
        .uri(uri)
        .header("content-type", "application/json")
        .header("authorization", common::bearer())
        .body(body.into())
        .unwrap();
    let res = app.oneshot(req).await.unwrap();
    let status = res.status();
    let bytes = res.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or_else(|_| panic!("not JSON: {bytes:?}")),
    )
}

async fn post(uri: &str, body: impl Into<Body>) -> (StatusCode, Value) {
    call(sov_server::app(common::state()), "POST", uri, body).await
}

fn chat(extra: Value) -> String {
    let mut body = json!({"model": common::MODEL, "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 4});
    for (k, v) in extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    body.to_string()
}

#[tokio::test]
async fn invalid_json_is_400() {
    let (status, body) = post("/v1/chat/completions", "{\"model\": ").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    insta::with_settings!({sort_maps => true}, { insta::assert_json_snapshot!(body) });
}

#[tokio::test]
async fn trailing_garbage_is_400() {
    let (status, body) = post("/v1/chat/completions", format!("{} x", chat(json!({})))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    insta::with_settings!({sort_maps => true}, { insta::assert_json_snapshot!(body) });
}

#[tokio::test]
async fn missing_field_is_400() {
    let (status, body) = post(
        "/v1/chat/completions",
        json!({"model": common::MODEL}).to_string(),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    insta::with_settings!({sort_maps => true}, { insta::assert_json_snapshot!(body) });
}

#[tokio::test]
async fn wrong_type_is_400() {
    let (status, body) = post("/v1/chat/completions", chat(json!({"max_tokens": "many"}))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    insta::with_settings!({sort_maps => true}, { insta::assert_json_snapshot!(body) });
}

#[tokio::test]
async fn out_of_range_parameter_is_400_naming_it() {
    let (status, body) = post("/v1/chat/completions", chat(json!({"temperature": 5.0}))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    insta::with_settings!({sort_maps => true}, { insta::assert_json_snapshot!(body) });
}

#[tokio::test]
async fn unsupported_n_is_400() {
    let (status, body) = post("/v1/chat/completions", chat(json!({"n": 2}))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    insta::with_settings!({sort_maps => true}, { insta::assert_json_snapshot!(body) });
}

#[tokio::test]
async fn empty_messages_is_400() {
    let (status, body) = post("/v1/chat/completions", chat(json!({"messages": []}))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    insta::with_settings!({sort_maps => true}, { insta::assert_json_snapshot!(body) });
}

#[tokio::test]
async fn unknown_model_is_404() {
    let (status, body) = post("/v1/chat/completions", chat(json!({"model": "gpt-4o"}))).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    insta::with_settings!({sort_maps => true}, { insta::assert_json_snapshot!(body) });
    let (status, _) = call(
        sov_server::app(common::state()),
        "GET",
        "/v1/models/gpt-4o",
        Body::empty(),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = post(
        "/v1/embeddings",
        json!({"model": "nope", "input": "x"}).to_string(),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn body_over_the_limit_is_413() {
    let app = sov_server::app(common::state_with(common::engine(), 1024));
    let big = chat(json!({"messages": [{"role": "user", "content": "x".repeat(4096)}]}));
    let (status, body) = call(app, "POST", "/v1/chat/completions", big).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    insta::with_settings!({sort_maps => true}, { insta::assert_json_snapshot!(body) });
}

#[tokio::test]
async fn prompt_longer_than_the_context_is_400() {
    let long = "word ".repeat(3000);
    let (status, body) = post(
        "/v1/chat/completions",
        chat(json!({"messages": [{"role": "user", "content": long}]})),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"]["code"], "context_length_exceeded");
    let message = body["error"]["message"].as_str().unwrap().to_owned();
    assert!(
        message.starts_with("This model's maximum context length is 2048 tokens."),
        "{message}"
    );
}

#[tokio::test]
async fn unknown_route_is_404() {
    let (status, body) = call(
        sov_server::app(common::state()),
        "GET",
        "/v1/nothing",
        Body::empty(),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    insta::with_settings!({sort_maps => true}, { insta::assert_json_snapshot!(body) });
}

#[tokio::test]
async fn non_text_content_part_is_400() {
    let messages =
        json!([{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}]);
    let (status, body) = post("/v1/chat/completions", chat(json!({"messages": messages}))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    insta::with_settings!({sort_maps => true}, { insta::assert_json_snapshot!(body) });
}

#[tokio::test]
async fn bad_embedding_format_is_400() {
    let (status, body) = post(
        "/v1/embeddings",
        json!({"model": common::MODEL, "input": "x", "encoding_format": "int8"}).to_string(),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    insta::with_settings!({sort_maps => true}, { insta::assert_json_snapshot!(body) });
}

#[tokio::test]
async fn full_queue_is_503() {
    // One slot, one place in the queue: a third concurrent request must be refused at once.
    let config = sov_engine::EngineConfig {
        context_length: 512,
        parallel: 1,
        queue_depth: 1,
        ..Default::default()
    };
    let engine = sov_engine::Engine::load_unverified(&common::model_path(), &config).unwrap();
    let base = common::spawn(common::state_with(engine, 64 * 1024)).await;
    let client = common::client();
    let long = json!({"model": common::MODEL, "messages": [{"role": "user", "content": "Count to a thousand."}],
                      "max_tokens": 400, "ignore_eos": true, "temperature": 0});
    let first = tokio::spawn({
        let (c, b, body) = (client.clone(), base.clone(), long.clone());
        async move {
            c.post(format!("{b}/v1/chat/completions"))
                .json(&body)
                .send()
                .await
                .unwrap()
                .status()
        }
    });
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let second = tokio::spawn({
        let (c, b, body) = (client.clone(), base.clone(), long.clone());
        async move {
            c.post(format!("{b}/v1/chat/completions"))
                .json(&body)
                .send()
                .await
                .unwrap()
                .status()
        }
    });
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let third = client
        .post(format!("{base}/v1/chat/completions"))
        .json(&long)
        .send()
        .await
        .unwrap();
    assert_eq!(third.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body: Value = third.json().await.unwrap();
    insta::with_settings!({sort_maps => true}, { insta::assert_json_snapshot!(body) });
    assert_eq!(first.await.unwrap(), StatusCode::OK);
    assert_eq!(second.await.unwrap(), StatusCode::OK);
}
