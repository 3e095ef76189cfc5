//! The request bodies as clients send them: what is taken, with which defaults, and what is
//! refused with which message and `param` (the HTTP tests in sov-server see the same through a
//! real engine).
#![allow(clippy::unwrap_used, clippy::panic)]

use serde_json::{Value, json};
use sov_infer::{ChatMessage, SamplingParams};
use sov_openai::{ChatRequest, CompletionRequest, EmbeddingRequest, Encoding, Usage, WireError};

fn chat(body: Value) -> ChatRequest {
    serde_json::from_value(body).unwrap()
}

fn refused(result: Result<impl std::fmt::Debug, WireError>) -> (String, &'static str) {
    match result {
        Err(WireError {
            message,
            param: Some(param),
        }) => (message, param),
        other => panic!("not refused with a param: {other:?}"),
    }
}

fn hi() -> Value {
    json!([{"role": "user", "content": "Hi"}])
}

#[test]
fn a_minimal_chat_gets_the_defaults_and_its_conversation() {
    let req = chat(json!({"model": "m", "messages": hi(), "user": "ignored"}));
    assert_eq!(req.sampling.to_params().unwrap(), SamplingParams::default());
    assert!(!req.sampling.stream);
    assert!(!req.sampling.include_usage());
    assert_eq!(
        req.conversation().unwrap(),
        vec![ChatMessage {
            role: "user".into(),
            content: "Hi".into()
        }]
    );
}

#[test]
fn every_sampling_field_is_taken() {
    let req = chat(
        json!({"model": "m", "messages": hi(), "temperature": 0, "top_p": 0.5,
        "top_k": 7, "min_p": 0.25, "seed": 42, "max_tokens": 9, "stop": "\n",
        "repeat_penalty": 1.5, "ignore_eos": true, "n": 1, "logprobs": false, "tools": null,
        "response_format": {"type": "text"}}),
    );
    let p = req.sampling.to_params().unwrap();
    assert_eq!(
        p,
        SamplingParams {
            temperature: 0.0,
            top_p: 0.5,
            top_k: 7,
            min_p: 0.25,
            seed: Some(42),
            max_tokens: Some(9),
            stop: vec!["\n".into()],
            repeat_penalty: 1.5,
            ignore_eos: true,
            grammar: None,
        }
    );
    p.validate().unwrap();
}

#[test]
fn max_completion_tokens_wins_over_max_tokens_and_stop_takes_a_list() {
    let req: CompletionRequest = serde_json::from_value(json!({"model": "m",
        "prompt": ["a", "b"], "max_tokens": 5, "max_completion_tokens": 3, "stop": ["x", "y"]}))
    .unwrap();
    let p = req.sampling.to_params().unwrap();
    assert_eq!(p.max_tokens, Some(3));
    assert_eq!(p.stop, ["x", "y"]);
    assert_eq!(req.prompt.into_vec(), ["a", "b"]);
}

#[test]
fn any_integer_seed_is_taken_modulo_two_to_the_32() {
    for (seed, want) in [
        (json!(-1), u32::MAX),
        (json!(1_i64 << 32), 0),
        (json!((1_i64 << 32) + 5), 5),
        (json!(i64::MIN), 0),
        (json!(i64::MAX), u32::MAX),
    ] {
        let req = chat(json!({"model": "m", "messages": hi(), "seed": seed}));
        assert_eq!(req.sampling.to_params().unwrap().seed, Some(want), "{seed}");
    }
}

#[test]
fn what_sovereign_cannot_honour_is_refused_by_name() {
    let cases = [
        (json!({"n": 2}), "Only n = 1 is supported.", "n"),
        (
            json!({"logprobs": true}),
            "logprobs are not supported.",
            "logprobs",
        ),
        (
            json!({"stream_options": {"include_usage": true}}),
            "stream_options is only allowed with stream: true.",
            "stream_options",
        ),
    ];
    for (extra, message, param) in cases {
        let mut body = json!({"model": "m", "messages": hi()});
        for (k, v) in extra.as_object().unwrap() {
            body[k] = v.clone();
        }
        let req = chat(body);
        assert_eq!(
            refused(req.sampling.to_params()),
            (message.to_owned(), param)
        );
    }
}

#[test]
fn stream_options_go_with_a_stream() {
    let req = chat(json!({"model": "m", "messages": hi(), "stream": true,
        "stream_options": {"include_usage": true}}));
    req.sampling.to_params().unwrap();
    assert!(req.sampling.stream);
    assert!(req.sampling.include_usage());
}

#[test]
fn text_parts_are_joined_and_an_absent_content_is_empty() {
    let req = chat(json!({"model": "m", "messages": [
        {"role": "system"},
        {"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]},
    ]}));
    let conversation = req.conversation().unwrap();
    assert_eq!(conversation[0].content, "");
    assert_eq!(conversation[1].content, "ab");
}

#[test]
fn a_conversation_is_refused_with_the_message_it_is_about() {
    let cases = [
        (json!([]), "messages must not be empty."),
        (
            json!([{"role": "user", "content": "a"}, {"role": "user",
                "content": [{"type": "image_url", "image_url": {"url": "x"}}]}]),
            "messages[1]: only text content parts are supported.",
        ),
        (
            json!([{"role": "user", "content": [{"type": "text"}]}]),
            "messages[0]: only text content parts are supported.",
        ),
        (
            json!([{"role": "", "content": "a"}]),
            "messages[0]: role must not be empty.",
        ),
    ];
    for (messages, message) in cases {
        let req = chat(json!({"model": "m", "messages": messages}));
        assert_eq!(
            refused(req.conversation()),
            (message.to_owned(), "messages")
        );
    }
}

#[test]
fn the_embedding_encoding_is_float_base64_or_refused() {
    let embed = |format: Value| -> EmbeddingRequest {
        serde_json::from_value(json!({"model": "m", "input": "x", "encoding_format": format}))
            .unwrap()
    };
    assert_eq!(embed(Value::Null).encoding().unwrap(), Encoding::Float);
    assert_eq!(embed(json!("float")).encoding().unwrap(), Encoding::Float);
    assert_eq!(embed(json!("base64")).encoding().unwrap(), Encoding::Base64);
    assert_eq!(
        refused(embed(json!("int8")).encoding()),
        (
            "encoding_format must be \"float\" or \"base64\", not \"int8\".".to_owned(),
            "encoding_format"
        )
    );
}

#[test]
fn a_body_of_the_wrong_shape_does_not_parse() {
    for body in [
        json!({"messages": hi()}),
        json!({"model": "m", "messages": "Hi"}),
        json!({"model": "m", "messages": hi(), "temperature": "hot"}),
        json!({"model": "m", "messages": hi(), "max_tokens": -1}),
        json!({"model": "m", "messages": [{"content": "no role"}]}),
    ] {
        assert!(
            serde_json::from_value::<ChatRequest>(body.clone()).is_err(),
            "{body}"
        );
    }
    assert!(serde_json::from_value::<EmbeddingRequest>(json!({"model": "m"})).is_err());
}

#[test]
fn usage_adds_up_and_has_openai_field_names() {
    let usage = Usage::new(3, 4);
    assert_eq!(
        serde_json::to_value(usage).unwrap(),
        json!({"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7})
    );
}

#[test]
fn tools_and_response_formats_are_checked_by_name() {
    let weather = json!([{"type": "function", "function": {"name": "get_weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}]);
    let req = |extra: Value| {
        let mut body = json!({"model": "m", "messages": hi()});
        for (k, v) in extra.as_object().unwrap() {
            body[k] = v.clone();
        }
        chat(body)
    };
    let f = req(json!({"tools": weather}))
        .sampling
        .functions()
        .unwrap()
        .unwrap();
    assert_eq!(f.choice, sov_infer::functions::Choice::Auto);
    assert!(f.parallel);
    let f = req(json!({"tools": weather, "tool_choice": {"type": "function", "function": {"name": "get_weather"}},
                       "parallel_tool_calls": false}))
        .sampling
        .functions()
        .unwrap()
        .unwrap();
    assert_eq!(
        f.choice,
        sov_infer::functions::Choice::Named("get_weather".into())
    );
    assert!(!f.parallel);
    let cases = [
        (
            json!({"tool_choice": "auto"}),
            "tool_choice is only allowed when tools are specified.",
            "tool_choice",
        ),
        (json!({"tools": []}), "tools must not be empty.", "tools"),
        (
            json!({"tools": [{"type": "code", "function": {"name": "x"}}]}),
            "tools[0].type must be \"function\".",
            "tools",
        ),
        (
            json!({"tools": [{"type": "function", "function": {"name": "a b"}}]}),
            "tools[0].function.name must be 1 to 64 of a-z, A-Z, 0-9, _ and -.",
            "tools",
        ),
        (
            json!({"tools": [{"type": "function", "function": {"name": "x"}}, {"type": "function", "function": {"name": "x"}}]}),
            "tools[1]: the function `x` is given twice.",
            "tools",
        ),
        (
            json!({"tools": [{"type": "function", "function": {"name": "x", "parameters": 3}}]}),
            "tools[0].function.parameters must be a JSON schema object.",
            "tools",
        ),
        (
            json!({"tools": weather, "tool_choice": "always"}),
            "tool_choice must be \"none\", \"auto\", \"required\" or a function, not \"always\".",
            "tool_choice",
        ),
        (
            json!({"tools": weather, "tool_choice": {"type": "function", "function": {"name": "nope"}}}),
            "tool_choice names `nope`, which is not among the tools.",
            "tool_choice",
        ),
    ];
    for (extra, message, param) in cases {
        let e = req(extra.clone()).sampling.functions().unwrap_err();
        assert_eq!(
            (e.message.as_str(), e.param),
            (message, Some(param)),
            "{extra}"
        );
    }
    let formats = [
        (
            json!({"response_format": {"type": "xml"}}),
            "response_format.type must be \"text\", \"json_object\" or \"json_schema\".",
        ),
        (
            json!({"response_format": {"type": "json_schema"}}),
            "response_format.json_schema is required for type json_schema.",
        ),
        (
            json!({"response_format": {"type": "json_schema", "json_schema": {"schema": {}}}}),
            "response_format.json_schema.name must be 1 to 64 of a-z, A-Z, 0-9, _ and -.",
        ),
        (
            json!({"response_format": {"type": "json_object"}, "tools": weather}),
            "response_format json_object or json_schema cannot be combined with tools.",
        ),
    ];
    for (extra, message) in formats {
        let e = req(extra.clone()).sampling.format().unwrap_err();
        assert_eq!(
            (e.message.as_str(), e.param),
            (message, Some("response_format")),
            "{extra}"
        );
    }
    // A completion request takes neither.
    let text: sov_openai::CompletionRequest =
        serde_json::from_value(json!({"model": "m", "prompt": "x", "tools": weather})).unwrap();
    assert_eq!(text.sampling.text_only().unwrap_err().param, Some("tools"));
}

#[test]
fn earlier_calls_and_their_results_are_rendered_in_the_generic_format() {
    let req = chat(json!({"model": "m", "messages": [
        {"role": "user", "content": "Weather in Paris?"},
        {"role": "assistant", "content": null, "tool_calls": [{"id": "call_1", "type": "function",
            "function": {"name": "get_weather", "arguments": "{\"city\": \"Paris\"}"}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": "18 C, sunny"}
    ]}));
    let c = req.conversation().unwrap();
    assert_eq!(c[1].role, "assistant");
    assert_eq!(
        c[1].content,
        r#"<tool_call>{"name": "get_weather", "arguments": {"city":"Paris"}}</tool_call>"#
    );
    assert_eq!(c[2].role, "user");
    assert_eq!(
        c[2].content,
        "Result of get_weather (call call_1): 18 C, sunny"
    );
    let bad = [
        (
            json!({"role": "tool", "tool_call_id": "nope", "content": "x"}),
            "answers no earlier call",
        ),
        (
            json!({"role": "tool", "content": "x"}),
            "needs tool_call_id",
        ),
        (
            json!({"role": "user", "tool_calls": [{"function": {"name": "f", "arguments": "{}"}}]}),
            "only an assistant",
        ),
        (
            json!({"role": "assistant", "tool_calls": [{"function": {"name": "f", "arguments": "{oops"}}]}),
            "is not JSON",
        ),
    ];
    for (m, says) in bad {
        let req = chat(json!({"model": "m", "messages": [{"role": "user", "content": "hi"}, m]}));
        let e = req.conversation().unwrap_err();
        assert!(e.message.contains(says), "{}", e.message);
    }
}
