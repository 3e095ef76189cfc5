//! `POST /v1/chat/completions` and `POST /v1/completions`, plain and streamed (SSE).

use std::convert::Infallible;

use axum::Extension;
use axum::extract::State;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use futures::stream::{self, Stream};
use serde_json::{Value, json};
use sov_engine::{Engine, Event, FinishReason, Generation, Prompt, SamplingParams};

use crate::AppState;
use crate::audit::AuditNote;
use crate::error::{ApiError, ApiJson};
use crate::openai::{ChatRequest, CompletionRequest, Usage};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Chat,
    Text,
}

pub async fn chat(
    State(state): State<AppState>,
    Extension(note): Extension<AuditNote>,
    ApiJson(req): ApiJson<ChatRequest>,
) -> Result<Response, ApiError> {
    let engine = state.engine(&req.model, &note)?;
    let params = req.sampling.to_params()?;
    let conversation = req.conversation()?;
    // Rendering and tokenising a long conversation is CPU work: keep it off the async threads.
    let prompt = {
        let engine = engine.clone();
        tokio::task::spawn_blocking(move || engine.chat_prompt(&conversation))
            .await
            .map_err(|e| ApiError::internal(&e.to_string()))??
    };
    let generation = start(engine, prompt, params, req.sampling.stream)?;
    respond(
        note,
        Kind::Chat,
        req.model,
        generation,
        req.sampling.stream,
        req.sampling.include_usage(),
    )
    .await
}

pub async fn text(
    State(state): State<AppState>,
    Extension(note): Extension<AuditNote>,
    ApiJson(req): ApiJson<CompletionRequest>,
) -> Result<Response, ApiError> {
    let engine = state.engine(&req.model, &note)?;
    let params: SamplingParams = req.sampling.to_params()?;
    let mut prompts = req.prompt.clone().into_vec();
    if prompts.len() != 1 {
        return Err(ApiError::invalid(
            "Exactly one prompt string is supported.",
            Some("prompt"),
        ));
    }
    let text = prompts.pop().unwrap_or_default();
    let prompt = {
        let engine = engine.clone();
        tokio::task::spawn_blocking(move || engine.text_prompt(&text))
            .await
            .map_err(|e| ApiError::internal(&e.to_string()))?
    };
    let generation = start(engine, prompt, params, req.sampling.stream)?;
    respond(
        note,
        Kind::Text,
        req.model,
        generation,
        req.sampling.stream,
        req.sampling.include_usage(),
    )
    .await
}

fn start(
    engine: &Engine,
    prompt: Prompt,
    params: SamplingParams,
    stream: bool,
) -> Result<Generation, ApiError> {
    let generation = if stream {
        engine.generate(prompt, params)
    } else {
        engine.generate_whole(prompt, params)
    };
    Ok(generation?)
}

async fn respond(
    note: AuditNote,
    kind: Kind,
    model: String,
    generation: Generation,
    stream: bool,
    include_usage: bool,
) -> Result<Response, ApiError> {
    let meta = Meta {
        kind,
        id: new_id(kind),
        created: now(),
        model,
    };
    if stream {
        let events = sse_stream(meta, generation, include_usage, note);
        return Ok(Sse::new(events)
            .keep_alive(KeepAlive::default())
            .into_response());
    }
    let mut generation = generation;
    let mut text = String::new();
    loop {
        match generation.next().await {
            Some(Event::Text(t)) => text.push_str(&t),
            Some(Event::Done {
                finish_reason,
                completion_tokens,
            }) => {
                note_usage(
                    &note,
                    generation.prompt_tokens(),
                    completion_tokens,
                    finish_reason,
                );
                let usage = Usage::new(generation.prompt_tokens(), completion_tokens);
                return Ok(axum::Json(meta.whole(&text, finish_reason, usage)).into_response());
            }
            Some(Event::Failed(reason)) => return Err(ApiError::internal(&reason)),
            None => return Err(ApiError::internal("the engine stopped during a generation")),
        }
    }
}

struct Meta {
    kind: Kind,
    id: String,
    created: i64,
    model: String,
}

impl Meta {
    fn whole(&self, text: &str, finish: FinishReason, usage: Usage) -> Value {
        match self.kind {
            Kind::Chat => json!({
                "id": self.id, "object": "chat.completion", "created": self.created, "model": self.model,
                "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                             "logprobs": null, "finish_reason": finish.as_str()}],
                "usage": usage,
            }),
            Kind::Text => json!({
                "id": self.id, "object": "text_completion", "created": self.created, "model": self.model,
                "choices": [{"index": 0, "text": text, "logprobs": null, "finish_reason": finish.as_str()}],
                "usage": usage,
            }),
        }
    }

    /// One streamed chunk. `delta` is the new text (or the role, for the first chat chunk).
    fn chunk(&self, delta: Delta<'_>, finish: Option<FinishReason>) -> Value {
        let finish = finish.map(FinishReason::as_str);
        match self.kind {
            Kind::Chat => {
                let delta = match delta {
                    Delta::Role => json!({"role": "assistant", "content": ""}),
                    Delta::Text(t) => json!({"content": t}),
                    Delta::None => json!({}),
                };
                json!({"id": self.id, "object": "chat.completion.chunk", "created": self.created, "model": self.model,
                       "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}]})
            }
            Kind::Text => {
                let text = match delta {
                    Delta::Text(t) => t,
                    Delta::Role | Delta::None => "",
                };
                json!({"id": self.id, "object": "text_completion", "created": self.created, "model": self.model,
                       "choices": [{"index": 0, "text": text, "logprobs": null, "finish_reason": finish}]})
            }
        }
    }

    fn usage_chunk(&self, usage: Usage) -> Value {
        let object = match self.kind {
            Kind::Chat => "chat.completion.chunk",
            Kind::Text => "text_completion",
        };
        json!({"id": self.id, "object": object, "created": self.created, "model": self.model,
               "choices": [], "usage": usage})
    }
}

enum Delta<'a> {
    Role,
    Text(&'a str),
    None,
}

enum Phase {
    Start,
    Running,
    Finished,
}

/// The SSE stream. It owns the generation, so a client that disconnects drops the stream, which
/// drops the generation, which cancels it in the engine.
fn sse_stream(
    meta: Meta,
    generation: Generation,
    include_usage: bool,
    note: AuditNote,
) -> impl Stream<Item = Result<SseEvent, Infallible>> {
    let state = (meta, generation, Phase::Start);
    stream::unfold(state, move |(meta, mut generation, phase)| {
        let note = note.clone();
        async move {
        let mut out: Vec<String> = Vec::new();
        let next_phase = match phase {
            Phase::Finished => return None,
            Phase::Start if meta.kind == Kind::Chat => {
                out.push(meta.chunk(Delta::Role, None).to_string());
                Phase::Running
            }
            Phase::Start | Phase::Running => match generation.next().await {
                Some(Event::Text(t)) => {
                    out.push(meta.chunk(Delta::Text(&t), None).to_string());
                    Phase::Running
                }
                Some(Event::Done { finish_reason, completion_tokens }) => {
                    note_usage(&note, generation.prompt_tokens(), completion_tokens, finish_reason);
                    out.push(meta.chunk(Delta::None, Some(finish_reason)).to_string());
                    if include_usage {
                        let usage = Usage::new(generation.prompt_tokens(), completion_tokens);
                        out.push(meta.usage_chunk(usage).to_string());
                    }
                    out.push("[DONE]".to_owned());
                    Phase::Finished
                }
                Some(Event::Failed(reason)) => {
                    // Logged with its detail; the client gets a generic error event.
                    let _ = ApiError::internal(&reason);
                    note.failed();
                    out.push(json!({"error": {"message": "The server failed during generation; the details are in its log.",
                                              "type": "server_error", "param": null, "code": null}}).to_string());
                    Phase::Finished
                }
                None => Phase::Finished,
            },
        };
        let events: Vec<Result<SseEvent, Infallible>> = out.into_iter().map(|d| Ok(SseEvent::default().data(d))).collect();
        Some((stream::iter(events), (meta, generation, next_phase)))
        }
    })
    .flatten()
}

fn note_usage(
    note: &AuditNote,
    prompt_tokens: usize,
    completion_tokens: usize,
    finish: FinishReason,
) {
    note.attr("prompt_tokens", prompt_tokens);
    note.attr("completion_tokens", completion_tokens);
    note.attr("finish_reason", finish.as_str());
}

fn new_id(kind: Kind) -> String {
    let mut bytes = [0u8; 12];
    // An id only needs to be unique enough to tell responses apart in logs.
    let _ = getrandom::fill(&mut bytes);
    let prefix = match kind {
        Kind::Chat => "chatcmpl-",
        Kind::Text => "cmpl-",
    };
    format!("{prefix}{}", hex::encode(bytes))
}

pub(crate) fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}
