//! Loading a model and handing requests to the workers.

use sov_models::VerifiedModel;
use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::mpsc::{self, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread;

use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::context::params::{LlamaContextParams, LlamaPoolingType};
use llama_cpp_2::llama_backend::LlamaBackend;
use llama_cpp_2::model::params::LlamaModelParams;
use llama_cpp_2::model::{LlamaLoraAdapter, LlamaModel};
use llama_cpp_2::sampling::LlamaSampler;
use llama_cpp_2::token::LlamaToken;
use llama_cpp_2::{LogOptions, send_logs_to_tracing};
use llguidance::api::TopLevelGrammar;
use llguidance::{Matcher, ParserFactory};
use sov_infer::{ChatMessage, SamplingParams};
use tokio::sync::{mpsc as tmpsc, oneshot};

use crate::embed;
use crate::error::EngineError;
use crate::prompt;
use crate::template::ChatTemplate;
use crate::worker::{self, Counters, EngineStats, Event, FinishReason, WorkerConfig};

/// How an engine is sized. Every field has a sensible default for a small machine.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// CPU threads for llama.cpp; 0 means every available core. More threads than free cores
    /// makes llama.cpp slower, not faster.
    pub threads: usize,
    /// Tokens one request may use (prompt plus answer); capped at the model's training context.
    pub context_length: u32,
    /// Requests generated at the same time (continuous batching slots).
    pub parallel: u32,
    /// Tokens per decode step (the batch that slots share).
    pub batch_size: u32,
    /// Requests that may wait for a slot before the engine answers "busy".
    pub queue_depth: usize,
    /// The most inputs one embedding request may carry. Each input is one decode; an embedding
    /// request cannot be split over the generation worker's slots, so its size is bounded here.
    pub max_embedding_inputs: usize,
    /// The most tokens all inputs of one embedding request may hold together (each input must
    /// also fit the context window on its own). Embedding work grows with tokens, so this bounds
    /// the compute one request can ask for.
    pub max_embedding_tokens: usize,
    /// Keep a finished request's KV cells and reuse them for a later prompt that starts with the
    /// same tokens (a shared system prompt, a specialist's instructions, a conversation's earlier
    /// turns): only the rest of that prompt is decoded. It costs no memory (the cells are the
    /// slots' own). Its one visible effect is timing: a prompt whose start was read recently is
    /// answered sooner, which a caller can measure (see the threat model); `false` clears every
    /// sequence when it ends, as before.
    pub prompt_reuse: bool,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            threads: 0,
            context_length: 4096,
            parallel: 4,
            batch_size: 512,
            queue_depth: 64,
            max_embedding_inputs: 256,
            max_embedding_tokens: 16_384,
            prompt_reuse: true,
        }
    }
}

/// Facts about a loaded model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelInfo {
    /// Tokens one request may use.
    pub context_length: u32,
    /// The context length the model was trained with.
    pub train_context_length: u32,
    /// Width of the embedding vectors.
    pub embedding_length: u32,
    /// Requests generated at the same time.
    pub parallel: u32,
    /// Threads llama.cpp uses.
    pub threads: usize,
    /// The model only embeds (an encoder such as BERT): no generation, no chat.
    pub embedding_only: bool,
}

/// A tokenised prompt, ready for [`Engine::generate`].
#[derive(Debug, Clone)]
pub struct Prompt {
    tokens: Vec<LlamaToken>,
}

impl Prompt {
    /// Number of tokens.
    pub fn len(&self) -> usize {
        self.tokens.len()
    }
    /// Whether there are no tokens.
    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }
    /// The token ids, in order (for tests and diagnostics).
    pub fn token_ids(&self) -> Vec<i32> {
        self.tokens.iter().map(|t| t.0).collect()
    }
}

/// A generation in progress. Dropping it cancels the generation.
#[derive(Debug)]
pub struct Generation {
    events: tmpsc::UnboundedReceiver<Event>,
    prompt_tokens: usize,
}

impl Generation {
    /// A generation whose whole text is already known (an answer the kernel states without
    /// the model, such as a tool's result): that text, then the end, with no tokens counted.
    pub fn finished(text: String) -> Self {
        let (tx, events) = tmpsc::unbounded_channel();
        for event in [
            Event::Text(text),
            Event::Done {
                finish_reason: FinishReason::Stop,
                completion_tokens: 0,
            },
        ] {
            // The receiver is held here: the sends cannot fail.
            let _ = tx.send(event);
        }
        Self {
            events,
            prompt_tokens: 0,
        }
    }

    /// Tokens in the prompt.
    pub fn prompt_tokens(&self) -> usize {
        self.prompt_tokens
    }
    /// The next event, or `None` once the worker is gone.
    pub async fn next(&mut self) -> Option<Event> {
        self.events.recv().await
    }
    /// The next event, for callers outside an async runtime.
    pub fn blocking_next(&mut self) -> Option<Event> {
        self.events.blocking_recv()
    }
}

/// A loaded model with its workers. Cheap to clone; all clones share one model.
#[derive(Debug, Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

#[derive(Debug, Clone)]
struct Inner {
    model: Arc<LlamaModel>,
    info: ModelInfo,
    /// Shared with the engines of the model's adapters.
    template: Arc<Result<ChatTemplate, String>>,
    bos_text: String,
    queue_depth: usize,
    max_embedding_inputs: usize,
    max_embedding_tokens: usize,
    /// `None` for an embedding-only model, which has no generation worker. An adapter's
    /// engine has a worker of its own, whose context applies the adapter.
    generate: Option<SyncSender<worker::Job>>,
    embed: SyncSender<embed::Job>,
    counters: Arc<Counters>,
    /// llguidance's parser factory over the model's vocabulary, made at the first request
    /// with a grammar (walking a 49,152-token vocabulary takes a few hundred milliseconds);
    /// shared with the adapters' engines.
    grammars: Arc<OnceLock<Result<Grammars, String>>>,
}

/// llguidance's parser factory (which has no `Debug` of its own).
struct Grammars(ParserFactory);

impl std::fmt::Debug for Grammars {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Grammars")
    }
}

/// Held while llama.cpp computes a graph, so that one graph at a time runs in this process.
///
/// llama.cpp's CPU backend synchronises its threads with spinning barriers many times per token.
/// Two graphs computing at once (the generation and the embedding worker, or two engines) put
/// more threads than cores to work, and every barrier then waits for a descheduled thread: speed
/// falls by one or two orders of magnitude. One graph at a time, each using every core, is both
/// faster and predictable.
///
/// It is taken per decode (one generation step, one embedding input), never for a request, so
/// generation steps interleave with an embedding request's inputs: measured with the starter
/// model, an 8-token answer started during a 100-input embedding request finished after about
/// nine of its inputs (one per step), not after the request.
pub(crate) static COMPUTE: Mutex<()> = Mutex::new(());

/// Runs `f` while holding [`COMPUTE`] (a poisoned lock is still a lock: the guarded data is `()`).
pub(crate) fn exclusive<T>(f: impl FnOnce() -> T) -> T {
    let _guard = COMPUTE
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    f()
}

fn backend() -> Result<&'static LlamaBackend, EngineError> {
    static BACKEND: OnceLock<LlamaBackend> = OnceLock::new();
    static INIT: Mutex<()> = Mutex::new(());
    if let Some(backend) = BACKEND.get() {
        return Ok(backend);
    }
    let _guard = INIT
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(backend) = BACKEND.get() {
        return Ok(backend);
    }
    // llama.cpp prints thousands of lines by default; route them to `tracing` (debug level).
    send_logs_to_tracing(LogOptions::default());
    let backend = LlamaBackend::init().map_err(EngineError::Backend)?;
    Ok(BACKEND.get_or_init(|| backend))
}

impl Engine {
    /// Loads a model whose manifest signature and every byte were checked by the model store
    /// (only `ModelStore::verify` makes a [`VerifiedModel`]), and starts the workers. A chat
    /// template the manifest names (chosen at import) is used instead of the GGUF's own; its
    /// text must still hash to the SHA-256 the owner signed.
    pub fn load(model: &VerifiedModel, config: &EngineConfig) -> Result<Self, EngineError> {
        Self::load_with_adapters(model, config, &[]).map(|(engine, _)| engine)
    }

    /// [`Engine::load`], and one engine per LoRA adapter in `adapters`, in order: each shares
    /// the model's weights, its chat template and its embedding worker, and generates in a
    /// context of its own to which llama.cpp applies the adapter (scale 1, so the adapter's
    /// `adapter.lora.alpha` / rank), so that the base model and every adapter answer side by
    /// side without one's weights touching another's answers. Each adapter costs one more
    /// generation context (its KV cache: `context_length` × `parallel` tokens), and the
    /// adapter's own tensors.
    ///
    /// The adapter files must already be checked by whoever took them (the specialist store
    /// checks their bytes against the owner's signed manifest); llama.cpp refuses one whose
    /// architecture or tensors do not fit the model, and the load then fails as a whole.
    pub fn load_with_adapters(
        model: &VerifiedModel,
        config: &EngineConfig,
        adapters: &[&Path],
    ) -> Result<(Self, Vec<Self>), EngineError> {
        let template = match &model.manifest().chat_template {
            Some(choice) => Some(
                sov_models::templates::text_of(choice)
                    .map_err(|reason| EngineError::Config(format!("the manifest's {reason}")))?
                    .to_owned(),
            ),
            None => None,
        };
        Self::open(model.path(), config, template.as_deref(), adapters)
    }

    /// Loads the GGUF file at `path` with no verification at all: for the benchmark and the
    /// engine's own tests, which run a bare file. A node serves only [`Engine::load`]ed models.
    pub fn load_unverified(path: &Path, config: &EngineConfig) -> Result<Self, EngineError> {
        Self::open(path, config, None, &[]).map(|(engine, _)| engine)
    }

    /// [`Engine::load_with_adapters`] for a bare file, with no verification at all (tests).
    pub fn load_unverified_with_adapters(
        path: &Path,
        config: &EngineConfig,
        adapters: &[&Path],
    ) -> Result<(Self, Vec<Self>), EngineError> {
        Self::open(path, config, None, adapters)
    }

    /// [`Engine::load_unverified`] with a chat template that replaces the GGUF's own.
    pub fn load_unverified_with_template(
        path: &Path,
        config: &EngineConfig,
        template: &str,
    ) -> Result<Self, EngineError> {
        Self::open(path, config, Some(template), &[]).map(|(engine, _)| engine)
    }

    fn open(
        path: &Path,
        config: &EngineConfig,
        template_override: Option<&str>,
        adapters: &[&Path],
    ) -> Result<(Self, Vec<Self>), EngineError> {
        if config.parallel == 0 || config.batch_size == 0 || config.context_length < 16 {
            return Err(EngineError::Config(
                "parallel and batch_size must be at least 1, context_length at least 16".into(),
            ));
        }
        if config.max_embedding_inputs == 0 || config.max_embedding_tokens == 0 {
            return Err(EngineError::Config(
                "max_embedding_inputs and max_embedding_tokens must be at least 1".into(),
            ));
        }
        let backend = backend()?;
        let mut model = LlamaModel::load_from_file(backend, path, &LlamaModelParams::default())
            .map_err(|source| EngineError::Load {
                path: path.to_path_buf(),
                source,
            })?;
        // llama.cpp registers an adapter with its model (and frees it with the model), so the
        // adapters are loaded before the model is shared.
        let loras = adapters
            .iter()
            .map(|p| lora(&mut model, p).map(|a| (p.to_path_buf(), a)))
            .collect::<Result<Vec<_>, _>>()?;
        let model = Arc::new(model);
        let threads = if config.threads == 0 {
            thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
        } else {
            config.threads
        };
        let train = model.n_ctx_train();
        let context_length = if train > 0 {
            config.context_length.min(train)
        } else {
            config.context_length
        };
        let architecture = model
            .meta_val_str("general.architecture")
            .unwrap_or_default();
        let embedding_only = sov_models::is_embedding_architecture(&architecture);
        let info = ModelInfo {
            context_length,
            train_context_length: train,
            embedding_length: u32::try_from(model.n_embd()).unwrap_or(0),
            parallel: if embedding_only { 0 } else { config.parallel },
            threads,
            embedding_only,
        };

        let vocab = model.vocab();
        let bos_text = piece(&vocab, vocab.bos());
        let eos_text = piece(&vocab, vocab.eos());
        let template = if embedding_only {
            Err("the model only embeds".to_owned())
        } else if let Some(src) = template_override {
            ChatTemplate::new(src, &bos_text, &eos_text).map_err(|e| error_chain(&e))
        } else {
            match model.chat_template(None) {
                Err(_) => Err("the model has no chat template".to_owned()),
                Ok(t) => match t.to_str() {
                    Err(_) => Err("the model's chat template is not UTF-8".to_owned()),
                    Ok(src) => {
                        ChatTemplate::new(src, &bos_text, &eos_text).map_err(|e| error_chain(&e))
                    }
                },
            }
        };
        if let (Err(reason), false) = (&template, embedding_only) {
            tracing::warn!(reason, "chat requests will be refused for this model");
        }
        if embedding_only && !loras.is_empty() {
            return Err(EngineError::Config(
                "an embedding model generates nothing: it takes no LoRA adapter".into(),
            ));
        }
        let template = Arc::new(template);

        let threads_i32 = i32::try_from(threads).unwrap_or(i32::MAX);
        let counters = Arc::new(Counters::default());
        // An encoder has no KV cache and generates nothing: no generation worker, no slots.
        let generate = if embedding_only {
            None
        } else {
            Some(spawn_generation(
                &model,
                config,
                context_length,
                threads_i32,
                &counters,
                None,
            )?)
        };

        let pooling = pooling_of(&model, &architecture, embedding_only)?;
        let emb_params = LlamaContextParams::default()
            .with_n_ctx(NonZeroU32::new(context_length))
            .with_n_seq_max(1)
            .with_n_batch(context_length)
            .with_n_ubatch(context_length)
            .with_n_threads(threads_i32)
            .with_n_threads_batch(threads_i32)
            .with_embeddings(true)
            .with_pooling_type(pooling);
        let (embed, queue) = mpsc::sync_channel(config.queue_depth);
        let max_tokens = context_length as usize;
        let embed_counters = Arc::clone(&counters);
        let pass = if embedding_only {
            embed::Pass::Encode
        } else {
            embed::Pass::Decode
        };
        spawn_with_context(
            &model,
            emb_params,
            "embedding",
            "sov-embed",
            |_| Ok(()),
            move |_, ctx| {
                embed::run(ctx, queue, max_tokens, pass, &embed_counters);
            },
        )?;

        let base = Inner {
            model,
            info,
            template,
            bos_text,
            queue_depth: config.queue_depth,
            max_embedding_inputs: config.max_embedding_inputs,
            max_embedding_tokens: config.max_embedding_tokens,
            generate,
            embed,
            counters,
            grammars: Arc::new(OnceLock::new()),
        };
        // Each adapter's engine is the base's with a generation worker (and counters) of its own.
        let mut adapted = Vec::with_capacity(loras.len());
        for lora in loras {
            let counters = Arc::new(Counters::default());
            let generate = spawn_generation(
                &base.model,
                config,
                context_length,
                threads_i32,
                &counters,
                Some(lora),
            )?;
            adapted.push(Self {
                inner: Arc::new(Inner {
                    generate: Some(generate),
                    counters,
                    ..base.clone()
                }),
            });
        }
        let engine = Self {
            inner: Arc::new(base),
        };
        Ok((engine, adapted))
    }

    /// Facts about the loaded model.
    pub fn info(&self) -> &ModelInfo {
        &self.inner.info
    }

    /// What the generation worker has done so far.
    pub fn stats(&self) -> EngineStats {
        let mut stats = self.inner.counters.snapshot();
        if self.inner.generate.is_some() {
            stats.slots = self.inner.info.parallel as usize;
        }
        stats
    }

    /// Renders a conversation with the model's chat template and tokenises it: the template's
    /// markup with its control tokens, each message's content as plain text (see `prompt.rs`).
    /// Fails on a role other than `system`, `user`, `assistant` or `developer` (read as
    /// `system`), and when the template refuses the conversation.
    pub fn chat_prompt(&self, messages: &[ChatMessage]) -> Result<Prompt, EngineError> {
        self.render(messages, None)
    }

    /// Whether the model's chat template offers tools itself ([`ChatTemplate::takes_tools`]).
    pub fn takes_tools(&self) -> bool {
        matches!(self.inner.template.as_ref(), Ok(t) if t.takes_tools())
    }

    /// [`Engine::chat_prompt`] with `tools` (OpenAI's shape) given to a template that takes
    /// them. The template writes them as its markup, where a control token's text would be
    /// one: a tool whose text (any key or string in it) holds one is refused, as is a model
    /// whose template does not take tools.
    pub fn chat_prompt_with_tools(
        &self,
        messages: &[ChatMessage],
        tools: &[serde_json::Value],
    ) -> Result<Prompt, EngineError> {
        if !self.takes_tools() {
            return Err(EngineError::InvalidParam {
                param: "tools",
                reason: "this model's chat template does not offer tools".into(),
            });
        }
        for (index, tool) in tools.iter().enumerate() {
            let mut texts = Vec::new();
            strings_of(tool, &mut texts);
            for text in texts {
                if self.writes_control_token(text) {
                    return Err(EngineError::InvalidParam {
                        param: "tools",
                        reason: format!(
                            "tool {index} contains the text of one of the model's control tokens, which this model's chat template would write as its own"
                        ),
                    });
                }
            }
        }
        self.render(messages, Some(tools))
    }

    fn render(
        &self,
        messages: &[ChatMessage],
        tools: Option<&[serde_json::Value]>,
    ) -> Result<Prompt, EngineError> {
        if self.inner.info.embedding_only {
            return Err(EngineError::EmbeddingOnly);
        }
        let template = self
            .inner
            .template
            .as_ref()
            .as_ref()
            .map_err(|_| EngineError::NoChatTemplate)?;
        let messages = prompt::canonical_roles(messages)?;
        let text = template.render(&messages, tools)?;
        let whole = self.tokenize_prompt(&text);
        let markers = prompt::Markers::new();
        let marked: Vec<ChatMessage> = messages
            .iter()
            .map(|m| ChatMessage {
                role: m.role.clone(),
                content: markers.wrap(&m.content),
            })
            .collect();
        let rendered = template.render(&marked, tools).ok();
        let pieces = rendered
            .as_deref()
            .and_then(|r| markers.split(r))
            .filter(|pieces| prompt::joined(pieces) == text);
        let Some(pieces) = pieces else {
            // The template changed the content in a way the markers cannot follow: the whole
            // text is safe only if no content can write a control token.
            for (index, m) in messages.iter().enumerate() {
                if self.writes_control_token(&m.content) {
                    return Err(EngineError::InvalidParam {
                        param: "messages",
                        reason: format!(
                            "message {index} contains the text of one of the model's control tokens, which this model's chat template cannot keep apart from its own"
                        ),
                    });
                }
            }
            return Ok(whole);
        };
        let safe = self.tokenize_pieces(&pieces, &text);
        // Same control tokens as the template wrote: the whole text's tokens are safe, and they
        // are the ones the model saw in training (pieces tokenised apart can split differently
        // at their edges).
        if self.control_tokens(&whole.tokens) == self.control_tokens(&safe.tokens) {
            return Ok(whole);
        }
        Ok(safe)
    }

    /// Tokenises a raw prompt (the completions API), adding the model's start token if it uses one.
    ///
    /// Special tokens in `text` are parsed: a raw prompt is the caller's own text by definition,
    /// written in the model's format (control tokens included), and its caller is authorised to
    /// use the model; there are no turns of other parties in it to protect.
    pub fn text_prompt(&self, text: &str) -> Prompt {
        self.tokenize_prompt(text)
    }

    /// The number of tokens `text` encodes to, without special tokens.
    pub fn count_tokens(&self, text: &str) -> usize {
        self.inner
            .model
            .vocab()
            .tokenize(text.as_bytes(), false, false)
            .len()
    }

    fn tokenize_prompt(&self, text: &str) -> Prompt {
        let vocab = self.inner.model.vocab();
        // A template that already writes the start token must not get a second one.
        let add_special = vocab.should_add_bos() && !add_bos_already(text, &self.inner.bos_text);
        Prompt {
            tokens: vocab.tokenize(text.as_bytes(), add_special, true),
        }
    }

    /// Tokenises a split render: markup with special tokens parsed, content as plain text; the
    /// start (and end) tokens as [`Engine::tokenize_prompt`] adds them for `text`.
    fn tokenize_pieces(&self, pieces: &[prompt::Piece<'_>], text: &str) -> Prompt {
        let vocab = self.inner.model.vocab();
        let add_special = vocab.should_add_bos() && !add_bos_already(text, &self.inner.bos_text);
        let mut tokens = Vec::new();
        if add_special {
            tokens.push(vocab.bos());
        }
        for piece in pieces {
            let (s, special) = match piece {
                prompt::Piece::Markup(s) => (*s, true),
                prompt::Piece::Content(s) => (*s, false),
            };
            if !s.is_empty() {
                tokens.extend(vocab.tokenize(s.as_bytes(), false, special));
            }
        }
        if add_special && vocab.should_add_eos() {
            tokens.push(vocab.eos());
        }
        Prompt { tokens }
    }

    /// Whether `text`, tokenised with special tokens parsed (as markup is), holds a control
    /// token.
    fn writes_control_token(&self, text: &str) -> bool {
        let vocab = self.inner.model.vocab();
        vocab
            .tokenize(text.as_bytes(), false, true)
            .iter()
            .any(|t| vocab.is_control(*t))
    }

    fn control_tokens(&self, tokens: &[LlamaToken]) -> Vec<LlamaToken> {
        let vocab = self.inner.model.vocab();
        tokens
            .iter()
            .copied()
            .filter(|t| vocab.is_control(*t))
            .collect()
    }

    /// Starts generating an answer to `prompt`. Fails at once when the prompt does not fit the
    /// context window, a parameter is out of range, or the queue is full.
    pub fn generate(
        &self,
        prompt: Prompt,
        params: SamplingParams,
    ) -> Result<Generation, EngineError> {
        self.submit(prompt, params, false)
    }

    /// Like [`Engine::generate`], but the text arrives in one [`Event::Text`] just before
    /// [`Event::Done`]. For callers that wait for the whole answer anyway (a non-streamed API
    /// request): it spares a thread wake-up per token, which on a small machine takes CPU time
    /// from llama.cpp.
    pub fn generate_whole(
        &self,
        prompt: Prompt,
        params: SamplingParams,
    ) -> Result<Generation, EngineError> {
        self.submit(prompt, params, true)
    }

    /// A sampler that allows only what `grammar` (llguidance's Lark syntax) allows; a grammar
    /// llguidance cannot compile (an unsupported schema keyword, say) is refused with its
    /// reason.
    fn constraint(&self, grammar: &str) -> Result<LlamaSampler, EngineError> {
        let factory = self.inner.grammars.get_or_init(|| {
            let env = LlamaSampler::llguidance_tok_env(&self.inner.model);
            ParserFactory::new_simple(&env)
                .map(Grammars)
                .map_err(|e| e.to_string())
        });
        let invalid = |reason: String| EngineError::InvalidParam {
            param: "tools",
            reason,
        };
        let factory = factory
            .as_ref()
            .map_err(|e| invalid(format!("no grammar engine: {e}")))?;
        let parser = factory
            .0
            .create_parser(TopLevelGrammar::from_lark(grammar.to_owned()))
            .map_err(|e| invalid(format!("the schema cannot be enforced: {e}")))?;
        Ok(LlamaSampler::from(Matcher::new(Ok(parser))))
    }

    fn submit(
        &self,
        prompt: Prompt,
        params: SamplingParams,
        whole: bool,
    ) -> Result<Generation, EngineError> {
        let Some(generate) = &self.inner.generate else {
            return Err(EngineError::EmbeddingOnly);
        };
        params.validate()?;
        if prompt.tokens.is_empty() {
            return Err(EngineError::EmptyPrompt);
        }
        let context_length = self.inner.info.context_length;
        let prompt_tokens = prompt.tokens.len();
        if prompt_tokens >= context_length as usize {
            return Err(EngineError::ContextExceeded {
                prompt_tokens,
                completion_tokens: params.max_tokens,
                context_length,
            });
        }
        // As OpenAI does: asking for more than the window holds is an error, not a silent cut.
        if let Some(max_tokens) = params.max_tokens
            && prompt_tokens.saturating_add(max_tokens as usize) > context_length as usize
        {
            return Err(EngineError::ContextExceeded {
                prompt_tokens,
                completion_tokens: Some(max_tokens),
                context_length,
            });
        }
        let (events, rx) = tmpsc::unbounded_channel();
        let constraint = params
            .grammar
            .as_deref()
            .map(|g| self.constraint(g))
            .transpose()?;
        let job = worker::Job {
            tokens: prompt.tokens,
            params,
            events,
            whole,
            constraint,
        };
        // Counted before it can be taken, so the worker never takes one not counted.
        self.inner.counters.queued.fetch_add(1, Ordering::Relaxed);
        if let Err(e) = generate.try_send(job) {
            self.inner.counters.queued.fetch_sub(1, Ordering::Relaxed);
            return Err(self.refused(&e));
        }
        Ok(Generation {
            events: rx,
            prompt_tokens,
        })
    }

    /// Embeds each input (mean-pooled, L2-normalised). Returns the vectors and the input tokens used.
    ///
    /// Refused at once, with [`EngineError::TooMuchInput`], when the request holds more than
    /// [`EngineConfig::max_embedding_inputs`] inputs, more than
    /// [`EngineConfig::max_embedding_tokens`] tokens in all, or an input longer than the context
    /// window. Dropping the returned future (a client that left) stops the worker before its next
    /// input.
    pub async fn embed(&self, inputs: &[String]) -> Result<(Vec<Vec<f32>>, usize), EngineError> {
        let tokenized = self.embedding_tokens(inputs)?;
        let used = tokenized.iter().map(Vec::len).sum();
        let (reply, rx) = oneshot::channel();
        self.inner
            .embed
            .try_send(embed::Job {
                inputs: tokenized,
                reply,
            })
            .map_err(|e| self.refused(&e))?;
        let vectors = rx.await.map_err(|_| EngineError::Stopped)??;
        Ok((vectors, used))
    }

    /// The token ids [`Engine::embed`] gives the model for `input` (with the start and end tokens
    /// the model's tokenizer adds), for tests and diagnostics.
    pub fn embedding_token_ids(&self, input: &str) -> Vec<i32> {
        let vocab = self.inner.model.vocab();
        vocab
            .tokenize(input.as_bytes(), vocab.should_add_bos(), false)
            .iter()
            .map(|t| t.0)
            .collect()
    }

    /// Tokenises embedding inputs, checking the bounds as it goes (it stops at the first input
    /// over one, so an oversized request costs little to refuse).
    fn embedding_tokens(&self, inputs: &[String]) -> Result<Vec<Vec<LlamaToken>>, EngineError> {
        let max_inputs = self.inner.max_embedding_inputs;
        if inputs.len() > max_inputs {
            return Err(EngineError::TooMuchInput {
                what: "inputs",
                limit: max_inputs,
                got: inputs.len(),
            });
        }
        let vocab = self.inner.model.vocab();
        let context_length = self.inner.info.context_length as usize;
        let max_total = self.inner.max_embedding_tokens;
        let mut total = 0usize;
        let mut tokenized = Vec::with_capacity(inputs.len());
        for input in inputs {
            let tokens = vocab.tokenize(input.as_bytes(), vocab.should_add_bos(), false);
            if tokens.is_empty() {
                return Err(EngineError::EmptyPrompt);
            }
            if tokens.len() > context_length {
                return Err(EngineError::TooMuchInput {
                    what: "tokens in one input",
                    limit: context_length,
                    got: tokens.len(),
                });
            }
            total += tokens.len();
            if total > max_total {
                return Err(EngineError::TooMuchInput {
                    what: "tokens in all inputs",
                    limit: max_total,
                    got: total,
                });
            }
            tokenized.push(tokens);
        }
        Ok(tokenized)
    }

    /// Why a worker's queue did not take a job: full (busy) or gone (stopped).
    fn refused<T>(&self, err: &TrySendError<T>) -> EngineError {
        match err {
            TrySendError::Full(_) => EngineError::Busy {
                queued: self.inner.queue_depth,
            },
            TrySendError::Disconnected(_) => EngineError::Stopped,
        }
    }
}

/// Loads the LoRA adapter at `path` into `model` (llama.cpp checks its architecture, and that
/// each of its tensors names one of the model's and fits its shape).
fn lora(model: &mut LlamaModel, path: &Path) -> Result<LlamaLoraAdapter, EngineError> {
    let refused = |reason: String| EngineError::Adapter {
        path: path.to_path_buf(),
        reason,
    };
    if !path.is_file() {
        return Err(refused("there is no such file".into()));
    }
    model.lora_adapter_init(path).map_err(|e| match e {
        llama_cpp_2::LlamaLoraAdapterInitError::NullResult => refused(
            "llama.cpp refused it: its architecture must be the model's, and each of its tensors must name one of the model's and fit its shape (llama.cpp's log, at debug level, says which did not)".into(),
        ),
        other => refused(other.to_string()),
    })
}

/// Starts the generation worker (continuous batching over `config.parallel` slots), whose
/// context applies `adapter` when one is given.
fn spawn_generation(
    model: &Arc<LlamaModel>,
    config: &EngineConfig,
    context_length: u32,
    threads: i32,
    counters: &Arc<Counters>,
    adapter: Option<(PathBuf, LlamaLoraAdapter)>,
) -> Result<SyncSender<worker::Job>, EngineError> {
    let gen_params = LlamaContextParams::default()
        .with_n_ctx(NonZeroU32::new(
            context_length.saturating_mul(config.parallel),
        ))
        .with_n_seq_max(config.parallel)
        .with_n_batch(config.batch_size)
        .with_n_ubatch(config.batch_size)
        .with_n_threads(threads)
        .with_n_threads_batch(threads)
        .with_kv_unified(false);
    let worker_cfg = WorkerConfig {
        slots: config.parallel,
        context_length,
        batch_size: config.batch_size,
        n_vocab: model.n_vocab(),
        prompt_reuse: config.prompt_reuse,
    };
    let (generate, queue) = mpsc::sync_channel(config.queue_depth);
    let worker_counters = Arc::clone(counters);
    spawn_with_context(
        model,
        gen_params,
        "generation",
        if adapter.is_some() {
            "sov-generate-lora"
        } else {
            "sov-generate"
        },
        move |ctx| match adapter {
            None => Ok(()),
            Some((path, mut lora)) => {
                ctx.lora_adapter_set(&mut lora, 1.0)
                    .map_err(|e| EngineError::AdapterSet {
                        path,
                        code: match e {
                            llama_cpp_2::LlamaLoraAdapterSetError::ErrorResult(code) => code,
                        },
                    })
            }
        },
        move |model, ctx| {
            worker::run(model, ctx, queue, worker_cfg, &worker_counters);
        },
    )?;
    Ok(generate)
}

/// How embeddings are pooled: an embedding model's own pooling type (`{arch}.pooling_type`,
/// mean when absent); mean for a generative model used for embeddings, as before.
fn pooling_of(
    model: &LlamaModel,
    architecture: &str,
    embedding_only: bool,
) -> Result<LlamaPoolingType, EngineError> {
    if !embedding_only {
        return Ok(LlamaPoolingType::Mean);
    }
    let key = format!("{architecture}.pooling_type");
    match model.meta_val_str(&key).ok().as_deref().map(str::trim) {
        None | Some("1") => Ok(LlamaPoolingType::Mean),
        Some("2") => Ok(LlamaPoolingType::Cls),
        Some("3") => Ok(LlamaPoolingType::Last),
        Some(other) => Err(EngineError::Config(format!(
            "{key} is {other}: only mean (1), CLS (2) and last-token (3) pooling give one vector per input"
        ))),
    }
}

/// The text of a special token; empty for a token the model does not have (`-1`: BERT has no
/// end-of-sequence token, and llama.cpp throws a C++ exception for an id outside the vocabulary,
/// which would abort the process).
fn piece(vocab: &llama_cpp_2::vocab::LlamaVocab<'_>, token: LlamaToken) -> String {
    if token.0 < 0 || token.0 >= vocab.n_tokens() {
        return String::new();
    }
    String::from_utf8_lossy(&vocab.token_to_piece(token, true, None)).into_owned()
}

fn add_bos_already(text: &str, bos_text: &str) -> bool {
    !bos_text.is_empty() && text.starts_with(bos_text)
}

/// Starts a worker thread that owns a context on `model`, prepares it with `setup`, and waits
/// until the context exists and is prepared.
fn spawn_with_context<S, F>(
    model: &Arc<LlamaModel>,
    params: LlamaContextParams,
    what: &'static str,
    name: &str,
    setup: S,
    body: F,
) -> Result<(), EngineError>
where
    S: FnOnce(&mut LlamaContext<'_>) -> Result<(), EngineError> + Send + 'static,
    F: FnOnce(&LlamaModel, LlamaContext<'_>) + Send + 'static,
{
    let model = Arc::clone(model);
    let (ready_tx, ready_rx) = mpsc::sync_channel(1);
    thread::Builder::new()
        .name(name.to_owned())
        .spawn(move || {
            let backend = match backend() {
                Ok(b) => b,
                Err(_) => return,
            };
            match model.new_context(backend, params) {
                Ok(mut ctx) => match setup(&mut ctx) {
                    Ok(()) => {
                        let _ = ready_tx.send(Ok(()));
                        body(&model, ctx);
                    }
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                    }
                },
                Err(source) => {
                    let _ = ready_tx.send(Err(EngineError::Context { what, source }));
                }
            }
        })
        .map_err(|e| {
            EngineError::Config(format!("failed to start the {what} worker thread: {e}"))
        })?;
    ready_rx.recv().map_err(|_| EngineError::Stopped)?
}

fn error_chain(err: &dyn std::error::Error) -> String {
    let mut out = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

/// Every key and string in `value`, for the control-token check of text a template writes as
/// markup.
fn strings_of<'a>(value: &'a serde_json::Value, out: &mut Vec<&'a str>) {
    match value {
        serde_json::Value::String(s) => out.push(s),
        serde_json::Value::Array(items) => items.iter().for_each(|v| strings_of(v, out)),
        serde_json::Value::Object(map) => {
            for (key, v) in map {
                out.push(key);
                strings_of(v, out);
            }
        }
        _ => {}
    }
}
