//! Loading a model and handing requests to the workers.

use std::num::NonZeroU32;
use std::path::Path;
use std::sync::mpsc::{self, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread;

use llama_cpp_2::context::params::{LlamaContextParams, LlamaPoolingType};
use llama_cpp_2::llama_backend::LlamaBackend;
use llama_cpp_2::model::LlamaModel;
use llama_cpp_2::model::params::LlamaModelParams;
use llama_cpp_2::token::LlamaToken;
use llama_cpp_2::{LogOptions, send_logs_to_tracing};
use tokio::sync::{mpsc as tmpsc, oneshot};

use crate::embed;
use crate::error::EngineError;
use crate::params::SamplingParams;
use crate::template::{ChatMessage, ChatTemplate};
use crate::worker::{self, Counters, EngineStats, Event, WorkerConfig};

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
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            threads: 0,
            context_length: 4096,
            parallel: 4,
            batch_size: 512,
            queue_depth: 64,
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
}

/// A generation in progress. Dropping it cancels the generation.
#[derive(Debug)]
pub struct Generation {
    events: tmpsc::UnboundedReceiver<Event>,
    prompt_tokens: usize,
}

impl Generation {
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

#[derive(Debug)]
struct Inner {
    model: Arc<LlamaModel>,
    info: ModelInfo,
    template: Result<ChatTemplate, String>,
    bos_text: String,
    queue_depth: usize,
    generate: SyncSender<worker::Job>,
    embed: SyncSender<embed::Job>,
    counters: Arc<Counters>,
}

/// Held while llama.cpp computes a graph, so that one graph at a time runs in this process.
///
/// llama.cpp's CPU backend synchronises its threads with spinning barriers many times per token.
/// Two graphs computing at once (the generation and the embedding worker, or two engines) put
/// more threads than cores to work, and every barrier then waits for a descheduled thread: speed
/// falls by one or two orders of magnitude. One graph at a time, each using every core, is both
/// faster and predictable.
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
    /// Loads the GGUF file at `path` and starts the workers. The caller must have verified the
    /// file first (the model store does; see `sov-models`).
    pub fn load(path: &Path, config: &EngineConfig) -> Result<Self, EngineError> {
        if config.parallel == 0 || config.batch_size == 0 || config.context_length < 16 {
            return Err(EngineError::Config(
                "parallel and batch_size must be at least 1, context_length at least 16".into(),
            ));
        }
        let backend = backend()?;
        let model = LlamaModel::load_from_file(backend, path, &LlamaModelParams::default())
            .map_err(|source| EngineError::Load {
                path: path.to_path_buf(),
                source,
            })?;
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
        let info = ModelInfo {
            context_length,
            train_context_length: train,
            embedding_length: u32::try_from(model.n_embd()).unwrap_or(0),
            parallel: config.parallel,
            threads,
        };

        let vocab = model.vocab();
        let bos_text =
            String::from_utf8_lossy(&vocab.token_to_piece(vocab.bos(), true, None)).into_owned();
        let eos_text =
            String::from_utf8_lossy(&vocab.token_to_piece(vocab.eos(), true, None)).into_owned();
        let template = match model.chat_template(None) {
            Err(_) => Err("the model has no chat template".to_owned()),
            Ok(t) => match t.to_str() {
                Err(_) => Err("the model's chat template is not UTF-8".to_owned()),
                Ok(src) => {
                    ChatTemplate::new(src, &bos_text, &eos_text).map_err(|e| error_chain(&e))
                }
            },
        };
        if let Err(reason) = &template {
            tracing::warn!(reason, "chat requests will be refused for this model");
        }

        let threads_i32 = i32::try_from(threads).unwrap_or(i32::MAX);
        let gen_params = LlamaContextParams::default()
            .with_n_ctx(NonZeroU32::new(
                context_length.saturating_mul(config.parallel),
            ))
            .with_n_seq_max(config.parallel)
            .with_n_batch(config.batch_size)
            .with_n_ubatch(config.batch_size)
            .with_n_threads(threads_i32)
            .with_n_threads_batch(threads_i32)
            .with_kv_unified(false);
        let worker_cfg = WorkerConfig {
            slots: config.parallel,
            context_length,
            batch_size: config.batch_size,
            n_vocab: model.n_vocab(),
        };
        let (generate, queue) = mpsc::sync_channel(config.queue_depth);
        let counters = Arc::new(Counters::default());
        let worker_counters = Arc::clone(&counters);
        spawn_with_context(
            &model,
            gen_params,
            "generation",
            "sov-generate",
            move |model, ctx| {
                worker::run(model, ctx, queue, worker_cfg, &worker_counters);
            },
        )?;

        let emb_params = LlamaContextParams::default()
            .with_n_ctx(NonZeroU32::new(context_length))
            .with_n_seq_max(1)
            .with_n_batch(context_length)
            .with_n_ubatch(context_length)
            .with_n_threads(threads_i32)
            .with_n_threads_batch(threads_i32)
            .with_embeddings(true)
            .with_pooling_type(LlamaPoolingType::Mean);
        let (embed, queue) = mpsc::sync_channel(config.queue_depth);
        let max_tokens = context_length as usize;
        spawn_with_context(
            &model,
            emb_params,
            "embedding",
            "sov-embed",
            move |_, ctx| {
                embed::run(ctx, queue, max_tokens);
            },
        )?;

        Ok(Self {
            inner: Arc::new(Inner {
                model,
                info,
                template,
                bos_text,
                queue_depth: config.queue_depth,
                generate,
                embed,
                counters,
            }),
        })
    }

    /// Facts about the loaded model.
    pub fn info(&self) -> &ModelInfo {
        &self.inner.info
    }

    /// What the generation worker has done so far.
    pub fn stats(&self) -> EngineStats {
        self.inner.counters.snapshot()
    }

    /// Renders a conversation with the model's chat template and tokenises it.
    pub fn chat_prompt(&self, messages: &[ChatMessage]) -> Result<Prompt, EngineError> {
        let template = self
            .inner
            .template
            .as_ref()
            .map_err(|_| EngineError::NoChatTemplate)?;
        let text = template.render(messages)?;
        Ok(self.tokenize_prompt(&text))
    }

    /// Tokenises a raw prompt (the completions API), adding the model's start token if it uses one.
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

    fn submit(
        &self,
        prompt: Prompt,
        params: SamplingParams,
        whole: bool,
    ) -> Result<Generation, EngineError> {
        params.validate()?;
        if prompt.tokens.is_empty() {
            return Err(EngineError::EmptyPrompt);
        }
        let context_length = self.inner.info.context_length;
        if prompt.tokens.len() >= context_length as usize {
            return Err(EngineError::ContextExceeded {
                prompt_tokens: prompt.tokens.len(),
                context_length,
            });
        }
        let (events, rx) = tmpsc::unbounded_channel();
        let prompt_tokens = prompt.tokens.len();
        let job = worker::Job {
            tokens: prompt.tokens,
            params,
            events,
            whole,
        };
        self.inner
            .generate
            .try_send(job)
            .map_err(|e| self.refused(&e))?;
        Ok(Generation {
            events: rx,
            prompt_tokens,
        })
    }

    /// Embeds each input (mean-pooled, L2-normalised). Returns the vectors and the input tokens used.
    pub async fn embed(&self, inputs: &[String]) -> Result<(Vec<Vec<f32>>, usize), EngineError> {
        let vocab = self.inner.model.vocab();
        let context_length = self.inner.info.context_length;
        let mut tokenized = Vec::with_capacity(inputs.len());
        for input in inputs {
            let tokens = vocab.tokenize(input.as_bytes(), vocab.should_add_bos(), false);
            if tokens.is_empty() {
                return Err(EngineError::EmptyPrompt);
            }
            if tokens.len() > context_length as usize {
                return Err(EngineError::ContextExceeded {
                    prompt_tokens: tokens.len(),
                    context_length,
                });
            }
            tokenized.push(tokens);
        }
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

fn add_bos_already(text: &str, bos_text: &str) -> bool {
    !bos_text.is_empty() && text.starts_with(bos_text)
}

/// Starts a worker thread that owns a context on `model`, and waits until the context exists.
fn spawn_with_context<F>(
    model: &Arc<LlamaModel>,
    params: LlamaContextParams,
    what: &'static str,
    name: &str,
    body: F,
) -> Result<(), EngineError>
where
    F: FnOnce(&LlamaModel, llama_cpp_2::context::LlamaContext<'_>) + Send + 'static,
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
                Ok(ctx) => {
                    let _ = ready_tx.send(Ok(()));
                    body(&model, ctx);
                }
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
