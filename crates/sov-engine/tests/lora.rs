//! LoRA adapters against the real starter model: each adapter's engine answers with the adapter
//! applied, the base model's answers do not change, and an adapter that does not fit is refused.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::{Path, PathBuf};
use std::thread;

use common::{finish, model_path};
use sov_engine::{ChatMessage, Engine, EngineConfig, EngineError, SamplingParams};
use sov_models::gguf::lora_fixture::Lora;

fn config() -> EngineConfig {
    EngineConfig {
        context_length: 256,
        parallel: 2,
        ..Default::default()
    }
}

/// SmolLM2-135M's width, from the file itself.
fn n_embd() -> u64 {
    sov_models::read_info(&model_path())
        .unwrap()
        .embedding_length
        .unwrap()
}

fn write(dir: &Path, name: &str, lora: Lora<'_>) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, lora.bytes()).unwrap();
    path
}

fn lora(magnitude: f32, seed: u64) -> Lora<'static> {
    Lora {
        arch: "llama",
        n_embd: n_embd(),
        layers: 4,
        magnitude,
        seed,
    }
}

/// The greedy answer to `question`, 24 tokens at most.
fn answer(engine: &Engine, question: &str) -> String {
    let prompt = engine
        .chat_prompt(&[ChatMessage {
            role: "user".into(),
            content: question.into(),
        }])
        .unwrap();
    let params = SamplingParams {
        temperature: 0.0,
        max_tokens: Some(24),
        ..Default::default()
    };
    finish(engine.generate(prompt, params).unwrap()).0
}

const QUESTION: &str = "Write a short story about a lighthouse keeper.";

#[test]
fn each_adapter_answers_in_its_own_context_and_the_base_is_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let model = model_path();
    let base_alone = answer(
        &Engine::load_unverified(&model, &config()).unwrap(),
        QUESTION,
    );
    assert!(!base_alone.trim().is_empty());

    let strong = write(dir.path(), "strong.gguf", lora(0.3, 1));
    let other = write(dir.path(), "other.gguf", lora(0.3, 2));
    let zero = write(dir.path(), "zero.gguf", lora(0.0, 3));
    let (base, adapted) = Engine::load_unverified_with_adapters(
        &model,
        &config(),
        &[strong.as_path(), other.as_path(), zero.as_path()],
    )
    .unwrap();
    assert_eq!(adapted.len(), 3);

    // All four answer at once, each in its own context: the base as it did alone, each
    // adapter with its weights applied (the zero adapter adds exactly nothing).
    let answers: Vec<String> = thread::scope(|s| {
        let handles: Vec<_> = std::iter::once(&base)
            .chain(&adapted)
            .map(|e| s.spawn(move || answer(e, QUESTION)))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(answers[0], base_alone, "the base model's answer changed");
    assert_ne!(answers[1], base_alone, "the adapter changed nothing");
    assert_ne!(answers[2], base_alone, "the second adapter changed nothing");
    assert_ne!(answers[1], answers[2], "two adapters answered alike");
    assert_eq!(answers[3], base_alone, "a zero adapter changed the answer");
    // Each context read the prompt whole: none reuses another's cells, though the prompt was
    // the same in all four.
    for engine in std::iter::once(&base).chain(&adapted) {
        assert_eq!(engine.stats().prompt_tokens_reused, 0);
    }
    // And again, one after another: the same answers (nothing carried over between contexts),
    // each adapter reusing only its own cells.
    assert_eq!(answer(&adapted[0], QUESTION), answers[1]);
    assert!(adapted[0].stats().prompt_tokens_reused > 0);
    assert_eq!(adapted[1].stats().prompt_tokens_reused, 0);
    assert_eq!(answer(&base, QUESTION), base_alone);

    // They share the model's facts and its embedding worker.
    assert_eq!(adapted[0].info(), base.info());
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let input = ["a sentence".to_owned()];
    assert_eq!(
        rt.block_on(adapted[0].embed(&input)).unwrap(),
        rt.block_on(base.embed(&input)).unwrap()
    );
}

#[test]
fn an_adapter_that_does_not_fit_the_model_is_refused_with_its_name() {
    let dir = tempfile::tempdir().unwrap();
    let wide = write(
        dir.path(),
        "wide.gguf",
        Lora {
            n_embd: n_embd() + 64,
            ..lora(0.3, 1)
        },
    );
    let qwen = write(
        dir.path(),
        "qwen.gguf",
        Lora {
            arch: "qwen2",
            ..lora(0.3, 1)
        },
    );
    let missing = dir.path().join("missing.gguf");
    let not_gguf = dir.path().join("text.gguf");
    std::fs::write(&not_gguf, "not an adapter").unwrap();
    for bad in [&wide, &qwen, &missing, &not_gguf] {
        match Engine::load_unverified_with_adapters(&model_path(), &config(), &[bad.as_path()]) {
            Err(e @ EngineError::Adapter { .. }) => {
                let said = e.to_string();
                assert!(said.contains(&bad.display().to_string()), "{said}");
            }
            other => panic!("{}: {other:?}", bad.display()),
        }
    }
}
