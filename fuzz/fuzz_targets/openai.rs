//! The OpenAI request bodies (sov-openai) never panic, from the bytes of the body on: parsed as
//! the server's extractor parses them (serde_path_to_error over serde_json, then the end of the
//! input), then `to_params`, `SamplingParams::validate`, `conversation` and `encoding`. What
//! `to_params` gives is what the request said (or the default), and once it validates, every
//! field is within its documented range. The tools and response format are checked too, and
//! a grammar built from them names every function offered.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde::de::DeserializeOwned;
use sov_infer::SamplingParams;
use sov_infer::functions::Choice;
use sov_openai::{ChatRequest, CompletionRequest, EmbeddingRequest, OneOrMany, Sampling};

fuzz_target!(|data: &[u8]| {
    if let Some(req) = parse::<ChatRequest>(data) {
        sampling(&req.sampling);
        functions(&req.sampling);
        if let Ok(conversation) = req.conversation() {
            assert_eq!(conversation.len(), req.messages.len());
            assert!(!conversation.is_empty());
            for (m, sent) in conversation.iter().zip(&req.messages) {
                assert!(!m.role.is_empty());
                // A tool's result is given back to the model as a user turn.
                let role = if sent.role == "tool" { "user" } else { sent.role.as_str() };
                assert_eq!(m.role, role);
            }
        }
    }
    if let Some(req) = parse::<CompletionRequest>(data) {
        sampling(&req.sampling);
        let _ = req.prompt.into_vec();
    }
    if let Some(req) = parse::<EmbeddingRequest>(data) {
        let _ = req.encoding();
        let _ = req.input.into_vec();
    }
});

/// The tools and the response format: checked, refused by name, or turned into a grammar
/// that names every function offered.
fn functions(s: &Sampling) {
    match s.functions() {
        Ok(Some(f)) => {
            assert!(!f.functions.is_empty() && f.functions.len() <= 64);
            if let Some(g) = f.grammar() {
                for func in &f.functions {
                    if f.choice == Choice::Auto || f.choice == Choice::Required {
                        assert!(g.contains(&func.name));
                    }
                }
            }
        }
        Ok(None) => {}
        Err(e) => assert!(e.param.is_some() && !e.message.is_empty()),
    }
    match s.format() {
        Ok(format) => {
            let _ = format.grammar();
        }
        Err(e) => assert!(e.param.is_some()),
    }
    let _ = s.text_only();
}

/// As `ApiJson` in sov-server does: the error's path and category are computed too.
fn parse<T: DeserializeOwned>(data: &[u8]) -> Option<T> {
    let mut de = serde_json::Deserializer::from_slice(data);
    match serde_path_to_error::deserialize::<_, T>(&mut de) {
        Ok(value) => de.end().ok().map(|()| value),
        Err(e) => {
            let _ = e.path().to_string();
            let _ = e.into_inner().classify();
            None
        }
    }
}

fn sampling(s: &Sampling) {
    let _ = s.include_usage();
    let p = match s.to_params() {
        Ok(p) => p,
        Err(e) => {
            // Any integer seed is taken (modulo 2^32); a refusal names a field of the request.
            assert_ne!(e.param, Some("seed"));
            assert!(e.param.is_some() && !e.message.is_empty());
            return;
        }
    };
    let defaults = SamplingParams::default();
    let same = |got: f32, sent: Option<f32>, default: f32| {
        assert_eq!(got.to_bits(), sent.unwrap_or(default).to_bits());
    };
    same(p.temperature, s.temperature, defaults.temperature);
    same(p.top_p, s.top_p, defaults.top_p);
    same(p.min_p, s.min_p, defaults.min_p);
    same(p.repeat_penalty, s.repeat_penalty, defaults.repeat_penalty);
    assert_eq!(p.top_k, s.top_k.unwrap_or(defaults.top_k));
    assert_eq!(p.max_tokens, s.max_completion_tokens.or(s.max_tokens));
    assert_eq!(p.seed.map(i64::from), s.seed.map(|x| x.rem_euclid(1 << 32)));
    assert_eq!(p.ignore_eos, s.ignore_eos);
    assert_eq!(
        p.stop,
        s.stop.clone().map(OneOrMany::into_vec).unwrap_or_default()
    );
    match p.validate() {
        Ok(()) => within_ranges(&p),
        Err(e) => assert!(!e.reason.is_empty() && e.to_string().contains(e.param)),
    }
}

/// The ranges documented on `SamplingParams`.
fn within_ranges(p: &SamplingParams) {
    assert!(
        (0.0..=2.0).contains(&p.temperature),
        "temperature {}",
        p.temperature
    );
    assert!(p.top_p > 0.0 && p.top_p <= 1.0, "top_p {}", p.top_p);
    assert!(p.top_k >= 0, "top_k {}", p.top_k);
    assert!((0.0..=1.0).contains(&p.min_p), "min_p {}", p.min_p);
    assert!(p.max_tokens.is_none_or(|n| n >= 1));
    assert!(p.stop.len() <= 4);
    assert!(
        p.stop
            .iter()
            .all(|s| !s.is_empty() && s.len() <= SamplingParams::MAX_STOP_BYTES)
    );
    assert!(
        p.repeat_penalty > 0.0 && p.repeat_penalty <= 10.0,
        "repeat_penalty {}",
        p.repeat_penalty
    );
}
