//! Sovereign's local inference engine: llama.cpp behind a small, safe interface.
//!
//! Why this crate exists apart from the model store: it is the only crate that links llama.cpp
//! (a C++ build of several minutes), and the only one that talks to it. Everything above it sees
//! [`Engine`], which is `Send + Sync`, cheap to clone, and speaks in strings and tokens counts.
//!
//! How requests are served:
//! - **Generation** runs on one worker thread that owns the llama.cpp context (a context is not
//!   `Send`-safe to share). The worker does continuous batching: every step it puts one token of
//!   each running sequence, plus chunks of waiting prompts, into one batch, decodes it, samples
//!   each sequence, and admits new requests into free slots. A request waits in a bounded queue
//!   when every slot is busy; when the queue is full, [`Engine::generate`] answers
//!   [`EngineError::Busy`] at once.
//! - **Embeddings** run on a second worker with its own context (mean pooling, one sequence at a
//!   time, L2-normalised vectors), so they never wait behind long generations. A request is
//!   bounded (inputs, tokens in all inputs, tokens in one input: [`EngineConfig`]) and refused
//!   at once over a bound ([`EngineError::TooMuchInput`]).
//! - **Embedding models**: an encoder-only model (BERT and its kin:
//!   [`sov_models::is_embedding_architecture`]) loads as an embedding-only engine: no
//!   generation worker and no slots; its inputs go through llama.cpp's `encode`, pooled as the
//!   GGUF says (`{arch}.pooling_type`; mean for all-MiniLM-L6-v2), L2-normalised. Chat and
//!   generation on it answer [`EngineError::EmbeddingOnly`]; an input longer than its context
//!   (512 tokens for MiniLM) is refused, not cut.
//! - **Chat templates**: the GGUF's own, or the one the signed manifest names (chosen at import,
//!   e.g. Gemma's for a Gemma GGUF that has none), checked against the SHA-256 the owner signed.
//! - **Prompt reuse**: a finished sequence keeps its KV cells; a new prompt takes the free slot
//!   holding the longest start of it (or a copy of another slot's cells) and decodes only the
//!   rest, so a specialist's instructions or a conversation's earlier turns are read once. Bounded
//!   by the context's own KV memory; never across models or adapters (see `reuse.rs`).
//! - **Fairness**: one graph computes at a time in the process, and the lock that orders them is
//!   taken per decode: a generation step waits for an embedding input, never for a whole
//!   embedding request.
//! - **Cancellation**: a generation stops at the next step after its [`Generation`] is dropped
//!   (for example when an HTTP client disconnects), and its slot is freed; an embedding request
//!   stops before its next input once the future of [`Engine::embed`] is dropped.
//! - **Chat prompts**: only the chat template's own markup can write control tokens; message
//!   content is tokenised as plain text, and only the roles `system`, `user`, `assistant` (and
//!   `developer`, read as `system`) are accepted, so a message cannot forge a turn.
//! - **Tools in the template**: a template that offers tools itself ([`ChatTemplate::takes_tools`])
//!   is given the request's functions ([`Engine::chat_prompt_with_tools`]); their text is
//!   markup then, so a function whose text holds a control token's text is refused.
//!
//! The crate has no `unsafe` of its own: `llama-cpp-2` wraps the C API, and the workspace forbids
//! `unsafe` here as everywhere.

mod embed;
mod error;
mod llama;
mod prompt;
mod pyjson;
mod reuse;
mod sampler;
mod template;
mod text;
mod worker;

pub use error::EngineError;
pub use llama::{Engine, EngineConfig, Generation, ModelInfo, Prompt};
pub use reuse::REDECODE_TOKENS;
pub use sov_infer::{ChatMessage, SamplingParams};
pub use template::ChatTemplate;
pub use worker::{EngineStats, Event, FinishReason};
