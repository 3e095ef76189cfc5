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
    /// llama.cpp would not load a LoRA adapter for this model.
    #[error("failed to load the LoRA adapter {path} for this model: {reason}")]
    Adapter {
        /// The adapter's GGUF file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// A LoRA adapter could not be set on its generation context.
    #[error(
        "failed to apply the LoRA adapter {path} to its generation context (llama.cpp answered {code})"
    )]
    AdapterSet {
        /// The adapter's GGUF file.
        path: PathBuf,
        /// llama.cpp's return code.
        code: i32,
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
    /// The model only embeds (an encoder such as BERT): it has no chat and generates nothing.
    #[error("the model is an embedding model: it computes embeddings only")]
    EmbeddingOnly,
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
    /// The prompt, plus the completion tokens asked for, does not fit in the context window.
    ///
    /// The message is OpenAI's (`context_length_exceeded`), so clients that parse it keep working.
    #[error("{}", context_message(*context_length, *prompt_tokens, *completion_tokens))]
    ContextExceeded {
        /// Tokens in the prompt.
        prompt_tokens: usize,
        /// The `max_tokens` the request asked for; `None` when it asked for none (then the
        /// prompt alone left no room for an answer).
        completion_tokens: Option<u32>,
        /// Tokens available to one request.
        context_length: u32,
    },
    /// A request is over one of the engine's bounds on input (see [`crate::EngineConfig`]);
    /// refused before any work is done. For the HTTP layer: a 400 on the `input` parameter.
    #[error("too much input: {got} {what}, more than the limit of {limit}")]
    TooMuchInput {
        /// Which bound: `"inputs"`, `"tokens in all inputs"` or `"tokens in one input"`.
        what: &'static str,
        /// The bound.
        limit: usize,
        /// What the request had (for token totals: at least this many; counting stops at the
        /// first input over the bound).
        got: usize,
    },
    /// A chat message has a role the engine does not accept (only `system`, `user`,
    /// `assistant`, and `developer` as a synonym of `system`).
    #[error(
        "invalid role {role:?} in message {index}: only system, user, assistant and developer are accepted"
    )]
    InvalidRole {
        /// The message's position in the conversation (from 0).
        index: usize,
        /// The role as sent, cut to its first 64 characters.
        role: String,
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

/// A parameter that [`SamplingParams::validate`](sov_infer::SamplingParams::validate) refused,
/// with its name and reason unchanged (so the message is the same).
impl From<sov_infer::InvalidParam> for EngineError {
    fn from(err: sov_infer::InvalidParam) -> Self {
        Self::InvalidParam {
            param: err.param,
            reason: err.reason,
        }
    }
}

/// OpenAI's wording for a request that does not fit the context window.
fn context_message(context_length: u32, prompt: usize, completion: Option<u32>) -> String {
    match completion {
        Some(completion) => format!(
            "This model's maximum context length is {context_length} tokens. However, you requested {} tokens ({prompt} in the messages, {completion} in the completion). Please reduce the length of the messages or completion.",
            prompt.saturating_add(completion as usize)
        ),
        None => format!(
            "This model's maximum context length is {context_length} tokens. However, your messages resulted in {prompt} tokens, which leaves no room for the completion. Please reduce the length of the messages."
        ),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::EngineError;
    use sov_infer::SamplingParams;

    #[test]
    fn an_invalid_parameter_keeps_its_name_and_message_in_the_engine_error() {
        let bad = SamplingParams {
            top_p: 0.0,
            ..Default::default()
        };
        let err = EngineError::from(bad.validate().unwrap_err());
        assert!(
            matches!(&err, EngineError::InvalidParam { param: "top_p", reason } if reason == "must be greater than 0 and at most 1"),
            "{err:?}"
        );
        assert_eq!(
            err.to_string(),
            "invalid parameter `top_p`: must be greater than 0 and at most 1"
        );
    }
}
