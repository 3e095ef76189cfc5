//! The engine against the real starter model (SmolLM2-135M-Instruct).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;
use std::sync::OnceLock;

use sov_engine::{
    ChatMessage, Engine, EngineConfig, EngineError, Event, FinishReason, SamplingParams,
};

fn model_path() -> PathBuf {
    PathBuf::from(std::env::var_os("SOV_TEST_MODEL").unwrap_or_else(|| {
        panic!("SOV_TEST_MODEL is not set: run the tests with `bash scripts/test`, which fetches the starter model")
    }))
}

fn engine() -> Engine {
    static ENGINE: OnceLock<Engine> = OnceLock::new();
    ENGINE
        .get_or_init(|| {
            let config = EngineConfig {
                context_length: 256,
                parallel: 2,
                ..Default::default()
            };
            Engine::load(&model_path(), &config).unwrap()
        })
        .clone()
}

fn user(content: &str) -> Vec<ChatMessage> {
    vec![ChatMessage {
        role: "user".into(),
        content: content.into(),
    }]
}

fn run(prompt: sov_engine::Prompt, params: SamplingParams) -> (String, FinishReason, usize) {
    let mut generation = engine().generate(prompt, params).unwrap();
    let mut text = String::new();
    loop {
        match generation.blocking_next().unwrap() {
            Event::Text(t) => text.push_str(&t),
            Event::Done {
                finish_reason,
                completion_tokens,
            } => return (text, finish_reason, completion_tokens),
            Event::Failed(reason) => panic!("{reason}"),
        }
    }
}

fn greedy(max_tokens: u32) -> SamplingParams {
    SamplingParams {
        temperature: 0.0,
        max_tokens: Some(max_tokens),
        ..Default::default()
    }
}

#[test]
fn greedy_chat_answer_is_coherent() {
    let prompt = engine()
        .chat_prompt(&user("Name the capital city of France."))
        .unwrap();
    let (text, finish, tokens) = run(prompt, greedy(32));
    assert!(text.contains("Paris"), "{text}");
    assert_eq!(finish, FinishReason::Stop, "{text}");
    assert!(tokens > 0 && tokens < 32);
}

#[test]
fn the_models_own_template_is_rendered_faithfully() {
    // SmolLM2's template adds a default system prompt when the conversation has none; llama.cpp's
    // built-in matcher drops it. The token count proves ours kept it.
    let engine = engine();
    let ours = engine.chat_prompt(&user("Hi")).unwrap();
    let expected = "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n";
    assert_eq!(ours.len(), engine.text_prompt(expected).len());
    let with_system = engine
        .chat_prompt(&[
            ChatMessage {
                role: "system".into(),
                content: "Be brief.".into(),
            },
            user("Hi").remove(0),
        ])
        .unwrap();
    assert!(with_system.len() < ours.len());
}

#[test]
fn max_tokens_ends_with_length() {
    let prompt = engine()
        .chat_prompt(&user("Write a long story about a dragon."))
        .unwrap();
    let (_, finish, tokens) = run(prompt, greedy(7));
    assert_eq!((finish, tokens), (FinishReason::Length, 7));
}

#[test]
fn the_context_window_bounds_generation() {
    // 256 tokens per request: a generation with no max_tokens stops at the window's edge.
    let engine = engine();
    let prompt = engine.text_prompt("Once upon a time");
    let prompt_len = prompt.len();
    let params = SamplingParams {
        temperature: 0.0,
        ignore_eos: true,
        ..Default::default()
    };
    let (_, finish, tokens) = run(prompt, params);
    assert_eq!(finish, FinishReason::Length);
    assert_eq!(tokens, 256 - prompt_len);
}

#[test]
fn a_prompt_longer_than_the_context_is_refused() {
    let engine = engine();
    let prompt = engine.text_prompt(&"word ".repeat(400));
    match engine.generate(prompt, greedy(4)) {
        Err(EngineError::ContextExceeded {
            prompt_tokens,
            context_length: 256,
        }) => assert!(prompt_tokens >= 256),
        other => panic!("{other:?}"),
    }
}

#[test]
fn invalid_parameters_are_refused_before_queueing() {
    let prompt = engine().text_prompt("Hello");
    let params = SamplingParams {
        top_p: 1.5,
        ..Default::default()
    };
    assert!(matches!(
        engine().generate(prompt, params),
        Err(EngineError::InvalidParam { param: "top_p", .. })
    ));
}

#[test]
fn stop_sequences_end_the_answer_before_the_stop() {
    let prompt = engine().text_prompt("The capital of France is");
    let (full, _, _) = run(prompt.clone(), greedy(12));
    let at = full.find("Paris").expect("the model names Paris");
    let (text, finish, _) = run(
        prompt,
        SamplingParams {
            stop: vec!["Paris".into()],
            ..greedy(12)
        },
    );
    assert_eq!(text, full[..at]);
    assert_eq!(finish, FinishReason::Stop);
}

#[test]
fn a_model_without_a_chat_template_or_a_bad_file_fails_cleanly() {
    let dir = std::env::temp_dir().join(format!("sov-engine-bad-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bad = dir.join("bad.gguf");
    std::fs::write(&bad, b"GGUF but not really").unwrap();
    match Engine::load(&bad, &EngineConfig::default()) {
        Err(EngineError::Load { .. }) => {}
        other => panic!("{other:?}"),
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn embeddings_are_normalised_and_deterministic() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let inputs = vec![
        "The cat sat on the mat.".to_owned(),
        "The cat sat on the mat.".to_owned(),
        "Stocks fell.".to_owned(),
    ];
    let (vectors, tokens) = rt.block_on(engine().embed(&inputs)).unwrap();
    assert_eq!(vectors.len(), 3);
    assert_eq!(vectors[0], vectors[1]);
    assert_ne!(vectors[0], vectors[2]);
    assert!(tokens > 3);
    let norm: f32 = vectors[2].iter().map(|x| x * x).sum::<f32>().sqrt();
    assert!((norm - 1.0).abs() < 1e-4);
}

#[test]
fn a_whole_answer_arrives_in_one_piece_with_the_same_text() {
    let engine = engine();
    let prompt = engine
        .chat_prompt(&user("Name the capital city of France."))
        .unwrap();
    let (streamed, _, tokens) = run(prompt.clone(), greedy(24));
    let mut generation = engine.generate_whole(prompt, greedy(24)).unwrap();
    let events: Vec<Event> = std::iter::from_fn(|| generation.blocking_next()).collect();
    assert_eq!(events.len(), 2, "{events:?}");
    assert_eq!(events[0], Event::Text(streamed));
    assert!(
        matches!(events[1], Event::Done { completion_tokens, .. } if completion_tokens == tokens)
    );
}
