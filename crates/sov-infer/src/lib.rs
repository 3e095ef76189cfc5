//! What a generation is asked: sampling parameters and chat messages, checked before any engine
//! sees them.
//!
//! Why a crate of its own: the engine links llama.cpp (a C++ build of several minutes), but the
//! request it is given is plain data. Keeping that data here lets the parts that build it from
//! untrusted input (the OpenAI wire format in `sov-openai`, its fuzz target, `sov chat`'s
//! options) compile and be tested without llama.cpp, and keeps the ranges a request must be in
//! apart from how llama.cpp samples (the sampler chain stays in `sov-engine`, which re-exports
//! these types).
//!
//! - [`SamplingParams`]: how to pick each next token, with [`SamplingParams::validate`], which
//!   names the first field out of its range ([`InvalidParam`], with the API's name for it).
//! - [`ChatMessage`]: one message of a conversation, a role and its text. Which roles an engine
//!   accepts is the engine's to check.
//! - [`functions`]: function calling and structured output in the generic format, and the
//!   grammar that constrains sampling to it.

mod chat;
pub mod functions;
mod params;

pub use chat::ChatMessage;
pub use params::{InvalidParam, SamplingParams};
