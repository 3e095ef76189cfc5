//! The inference use cases (chat, complete, embed) and [`Backend`], the seam in front of an
//! engine: the local llama.cpp engine implements it now; specialists and upstream engines sit
//! behind it later. Each use case authorises `infer` on the model first (so a refused caller
//! learns nothing about which models exist), then runs the backend with the model the
//! [`Permit`] names, noting the facts its entry carries (model digest, tokens, finish reason).

use std::sync::Arc;

use futures::future::BoxFuture;
use serde_json::Value;
use sov_engine::{
    ChatMessage, Engine, EngineError, EngineStats, Event, Generation, Prompt, SamplingParams,
};
use sov_infer::functions::{Format, Functions};
use sov_policy::{Action, Permit, Resource};

use crate::exchange::{End, Exchange, Refusal, Unrecorded};
use crate::ground;
use crate::specialist::{AUTO, Grounding, Route};
use crate::{Kernel, ServedModel};

/// Embeddings under way: the vectors of the inputs, in order, and the tokens they took.
pub type Embedding<'a> = BoxFuture<'a, Result<(Vec<Vec<f32>>, usize), EngineError>>;

/// What a backend (an engine with one model loaded) offers the kernel.
pub trait Backend: Send + Sync + std::fmt::Debug {
    /// The context window, in tokens.
    fn context_length(&self) -> usize;
    /// The width of the model's embeddings.
    fn embedding_length(&self) -> usize;
    /// Whether the model only embeds (no chat, no completions).
    fn embedding_only(&self) -> bool;
    /// Renders and tokenises a conversation with the model's chat template; `tools` (OpenAI's
    /// shape) go to a template that takes them ([`Backend::takes_tools`]).
    fn chat_prompt(
        &self,
        messages: &[ChatMessage],
        tools: Option<&[Value]>,
    ) -> Result<Prompt, EngineError>;
    /// Whether the model's chat template offers tools itself.
    fn takes_tools(&self) -> bool;
    /// Tokenises a plain text prompt.
    fn text_prompt(&self, text: &str) -> Prompt;
    /// Starts a generation; `whole`: the answer is wanted all at once (not streamed).
    fn generate(
        &self,
        prompt: Prompt,
        params: SamplingParams,
        whole: bool,
    ) -> Result<Generation, EngineError>;
    /// Pooled, normalised embeddings of `inputs`, and the tokens they took.
    fn embed<'a>(&'a self, inputs: &'a [String]) -> Embedding<'a>;
    /// Generations running and ended so far (for the metrics).
    fn stats(&self) -> EngineStats;
}

impl Backend for Engine {
    fn context_length(&self) -> usize {
        self.info().context_length as usize
    }
    fn embedding_length(&self) -> usize {
        self.info().embedding_length as usize
    }
    fn embedding_only(&self) -> bool {
        self.info().embedding_only
    }
    fn chat_prompt(
        &self,
        messages: &[ChatMessage],
        tools: Option<&[Value]>,
    ) -> Result<Prompt, EngineError> {
        match tools {
            Some(tools) => self.chat_prompt_with_tools(messages, tools),
            None => Engine::chat_prompt(self, messages),
        }
    }
    fn takes_tools(&self) -> bool {
        Engine::takes_tools(self)
    }
    fn text_prompt(&self, text: &str) -> Prompt {
        Engine::text_prompt(self, text)
    }
    fn generate(
        &self,
        prompt: Prompt,
        params: SamplingParams,
        whole: bool,
    ) -> Result<Generation, EngineError> {
        if whole {
            self.generate_whole(prompt, params)
        } else {
            Engine::generate(self, prompt, params)
        }
    }
    fn embed<'a>(&'a self, inputs: &'a [String]) -> Embedding<'a> {
        Box::pin(Engine::embed(self, inputs))
    }
    fn stats(&self) -> EngineStats {
        Engine::stats(self)
    }
}

/// Why a use case did not answer.
#[derive(Debug, thiserror::Error)]
pub enum KernelError {
    /// The policies do not allow it.
    #[error("permission denied: {0} on {1}")]
    Forbidden(Action, Resource),
    /// Allowed, but no such model is served.
    #[error("the model `{0}` does not exist")]
    ModelNotFound(String),
    /// Allowed, but what was named (a corpus) does not exist.
    #[error("{0}")]
    NotFound(String),
    /// `model: "auto"` found no specialist for the question, and no general model is set.
    #[error("no specialist fits this request ({0})")]
    NoSpecialistFits(String),
    /// The request cannot be served as asked.
    #[error("{message}")]
    Invalid {
        /// What is wrong, for the caller.
        message: String,
        /// The parameter at fault.
        param: Option<&'static str>,
    },
    /// Chat or a completion asked of a model that only embeds.
    #[error("model {model} is an embedding model: it serves /v1/embeddings only")]
    EmbeddingOnly {
        /// The model's name, as the request gave it.
        model: String,
    },
    /// The engine refused or failed.
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// The record could not be written.
    #[error(transparent)]
    Unrecorded(#[from] Unrecorded),
    /// The identity directory refused or failed.
    #[error(transparent)]
    Store(#[from] sov_policy::StoreError),
    /// The policy set did not load (the old one stays in force).
    #[error(transparent)]
    Policy(#[from] sov_policy::PolicyError),
    /// A bug or a lost worker; the detail is for the node's log.
    #[error("{0}")]
    Internal(String),
}

impl KernelError {
    fn invalid(message: impl Into<String>, param: &'static str) -> Self {
        Self::Invalid {
            message: message.into(),
            param: Some(param),
        }
    }
}

/// How a door with no error vocabulary of its own ends an exchange that failed with `e`.
pub fn end_of(e: &KernelError) -> End {
    let refusal = |kind: &str, code: Option<&str>, param: Option<&str>| Refusal {
        kind: kind.to_owned(),
        code: code.map(str::to_owned),
        param: param.map(str::to_owned),
    };
    match e {
        KernelError::Forbidden(..) => {
            End::Refused(refusal("permission_error", Some("permission_denied"), None))
        }
        KernelError::ModelNotFound(_) => End::Refused(refusal(
            "invalid_request_error",
            Some("model_not_found"),
            Some("model"),
        )),
        KernelError::NotFound(_) => {
            End::Refused(refusal("invalid_request_error", Some("not_found"), None))
        }
        KernelError::NoSpecialistFits(_) => End::Refused(refusal(
            "invalid_request_error",
            Some("no_specialist_fits"),
            Some("model"),
        )),
        KernelError::Invalid { param, .. } => {
            End::Refused(refusal("invalid_request_error", None, *param))
        }
        KernelError::EmbeddingOnly { .. } | KernelError::Engine(EngineError::EmbeddingOnly) => {
            End::Refused(refusal("invalid_request_error", None, Some("model")))
        }
        KernelError::Engine(EngineError::ContextExceeded { .. }) => End::Refused(refusal(
            "invalid_request_error",
            Some("context_length_exceeded"),
            Some("messages"),
        )),
        KernelError::Store(_) | KernelError::Policy(_) => {
            End::Refused(refusal("invalid_request_error", None, None))
        }
        KernelError::Engine(_) | KernelError::Internal(_) => {
            End::Failed(refusal("server_error", None, None))
        }
        KernelError::Unrecorded(_) => {
            End::Refused(refusal("server_error", Some("audit_unavailable"), None))
        }
    }
}

/// A chat completion to run.
#[derive(Debug, Clone)]
pub struct ChatCall {
    /// The model's name.
    pub model: String,
    /// The conversation.
    pub messages: Vec<ChatMessage>,
    /// Sampling.
    pub params: SamplingParams,
    /// Streamed (token by token) rather than whole.
    pub stream: bool,
    /// Near the end of the window, lower `max_tokens` to the room left instead of refusing
    /// (an interactive chat's choice; an API refuses with `context_length_exceeded`).
    pub fit: bool,
    /// Functions the model may call (OpenAI `tools`), in the generic format.
    pub functions: Option<Functions>,
    /// The shape the answer must take (OpenAI `response_format`).
    pub format: Format,
}

/// A text completion to run.
#[derive(Debug, Clone)]
pub struct CompleteCall {
    /// The model's name.
    pub model: String,
    /// The prompts (exactly one is supported).
    pub prompts: Vec<String>,
    /// Sampling.
    pub params: SamplingParams,
    /// Streamed rather than whole.
    pub stream: bool,
}

/// Embeddings to compute.
#[derive(Debug, Clone)]
pub struct EmbedCall {
    /// The model's name.
    pub model: String,
    /// The texts.
    pub inputs: Vec<String>,
    /// The width asked for, if any (only the model's own is supported).
    pub dimensions: Option<usize>,
}

/// Computed embeddings.
#[derive(Debug, Clone)]
pub struct Embeddings {
    /// One vector per input, in order.
    pub vectors: Vec<Vec<f32>>,
    /// Tokens in all inputs.
    pub tokens: usize,
}

/// A generation under way. Dropping it cancels it in the engine.
#[derive(Debug)]
pub struct Reply {
    generation: Generation,
    /// The generation's end (done or failed) was seen: what follows is the channel closing.
    ended: bool,
    /// A specialist's answer: its citations, and the evidence quoted after the model's words.
    grounding: Option<Arc<Grounding>>,
    /// The router's decision, when `auto` chose a general model.
    route: Option<Route>,
    /// The model's words so far (kept only for a grounded answer).
    text: String,
    /// The generation's end, held back while the quoted evidence goes out first.
    held: Option<Event>,
}

impl Reply {
    pub(crate) fn new(generation: Generation) -> Self {
        Self {
            generation,
            ended: false,
            grounding: None,
            route: None,
            text: String::new(),
            held: None,
        }
    }

    /// Makes this the answer of a specialist.
    pub(crate) fn ground(&mut self, grounding: Arc<Grounding>) {
        self.grounding = Some(grounding);
    }

    /// Notes the router's decision for a general model it chose.
    pub(crate) fn routed(&mut self, route: Route) {
        self.route = Some(route);
    }

    /// A specialist's answer: who answered, its citations and the router's decision.
    pub fn grounding(&self) -> Option<&Grounding> {
        self.grounding.as_deref()
    }

    /// The router's decision, for any answer to `auto`.
    pub fn route(&self) -> Option<&Route> {
        self.grounding
            .as_ref()
            .and_then(|g| g.route.as_ref())
            .or(self.route.as_ref())
    }

    /// Tokens in the prompt.
    pub fn prompt_tokens(&self) -> usize {
        self.generation.prompt_tokens()
    }

    /// The next event; the end's facts (tokens, finish reason, failure) go into `ex`. After
    /// the end (`Done` or `Failed`), `None` says only that the generation is over.
    pub async fn next(&mut self, ex: &mut Exchange) -> Option<Event> {
        if let Some(done) = self.held.take() {
            return Some(done);
        }
        let event = self.generation.next().await;
        if let Some(g) = &self.grounding
            && !self.ended
        {
            match &event {
                Some(Event::Text(t)) => self.text.push_str(t),
                Some(Event::Done { .. }) => {
                    let tail = ground::tail(&self.text, &g.grounded);
                    if !tail.is_empty() {
                        self.ended = true;
                        self.note_end(event.as_ref(), ex);
                        self.held = event;
                        return Some(Event::Text(tail));
                    }
                }
                _ => {}
            }
        }
        if self.ended {
            return event;
        }
        self.ended = !matches!(event, Some(Event::Text(_)));
        self.note_end(event.as_ref(), ex);
        event
    }

    /// Notes the end's facts (tokens, finish reason, failure) in the exchange.
    fn note_end(&self, event: Option<&Event>, ex: &mut Exchange) {
        match event {
            Some(Event::Done {
                finish_reason,
                completion_tokens,
            }) => {
                ex.attr("prompt_tokens", self.generation.prompt_tokens());
                ex.attr("completion_tokens", completion_tokens);
                ex.attr("finish_reason", finish_reason.as_str());
            }
            Some(Event::Failed(_)) | None => ex.set_failed(),
            Some(Event::Text(_)) => {}
        }
    }
}

impl Kernel {
    /// A chat completion: `model: "auto"` goes to the router, a specialist's name to the
    /// specialist ([`crate::specialist`]), any other name to that model.
    pub async fn chat(&self, ex: &mut Exchange, call: ChatCall) -> Result<Reply, KernelError> {
        let constrained = call.functions.is_some() || call.format != Format::Text;
        if constrained && (call.model == AUTO || self.inner.specialists.contains_key(&call.model)) {
            // Decided first, like any request to it, so a refused caller learns nothing more.
            if call.model != AUTO {
                let resource = Resource::Specialist(call.model.clone());
                let _permit = self.authorize(ex, Action::Infer, &resource)?;
            }
            return Err(KernelError::invalid(
                "tools and response_format are served by models; a specialist or `auto` answers in text.",
                if call.functions.is_some() {
                    "tools"
                } else {
                    "response_format"
                },
            ));
        }
        if call.model == AUTO {
            return self.route(ex, call).await;
        }
        if self.inner.specialists.contains_key(&call.model) {
            let name = call.model.clone();
            return self.specialist_chat(ex, &name, call, None).await;
        }
        self.model_chat(ex, call).await
    }

    /// A chat with a model: authorise `infer` on it, render the conversation with its
    /// template (off the async threads: it is CPU work), start the generation.
    pub(crate) async fn model_chat(
        &self,
        ex: &mut Exchange,
        call: ChatCall,
    ) -> Result<Reply, KernelError> {
        let (permit, model) = self.model(ex, &call.model)?;
        refuse_embedding_only(&model, &call.model)?;
        let mut messages = call.messages;
        let mut params = call.params;
        let tools = constrain(
            ex,
            model.backend.as_ref(),
            &mut messages,
            &mut params,
            call.functions.as_ref(),
            &call.format,
        );
        let prompt = chat_prompt(&model.backend, messages, tools).await?;
        if call.fit
            && let Some(max) = params.max_tokens
        {
            let room = model.backend.context_length().saturating_sub(prompt.len());
            let room = u32::try_from(room).unwrap_or(u32::MAX).max(1);
            params.max_tokens = Some(max.min(room));
        }
        generate(&permit, &model, prompt, params, call.stream)
    }

    /// A text completion of one prompt.
    pub async fn complete(
        &self,
        ex: &mut Exchange,
        call: CompleteCall,
    ) -> Result<Reply, KernelError> {
        let (permit, model) = self.model(ex, &call.model)?;
        refuse_embedding_only(&model, &call.model)?;
        let mut prompts = call.prompts;
        if prompts.len() != 1 {
            return Err(KernelError::invalid(
                "Exactly one prompt string is supported.",
                "prompt",
            ));
        }
        let text = prompts.pop().unwrap_or_default();
        let backend = model.backend.clone();
        let prompt = tokio::task::spawn_blocking(move || backend.text_prompt(&text))
            .await
            .map_err(|e| KernelError::Internal(e.to_string()))?;
        generate(&permit, &model, prompt, call.params, call.stream)
    }

    /// Embeddings of the inputs. The engine bounds the inputs and their tokens, refuses before
    /// any work, and stops between inputs when this future is dropped (the caller left).
    pub async fn embed(
        &self,
        ex: &mut Exchange,
        call: EmbedCall,
    ) -> Result<Embeddings, KernelError> {
        let (_permit, model) = self.model(ex, &call.model)?;
        let width = model.backend.embedding_length();
        if call.dimensions.is_some_and(|d| d != width) {
            return Err(KernelError::invalid(
                format!(
                    "This model's embeddings have {width} dimensions; other sizes are not supported."
                ),
                "dimensions",
            ));
        }
        if call.inputs.is_empty() {
            return Err(KernelError::invalid(
                "input must hold at least one string.",
                "input",
            ));
        }
        if call.inputs.iter().any(String::is_empty) {
            return Err(KernelError::invalid(
                "input strings must not be empty.",
                "input",
            ));
        }
        let (vectors, tokens) = model.backend.embed(&call.inputs).await?;
        ex.attr("inputs", call.inputs.len());
        ex.attr("prompt_tokens", tokens);
        Ok(Embeddings { vectors, tokens })
    }
}

/// [`offer`], with the entry naming what was offered and where: `tools_in` is `template`
/// (the model's own chat template wrote them) or `generic` (the system message).
fn constrain(
    ex: &mut Exchange,
    backend: &dyn Backend,
    messages: &mut Vec<ChatMessage>,
    params: &mut SamplingParams,
    functions: Option<&Functions>,
    format: &Format,
) -> Option<Vec<Value>> {
    if let Some(f) = functions {
        let names: Vec<&str> = f.functions.iter().map(|f| f.name.as_str()).collect();
        ex.attr("functions", names.join(","));
        ex.attr("tool_choice", f.choice.describe());
    }
    if *format != Format::Text {
        ex.attr("response_format", format.describe());
    }
    let tools = offer(backend, messages, params, functions, format);
    if functions.is_some_and(Functions::offered) {
        ex.attr(
            "tools_in",
            if tools.is_some() {
                "template"
            } else {
                "generic"
            },
        );
    }
    tools
}

/// Offers the functions, or states the format, to the model and sets the grammar that
/// constrains its answer. A model whose chat template takes tools is given them there (the
/// returned tools, for [`chat_prompt`]) and may lay out a call as its template shows it;
/// otherwise they, and a response format always, are described in the system message in the
/// generic format ([`sov_infer::functions`]).
pub(crate) fn offer(
    backend: &dyn Backend,
    messages: &mut Vec<ChatMessage>,
    params: &mut SamplingParams,
    functions: Option<&Functions>,
    format: &Format,
) -> Option<Vec<Value>> {
    let (instructions, grammar, tools) = match functions {
        Some(f) if backend.takes_tools() => (None, f.template_grammar(), f.tools()),
        Some(f) => (f.instructions(), f.grammar(), None),
        None => (format.instructions(), format.grammar(), None),
    };
    if let Some(text) = instructions {
        add_instructions(messages, text);
    }
    params.grammar = grammar;
    tools
}

/// Renders and tokenises a conversation with the backend's chat template, off the async
/// threads (it is CPU work).
pub(crate) async fn chat_prompt(
    backend: &Arc<dyn Backend>,
    messages: Vec<ChatMessage>,
    tools: Option<Vec<Value>>,
) -> Result<Prompt, KernelError> {
    let backend = backend.clone();
    let prompt =
        tokio::task::spawn_blocking(move || backend.chat_prompt(&messages, tools.as_deref()))
            .await
            .map_err(|e| KernelError::Internal(e.to_string()))??;
    Ok(prompt)
}

/// Adds `text` to the conversation's system message (made first when it has none).
pub(crate) fn add_instructions(messages: &mut Vec<ChatMessage>, text: String) {
    match messages.first_mut() {
        Some(m) if m.role == "system" || m.role == "developer" => {
            m.content = format!("{}\n\n{text}", m.content);
        }
        _ => messages.insert(
            0,
            ChatMessage {
                role: "system".into(),
                content: text,
            },
        ),
    }
}

/// An embedding model answers neither chat nor completions: refused, after the permit (so a
/// caller not allowed the model learns nothing of it) and before any work.
fn refuse_embedding_only(model: &ServedModel, name: &str) -> Result<(), KernelError> {
    if model.backend.embedding_only() {
        return Err(KernelError::EmbeddingOnly {
            model: name.to_owned(),
        });
    }
    Ok(())
}

/// Starts a generation with the model a permit to `infer` names.
pub(crate) fn generate(
    permit: &Permit,
    model: &ServedModel,
    prompt: Prompt,
    params: SamplingParams,
    stream: bool,
) -> Result<Reply, KernelError> {
    debug_assert_eq!(permit.action(), Action::Infer);
    let backend: &Arc<dyn Backend> = &model.backend;
    let generation = backend.generate(prompt, params, !stream)?;
    Ok(Reply::new(generation))
}
