//! The parts of OpenAI's response bodies that have a fixed shape.

use serde::Serialize;

/// Tokens read and written by one request (`usage` in a completion).
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
pub struct Usage {
    /// Tokens of the prompt (all prompts, for a completion of several).
    pub prompt_tokens: usize,
    /// Tokens generated.
    pub completion_tokens: usize,
    /// The two added.
    pub total_tokens: usize,
}

impl Usage {
    /// The usage of `prompt_tokens` read and `completion_tokens` written.
    pub fn new(prompt_tokens: usize, completion_tokens: usize) -> Self {
        Self {
            prompt_tokens,
            completion_tokens,
            total_tokens: prompt_tokens.saturating_add(completion_tokens),
        }
    }
}

/// One entry of `GET /v1/models`.
#[derive(Debug, Clone, Serialize)]
pub struct ModelCard {
    /// The model's name, as requests give it in `model`.
    pub id: String,
    /// Always `"model"`.
    pub object: &'static str,
    /// When the model was imported into the store, in seconds since the Unix epoch.
    pub created: i64,
    /// The node's owner (`owner` in sov.toml).
    pub owned_by: String,
    /// What it answers: `chat` (chat and completions) or `embeddings` (an extension field,
    /// which OpenAI's clients ignore; the console offers only chat models for chat).
    pub sov_serves: &'static str,
}
