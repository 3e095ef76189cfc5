//! The audit layer over real HTTP: every request that acts is in the record before its answer
//! leaves, its headers point at the entry, the receipt verifies, and the commitments open with the
//! salt the client got. The `/v1/audit` endpoints are a C2SP tlog-tiles log that verifies.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::HashMap;

use base64::Engine as _;
use serde_json::{Value, json};
use sov_audit_core::entry::{Entry, Kind, Outcome, commitment};
use sov_audit_core::hash::leaf_hash;
use sov_audit_core::note::parse_vkeys;
use sov_audit_core::receipt::TlogProof;
use sov_audit_core::verify::{LogFiles, verify_log};

fn b64(s: &str) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD.decode(s).unwrap()
}

struct Recorded {
    index: u64,
    leaf: [u8; 32],
    salt: [u8; 32],
}

fn recorded(res: &reqwest::Response) -> Recorded {
    let h = |name: &str| {
        res.headers()
            .get(name)
            .unwrap_or_else(|| panic!("no {name} header"))
            .to_str()
            .unwrap()
            .to_owned()
    };
    Recorded {
        index: h("sov-audit-index").parse().unwrap(),
        leaf: b64(&h("sov-audit-leaf")).try_into().unwrap(),
        salt: b64(&h("sov-audit-salt")).try_into().unwrap(),
    }
}

/// Fetches the receipt for `index` and verifies it with the log's published keys; returns the entry.
async fn receipt(base: &str, index: u64, leaf: &[u8; 32]) -> Entry {
    let client = common::client();
    let vkeys = client
        .get(format!("{base}/v1/audit/vkeys"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let keys = parse_vkeys(&vkeys).unwrap();
    assert_eq!(keys.len(), 2, "an Ed25519 and an ML-DSA-44 key");
    let res = client
        .get(format!("{base}/v1/audit/proof/{index}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let proof = TlogProof::parse(&res.bytes().await.unwrap()).unwrap();
    assert_eq!(proof.index, index);
    proof.verify(leaf, &keys).unwrap();
    let bytes = proof.extra.clone().unwrap();
    assert_eq!(&leaf_hash(&bytes), leaf);
    Entry::decode(&bytes).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn an_answer_carries_its_entry_and_the_commitments_open() {
    let base = common::spawn(common::state()).await;
    let body = json!({"model": common::MODEL, "messages": [{"role": "user", "content": "Name the capital city of France."}],
                      "max_tokens": 8, "temperature": 0}).to_string();
    let res = common::client()
        .post(format!("{base}/v1/chat/completions"))
        .header("content-type", "application/json")
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let r = recorded(&res);
    let answer = res.bytes().await.unwrap();
    let entry = receipt(&base, r.index, &r.leaf).await;
    assert_eq!(entry.kind, Kind::Inference);
    assert_eq!(entry.outcome, Outcome::Ok);
    assert_eq!(entry.index, r.index);
    assert_eq!(entry.resource, common::MODEL);
    assert_eq!(entry.model, Some(common::model_sha256()));
    assert_eq!(
        entry.input,
        Some(commitment("input", &r.salt, body.as_bytes()))
    );
    assert_eq!(entry.output, Some(commitment("output", &r.salt, &answer)));
    assert_eq!(entry.attr("route"), Some("/v1/chat/completions"));
    let usage: Value = serde_json::from_slice(&answer).unwrap();
    assert_eq!(
        entry.attr("completion_tokens").unwrap(),
        usage["usage"]["completion_tokens"].to_string()
    );
    // Nothing of the prompt or the answer is in the entry's bytes.
    let text = usage["choices"][0]["message"]["content"].as_str().unwrap();
    let bytes = String::from_utf8_lossy(&entry.encode().unwrap()).into_owned();
    assert!(!bytes.contains("capital"));
    assert!(text.len() < 3 || !bytes.contains(text));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_refusal_is_recorded_without_the_input() {
    let base = common::spawn(common::state()).await;
    let secret = "my secret diagnosis";
    let res = common::client()
        .post(format!("{base}/v1/chat/completions"))
        .header("content-type", "application/json")
        .body(format!(
            "{{\"model\": \"{}\", \"messages\": \"{secret}\"}}",
            common::MODEL
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    let r = recorded(&res);
    let entry = receipt(&base, r.index, &r.leaf).await;
    assert_eq!(entry.kind, Kind::Refusal);
    assert_eq!(entry.outcome, Outcome::Denied);
    assert_eq!(entry.attr("status"), Some("400"));
    assert!(
        entry.reason.contains("invalid_request_error"),
        "{}",
        entry.reason
    );
    let bytes = String::from_utf8_lossy(&entry.encode().unwrap()).into_owned();
    assert!(!bytes.contains("secret"), "{bytes}");

    // An unknown model and an unknown route are refusals too.
    for (path, body) in [
        (
            "/v1/chat/completions",
            json!({"model": "nope", "messages": [{"role": "user", "content": "x"}]}),
        ),
        ("/v1/nowhere", json!({})),
    ] {
        let res = common::client()
            .post(format!("{base}{path}"))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 404);
        let r = recorded(&res);
        let entry = receipt(&base, r.index, &r.leaf).await;
        assert_eq!(entry.kind, Kind::Refusal);
        assert_eq!(entry.attr("route"), Some(path));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stream_is_recorded_at_its_start_and_its_end() {
    let base = common::spawn(common::state()).await;
    let res = common::client()
        .post(format!("{base}/v1/completions"))
        .json(
            &json!({"model": common::MODEL, "prompt": "The capital of France is", "max_tokens": 6,
                      "temperature": 0, "stream": true}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let r = recorded(&res);
    let streamed = res.bytes().await.unwrap();
    let start = receipt(&base, r.index, &r.leaf).await;
    assert_eq!(start.outcome, Outcome::Started);
    assert_eq!(start.attr("stream"), Some("true"));
    // The end entry follows; find it by its `request` attribute.
    let end = find(&base, |e| e.attr("request") == Some(&r.index.to_string())).await;
    assert_eq!(end.kind, Kind::Inference);
    assert_eq!(end.outcome, Outcome::Ok);
    assert_eq!(end.output, Some(commitment("output", &r.salt, &streamed)));
    assert_eq!(end.input, start.input);
    assert_eq!(end.attr("completion_tokens"), Some("6"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_client_that_leaves_a_stream_is_recorded_as_cancelled() {
    let base = common::spawn(common::state()).await;
    let mut res = common::client()
        .post(format!("{base}/v1/completions"))
        .json(
            &json!({"model": common::MODEL, "prompt": "Once upon a time", "max_tokens": 400,
                      "stream": true}),
        )
        .send()
        .await
        .unwrap();
    let r = recorded(&res);
    let _first = res.chunk().await.unwrap();
    drop(res);
    let end = find(&base, |e| e.attr("request") == Some(&r.index.to_string())).await;
    assert_eq!(end.outcome, Outcome::Cancelled);
}

/// Polls the record (entries through the API) until one matches.
async fn find(base: &str, want: impl Fn(&Entry) -> bool) -> Entry {
    let client = common::client();
    for _ in 0..100 {
        let checkpoint = client
            .get(format!("{base}/v1/audit/checkpoint"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let size: u64 = checkpoint.lines().nth(1).unwrap().parse().unwrap();
        for index in 0..size {
            let v: Value = client
                .get(format!("{base}/v1/audit/entries/{index}"))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            let entry = Entry::decode(&b64(v["bytes"].as_str().unwrap())).unwrap();
            if want(&entry) {
                return entry;
            }
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("no such entry appeared in the record");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_audit_endpoints_serve_a_tlog_tiles_log_that_verifies() {
    let base = common::spawn(common::state()).await;
    let client = common::client();
    // A few hundred refusals make full and partial tiles.
    for _ in 0..300 {
        let res = client
            .post(format!("{base}/v1/embeddings"))
            .body("{")
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 400);
    }
    let keys = parse_vkeys(
        &client
            .get(format!("{base}/v1/audit/vkeys"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
    )
    .unwrap();
    // Fetch every file the verifier asks for over HTTP, as any tlog-tiles client would.
    // The checkpoint trails the appends by up to its interval; a slow machine may need
    // more than one interval, so wait for it (bounded) instead of sleeping a fixed time.
    let mut files: HashMap<String, Vec<u8>> = HashMap::new();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let size = loop {
        let checkpoint = client
            .get(format!("{base}/v1/audit/checkpoint"))
            .send()
            .await
            .unwrap();
        assert!(
            checkpoint.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/plain")
        );
        let body = checkpoint.bytes().await.unwrap().to_vec();
        let size: u64 = String::from_utf8_lossy(&body)
            .lines()
            .nth(1)
            .unwrap()
            .parse()
            .unwrap();
        if size >= 300 {
            files.insert("checkpoint".into(), body);
            break size;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the checkpoint stayed at {size} entries"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    for tile in sov_audit_core::tile::Tile::hash_tiles_for_size(size)
        .into_iter()
        .chain(sov_audit_core::tile::Tile::entry_bundles_for_size(size))
    {
        let res = client
            .get(format!("{base}/v1/audit/{}", tile.path()))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200, "{}", tile.path());
        files.insert(tile.path(), res.bytes().await.unwrap().to_vec());
    }
    struct Map(HashMap<String, Vec<u8>>);
    impl LogFiles for Map {
        fn get(&mut self, path: &str) -> Result<Option<Vec<u8>>, String> {
            Ok(self.0.get(path).cloned())
        }
    }
    let root_of = |note: &[u8]| -> [u8; 32] {
        let line = String::from_utf8_lossy(note)
            .lines()
            .nth(2)
            .unwrap()
            .to_owned();
        b64(&line).try_into().unwrap()
    };
    let root1 = root_of(&files["checkpoint"]);
    let report = verify_log(&mut Map(files), &keys).unwrap();
    assert_eq!(report.size, size);
    assert_eq!(report.origin, common::ORIGIN);

    // A consistency proof from that tree to a later one verifies (RFC 9162) against both
    // signed roots; sizes out of order or past the checkpoint are refused.
    for _ in 0..5 {
        client
            .post(format!("{base}/v1/embeddings"))
            .body("{")
            .send()
            .await
            .unwrap();
    }
    let (size2, root2) = loop {
        let note = client
            .get(format!("{base}/v1/audit/checkpoint"))
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        let size2: u64 = String::from_utf8_lossy(&note)
            .lines()
            .nth(1)
            .unwrap()
            .parse()
            .unwrap();
        if size2 > size {
            break (size2, root_of(&note));
        }
        assert!(std::time::Instant::now() < deadline + std::time::Duration::from_secs(20));
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    let res = client
        .get(format!("{base}/v1/audit/consistency/{size}/{size2}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let proof: Vec<[u8; 32]> = res
        .text()
        .await
        .unwrap()
        .lines()
        .map(|l| b64(l).try_into().unwrap())
        .collect();
    sov_audit_core::merkle::verify_consistency(size, size2, &root1, &root2, &proof).unwrap();
    let mut forged = proof.clone();
    forged[0][0] ^= 1;
    assert!(
        sov_audit_core::merkle::verify_consistency(size, size2, &root1, &root2, &forged).is_err()
    );
    for bad in [
        format!("{size2}/{size}"),
        format!("0/{}", size2 + 1_000_000),
    ] {
        let res = client
            .get(format!("{base}/v1/audit/consistency/{bad}"))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 404, "{bad}");
    }
    // A path outside the tile space is refused.
    let res = client
        .get(format!("{base}/v1/audit/tile/../../keys/log.key"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
}

#[tokio::test(flavor = "multi_thread")]
async fn without_a_writable_record_nothing_is_answered() {
    let (log, _dir) = common::audit_log();
    let state = common::state_with_log(common::engine(), 64 * 1024, log.clone());
    let base = common::spawn(state).await;
    log.close().unwrap();
    let res = common::client()
        .post(format!("{base}/v1/chat/completions"))
        .json(&json!({"model": common::MODEL, "messages": [{"role": "user", "content": "Name the capital city of France."}], "max_tokens": 4}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 503);
    assert!(res.headers().get("sov-audit-index").is_none());
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"]["code"], "audit_unavailable");
}
