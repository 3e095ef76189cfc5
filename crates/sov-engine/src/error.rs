//! The engine's errors. Each says what failed; the caller decides how to show it.

use std::path::PathBuf;

/// Something the engine could not do.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// llama.cpp's backend could not be initialised.
    #[error("failed to initialise the llama.cpp backend")]
    Backend(#[source] llama_cpp_2::LlamaCppError),
    /// The model file could not be loaded by llama.cpp.
    #[error("failed to load model {path}")]
    Load {
        /// The GGUF file.
        path: PathBuf,
        /// llama.cpp's reason.
        #[source]
        source: llama_cpp_2::LlamaModelLoadError,
    },
    /// A llama.cpp context could not be created (usually: not enough memory for the KV cache).
    #[error("failed to create an inference context ({what})")]
    Context {
        /// Which context.
        what: &'static str,
        /// llama.cpp's reason.
        #[source]
        source: llama_cpp_2::LlamaContextLoadError,
    },
    /// The engine's configuration is not usable.
    #[error("invalid engine configuration: {0}")]
    Config(String),
    /// The model has no chat template, so chat requests cannot be formatted.
    #[error("the model has no chat template; use the completions endpoint with a raw prompt")]
    NoChatTemplate,
    /// The chat template failed to compile or render.
    #[error("failed to render the model's chat template")]
    Template {
        /// minijinja's reason, with the template line.
        #[source]
        source: minijinja::Error,
    },
    /// A sampling parameter is outside its range.
    #[error("invalid parameter `{param}`: {reason}")]
    InvalidParam {
        /// The parameter's API name.
        param: &'static str,
        /// Why it was refused.
        reason: String,
    },
    /// The prompt does not fit in the context window.
    #[error(
        "the prompt is {prompt_tokens} tokens, which does not fit the context window of {context_length} tokens (at least one token must be left for the answer)"
    )]
    ContextExceeded {
        /// Tokens in the prompt.
        prompt_tokens: usize,
        /// Tokens available to one request.
        context_length: u32,
    },
    /// The prompt is empty after tokenisation.
    #[error("the prompt is empty")]
    EmptyPrompt,
    /// The request queue is full.
    #[error("the engine is busy: its queue of {queued} waiting requests is full; retry later")]
    Busy {
        /// The queue's capacity.
        queued: usize,
    },
    /// The engine's worker has stopped (it failed or is shutting down).
    #[error("the inference engine has stopped")]
    Stopped,
    /// llama.cpp failed while decoding.
    #[error("llama.cpp failed to decode a batch: {0}")]
    Decode(String),
    /// The model produced no embedding for an input.
    #[error("the model produced no embedding")]
    NoEmbedding,
}
