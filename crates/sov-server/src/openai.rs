//! The OpenAI API's request and response bodies, as far as Sovereign serves them.
//!
//! Unknown fields are ignored (clients send optional fields such as `user`); known fields whose
//! values Sovereign cannot honour (`n > 1`, `logprobs`, `tools`, ...) are refused with a 400
//! rather than silently ignored.

use serde::{Deserialize, Serialize};
use sov_engine::{ChatMessage, SamplingParams};

use crate::error::ApiError;

/// A string or a list of strings (`stop`, `input`, `prompt`).
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum OneOrMany {
    /// One string.
    One(String),
    /// Several strings.
    Many(Vec<String>),
}

impl OneOrMany {
    pub fn into_vec(self) -> Vec<String> {
        match self {
            Self::One(s) => vec![s],
            Self::Many(v) => v,
        }
    }
}

/// A message's content: a string, or a list of parts of which only text parts are supported.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Content {
    Text(String),
    Parts(Vec<ContentPart>),
}

#[derive(Debug, Clone, Deserialize)]
pub struct ContentPart {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub text: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Message {
    pub role: String,
    #[serde(default)]
    pub content: Option<Content>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct StreamOptions {
    #[serde(default)]
    pub include_usage: bool,
}

/// Fields shared by chat and text completions.
#[derive(Debug, Clone, Deserialize)]
pub struct Sampling {
    pub temperature: Option<f32>,
    pub top_p: Option<f32>,
    /// Not in OpenAI's API; llama.cpp's servers accept it too.
    pub top_k: Option<i32>,
    /// Not in OpenAI's API; llama.cpp's servers accept it too.
    pub min_p: Option<f32>,
    pub seed: Option<i64>,
    pub max_tokens: Option<u32>,
    pub max_completion_tokens: Option<u32>,
    pub stop: Option<OneOrMany>,
    /// Not in OpenAI's API; llama.cpp's name for the repetition penalty.
    pub repeat_penalty: Option<f32>,
    /// Not in OpenAI's API; llama.cpp's servers accept it too (benchmarks use it).
    #[serde(default)]
    pub ignore_eos: bool,
    #[serde(default)]
    pub stream: bool,
    pub stream_options: Option<StreamOptions>,
    pub n: Option<u32>,
    pub logprobs: Option<serde_json::Value>,
    pub tools: Option<serde_json::Value>,
    pub response_format: Option<serde_json::Value>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ChatRequest {
    pub model: String,
    pub messages: Vec<Message>,
    #[serde(flatten)]
    pub sampling: Sampling,
}

#[derive(Debug, Clone, Deserialize)]
pub struct CompletionRequest {
    pub model: String,
    pub prompt: OneOrMany,
    #[serde(flatten)]
    pub sampling: Sampling,
}

#[derive(Debug, Clone, Deserialize)]
pub struct EmbeddingRequest {
    pub model: String,
    pub input: OneOrMany,
    pub encoding_format: Option<String>,
    pub dimensions: Option<u32>,
}

impl Sampling {
    /// Checks what Sovereign cannot honour and converts the rest into engine parameters.
    pub fn to_params(&self) -> Result<SamplingParams, ApiError> {
        if self.n.is_some_and(|n| n != 1) {
            return Err(ApiError::invalid("Only n = 1 is supported.", Some("n")));
        }
        if self
            .logprobs
            .as_ref()
            .is_some_and(|v| !(v.is_null() || *v == serde_json::json!(false)))
        {
            return Err(ApiError::invalid(
                "logprobs are not supported.",
                Some("logprobs"),
            ));
        }
        if self.tools.as_ref().is_some_and(|v| !v.is_null()) {
            return Err(ApiError::invalid(
                "Tool calls are not supported yet.",
                Some("tools"),
            ));
        }
        if let Some(format) = &self.response_format
            && !(format.is_null() || format.get("type") == Some(&serde_json::json!("text")))
        {
            return Err(ApiError::invalid(
                "Only the text response format is supported.",
                Some("response_format"),
            ));
        }
        if self.stream_options.is_some() && !self.stream {
            return Err(ApiError::invalid(
                "stream_options is only allowed with stream: true.",
                Some("stream_options"),
            ));
        }
        let seed = match self.seed {
            None => None,
            Some(s) => Some(
                u32::try_from(s.rem_euclid(1 << 32))
                    .map_err(|_| ApiError::invalid("seed is out of range", Some("seed")))?,
            ),
        };
        let defaults = SamplingParams::default();
        Ok(SamplingParams {
            temperature: self.temperature.unwrap_or(defaults.temperature),
            top_p: self.top_p.unwrap_or(defaults.top_p),
            top_k: self.top_k.unwrap_or(defaults.top_k),
            min_p: self.min_p.unwrap_or(defaults.min_p),
            seed,
            max_tokens: self.max_completion_tokens.or(self.max_tokens),
            stop: self
                .stop
                .clone()
                .map(OneOrMany::into_vec)
                .unwrap_or_default(),
            repeat_penalty: self.repeat_penalty.unwrap_or(defaults.repeat_penalty),
            ignore_eos: self.ignore_eos,
        })
    }

    pub fn include_usage(&self) -> bool {
        self.stream_options
            .as_ref()
            .is_some_and(|o| o.include_usage)
    }
}

impl ChatRequest {
    /// The conversation as the engine takes it.
    pub fn conversation(&self) -> Result<Vec<ChatMessage>, ApiError> {
        if self.messages.is_empty() {
            return Err(ApiError::invalid(
                "messages must not be empty.",
                Some("messages"),
            ));
        }
        self.messages
            .iter()
            .enumerate()
            .map(|(i, m)| {
                let content = match &m.content {
                    None => String::new(),
                    Some(Content::Text(t)) => t.clone(),
                    Some(Content::Parts(parts)) => {
                        let mut text = String::new();
                        for part in parts {
                            match (part.kind.as_str(), &part.text) {
                                ("text", Some(t)) => text.push_str(t),
                                _ => {
                                    return Err(ApiError::invalid(
                                        format!(
                                            "messages[{i}]: only text content parts are supported."
                                        ),
                                        Some("messages"),
                                    ));
                                }
                            }
                        }
                        text
                    }
                };
                if m.role.is_empty() {
                    return Err(ApiError::invalid(
                        format!("messages[{i}]: role must not be empty."),
                        Some("messages"),
                    ));
                }
                Ok(ChatMessage {
                    role: m.role.clone(),
                    content,
                })
            })
            .collect()
    }
}

#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
pub struct Usage {
    pub prompt_tokens: usize,
    pub completion_tokens: usize,
    pub total_tokens: usize,
}

impl Usage {
    pub fn new(prompt_tokens: usize, completion_tokens: usize) -> Self {
        Self {
            prompt_tokens,
            completion_tokens,
            total_tokens: prompt_tokens + completion_tokens,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct ModelCard {
    pub id: String,
    pub object: &'static str,
    pub created: i64,
    pub owned_by: String,
}
