//! Constrained sampling against the real starter model: with a grammar from a JSON schema or
//! from offered functions, whatever the 135M model would have said, the answer parses and
//! matches the schema; a schema llguidance cannot enforce is refused before any work.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;
use std::sync::OnceLock;

use serde_json::{Value, json};
use sov_engine::{ChatMessage, Engine, EngineConfig, EngineError, Event, SamplingParams};
use sov_infer::functions::{Choice, Format, Function, Functions, parse_calls};

fn engine() -> Engine {
    static ENGINE: OnceLock<Engine> = OnceLock::new();
    ENGINE
        .get_or_init(|| {
            let path = PathBuf::from(std::env::var_os("SOV_TEST_MODEL").unwrap_or_else(|| {
                panic!("SOV_TEST_MODEL is not set: run the tests with `bash scripts/test`")
            }));
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
    let mut generation = engine().generate(prompt, params).unwrap();
    let mut text = String::new();
    loop {
        match generation.blocking_next().unwrap() {
            Event::Text(t) => text.push_str(&t),
            Event::Done { .. } => return text,
            Event::Failed(reason) => panic!("{reason}"),
        }
    }
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
    let functions = Functions {
        functions: vec![
            Function {
                name: "get_weather".into(),
                description: "The current weather in a city".into(),
                parameters: json!({"type": "object",
                    "properties": {"city": {"type": "string", "maxLength": 40},
                                   "unit": {"enum": ["celsius", "fahrenheit"]}},
                    "required": ["city", "unit"], "additionalProperties": false}),
            },
            Function {
                name: "get_time".into(),
                description: "The current time in a time zone".into(),
                parameters: json!({"type": "object",
                    "properties": {"zone": {"type": "string", "maxLength": 40}},
                    "required": ["zone"], "additionalProperties": false}),
            },
        ],
        choice: Choice::Required,
        parallel: false,
    };
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
