//! The embedding worker: its own context (the model's pooling; mean for a generative model),
//! one input at a time. A generative model's inputs go through `decode`; an encoder's (BERT)
//! through `encode`, the pass llama.cpp has for models with no KV cache.
//!
//! One sequence at a time keeps pooling exact: llama.cpp pools per sequence, and several
//! sequences in one batch need a unified KV cache to come out right. Inputs are short, so the
//! simple loop costs little.
//!
//! An input is one decode and is not split: mean pooling is computed over the tokens of one
//! decode. Between two inputs the worker (1) gives up the compute turn, so a waiting generation
//! step runs before the next input, and (2) stops the request if its caller has gone away (the
//! future of `Engine::embed` was dropped), so an abandoned request costs at most one more input.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc::Receiver;

use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::token::LlamaToken;
use tokio::sync::oneshot;

use crate::error::EngineError;
use crate::worker::Counters;

/// A batch of inputs to embed.
#[derive(Debug)]
pub(crate) struct Job {
    pub inputs: Vec<Vec<LlamaToken>>,
    pub reply: oneshot::Sender<Result<Vec<Vec<f32>>, EngineError>>,
}

/// How an input goes through the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Pass {
    /// A generative model's `decode` (it has a KV cache, cleared before each input).
    Decode,
    /// An encoder's `encode` (BERT: no KV cache, attention both ways).
    Encode,
}

pub(crate) fn run(
    mut ctx: LlamaContext<'_>,
    queue: Receiver<Job>,
    max_tokens: usize,
    pass: Pass,
    counters: &Arc<Counters>,
) {
    let mut batch = LlamaBatch::new(max_tokens, 1);
    while let Ok(job) = queue.recv() {
        let mut vectors = Vec::with_capacity(job.inputs.len());
        let mut failed = None;
        let mut abandoned = false;
        for tokens in &job.inputs {
            if job.reply.is_closed() {
                abandoned = true;
                break;
            }
            match embed_one(&mut ctx, &mut batch, tokens, pass) {
                Ok(vector) => {
                    counters.embedded_inputs.fetch_add(1, Ordering::Relaxed);
                    vectors.push(vector);
                }
                Err(err) => {
                    failed = Some(err);
                    break;
                }
            }
        }
        if abandoned {
            counters
                .embeddings_cancelled
                .fetch_add(1, Ordering::Relaxed);
            continue;
        }
        // Counted before the reply, so whoever has the answer also sees it counted.
        counters
            .embeddings_completed
            .fetch_add(1, Ordering::Relaxed);
        let _ = job.reply.send(failed.map_or(Ok(vectors), Err));
    }
}

fn embed_one(
    ctx: &mut LlamaContext<'_>,
    batch: &mut LlamaBatch<'_>,
    tokens: &[LlamaToken],
    pass: Pass,
) -> Result<Vec<f32>, EngineError> {
    batch.clear();
    for (pos, token) in tokens.iter().enumerate() {
        batch
            .add(*token, pos as i32, &[0], true)
            .map_err(|e| EngineError::Decode(e.to_string()))?;
    }
    match pass {
        Pass::Decode => {
            ctx.clear_kv_cache();
            crate::llama::exclusive(|| ctx.decode(batch))
                .map_err(|e| EngineError::Decode(e.to_string()))?;
        }
        Pass::Encode => crate::llama::exclusive(|| ctx.encode(batch))
            .map_err(|e| EngineError::Decode(e.to_string()))?,
    }
    let pooled = ctx
        .embeddings_seq_ith(0)
        .map_err(|_| EngineError::NoEmbedding)?;
    Ok(normalize(pooled))
}

/// L2-normalises a vector, as OpenAI's embeddings are (so a dot product is a cosine similarity).
pub(crate) fn normalize(v: &[f32]) -> Vec<f32> {
    let norm = v
        .iter()
        .map(|x| f64::from(*x) * f64::from(*x))
        .sum::<f64>()
        .sqrt();
    if norm == 0.0 || !norm.is_finite() {
        return v.to_vec();
    }
    v.iter().map(|x| (f64::from(*x) / norm) as f32).collect()
}

#[cfg(test)]
mod tests {
    use super::normalize;

    #[test]
    fn normalized_vectors_have_unit_length() {
        let v = normalize(&[3.0, 4.0]);
        assert!((v[0] - 0.6).abs() < 1e-6 && (v[1] - 0.8).abs() < 1e-6);
        assert_eq!(normalize(&[0.0, 0.0]), vec![0.0, 0.0]);
    }
}
