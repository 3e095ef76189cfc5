//! The embedding model as a user gets it: `sov model import model.zip` converts
//! all-MiniLM-L6-v2, `sov serve` serves it beside the chat model, `/v1/embeddings` answers and
//! chat on it is refused. Needs `SOV_TEST_EMBED_MODEL_ZIP` (its `model.zip`; `bash scripts/test`
//! sets it) and `SOV_TEST_MODEL` (the starter model).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::PathBuf;

use common::run as sov;
use serde_json::{Value, json};

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn inputs() -> Option<(PathBuf, PathBuf)> {
    let zip = std::env::var_os("SOV_TEST_EMBED_MODEL_ZIP");
    let starter = std::env::var_os("SOV_TEST_MODEL");
    match (zip, starter) {
        (Some(zip), Some(starter)) => Some((zip.into(), starter.into())),
        _ => {
            eprintln!(
                "skipped: SOV_TEST_EMBED_MODEL_ZIP and SOV_TEST_MODEL must both be set; bash scripts/test sets them"
            );
            None
        }
    }
}

#[test]
fn the_embedding_model_imports_from_its_zip_and_serves_embeddings_only() {
    let Some((zip, starter)) = inputs() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let init = sov(&home, &["init"]);
    assert!(init.status.success(), "{}", text(&init.stderr));
    let token = text(&init.stdout)
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with("sov_"))
        .unwrap()
        .to_owned();
    let zip = zip.to_str().unwrap();
    let out = sov(
        &home,
        &[
            "model",
            "import",
            starter.to_str().unwrap(),
            "--name",
            "smollm2",
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));

    let first = sov(
        &home,
        &["model", "import", zip, "--name", "all-minilm-l6-v2"],
    );
    assert!(first.status.success(), "{}", text(&first.stderr));
    let printed = text(&first.stdout);
    assert!(
        printed.starts_with("Imported all-minilm-l6-v2 (bert F32"),
        "{printed}"
    );
    assert!(
        printed.contains("converted from 4 files by sov-models/bert-safetensors 1"),
        "{printed}"
    );
    let again = sov(
        &home,
        &["model", "import", zip, "--name", "all-minilm-l6-v2"],
    );
    assert!(again.status.success(), "{}", text(&again.stderr));
    assert!(
        text(&again.stdout).starts_with("Already in the store, nothing changed: all-minilm-l6-v2"),
        "{}",
        text(&again.stdout)
    );
    let show = text(&sov(&home, &["model", "show", "all-minilm-l6-v2"]).stdout);
    assert!(
        show.contains("converted by:   sov-models/bert-safetensors 1"),
        "{show}"
    );
    assert!(
        show.contains("from model.zip (83319212 bytes, sha256 0872f5d7d0e806c443e588b6dd6b933e9200cf589b0e757e85e3afd57539c592)"),
        "{show}"
    );
    assert!(
        sov(&home, &["model", "verify", "all-minilm-l6-v2"])
            .status
            .success()
    );
    // A template for an embedding model is refused, and changes nothing.
    let refused = sov(
        &home,
        &[
            "model",
            "import",
            zip,
            "--name",
            "other",
            "--chat-template",
            "chatml",
        ],
    );
    assert!(!refused.status.success());
    assert!(
        text(&refused.stderr).contains("an embedding model, which takes no chat template"),
        "{}",
        text(&refused.stderr)
    );

    let (server, base, printed) = common::start(&home);
    let ready = printed.last().unwrap();
    assert!(
        ready.starts_with("Sovereign is serving all-minilm-l6-v2, smollm2 at http://127.0.0.1:"),
        "{printed:?}"
    );
    let client = reqwest::blocking::Client::new();
    let post = |path: &str, body: Value| {
        let res = client
            .post(format!("{base}{path}"))
            .header("authorization", format!("Bearer {token}"))
            .json(&body)
            .send()
            .unwrap();
        (res.status().as_u16(), res.json::<Value>().unwrap())
    };

    let (status, body) = post(
        "/embeddings",
        json!({"model": "all-minilm-l6-v2", "input": ["The cat sat on the mat.", "A feline rested on the rug.", "Stock markets fell sharply."]}),
    );
    assert_eq!(status, 200, "{body}");
    let vector = |i: usize| -> Vec<f64> {
        serde_json::from_value(body["data"][i]["embedding"].clone()).unwrap()
    };
    let (a, b, c) = (vector(0), vector(1), vector(2));
    assert_eq!(a.len(), 384);
    let dot = |x: &[f64], y: &[f64]| x.iter().zip(y).map(|(p, q)| p * q).sum::<f64>();
    assert!((dot(&a, &a) - 1.0).abs() < 1e-4);
    assert!(
        dot(&a, &b) > dot(&a, &c) + 0.2,
        "similar sentences are closer: {} vs {}",
        dot(&a, &b),
        dot(&a, &c)
    );

    for path in ["/chat/completions", "/completions"] {
        let body = if path == "/completions" {
            json!({"model": "all-minilm-l6-v2", "prompt": "Hello"})
        } else {
            json!({"model": "all-minilm-l6-v2", "messages": [{"role": "user", "content": "Hi"}]})
        };
        let (status, body) = post(path, body);
        assert_eq!(status, 400, "{path}: {body}");
        assert_eq!(
            body["error"]["message"],
            "model all-minilm-l6-v2 is an embedding model: it serves /v1/embeddings only"
        );
        assert_eq!(body["error"]["param"], "model");
    }
    // Longer than the model's 512 tokens: refused, not cut.
    let (status, body) = post(
        "/embeddings",
        json!({"model": "all-minilm-l6-v2", "input": "word ".repeat(600)}),
    );
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["param"], "input");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("limit of 512"),
        "{body}"
    );
    // The chat model still chats.
    let (status, body) = post(
        "/chat/completions",
        json!({"model": "smollm2", "max_tokens": 4, "messages": [{"role": "user", "content": "Hi"}]}),
    );
    assert_eq!(status, 200, "{body}");

    // The refusals are in the record, like any other.
    drop(server);
    let tail = sov(&home, &["audit", "tail", "-n", "1000", "--json"]);
    assert!(tail.status.success(), "{}", text(&tail.stderr));
    let entries: Vec<Value> = text(&tail.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    // Each refusal of the embedding model: the two on `param=model` are the chat and the
    // completion (the third, on `input`, is the over-long embedding).
    let refused: Vec<(String, String, String)> = entries
        .iter()
        .filter(|e| e["kind"] == "refusal" && e["resource"] == "all-minilm-l6-v2")
        .map(|e| {
            let s = |v: &Value| v.as_str().unwrap_or_default().to_owned();
            (s(&e["outcome"]), s(&e["reason"]), s(&e["attrs"]["route"]))
        })
        .collect();
    let refusal =
        |reason: &str, route: &str| ("denied".to_owned(), reason.to_owned(), route.to_owned());
    assert_eq!(
        refused,
        [
            refusal(
                "type=invalid_request_error param=model",
                "/v1/chat/completions"
            ),
            refusal("type=invalid_request_error param=model", "/v1/completions"),
            refusal("type=invalid_request_error param=input", "/v1/embeddings"),
        ],
        "{entries:#?}"
    );
}
