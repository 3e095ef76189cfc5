//! The OpenAI API's request and response bodies, as far as Sovereign serves them, and the checks
//! that turn a request into what a generation is asked ([`sov_infer`]).
//!
//! Why a crate of its own: these bodies are the first thing an untrusted client controls, so
//! they are fuzzed (`fuzz/fuzz_targets/openai.rs`), and a fuzz target must build without
//! llama.cpp. The HTTP side (the JSON extractor, status codes, the error body) stays in
//! `sov-server`, which answers every [`WireError`] as a 400 `invalid_request_error` with its
//! message and `param`.
//!
//! What is checked where:
//! - **Here**, before authorisation: the shape of the body (serde: a missing or mistyped field
//!   is refused by the server's extractor), and the fields Sovereign cannot honour (`n > 1`,
//!   `logprobs`, `tools` or a JSON response format on `/v1/completions`, a JSON response
//!   format together with tools, `stream_options` without streaming, content parts other than
//!   text, an empty conversation or role, an `encoding_format` other than `float` or
//!   `base64`); `tools`, `tool_choice` and `response_format` are checked in [`functions`]
//!   (names, schemas as objects, a named choice among the tools, at most 64 functions). A field Sovereign cannot honour is
//!   refused with a 400 rather than silently ignored; unknown fields are ignored (clients send
//!   optional ones such as `user`).
//! - **In [`sov_infer::SamplingParams::validate`]**, run by the engine before a request is
//!   queued: the ranges (temperature, top-p, stop sequences, ...).
//! - **In the engine**: which roles a conversation may have; **in the kernel**: the model name
//!   and the embedding width.

pub mod functions;
mod request;
mod response;

pub use request::{
    ChatRequest, CompletionRequest, Content, ContentPart, EmbeddingRequest, Encoding, Message,
    OneOrMany, Sampling, StreamOptions,
};
pub use response::{ModelCard, Usage};

/// A request the wire format accepts but Sovereign does not: the message a client reads, and the
/// request field it is about (OpenAI's `param`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct WireError {
    /// What is wrong, in OpenAI's style (a sentence ending with a full stop).
    pub message: String,
    /// The field, by its name in the request.
    pub param: Option<&'static str>,
}

impl WireError {
    fn new(message: impl Into<String>, param: &'static str) -> Self {
        Self {
            message: message.into(),
            param: Some(param),
        }
    }
}
