//! The request bodies of `POST /v1/chat/completions`, `/v1/completions` and `/v1/embeddings`,
//! and the checks that turn them into what a generation or an embedding is asked.

use serde::Deserialize;
use sov_infer::functions::{Choice, Format, Functions, render_call, render_result};
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
    /// An assistant message's calls of the request's functions.
    #[serde(default)]
    pub tool_calls: Option<Vec<crate::functions::WireCall>>,
    /// A tool message: the call it answers.
    #[serde(default)]
    pub tool_call_id: Option<String>,
    /// The speaker's name (accepted, not used).
    #[serde(default)]
    pub name: Option<String>,
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
    /// Functions the model may call (chat only; see [`crate::functions`]).
    pub tools: Option<serde_json::Value>,
    /// `none`, `auto`, `required` or a named function.
    pub tool_choice: Option<serde_json::Value>,
    /// Whether the model may make several calls at once (default true).
    pub parallel_tool_calls: Option<bool>,
    /// `text`, `json_object` or `json_schema` (chat only).
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
            grammar: None,
        })
    }

    /// The functions the request offers (`None` without `tools`), checked.
    pub fn functions(&self) -> Result<Option<Functions>, WireError> {
        crate::functions::functions(
            self.tools.as_ref(),
            self.tool_choice.as_ref(),
            self.parallel_tool_calls,
        )
    }

    /// The answer's format, checked; refused together with functions the model may call.
    pub fn format(&self) -> Result<Format, WireError> {
        let format = crate::functions::format(self.response_format.as_ref())?;
        let calls = self.functions()?.is_some_and(|f| f.choice != Choice::None);
        if calls && format != Format::Text {
            return Err(WireError::new(
                "response_format json_object or json_schema cannot be combined with tools.",
                "response_format",
            ));
        }
        Ok(format)
    }

    /// For `/v1/completions`: refuses the fields only chat has.
    pub fn text_only(&self) -> Result<(), WireError> {
        if self.tools.as_ref().is_some_and(|v| !v.is_null()) {
            return Err(WireError::new(
                "tools are supported by /v1/chat/completions only.",
                "tools",
            ));
        }
        if crate::functions::format(self.response_format.as_ref())? != Format::Text {
            return Err(WireError::new(
                "response_format is supported by /v1/chat/completions only.",
                "response_format",
            ));
        }
        Ok(())
    }

    /// Whether a streamed answer ends with a chunk of usage.
    pub fn include_usage(&self) -> bool {
        self.stream_options
            .as_ref()
            .is_some_and(|o| o.include_usage)
    }
}

impl ChatRequest {
    /// The conversation as the engine takes it: text parts joined, an absent content empty,
    /// an assistant's calls and the tools' results in the generic format (a result becomes a
    /// user turn naming the function and the call). Refuses an empty conversation, a part other
    /// than text, an empty role, arguments that are not JSON, and a tool message answering no
    /// earlier call.
    pub fn conversation(&self) -> Result<Vec<ChatMessage>, WireError> {
        if self.messages.is_empty() {
            return Err(WireError::new("messages must not be empty.", "messages"));
        }
        let mut names: Vec<(String, String)> = Vec::new();
        let mut out = Vec::with_capacity(self.messages.len());
        for (i, m) in self.messages.iter().enumerate() {
            let mut content = text_of(i, m.content.as_ref())?;
            if m.role.is_empty() {
                return Err(WireError::new(
                    format!("messages[{i}]: role must not be empty."),
                    "messages",
                ));
            }
            let bad = |what: String| WireError::new(format!("messages[{i}]: {what}"), "messages");
            if let Some(calls) = &m.tool_calls {
                if m.role != "assistant" {
                    return Err(bad("only an assistant message may carry tool_calls.".into()));
                }
                for (j, c) in calls.iter().enumerate() {
                    if c.kind.as_deref().is_some_and(|k| k != "function") {
                        return Err(bad(format!("tool_calls[{j}].type must be \"function\".")));
                    }
                    let arguments: serde_json::Value = serde_json::from_str(&c.function.arguments)
                        .map_err(|e| {
                            bad(format!(
                                "tool_calls[{j}].function.arguments is not JSON: {e}"
                            ))
                        })?;
                    if !content.is_empty() {
                        content.push('\n');
                    }
                    content.push_str(&render_call(&c.function.name, &arguments));
                    if let Some(id) = &c.id {
                        names.push((id.clone(), c.function.name.clone()));
                    }
                }
            }
            let role = if m.role == "tool" {
                let id = m
                    .tool_call_id
                    .as_deref()
                    .ok_or_else(|| bad("a tool message needs tool_call_id.".into()))?;
                let name = names
                    .iter()
                    .rev()
                    .find(|(c, _)| c == id)
                    .map(|(_, n)| n.as_str())
                    .ok_or_else(|| bad(format!("tool_call_id `{id}` answers no earlier call.")))?;
                content = render_result(name, id, &content);
                "user".to_owned()
            } else {
                m.role.clone()
            };
            out.push(ChatMessage { role, content });
        }
        Ok(out)
    }
}

/// A message's content as text: parts joined, absent content empty; refuses a part other
/// than text.
fn text_of(i: usize, content: Option<&Content>) -> Result<String, WireError> {
    Ok(match content {
        None => String::new(),
        Some(Content::Text(t)) => t.clone(),
        Some(Content::Parts(parts)) => {
            let mut text = String::new();
            for part in parts {
                match (part.kind.as_str(), &part.text) {
                    ("text", Some(t)) => text.push_str(t),
                    _ => {
                        return Err(WireError::new(
                            format!("messages[{i}]: only text content parts are supported."),
                            "messages",
                        ));
                    }
                }
            }
            text
        }
    })
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
