//! Helpers the engine's integration tests share: the starter model, a whole answer, the
//! functions the function-calling tests offer. (`mod common;` in a test file; each test binary
//! uses a part of it.)

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;

use serde_json::json;
use sov_engine::{Event, FinishReason, Generation};
use sov_infer::functions::{Choice, Function, Functions};

/// The starter model `bash scripts/test` fetches.
pub fn model_path() -> PathBuf {
    PathBuf::from(std::env::var_os("SOV_TEST_MODEL").unwrap_or_else(|| {
        panic!("SOV_TEST_MODEL is not set: run the tests with `bash scripts/test`, which fetches the starter model")
    }))
}

/// A generation's whole text, how it ended and the tokens it took.
pub fn finish(mut generation: Generation) -> (String, FinishReason, usize) {
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

/// `get_weather` (a city and a unit) and `get_time` (a zone), offered with `choice`, one
/// call at a time.
pub fn weather_and_time(choice: Choice) -> Functions {
    Functions {
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
        choice,
        parallel: false,
    }
}
