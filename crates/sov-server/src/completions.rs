//! `POST /v1/chat/completions` and `POST /v1/completions`, plain and streamed (SSE).

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use futures::future::BoxFuture;
use serde_json::{Value, json};
use sov_engine::{Event, FinishReason};
use sov_infer::functions::parse_calls;
use sov_kernel::{ChatCall, CompleteCall, Exchange, Reply};
use sov_openai::{ChatRequest, CompletionRequest, Usage};

use crate::AppState;
use crate::error::{ApiError, ApiJson};
use crate::record::Door;
use crate::sse::{self, Next};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Chat,
    Text,
}

pub async fn chat(
    State(state): State<AppState>,
    door: Door,
    ApiJson(req): ApiJson<ChatRequest>,
) -> Result<Response, ApiError> {
    // What the body asks is checked before the exchange is taken: a refusal here is ended by
    // the recording layer, which still holds it.
    let call = ChatCall {
        model: req.model.clone(),
        // (In this order: a bad sampling field is named before a bad message.)
        params: req.sampling.to_params()?,
        messages: req.conversation()?,
        stream: req.sampling.stream,
        fit: false,
        functions: req.sampling.functions()?,
        format: req.sampling.format()?,
    };
    let calls = call
        .functions
        .as_ref()
        .is_some_and(|f| f.choice != sov_infer::functions::Choice::None);
    let mut ex = door.take()?;
    let reply = state.kernel().chat(&mut ex, call).await;
    let mut meta = Meta::new(Kind::Chat, req.model);
    meta.calls = calls;
    respond(
        door,
        ex,
        reply,
        meta,
        req.sampling.stream,
        req.sampling.include_usage(),
    )
    .await
}

pub async fn text(
    State(state): State<AppState>,
    door: Door,
    ApiJson(req): ApiJson<CompletionRequest>,
) -> Result<Response, ApiError> {
    req.sampling.text_only()?;
    let call = CompleteCall {
        model: req.model.clone(),
        prompts: req.prompt.clone().into_vec(),
        params: req.sampling.to_params()?,
        stream: req.sampling.stream,
    };
    let mut ex = door.take()?;
    let reply = state.kernel().complete(&mut ex, call).await;
    let meta = Meta::new(Kind::Text, req.model);
    respond(
        door,
        ex,
        reply,
        meta,
        req.sampling.stream,
        req.sampling.include_usage(),
    )
    .await
}

/// Answers a generation: streamed (the stream's body owns the exchange and records its end) or
/// whole (the exchange goes back to the recording layer with the answer).
async fn respond(
    door: Door,
    mut ex: Exchange,
    reply: Result<Reply, sov_kernel::KernelError>,
    meta: Meta,
    stream: bool,
    include_usage: bool,
) -> Result<Response, ApiError> {
    let mut reply = match reply {
        Ok(r) => r,
        Err(e) => {
            door.put(ex);
            return Err(e.into());
        }
    };
    let mut meta = meta;
    meta.ground(&reply);
    if stream {
        // Recorded before the first byte; dropping the reply on failure stops the generation.
        let started = ex.start_stream(Some(200)).await.map_err(|e| {
            tracing::error!(detail = %e, "the audit record could not be written; the request is refused");
            ApiError::audit_unavailable()
        })?;
        let producer = Streamed {
            held: meta.calls.then(Held::default),
            meta,
            reply,
            include_usage,
            phase: Phase::Start,
        };
        return Ok(sse::respond(ex, &started, producer));
    }
    let mut text = String::new();
    let result = loop {
        match reply.next(&mut ex).await {
            Some(Event::Text(t)) => text.push_str(&t),
            Some(Event::Done {
                finish_reason,
                completion_tokens,
            }) => {
                let usage = Usage::new(reply.prompt_tokens(), completion_tokens);
                break Ok(axum::Json(meta.whole(&text, finish_reason, usage)).into_response());
            }
            Some(Event::Failed(reason)) => break Err(ApiError::internal(&reason)),
            None => break Err(ApiError::internal("the engine stopped during a generation")),
        }
    };
    door.put(ex);
    result
}

struct Meta {
    kind: Kind,
    id: String,
    created: i64,
    model: String,
    /// Sovereign's additions for a specialist's or the router's answer: `citations` and
    /// `sov_route`, at the top level of the response (and of a stream's first chunk).
    extra: serde_json::Map<String, Value>,
    /// Functions were offered: an answer that is nothing but calls becomes `tool_calls`.
    calls: bool,
}

/// The tool calls a specialist made, as the response shows them: the arguments as the exact
/// JSON text the receipt commits to, and the result or the error.
fn tool_calls(steps: &[sov_kernel::ToolStep]) -> Value {
    let calls = steps
        .iter()
        .map(|s| {
            let mut call = json!({
                "tool": s.tool,
                "version": s.version,
                "arguments": s.arguments.to_string(),
            });
            match &s.result {
                Ok(v) => call["result"] = v.clone(),
                Err(e) => call["error"] = Value::String(e.clone()),
            }
            call
        })
        .collect();
    Value::Array(calls)
}

impl Meta {
    fn new(kind: Kind, model: String) -> Self {
        Self {
            kind,
            id: new_id(kind),
            created: now(),
            model,
            extra: serde_json::Map::new(),
            calls: false,
        }
    }

    /// Names the specialist or model that answered and adds the citations and the route.
    fn ground(&mut self, reply: &Reply) {
        if let Some(g) = reply.grounding() {
            self.model = g.specialist.clone();
            let citations: Vec<Value> = g
                .citations
                .iter()
                .map(|c| {
                    json!({"index": c.index, "corpus": c.corpus, "document": c.document,
                           "heading": c.heading, "text": c.text,
                           "chunk_sha256": c.chunk_sha256, "score": c.score})
                })
                .collect();
            self.extra
                .insert("citations".into(), Value::Array(citations));
            if !g.tool_steps.is_empty() {
                self.extra
                    .insert("sov_tool_calls".into(), tool_calls(&g.tool_steps));
            }
        }
        if let Some(route) = reply.route() {
            if let Some(choice) = &route.choice {
                self.model = choice.clone();
            }
            let candidates: Vec<Value> = route
                .candidates
                .iter()
                .map(|(name, score)| json!({"specialist": name, "score": score}))
                .collect();
            self.extra.insert(
                "sov_route".into(),
                json!({"choice": route.choice, "candidates": candidates, "reason": route.reason}),
            );
        }
    }

    /// `value` with the additions at its top level.
    fn with_extra(&self, mut value: Value) -> Value {
        if let Value::Object(map) = &mut value {
            for (k, v) in &self.extra {
                map.insert(k.clone(), v.clone());
            }
        }
        value
    }

    fn whole(&self, text: &str, finish: FinishReason, usage: Usage) -> Value {
        let cut = finish == FinishReason::Length;
        let calls = if self.calls {
            parse_calls(text, cut)
        } else {
            None
        };
        let value = match (self.kind, calls) {
            (Kind::Chat, Some(calls)) => json!({
                "id": self.id, "object": "chat.completion", "created": self.created, "model": self.model,
                "choices": [{"index": 0, "message": {"role": "assistant", "content": null,
                             "tool_calls": calls.iter().map(|c| json!({"id": call_id(), "type": "function",
                                 "function": {"name": c.name, "arguments": c.arguments}})).collect::<Vec<_>>()},
                             "logprobs": null, "finish_reason": "tool_calls"}],
                "usage": usage,
            }),
            (Kind::Chat, None) => json!({
                "id": self.id, "object": "chat.completion", "created": self.created, "model": self.model,
                "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                             "logprobs": null, "finish_reason": finish.as_str()}],
                "usage": usage,
            }),
            (Kind::Text, _) => json!({
                "id": self.id, "object": "text_completion", "created": self.created, "model": self.model,
                "choices": [{"index": 0, "text": text, "logprobs": null, "finish_reason": finish.as_str()}],
                "usage": usage,
            }),
        };
        self.with_extra(value)
    }

    /// One streamed chunk. `delta` is the new text (or the role, for the first chat chunk).
    fn chunk(&self, delta: Delta<'_>, finish: Option<FinishReason>) -> Value {
        self.chunk_as(delta, finish.map(FinishReason::as_str))
    }

    fn chunk_as(&self, delta: Delta<'_>, finish: Option<&str>) -> Value {
        match self.kind {
            Kind::Chat => {
                let first = matches!(delta, Delta::Role);
                let delta = match delta {
                    Delta::Role => json!({"role": "assistant", "content": ""}),
                    Delta::Text(t) => json!({"content": t}),
                    Delta::Call(d) => json!({"tool_calls": [d]}),
                    Delta::None => json!({}),
                };
                let chunk = json!({"id": self.id, "object": "chat.completion.chunk", "created": self.created, "model": self.model,
                       "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}]});
                if first { self.with_extra(chunk) } else { chunk }
            }
            Kind::Text => {
                let text = match delta {
                    Delta::Text(t) => t,
                    Delta::Role | Delta::Call(_) | Delta::None => "",
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
    /// One piece of a call, as OpenAI streams it: `{"index", "id", "type", "function": {"name",
    /// "arguments": ""}}` first, then `{"index", "function": {"arguments"}}`.
    Call(Value),
    None,
}

/// A streamed answer to a request that offered functions, held until it is known to be text
/// (its first character is not `<`: then it streams as usual) or calls (then it is held to the
/// end, parsed, and sent as tool-call deltas; calls that do not parse, cut by `max_tokens`, go
/// out as text).
#[derive(Default)]
struct Held {
    text: String,
    /// `Some(true)`: calls; `Some(false)`: text.
    calls: Option<bool>,
}

/// A new tool call id.
fn call_id() -> String {
    let mut bytes = [0u8; 12];
    let _ = getrandom::fill(&mut bytes);
    format!("call_{}", hex::encode(bytes))
}

enum Phase {
    Start,
    Running,
    Finished,
}

/// The steps of a streamed completion.
struct Streamed {
    meta: Meta,
    reply: Reply,
    include_usage: bool,
    phase: Phase,
    held: Option<Held>,
}

impl Streamed {
    /// The events for new text `t`: at once, or held (see [`Held`]).
    fn text(&mut self, t: &str) -> Vec<String> {
        let Some(held) = &mut self.held else {
            return vec![self.meta.chunk(Delta::Text(t), None).to_string()];
        };
        if held.calls == Some(false) {
            return vec![self.meta.chunk(Delta::Text(t), None).to_string()];
        }
        held.text.push_str(t);
        if held.calls.is_none() {
            match held.text.trim_start().chars().next() {
                None => return Vec::new(),
                Some('<') => held.calls = Some(true),
                Some(_) => {
                    held.calls = Some(false);
                    let text = std::mem::take(&mut held.text);
                    return vec![self.meta.chunk(Delta::Text(&text), None).to_string()];
                }
            }
        }
        Vec::new()
    }

    /// The events that end a stream whose engine said `finish`.
    fn end(&mut self, finish: FinishReason) -> Vec<String> {
        let held = self.held.take().map(|h| h.text).unwrap_or_default();
        if held.is_empty() {
            return vec![self.meta.chunk(Delta::None, Some(finish)).to_string()];
        }
        let Some(calls) = parse_calls(&held, finish == FinishReason::Length) else {
            return vec![
                self.meta.chunk(Delta::Text(&held), None).to_string(),
                self.meta.chunk(Delta::None, Some(finish)).to_string(),
            ];
        };
        let mut out = Vec::new();
        for (index, c) in calls.iter().enumerate() {
            let head = json!({"index": index, "id": call_id(), "type": "function",
                              "function": {"name": c.name, "arguments": ""}});
            let args = json!({"index": index, "function": {"arguments": c.arguments}});
            out.push(self.meta.chunk(Delta::Call(head), None).to_string());
            out.push(self.meta.chunk(Delta::Call(args), None).to_string());
        }
        out.push(
            self.meta
                .chunk_as(Delta::None, Some("tool_calls"))
                .to_string(),
        );
        out
    }
}

impl sse::Step for Streamed {
    fn step<'a>(&'a mut self, ex: &'a mut Exchange) -> BoxFuture<'a, Next> {
        Box::pin(async move {
            match self.phase {
                Phase::Finished => Next::Last(Vec::new()),
                Phase::Start if self.meta.kind == Kind::Chat => {
                    self.phase = Phase::Running;
                    Next::Events(vec![self.meta.chunk(Delta::Role, None).to_string()])
                }
                Phase::Start | Phase::Running => loop {
                    let next = match self.reply.next(ex).await {
                        Some(Event::Text(t)) => {
                            self.phase = Phase::Running;
                            let events = self.text(&t);
                            // Held (an answer that may be calls): nothing to send yet.
                            if events.is_empty() {
                                continue;
                            }
                            Next::Events(events)
                        }
                        Some(Event::Done {
                            finish_reason,
                            completion_tokens,
                        }) => {
                            self.phase = Phase::Finished;
                            let mut out = self.end(finish_reason);
                            if self.include_usage {
                                let usage =
                                    Usage::new(self.reply.prompt_tokens(), completion_tokens);
                                out.push(self.meta.usage_chunk(usage).to_string());
                            }
                            out.push("[DONE]".to_owned());
                            Next::Last(out)
                        }
                        Some(Event::Failed(reason)) => {
                            // Logged with its detail; the client gets a generic error event.
                            let _ = ApiError::internal(&reason);
                            self.phase = Phase::Finished;
                            Next::Last(vec![json!({"error": {"message": "The server failed during generation; the details are in its log.",
                            "type": "server_error", "param": null, "code": null}}).to_string()])
                        }
                        None => {
                            self.phase = Phase::Finished;
                            Next::Last(Vec::new())
                        }
                    };
                    break next;
                },
            }
        })
    }
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
