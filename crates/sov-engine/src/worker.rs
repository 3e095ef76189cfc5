//! The generation worker: one thread, one llama.cpp context, continuous batching over slots.
//!
//! Each step builds one batch from (1) the last sampled token of every generating sequence and
//! (2) chunks of the prompts still being read, up to the batch size; decodes it once; then samples
//! every sequence whose logits are ready. New requests take a free slot between steps, so a long
//! answer never blocks a short one. The queue in front of the worker is bounded: the worker only
//! takes a request off it when a slot is free.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, TryRecvError};

use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::model::LlamaModel;
use llama_cpp_2::sampling::LlamaSampler;
use llama_cpp_2::token::LlamaToken;
use sov_infer::SamplingParams;
use tokio::sync::mpsc::UnboundedSender;

use crate::reuse::Holdings;
use crate::sampler;
use crate::text::{Scan, StopScanner, Utf8Stream};

/// Why a generation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FinishReason {
    /// The model ended its answer, or a stop sequence was reached.
    Stop,
    /// `max_tokens` or the context window was reached.
    Length,
}

impl FinishReason {
    /// The OpenAI API's name for it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Stop => "stop",
            Self::Length => "length",
        }
    }
}

/// What a running generation reports, in order: text pieces, then exactly one `Done` or `Failed`.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// More answer text (never splits a UTF-8 character, never contains a stop sequence).
    Text(String),
    /// The answer is complete.
    Done {
        /// Why it ended.
        finish_reason: FinishReason,
        /// Tokens generated (the end-of-generation token is not counted: it is not part of the text).
        completion_tokens: usize,
    },
    /// The engine failed while generating; the message is for logs, not for clients.
    Failed(String),
}

/// Counters the worker keeps, readable from any thread.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub running: AtomicUsize,
    pub peak_running: AtomicUsize,
    pub completed: AtomicUsize,
    pub cancelled: AtomicUsize,
    pub failed: AtomicUsize,
    pub embedded_inputs: AtomicUsize,
    pub embeddings_completed: AtomicUsize,
    pub embeddings_cancelled: AtomicUsize,
    pub queued: AtomicUsize,
    pub prompt_tokens: AtomicU64,
    pub prompt_tokens_reused: AtomicU64,
    pub generated_tokens: AtomicU64,
    pub decode_steps: AtomicU64,
    pub decode_outputs: AtomicU64,
}

/// A snapshot of what the workers (generation and embedding) have done.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct EngineStats {
    /// Sequences generating right now.
    pub running: usize,
    /// The most sequences that were ever generating at the same time.
    pub peak_running: usize,
    /// Generations that finished (stop or length).
    pub completed: usize,
    /// Generations abandoned because their client went away.
    pub cancelled: usize,
    /// Generations ended by an engine failure.
    pub failed: usize,
    /// Embedding inputs embedded (each is one decode), over all requests.
    pub embedded_inputs: usize,
    /// Embedding requests answered (with vectors or an error).
    pub embeddings_completed: usize,
    /// Embedding requests abandoned because their caller went away (while queued, or between
    /// two inputs).
    pub embeddings_cancelled: usize,
    /// Generations waiting for a slot.
    pub queued: usize,
    /// Generation slots (sequences that can run at once).
    pub slots: usize,
    /// Prompt tokens of the generations admitted into a slot, over all of them.
    pub prompt_tokens: u64,
    /// Of those, the tokens whose KV cells were already in the cache (a prompt's start that an
    /// earlier request had read: see the prompt reuse of [`crate::EngineConfig::prompt_reuse`]),
    /// so they were not decoded again.
    pub prompt_tokens_reused: u64,
    /// Tokens generated, over all generations (an end-of-generation token not counted).
    pub generated_tokens: u64,
    /// Decode steps the generation worker ran (each one batch through the model).
    pub decode_steps: u64,
    /// Sequences sampled after those steps, over all of them: divided by `decode_steps`, how
    /// many sequences a step advanced on average (the batching actually achieved).
    pub decode_outputs: u64,
}

impl Counters {
    pub fn snapshot(&self) -> EngineStats {
        EngineStats {
            running: self.running.load(Ordering::Relaxed),
            peak_running: self.peak_running.load(Ordering::Relaxed),
            completed: self.completed.load(Ordering::Relaxed),
            cancelled: self.cancelled.load(Ordering::Relaxed),
            failed: self.failed.load(Ordering::Relaxed),
            embedded_inputs: self.embedded_inputs.load(Ordering::Relaxed),
            embeddings_completed: self.embeddings_completed.load(Ordering::Relaxed),
            embeddings_cancelled: self.embeddings_cancelled.load(Ordering::Relaxed),
            queued: self.queued.load(Ordering::Relaxed),
            slots: 0,
            prompt_tokens: self.prompt_tokens.load(Ordering::Relaxed),
            prompt_tokens_reused: self.prompt_tokens_reused.load(Ordering::Relaxed),
            generated_tokens: self.generated_tokens.load(Ordering::Relaxed),
            decode_steps: self.decode_steps.load(Ordering::Relaxed),
            decode_outputs: self.decode_outputs.load(Ordering::Relaxed),
        }
    }
}

/// A request waiting for a slot.
#[derive(Debug)]
pub(crate) struct Job {
    pub tokens: Vec<LlamaToken>,
    pub params: SamplingParams,
    pub events: UnboundedSender<Event>,
    /// Deliver the answer in one piece at the end instead of token by token.
    pub whole: bool,
    /// The grammar's sampler, when the request has one (`SamplingParams::grammar`).
    pub constraint: Option<LlamaSampler>,
}

/// Fixed settings of the worker.
#[derive(Debug, Clone, Copy)]
pub(crate) struct WorkerConfig {
    pub slots: u32,
    pub context_length: u32,
    pub batch_size: u32,
    pub n_vocab: i32,
    /// Keep finished sequences' KV cells and reuse a prompt's cached start.
    pub prompt_reuse: bool,
}

struct Slot {
    seq: i32,
    events: UnboundedSender<Event>,
    tokens: Vec<LlamaToken>,
    sampler: LlamaSampler,
    /// Prompt tokens already in the KV cache.
    fed: usize,
    /// Position of the next token in this sequence.
    pos: i32,
    generated: usize,
    max_new: usize,
    /// The token sampled last, to be decoded next step.
    next: Option<LlamaToken>,
    /// Where this slot's logits are in the current batch.
    logits_at: Option<i32>,
    utf8: Utf8Stream,
    stops: StopScanner,
    ignore_eos: bool,
    /// `Some` when the answer is delivered whole: the text so far.
    held: Option<String>,
}

/// Runs until the queue's senders are all gone and no sequence is running.
pub(crate) fn run(
    model: &LlamaModel,
    mut ctx: LlamaContext<'_>,
    queue: Receiver<Job>,
    cfg: WorkerConfig,
    counters: &Arc<Counters>,
) {
    let vocab = model.vocab();
    let mut batch = LlamaBatch::new(cfg.batch_size as usize, 1);
    let mut slots: Vec<Slot> = Vec::new();
    let mut free: Vec<i32> = (0..cfg.slots as i32).rev().collect();
    let mut holdings = Holdings::new(cfg.slots);
    let mut open = true;
    loop {
        // Admit waiting requests into free slots; block only when there is nothing to do.
        while open && !free.is_empty() {
            let job = if slots.is_empty() {
                match queue.recv() {
                    Ok(job) => job,
                    Err(_) => return,
                }
            } else {
                match queue.try_recv() {
                    Ok(job) => job,
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => {
                        open = false;
                        break;
                    }
                }
            };
            counters.queued.fetch_sub(1, Ordering::Relaxed);
            if job.events.is_closed() {
                // The client left while the request was queued.
                counters.cancelled.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            if let Some((seq, reused)) =
                assign(&mut ctx, &mut holdings, &mut free, &job.tokens, &cfg)
            {
                counters
                    .prompt_tokens
                    .fetch_add(job.tokens.len() as u64, Ordering::Relaxed);
                counters
                    .prompt_tokens_reused
                    .fetch_add(reused as u64, Ordering::Relaxed);
                slots.push(Slot::new(seq, job, &cfg, reused));
                counters.running.store(slots.len(), Ordering::Relaxed);
                counters
                    .peak_running
                    .fetch_max(slots.len(), Ordering::Relaxed);
            }
        }
        // Drop sequences whose client has gone away.
        slots.retain(|slot| {
            let keep = !slot.events.is_closed();
            if !keep {
                release(&mut ctx, &mut holdings, &mut free, slot.seq, &cfg);
                // No longer running before it counts as cancelled, so readers never see both.
                counters.running.fetch_sub(1, Ordering::Relaxed);
                counters.cancelled.fetch_add(1, Ordering::Relaxed);
            }
            keep
        });
        counters.running.store(slots.len(), Ordering::Relaxed);
        if slots.is_empty() {
            if !open {
                return;
            }
            continue;
        }

        // In sequence order: with a KV stream per slot, llama.cpp splits a batch into one
        // ubatch per run of consecutive sequence ids in the order their tokens come (its
        // `split_equal`), so slots in another order cost a model pass each instead of one for all.
        slots.sort_unstable_by_key(|slot| slot.seq);
        if let Err(reason) = fill_batch(
            &mut batch,
            &mut slots,
            &mut holdings,
            cfg.batch_size as usize,
        ) {
            counters.failed.fetch_add(slots.len(), Ordering::Relaxed);
            fail_all(&mut ctx, &mut slots, &mut holdings, &mut free, &reason);
            counters.running.store(0, Ordering::Relaxed);
            continue;
        }
        if let Err(err) = crate::llama::exclusive(|| ctx.decode(&mut batch)) {
            counters.failed.fetch_add(slots.len(), Ordering::Relaxed);
            fail_all(
                &mut ctx,
                &mut slots,
                &mut holdings,
                &mut free,
                &err.to_string(),
            );
            counters.running.store(0, Ordering::Relaxed);
            continue;
        }

        counters.decode_steps.fetch_add(1, Ordering::Relaxed);
        let mut finished = Vec::new();
        for (i, slot) in slots.iter_mut().enumerate() {
            let Some(at) = slot.logits_at.take() else {
                continue;
            };
            counters.decode_outputs.fetch_add(1, Ordering::Relaxed);
            let token = slot.sampler.sample(&ctx, at);
            if vocab.is_eog(token) && !slot.ignore_eos {
                slot.finish(FinishReason::Stop, counters);
                finished.push(i);
                continue;
            }
            slot.generated += 1;
            counters.generated_tokens.fetch_add(1, Ordering::Relaxed);
            let piece = vocab.token_to_piece(token, false, None);
            let text = slot.utf8.push(&piece);
            match slot.stops.push(&text) {
                Scan::Stopped(text) => {
                    slot.send_text(text);
                    slot.done(FinishReason::Stop, counters);
                    finished.push(i);
                    continue;
                }
                Scan::Continue(text) => slot.send_text(text),
            }
            if slot.generated >= slot.max_new {
                slot.finish(FinishReason::Length, counters);
                finished.push(i);
                continue;
            }
            slot.next = Some(token);
        }
        for i in finished.into_iter().rev() {
            let slot = slots.swap_remove(i);
            release(&mut ctx, &mut holdings, &mut free, slot.seq, &cfg);
        }
        counters.running.store(slots.len(), Ordering::Relaxed);
    }
}

impl Slot {
    /// A slot for `job` in sequence `seq`, whose cells already hold the job's first `reused`
    /// tokens.
    fn new(seq: i32, job: Job, cfg: &WorkerConfig, reused: usize) -> Self {
        let tail = job.tokens.len().saturating_sub(64);
        let sampler = sampler::chain(
            &job.params,
            cfg.n_vocab,
            &job.tokens[tail..],
            job.constraint,
        );
        let room = (cfg.context_length as usize).saturating_sub(job.tokens.len());
        let max_new = job
            .params
            .max_tokens
            .map_or(room, |m| (m as usize).min(room));
        Self {
            seq,
            stops: StopScanner::new(&job.params.stop),
            events: job.events,
            tokens: job.tokens,
            sampler,
            fed: reused,
            pos: i32::try_from(reused).unwrap_or(i32::MAX),
            generated: 0,
            max_new,
            next: None,
            logits_at: None,
            utf8: Utf8Stream::default(),
            ignore_eos: job.params.ignore_eos,
            held: job.whole.then(String::new),
        }
    }

    fn send_text(&mut self, text: String) {
        if let Some(held) = &mut self.held {
            // Every event wakes the receiving thread, which competes with llama.cpp's threads
            // for the cores; a client that waits for the whole answer needs only one.
            held.push_str(&text);
            return;
        }
        if !text.is_empty() {
            // A closed channel means the client left; the slot is dropped on the next step.
            let _ = self.events.send(Event::Text(text));
        }
    }

    /// Counts the generation as completed, then tells the client: whoever sees `Done` also
    /// sees it in [`EngineStats::completed`].
    fn done(&mut self, finish_reason: FinishReason, counters: &Counters) {
        if let Some(held) = self.held.take() {
            self.send_text(held);
        }
        counters.completed.fetch_add(1, Ordering::Relaxed);
        let _ = self.events.send(Event::Done {
            finish_reason,
            completion_tokens: self.generated,
        });
    }

    /// Ends a generation that stopped for a reason other than a stop sequence: flush held text.
    fn finish(&mut self, reason: FinishReason, counters: &Counters) {
        let tail = self.utf8.finish();
        match self.stops.push(&tail) {
            Scan::Stopped(text) => {
                self.send_text(text);
                self.done(FinishReason::Stop, counters);
            }
            Scan::Continue(text) => {
                self.send_text(text);
                let rest = self.stops.finish();
                self.send_text(rest);
                self.done(reason, counters);
            }
        }
    }
}

/// Puts one token per generating sequence, then prompt chunks, into the batch.
fn fill_batch(
    batch: &mut LlamaBatch<'_>,
    slots: &mut [Slot],
    holdings: &mut Holdings,
    capacity: usize,
) -> Result<(), String> {
    batch.clear();
    let mut used = 0usize;
    for slot in slots.iter_mut() {
        if let Some(token) = slot.next.take() {
            slot.logits_at = Some(used as i32);
            batch
                .add(token, slot.pos, &[slot.seq], true)
                .map_err(|e| e.to_string())?;
            holdings.extend(slot.seq, &[token]);
            slot.pos += 1;
            used += 1;
        }
    }
    for slot in slots.iter_mut() {
        if used >= capacity {
            break;
        }
        let remaining = slot.tokens.len() - slot.fed;
        if remaining == 0 {
            continue;
        }
        let take = remaining.min(capacity - used);
        let last_chunk = take == remaining;
        for (k, token) in slot.tokens.iter().skip(slot.fed).take(take).enumerate() {
            let is_last = last_chunk && k + 1 == take;
            batch
                .add(*token, slot.pos, &[slot.seq], is_last)
                .map_err(|e| e.to_string())?;
            if is_last {
                slot.logits_at = Some(used as i32);
            }
            slot.pos += 1;
            used += 1;
        }
        holdings.extend(slot.seq, &slot.tokens[slot.fed..slot.fed + take]);
        slot.fed += take;
    }
    Ok(())
}

/// Gives `tokens` a free sequence: the one holding the longest start of it (see `reuse.rs`),
/// trimmed to that start, copied from another sequence first when that one holds much more.
/// Returns the sequence and how many of the tokens its cells already hold.
fn assign(
    ctx: &mut LlamaContext<'_>,
    holdings: &mut Holdings,
    free: &mut Vec<i32>,
    tokens: &[LlamaToken],
    cfg: &WorkerConfig,
) -> Option<(i32, usize)> {
    let plan = holdings.plan(tokens, free, cfg.prompt_reuse)?;
    free.retain(|&s| s != plan.seq);
    let seq = plan.seq;
    if let Some(src) = plan.copy_from {
        // Both positions open: llama.cpp copies the whole per-slot buffer (the only copy it
        // makes between streams), at the start of the next decode.
        if let Err(err) = ctx.copy_kv_cache_seq(src, seq, None, None) {
            tracing::error!(%err, src, seq, "failed to copy a sequence's KV cells");
        }
    }
    let mut keep = plan.reuse;
    let trimmed = ctx.clear_kv_cache_seq(Some(seq as u32), Some(keep as u32), None);
    // A memory that cannot drop a sequence's tail (recurrent state), or that no longer holds
    // its start (a sliding window dropped it), cannot serve the start: the prompt is read whole.
    if keep > 0 && (!matches!(trimmed, Ok(true)) || ctx.kv_cache_seq_pos_min(seq) != 0) {
        keep = 0;
    }
    if keep == 0 {
        clear_seq(ctx, seq);
    }
    holdings.take(seq, plan.copy_from, keep);
    Some((seq, keep))
}

/// Frees a finished sequence's slot. With prompt reuse its cells stay (the next prompt that
/// starts the same way reads only the rest); without, they are cleared.
fn release(
    ctx: &mut LlamaContext<'_>,
    holdings: &mut Holdings,
    free: &mut Vec<i32>,
    seq: i32,
    cfg: &WorkerConfig,
) {
    if !cfg.prompt_reuse {
        clear_seq(ctx, seq);
        holdings.forget(seq);
    }
    free.push(seq);
}

fn clear_seq(ctx: &mut LlamaContext<'_>, seq: i32) {
    if let Err(err) = ctx.clear_kv_cache_seq(Some(seq as u32), None, None) {
        tracing::error!(%err, seq, "failed to clear a sequence from the KV cache");
    }
}

fn fail_all(
    ctx: &mut LlamaContext<'_>,
    slots: &mut Vec<Slot>,
    holdings: &mut Holdings,
    free: &mut Vec<i32>,
    reason: &str,
) {
    tracing::error!(
        reason,
        running = slots.len(),
        "decoding failed; ending the running generations"
    );
    for slot in slots.drain(..) {
        let _ = slot.events.send(Event::Failed(reason.to_owned()));
        free.push(slot.seq);
    }
    ctx.clear_kv_cache();
    holdings.forget_all();
}
