//! Real completions from the real starter model over real HTTP.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::{Duration, Instant};

use futures::StreamExt;
use serde_json::{Value, json};
use sov_engine::ChatMessage;

const QUESTION: &str = "Name the capital city of France.";

fn question() -> Value {
    json!([{"role": "user", "content": QUESTION}])
}

async fn post(base: &str, path: &str, body: Value) -> reqwest::Response {
    common::client()
        .post(format!("{base}{path}"))
        .json(&body)
        .send()
        .await
        .unwrap()
}

/// Reads an SSE body into its `data:` payloads.
async fn sse_data(res: reqwest::Response) -> Vec<String> {
    assert_eq!(res.headers()["content-type"], "text/event-stream");
    let text = res.text().await.unwrap();
    text.split("\n\n")
        .filter_map(|event| {
            event
                .lines()
                .find_map(|l| l.strip_prefix("data: ").map(str::to_owned))
        })
        .collect()
}

#[tokio::test]
async fn chat_answers_with_usage_matching_the_tokenizer() {
    let base = common::spawn(common::state()).await;
    let res = post(
        &base,
        "/v1/chat/completions",
        json!({"model": common::MODEL, "messages": question(), "temperature": 0, "max_tokens": 40}),
    )
    .await;
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["object"], "chat.completion");
    assert_eq!(body["model"], common::MODEL);
    let answer = body["choices"][0]["message"]["content"].as_str().unwrap();
    assert!(answer.contains("Paris"), "answer: {answer}");
    assert_eq!(body["choices"][0]["message"]["role"], "assistant");

    let engine = common::engine();
    let prompt = engine
        .chat_prompt(&[ChatMessage {
            role: "user".into(),
            content: QUESTION.into(),
        }])
        .unwrap();
    let usage = &body["usage"];
    assert_eq!(usage["prompt_tokens"], prompt.len());
    let completion = usage["completion_tokens"].as_u64().unwrap();
    assert!(completion > 0 && completion <= 40);
    assert_eq!(
        usage["total_tokens"].as_u64().unwrap(),
        prompt.len() as u64 + completion
    );
    if body["choices"][0]["finish_reason"] == "length" {
        assert_eq!(completion, 40);
    } else {
        assert_eq!(body["choices"][0]["finish_reason"], "stop");
    }
    // Greedy answers re-tokenise to about the count reported (tokenisation is not always unique).
    let recount = engine.count_tokens(answer) as i64;
    assert!(
        (recount - completion as i64).abs() <= 2,
        "recount {recount} vs usage {completion}"
    );
}

#[tokio::test]
async fn streamed_chat_matches_the_plain_answer() {
    let base = common::spawn(common::state()).await;
    let request =
        json!({"model": common::MODEL, "messages": question(), "temperature": 0, "max_tokens": 24});
    let plain: Value = post(&base, "/v1/chat/completions", request.clone())
        .await
        .json()
        .await
        .unwrap();

    let mut streamed = request.clone();
    streamed["stream"] = json!(true);
    streamed["stream_options"] = json!({"include_usage": true});
    let data = sse_data(post(&base, "/v1/chat/completions", streamed).await).await;
    assert_eq!(data.last().unwrap(), "[DONE]");
    let chunks: Vec<Value> = data[..data.len() - 1]
        .iter()
        .map(|d| serde_json::from_str(d).unwrap())
        .collect();
    assert!(chunks.len() >= 4, "{data:?}");
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
    let mut text = String::new();
    for c in &chunks {
        assert_eq!(c["object"], "chat.completion.chunk");
        assert_eq!(c["id"], chunks[0]["id"]);
        if let Some(t) = c["choices"][0]["delta"]["content"].as_str() {
            text.push_str(t);
        }
    }
    assert_eq!(
        text,
        plain["choices"][0]["message"]["content"].as_str().unwrap()
    );
    let finish = &chunks[chunks.len() - 2];
    assert_eq!(
        finish["choices"][0]["finish_reason"],
        plain["choices"][0]["finish_reason"]
    );
    let usage = &chunks[chunks.len() - 1];
    assert_eq!(usage["choices"], json!([]));
    assert_eq!(usage["usage"], plain["usage"]);
}

#[tokio::test]
async fn max_tokens_and_stop_sequences_are_honoured() {
    let base = common::spawn(common::state()).await;
    let body: Value = post(&base, "/v1/chat/completions", json!({"model": common::MODEL, "messages": [{"role": "user", "content": "Write a long story about a dragon."}], "max_tokens": 5, "temperature": 0})).await.json().await.unwrap();
    assert_eq!(body["choices"][0]["finish_reason"], "length");
    assert_eq!(body["usage"]["completion_tokens"], 5);

    // Find a word the model will say, then ask it to stop there.
    let free: Value = post(
        &base,
        "/v1/chat/completions",
        json!({"model": common::MODEL, "messages": question(), "temperature": 0, "max_tokens": 30}),
    )
    .await
    .json()
    .await
    .unwrap();
    let full = free["choices"][0]["message"]["content"]
        .as_str()
        .unwrap()
        .to_owned();
    let stop = "Paris";
    let before = &full[..full.find(stop).unwrap()];
    let body: Value = post(&base, "/v1/chat/completions", json!({"model": common::MODEL, "messages": question(), "temperature": 0, "max_tokens": 30, "stop": [stop]})).await.json().await.unwrap();
    assert_eq!(body["choices"][0]["message"]["content"], before);
    assert_eq!(body["choices"][0]["finish_reason"], "stop");
}

#[tokio::test]
async fn seeded_sampling_is_repeatable() {
    let base = common::spawn(common::state()).await;
    let req = json!({"model": common::MODEL, "messages": [{"role": "user", "content": "Name a colour."}], "temperature": 1.0, "top_p": 0.9, "top_k": 40, "seed": 7, "max_tokens": 16});
    let a: Value = post(&base, "/v1/chat/completions", req.clone())
        .await
        .json()
        .await
        .unwrap();
    let b: Value = post(&base, "/v1/chat/completions", req)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        a["choices"][0]["message"]["content"],
        b["choices"][0]["message"]["content"]
    );
}

#[tokio::test]
async fn eight_concurrent_requests_all_complete() {
    let base = common::spawn(common::state()).await;
    let handles: Vec<_> = (0..8)
        .map(|i| {
            let base = base.clone();
            tokio::spawn(async move {
                let body = json!({"model": common::MODEL, "messages": [{"role": "user", "content": format!("Give me fact number {i} about the sea.")}], "max_tokens": 32, "temperature": 0.5, "seed": i});
                let res = post(&base, "/v1/chat/completions", body).await;
                assert_eq!(res.status(), 200);
                let v: Value = res.json().await.unwrap();
                v["usage"]["completion_tokens"].as_u64().unwrap()
            })
        })
        .collect();
    let mut total = 0;
    for h in handles {
        let n = h.await.unwrap();
        assert!(n > 0);
        total += n;
    }
    assert!(total >= 8);
    // Served by continuous batching, not one request at a time.
    let peak = common::engine().stats().peak_running;
    assert!(peak >= 2, "at most {peak} sequence ran at once");
}

#[tokio::test]
async fn text_completion_plain_and_streamed() {
    let base = common::spawn(common::state()).await;
    let body: Value = post(&base, "/v1/completions", json!({"model": common::MODEL, "prompt": "The capital of France is", "max_tokens": 8, "temperature": 0})).await.json().await.unwrap();
    assert_eq!(body["object"], "text_completion");
    let text = body["choices"][0]["text"].as_str().unwrap();
    assert!(text.contains("Paris"), "{text}");
    assert_eq!(
        body["usage"]["prompt_tokens"],
        common::engine()
            .text_prompt("The capital of France is")
            .len()
    );

    let data = sse_data(post(&base, "/v1/completions", json!({"model": common::MODEL, "prompt": "The capital of France is", "max_tokens": 8, "temperature": 0, "stream": true})).await).await;
    assert_eq!(data.last().unwrap(), "[DONE]");
    let joined: String = data[..data.len() - 1]
        .iter()
        .map(|d| {
            serde_json::from_str::<Value>(d).unwrap()["choices"][0]["text"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(joined, text);
}

#[tokio::test]
async fn embeddings_are_pooled_normalised_and_deterministic() {
    let base = common::spawn(common::state()).await;
    let body: Value = post(&base, "/v1/embeddings", json!({"model": common::MODEL, "input": ["The cat sat on the mat.", "Quarterly revenue grew by 4%."]})).await.json().await.unwrap();
    let width = common::engine().info().embedding_length as usize;
    let vectors: Vec<Vec<f64>> = body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            d["embedding"]
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_f64().unwrap())
                .collect()
        })
        .collect();
    assert_eq!(vectors.len(), 2);
    for v in &vectors {
        assert_eq!(v.len(), width);
        let norm: f64 = v.iter().map(|x| x * x).sum::<f64>().sqrt();
        assert!((norm - 1.0).abs() < 1e-3, "norm {norm}");
    }
    assert_ne!(vectors[0], vectors[1]);
    assert!(body["usage"]["prompt_tokens"].as_u64().unwrap() > 0);

    // base64 (the openai client's default) carries the same little-endian f32 values.
    let b64: Value = post(&base, "/v1/embeddings", json!({"model": common::MODEL, "input": "The cat sat on the mat.", "encoding_format": "base64"})).await.json().await.unwrap();
    use base64::Engine as _;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(b64["data"][0]["embedding"].as_str().unwrap())
        .unwrap();
    let floats: Vec<f64> = bytes
        .chunks(4)
        .map(|c| f64::from(f32::from_le_bytes(c.try_into().unwrap())))
        .collect();
    assert_eq!(floats.len(), width);
    for (a, b) in floats.iter().zip(&vectors[0]) {
        assert!((a - b).abs() < 1e-6);
    }
}

#[tokio::test]
async fn a_client_that_disconnects_frees_its_slot() {
    // One slot: if the abandoned generation kept running, the next request would wait for it.
    let config = sov_engine::EngineConfig {
        context_length: 2048,
        parallel: 1,
        queue_depth: 4,
        ..Default::default()
    };
    let engine = sov_engine::Engine::load_unverified(&common::model_path(), &config).unwrap();
    let base = common::spawn(common::state_with(engine.clone(), 64 * 1024)).await;
    let res = post(&base, "/v1/chat/completions", json!({"model": common::MODEL, "messages": question(), "max_tokens": 2000, "ignore_eos": true, "stream": true})).await;
    let mut stream = res.bytes_stream();
    // Read until the model has produced text, so the generation is surely running.
    let mut seen = String::new();
    while !seen.contains("\"content\":\"") || seen.matches("data:").count() < 3 {
        seen.push_str(&String::from_utf8_lossy(
            &stream.next().await.unwrap().unwrap(),
        ));
    }
    assert_eq!(engine.stats().running, 1);
    drop(stream);
    // The worker notices the closed stream at its next step and frees the slot. Wait for that
    // (2000 tokens would take tens of seconds; the cap below is only a liveness bound).
    let deadline = Instant::now() + Duration::from_secs(60);
    while engine.stats().cancelled == 0 {
        assert!(
            Instant::now() < deadline,
            "the abandoned generation was never cancelled: {:?}",
            engine.stats()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let stats = engine.stats();
    assert_eq!(
        (stats.cancelled, stats.completed, stats.running),
        (1, 0, 0),
        "{stats:?}"
    );
    let body: Value = post(
        &base,
        "/v1/chat/completions",
        json!({"model": common::MODEL, "messages": question(), "max_tokens": 4, "temperature": 0}),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(body["usage"]["completion_tokens"], 4);
    assert_eq!(engine.stats().completed, 1);
}

#[tokio::test]
async fn models_and_health() {
    let base = common::spawn(common::state()).await;
    let client = common::client();
    let health: Value = client
        .get(format!("{base}/healthz"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health, json!({"status": "ok"}));
    let models: Value = client
        .get(format!("{base}/v1/models"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        models,
        json!({"object": "list", "data": [{"id": common::MODEL, "object": "model", "created": 1_700_000_000, "owned_by": "owner:test", "sov_serves": "chat"}]})
    );
    let one: Value = client
        .get(format!("{base}/v1/models/{}", common::MODEL))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(one["id"], common::MODEL);
}
