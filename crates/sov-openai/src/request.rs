//! The request bodies of `POST /v1/chat/completions`, `/v1/completions` and `/v1/embeddings`,
//! and the checks that turn them into what a generation or an embedding is asked.

use serde::Deserialize;
use sov_infer::{ChatMessage, SamplingParams};

use crate::WireError;

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
    /// The strings, one or many, in order.
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
    /// Plain text.
    Text(String),
    /// Typed parts (`{"type": "text", "text": ...}`; images and audio are refused).
    Parts(Vec<ContentPart>),
}

/// One part of a message's content.
#[derive(Debug, Clone, Deserialize)]
pub struct ContentPart {
    /// `text`, or another kind (refused).
    #[serde(rename = "type")]
    pub kind: String,
    /// The text of a text part.
    #[serde(default)]
    pub text: Option<String>,
}

/// One message of a chat request.
#[derive(Debug, Clone, Deserialize)]
pub struct Message {
    /// Who speaks; the engine decides which roles it accepts.
    pub role: String,
    /// What is said; absent reads as empty.
    #[serde(default)]
    pub content: Option<Content>,
}

/// `stream_options`: only with `stream: true`.
#[derive(Debug, Clone, Deserialize)]
pub struct StreamOptions {
    /// Send a last chunk with the request's [`Usage`](crate::Usage).
    #[serde(default)]
    pub include_usage: bool,
}

/// Fields shared by chat and text completions.
#[derive(Debug, Clone, Deserialize)]
pub struct Sampling {
    /// See [`SamplingParams::temperature`].
    pub temperature: Option<f32>,
    /// See [`SamplingParams::top_p`].
    pub top_p: Option<f32>,
    /// Not in OpenAI's API; llama.cpp's servers accept it too.
    pub top_k: Option<i32>,
    /// Not in OpenAI's API; llama.cpp's servers accept it too.
    pub min_p: Option<f32>,
    /// Any integer; taken modulo 2^32.
    pub seed: Option<i64>,
    /// OpenAI's older name for `max_completion_tokens`.
    pub max_tokens: Option<u32>,
    /// The most tokens to generate; wins over `max_tokens` when both are given.
    pub max_completion_tokens: Option<u32>,
    /// One stop sequence or several.
    pub stop: Option<OneOrMany>,
    /// Not in OpenAI's API; llama.cpp's name for the repetition penalty.
    pub repeat_penalty: Option<f32>,
    /// Not in OpenAI's API; llama.cpp's servers accept it too (benchmarks use it).
    #[serde(default)]
    pub ignore_eos: bool,
    /// Answer as server-sent events.
    #[serde(default)]
    pub stream: bool,
    /// Options of a streamed answer.
    pub stream_options: Option<StreamOptions>,
    /// How many answers; only 1.
    pub n: Option<u32>,
    /// Refused unless absent, `null` or `false`.
    pub logprobs: Option<serde_json::Value>,
    /// Refused unless absent or `null`.
    pub tools: Option<serde_json::Value>,
    /// Refused unless absent, `null` or `{"type": "text"}`.
    pub response_format: Option<serde_json::Value>,
}

/// The body of `POST /v1/chat/completions`.
#[derive(Debug, Clone, Deserialize)]
pub struct ChatRequest {
    /// The served model's name.
    pub model: String,
    /// The conversation so far.
    pub messages: Vec<Message>,
    /// How to answer.
    #[serde(flatten)]
    pub sampling: Sampling,
}

/// The body of `POST /v1/completions`.
#[derive(Debug, Clone, Deserialize)]
pub struct CompletionRequest {
    /// The served model's name.
    pub model: String,
    /// The raw prompt, or several (one answer each).
    pub prompt: OneOrMany,
    /// How to answer.
    #[serde(flatten)]
    pub sampling: Sampling,
}

/// The body of `POST /v1/embeddings`.
#[derive(Debug, Clone, Deserialize)]
pub struct EmbeddingRequest {
    /// The served model's name.
    pub model: String,
    /// The text, or several (one vector each).
    pub input: OneOrMany,
    /// `float` (the default) or `base64`; see [`EmbeddingRequest::encoding`].
    pub encoding_format: Option<String>,
    /// The width of the vectors (the kernel checks it against the model).
    pub dimensions: Option<u32>,
}

/// How embedding vectors are written in the answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// JSON numbers.
    Float,
    /// The little-endian `f32`s in base64.
    Base64,
}

impl Sampling {
    /// Checks what Sovereign cannot honour and converts the rest into sampling parameters, the
    /// defaults of [`SamplingParams`] for what is not given. The ranges are not checked here
    /// ([`SamplingParams::validate`] does, before a request is queued).
    pub fn to_params(&self) -> Result<SamplingParams, WireError> {
        if self.n.is_some_and(|n| n != 1) {
            return Err(WireError::new("Only n = 1 is supported.", "n"));
        }
        if self
            .logprobs
            .as_ref()
            .is_some_and(|v| !(v.is_null() || *v == serde_json::json!(false)))
        {
            return Err(WireError::new("logprobs are not supported.", "logprobs"));
        }
        if self.tools.as_ref().is_some_and(|v| !v.is_null()) {
            return Err(WireError::new("Tool calls are not supported yet.", "tools"));
        }
        if let Some(format) = &self.response_format
            && !(format.is_null() || format.get("type") == Some(&serde_json::json!("text")))
        {
            return Err(WireError::new(
                "Only the text response format is supported.",
                "response_format",
            ));
        }
        if self.stream_options.is_some() && !self.stream {
            return Err(WireError::new(
                "stream_options is only allowed with stream: true.",
                "stream_options",
            ));
        }
        let seed = match self.seed {
            None => None,
            Some(s) => Some(
                u32::try_from(s.rem_euclid(1 << 32))
                    .map_err(|_| WireError::new("seed is out of range", "seed"))?,
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

    /// Whether a streamed answer ends with a chunk of usage.
    pub fn include_usage(&self) -> bool {
        self.stream_options
            .as_ref()
            .is_some_and(|o| o.include_usage)
    }
}

impl ChatRequest {
    /// The conversation as the engine takes it: text parts joined, an absent content empty.
    /// Refuses an empty conversation, a part other than text, and an empty role.
    pub fn conversation(&self) -> Result<Vec<ChatMessage>, WireError> {
        if self.messages.is_empty() {
            return Err(WireError::new("messages must not be empty.", "messages"));
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
                                    return Err(WireError::new(
                                        format!(
                                            "messages[{i}]: only text content parts are supported."
                                        ),
                                        "messages",
                                    ));
                                }
                            }
                        }
                        text
                    }
                };
                if m.role.is_empty() {
                    return Err(WireError::new(
                        format!("messages[{i}]: role must not be empty."),
                        "messages",
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

impl EmbeddingRequest {
    /// How the vectors are to be written: `float` when absent.
    pub fn encoding(&self) -> Result<Encoding, WireError> {
        match self.encoding_format.as_deref() {
            None | Some("float") => Ok(Encoding::Float),
            Some("base64") => Ok(Encoding::Base64),
            Some(other) => Err(WireError::new(
                format!("encoding_format must be \"float\" or \"base64\", not {other:?}."),
                "encoding_format",
            )),
        }
    }
}
