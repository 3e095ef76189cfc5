//! Prompt reuse against the real starter model: a prompt's cached start is not decoded again,
//! the answer is the one a fresh engine gives, and a start held by a busy slot is copied.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{finish, model_path};
use sov_engine::{
    ChatMessage, Engine, EngineConfig, Event, Prompt, REDECODE_TOKENS, SamplingParams,
};

fn engine(prompt_reuse: bool) -> Engine {
    let config = EngineConfig {
        context_length: 1024,
        parallel: 2,
        prompt_reuse,
        ..Default::default()
    };
    Engine::load_unverified(&model_path(), &config).unwrap()
}

/// A system prompt of a few hundred tokens (a specialist's instructions), then `question`.
fn conversation(engine: &Engine, question: &str) -> Prompt {
    let rules: String = (1..=30)
        .map(|i| format!("Rule {i}: answer in plain words and cite the handbook section {i}. "))
        .collect();
    engine
        .chat_prompt(&[
            ChatMessage {
                role: "system".into(),
                content: format!("You are the records office's assistant. {rules}"),
            },
            ChatMessage {
                role: "user".into(),
                content: question.into(),
            },
        ])
        .unwrap()
}

fn greedy(max_tokens: u32) -> SamplingParams {
    SamplingParams {
        temperature: 0.0,
        max_tokens: Some(max_tokens),
        ..Default::default()
    }
}

fn shared_start(a: &Prompt, b: &Prompt) -> usize {
    a.token_ids()
        .iter()
        .zip(b.token_ids())
        .take_while(|(x, y)| **x == *y)
        .count()
}

/// What the engine reuses of `prompt` when `cached` of its tokens are in a slot: all but the
/// prompt's end, which is always decoded.
fn reusable(prompt: &Prompt, cached: usize) -> usize {
    cached.min(prompt.len().saturating_sub(REDECODE_TOKENS))
}

fn answer(engine: &Engine, prompt: Prompt, max_tokens: u32) -> String {
    finish(engine.generate(prompt, greedy(max_tokens)).unwrap()).0
}

#[test]
fn a_cached_start_is_reused_and_the_answers_stay_the_same() {
    let fresh = engine(false);
    let cached = engine(true);
    let first = conversation(&cached, "How do I request a copy of a birth certificate?");
    let second = conversation(&cached, "Who may see the archive on Sundays?");
    let shared = shared_start(&first, &second);
    assert!(shared > 300, "the system prompt is {shared} tokens");

    let a1 = answer(&cached, first.clone(), 24);
    assert_eq!(cached.stats().prompt_tokens_reused, 0);
    // The second prompt takes the slot holding the first one's cells: only its question is read.
    let a2 = answer(&cached, second.clone(), 24);
    let reused2 = reusable(&second, shared);
    assert!(reused2 > 300, "{reused2}");
    assert_eq!(cached.stats().prompt_tokens_reused, reused2 as u64);
    // The first prompt again: its slot now holds the second prompt, so the shared start.
    let a1_again = answer(&cached, first.clone(), 24);
    let reused3 = reusable(&first, shared);
    assert_eq!(
        cached.stats().prompt_tokens_reused,
        (reused2 + reused3) as u64
    );
    // And once more: the whole prompt but its end, whose logits start the answer.
    let a1_thrice = answer(&cached, first.clone(), 24);
    assert_eq!(
        cached.stats().prompt_tokens_reused,
        (reused2 + reused3 + first.len() - REDECODE_TOKENS) as u64
    );
    assert_eq!(
        cached.stats().prompt_tokens,
        (3 * first.len() + second.len()) as u64
    );

    // The answers are those an engine that reads every prompt whole gives.
    assert_eq!(a1, answer(&fresh, first.clone(), 24));
    assert_eq!(a2, answer(&fresh, second, 24));
    assert_eq!(a1_again, a1);
    // All but the prompt's end reused: that end is still decoded in one batch, by the kernels a
    // whole prompt goes through, so the answer is exactly the same.
    assert_eq!(a1_thrice, a1);
    assert!(!a1.trim().is_empty());
    // Off means off: nothing reused, however alike the prompts.
    assert_eq!(fresh.stats().prompt_tokens_reused, 0);
}

#[test]
fn a_start_held_by_a_busy_slot_is_copied_into_a_free_one() {
    let cached = engine(true);
    let fresh = engine(false);
    let long = conversation(&cached, "Describe the archive's reading room in detail.");
    let other = conversation(&cached, "When does the records office open?");
    let shared = shared_start(&long, &other);

    // The long answer runs in one slot (160 tokens: its end token ignored)...
    let mut running = cached
        .generate(
            long,
            SamplingParams {
                ignore_eos: true,
                ..greedy(160)
            },
        )
        .unwrap();
    match running.blocking_next().unwrap() {
        Event::Text(_) => {}
        other => panic!("{other:?}"),
    }
    // ...while the other prompt takes the free slot, which holds nothing yet: the running
    // slot's cells are copied there, and only the question is read.
    let got = answer(&cached, other.clone(), 24);
    assert_eq!(
        cached.stats().prompt_tokens_reused,
        reusable(&other, shared) as u64
    );
    assert_eq!(got, answer(&fresh, other, 24));
    let (_, _, tokens) = finish(running);
    assert_eq!(tokens, 160);
}

#[test]
fn a_different_prompt_reuses_nothing() {
    let cached = engine(true);
    let one = cached.text_prompt("The quick brown fox jumps over the lazy dog.");
    let two = cached.text_prompt("Completely unrelated words start this prompt.");
    assert_eq!(shared_start(&one, &two), 0);
    answer(&cached, one, 4);
    answer(&cached, two, 4);
    assert_eq!(cached.stats().prompt_tokens_reused, 0);
}
