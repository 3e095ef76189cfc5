//! Constrained sampling against the real starter model: with a grammar from a JSON schema or
//! from offered functions, whatever the 135M model would have said, the answer parses and
//! matches the schema; a schema llguidance cannot enforce is refused before any work.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::OnceLock;

use common::{finish, model_path, weather_and_time};
use serde_json::{Value, json};
use sov_engine::{ChatMessage, Engine, EngineConfig, EngineError, SamplingParams};
use sov_infer::functions::{Choice, Format, Functions, parse_calls};

fn engine() -> Engine {
    static ENGINE: OnceLock<Engine> = OnceLock::new();
    ENGINE
        .get_or_init(|| {
            let path = model_path();
            let config = EngineConfig {
                context_length: 1024,
                parallel: 2,
                ..Default::default()
            };
            Engine::load_unverified(&path, &config).unwrap()
        })
        .clone()
}

fn answer(system: Option<String>, question: &str, grammar: Option<String>, seed: u32) -> String {
    let mut messages = Vec::new();
    if let Some(s) = system {
        messages.push(ChatMessage {
            role: "system".into(),
            content: s,
        });
    }
    messages.push(ChatMessage {
        role: "user".into(),
        content: question.into(),
    });
    let prompt = engine().chat_prompt(&messages).unwrap();
    let params = SamplingParams {
        temperature: 0.7,
        seed: Some(seed),
        max_tokens: Some(160),
        grammar,
        ..Default::default()
    };
    finish(engine().generate(prompt, params).unwrap()).0
}

#[test]
fn a_json_schema_answer_always_parses_and_matches() {
    let schema = json!({
        "type": "object",
        "properties": {
            "city": {"type": "string", "maxLength": 40},
            "population": {"type": "integer", "minimum": 0},
            "capital": {"type": "boolean"}
        },
        "required": ["city", "population", "capital"],
        "additionalProperties": false
    });
    let format = Format::JsonSchema {
        name: "city".into(),
        schema,
    };
    for seed in 0..4 {
        let text = answer(
            format.instructions(),
            "Tell me about Paris.",
            format.grammar(),
            seed,
        );
        let v: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
        let o = v.as_object().unwrap();
        assert_eq!(o.len(), 3, "{text}");
        assert!(o["city"].as_str().unwrap().chars().count() <= 40, "{text}");
        assert!(o["population"].as_u64().is_some(), "{text}");
        assert!(o["capital"].is_boolean(), "{text}");
    }
}

#[test]
fn a_forced_call_names_an_offered_function_with_matching_arguments() {
    let functions = weather_and_time(Choice::Required);
    for seed in 0..4 {
        let text = answer(
            functions.instructions(),
            "What is the weather like in Paris?",
            functions.grammar(),
            seed,
        );
        let calls = parse_calls(&text, false).unwrap_or_else(|| panic!("not a call: {text}"));
        assert_eq!(calls.len(), 1, "{text}");
        let args: Value = serde_json::from_str(&calls[0].arguments).unwrap();
        match calls[0].name.as_str() {
            "get_weather" => {
                assert!(args["city"].is_string(), "{text}");
                assert!(["celsius", "fahrenheit"].contains(&args["unit"].as_str().unwrap()));
            }
            "get_time" => assert!(args["zone"].is_string(), "{text}"),
            other => panic!("an unoffered function {other}: {text}"),
        }
    }
    // A named function: only that one.
    let named = Functions {
        choice: Choice::Named("get_time".into()),
        ..functions
    };
    let text = answer(named.instructions(), "Hello!", named.grammar(), 1);
    let calls = parse_calls(&text, false).unwrap_or_else(|| panic!("not a call: {text}"));
    assert_eq!(calls[0].name, "get_time", "{text}");
}

#[test]
fn a_schema_that_cannot_be_enforced_is_refused_before_any_work() {
    let bad = Format::JsonSchema {
        name: "bad".into(),
        schema: json!({"type": "object", "properties": {"x": {"$ref": "#/nowhere"}}}),
    };
    let messages = vec![ChatMessage {
        role: "user".into(),
        content: "hi".into(),
    }];
    let prompt = engine().chat_prompt(&messages).unwrap();
    let params = SamplingParams {
        grammar: bad.grammar(),
        ..Default::default()
    };
    match engine().generate(prompt, params) {
        Err(EngineError::InvalidParam { param, reason }) => {
            assert_eq!(param, "tools");
            assert!(reason.contains("cannot be enforced"), "{reason}");
        }
        Err(other) => panic!("{other}"),
        Ok(_) => panic!("a broken schema was accepted"),
    }
}
