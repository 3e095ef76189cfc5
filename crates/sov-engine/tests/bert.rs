//! Encoder-only (BERT) models: converted by the model store, run through `encode`.
//!
//! The tiny fixture BERT runs everywhere. The reference test needs the real all-MiniLM-L6-v2
//! (`SOV_TEST_EMBED_MODEL_ZIP`, its `model.zip`) and a Python with numpy and `tokenizers`
//! (`SOV_TEST_PYTHON`); `bash scripts/test` sets both.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use sov_engine::{ChatMessage, Engine, EngineConfig, EngineError, SamplingParams};
use sov_models::convert::{convert, fixture};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
}

/// Converts `src` (a model directory or zip) into `work` and loads it.
fn load(src: &Path, work: &Path) -> Engine {
    let converted = convert(src, work).unwrap();
    Engine::load_unverified(&converted.gguf, &EngineConfig::default()).unwrap()
}

fn user(content: &str) -> Vec<ChatMessage> {
    vec![ChatMessage {
        role: "user".into(),
        content: content.into(),
    }]
}

#[test]
fn an_encoder_loads_as_an_embedding_only_engine() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("tiny");
    fixture::write_dir(&dir).unwrap();
    let work = tmp.path().join("work");
    std::fs::create_dir(&work).unwrap();
    let engine = load(&dir, &work);
    let info = engine.info().clone();
    assert!(info.embedding_only);
    assert_eq!(info.parallel, 0, "no generation slots");
    assert_eq!(info.context_length, fixture::MAX_POSITIONS as u32);
    assert_eq!(info.embedding_length, fixture::HIDDEN as u32);

    // [CLS] the cat ##s sat . [SEP], as WordPiece splits "The cats sat."
    assert_eq!(
        engine.embedding_token_ids("The cats sat."),
        [2, 5, 6, 11, 7, 10, 3]
    );
    assert_eq!(
        engine.embedding_token_ids("a dog, running!"),
        [2, 13, 12, 16, 14, 15, 19, 3]
    );

    let inputs = vec![
        "the cat sat on the mat.".to_owned(),
        "a big red dog".to_owned(),
        "the cat sat on the mat.".to_owned(),
    ];
    let (vectors, tokens) = runtime().block_on(engine.embed(&inputs)).unwrap();
    assert_eq!(tokens, 9 + 6 + 9);
    assert_eq!(vectors[0], vectors[2]);
    assert_ne!(vectors[0], vectors[1]);
    for v in &vectors {
        assert_eq!(v.len(), fixture::HIDDEN);
        let norm: f32 = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-4, "{norm}");
    }

    // No chat and no generation, with a typed error.
    assert!(matches!(
        engine.chat_prompt(&user("hi")),
        Err(EngineError::EmbeddingOnly)
    ));
    let prompt = engine.text_prompt("the cat");
    assert!(matches!(
        engine.generate(prompt.clone(), SamplingParams::default()),
        Err(EngineError::EmbeddingOnly)
    ));
    assert!(matches!(
        engine.generate_whole(prompt, SamplingParams::default()),
        Err(EngineError::EmbeddingOnly)
    ));

    // An input longer than the model's context is refused, not cut.
    let long = vec!["the cat ".repeat(20)];
    match runtime().block_on(engine.embed(&long)) {
        Err(EngineError::TooMuchInput {
            what: "tokens in one input",
            limit: 32,
            got: 42,
        }) => {}
        other => panic!("{other:?}"),
    }
}

/// The reference's inputs: punctuation, numbers, accents, long word pieces, other scripts,
/// odd whitespace, and one long input.
fn sentences() -> Vec<String> {
    let mut s: Vec<String> = [
        "The quick brown fox jumps over the lazy dog.",
        "Hello, world! How are you today?",
        "In 2024, the company's revenue grew by 12.5% to $3,400,000.",
        "Café crème brûlée à la française, naïve façade.",
        "Antidisestablishmentarianism and pneumonoultramicroscopicsilicovolcanoconiosis are long words.",
        "Sovereign keeps every record: hash-chained, signed, and verifiable offline.",
        "Ünïcödé test: Ωmega, straße, and 東京 (Tokyo).",
        "   Leading and trailing spaces,\ttabs\nand newlines   ",
        "e-mail: someone@example.com; URL: https://example.org/path?q=1&r=2",
        "A sentence with [brackets], {braces}, <angles> and \"quotes\".",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    s.push(
        "Embeddings map text to vectors so that similar meanings lie close together. ".repeat(14),
    );
    s
}

fn reference_inputs() -> Option<(PathBuf, PathBuf)> {
    let zip = std::env::var_os("SOV_TEST_EMBED_MODEL_ZIP");
    let python = std::env::var_os("SOV_TEST_PYTHON");
    match (zip, python) {
        (Some(zip), Some(python)) => Some((zip.into(), python.into())),
        _ => {
            eprintln!(
                "skipped: SOV_TEST_EMBED_MODEL_ZIP (all-MiniLM-L6-v2's model.zip) and SOV_TEST_PYTHON (a Python with numpy and tokenizers) must both be set; bash scripts/test sets them"
            );
            None
        }
    }
}

#[test]
fn all_minilm_l6_v2_matches_a_numpy_reference_bert() {
    let Some((zip, python)) = reference_inputs() else {
        return;
    };
    let sentences = sentences();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/bert_reference.py");
    let mut child = Command::new(python)
        .arg(script)
        .arg(&zip)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(&serde_json::to_vec(&sentences).unwrap())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let reference: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();

    let tmp = tempfile::tempdir().unwrap();
    let engine = load(&zip, tmp.path());
    assert!(engine.info().embedding_only);
    assert_eq!(engine.info().context_length, 512);
    let (vectors, _) = runtime().block_on(engine.embed(&sentences)).unwrap();
    for (i, sentence) in sentences.iter().enumerate() {
        let ids: Vec<i32> = serde_json::from_value(reference["ids"][i].clone()).unwrap();
        assert_eq!(
            engine.embedding_token_ids(sentence),
            ids,
            "tokens of {sentence:?}"
        );
        let expected: Vec<f64> = serde_json::from_value(reference["vectors"][i].clone()).unwrap();
        let ours: Vec<f64> = vectors[i].iter().map(|x| f64::from(*x)).collect();
        let dot: f64 = ours.iter().zip(&expected).map(|(a, b)| a * b).sum();
        let norm = |v: &[f64]| v.iter().map(|x| x * x).sum::<f64>().sqrt();
        let cosine = dot / (norm(&ours) * norm(&expected));
        println!("cosine {cosine:.7} over {} tokens: {sentence:?}", ids.len());
        assert!(cosine >= 0.9999, "cosine {cosine} for {sentence:?}");
    }
}
