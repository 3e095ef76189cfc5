//! Gemma 3 270M, whose GGUF has no chat template: the store gives it Gemma's at import and the
//! engine chats with it. Needs `SOV_TEST_GEMMA_MODEL` (the GGUF, as `ensure_gemma_model` in
//! scripts/lib.sh fetches it); skipped without it. The package holds the pretrained
//! `google/gemma-3-270m`, not the instruction-tuned one: its answers are poor, but they must
//! come, in Gemma's turn format.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use sov_engine::{ChatMessage, Engine, EngineConfig, Event, SamplingParams};
use sov_models::{ChosenBy, ImportOutcome, ModelStore};

#[test]
fn gemma_chats_with_the_template_chosen_at_import() {
    let Some(path) = std::env::var_os("SOV_TEST_GEMMA_MODEL") else {
        eprintln!(
            "skipped: SOV_TEST_GEMMA_MODEL is not set (ensure_gemma_model in scripts/lib.sh fetches the model)"
        );
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    sov_keys::OwnerKeys::init(&tmp.path().join("keys")).unwrap();
    let keys = sov_keys::OwnerKeys::load(&tmp.path().join("keys")).unwrap();
    let store = ModelStore::open(&tmp.path().join("models")).unwrap();
    let outcome = store
        .import(
            std::path::Path::new(&path),
            Some("gemma"),
            &keys,
            &mut |_, _| {},
        )
        .unwrap();
    let ImportOutcome::Imported(m) = outcome else {
        panic!()
    };
    assert_eq!(m.gguf.architecture, "gemma3");
    assert!(
        m.gguf.chat_template.is_none(),
        "the GGUF has a template of its own now"
    );
    let choice = m.chat_template.as_ref().unwrap();
    assert_eq!(
        (choice.name.as_str(), choice.chosen_by),
        ("gemma", ChosenBy::Architecture)
    );

    let verified = store.verify("gemma", &keys.public()).unwrap();
    let config = EngineConfig {
        context_length: 512,
        parallel: 1,
        ..Default::default()
    };
    let engine = Engine::load(&verified, &config).unwrap();
    let messages = vec![ChatMessage {
        role: "user".into(),
        content: "What is the capital of France? Answer in one word.".into(),
    }];
    let prompt = engine.chat_prompt(&messages).unwrap();
    // Gemma's markup became its control tokens: <bos> (2), <start_of_turn> (105) ... the
    // generation prompt <start_of_turn> model \n (105, 4368, 107); <end_of_turn> (106) between.
    let ids = prompt.token_ids();
    assert_eq!(ids.get(..2), Some(&[2, 105][..]), "{ids:?}");
    assert!(ids.ends_with(&[106, 107, 105, 4368, 107]), "{ids:?}");
    let params = SamplingParams {
        temperature: 0.0,
        max_tokens: Some(24),
        ..Default::default()
    };
    let mut generation = engine.generate_whole(prompt, params).unwrap();
    let mut text = String::new();
    while let Some(event) = generation.blocking_next() {
        match event {
            Event::Text(t) => text.push_str(&t),
            Event::Done { .. } => break,
            Event::Failed(reason) => panic!("{reason}"),
        }
    }
    println!("gemma answered: {text:?}");
    assert!(!text.trim().is_empty());
    assert!(
        !text.contains("<end_of_turn>") && !text.contains("<start_of_turn>"),
        "{text}"
    );
}
