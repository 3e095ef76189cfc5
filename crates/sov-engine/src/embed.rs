//! The embedding worker: its own context (mean pooling), one input at a time.
//!
//! One sequence at a time keeps pooling exact: llama.cpp pools per sequence, and several
//! sequences in one batch need a unified KV cache to come out right. Inputs are short, so the
//! simple loop costs little.

use std::sync::mpsc::Receiver;

use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::token::LlamaToken;
use tokio::sync::oneshot;

use crate::error::EngineError;

/// A batch of inputs to embed.
#[derive(Debug)]
pub(crate) struct Job {
    pub inputs: Vec<Vec<LlamaToken>>,
    pub reply: oneshot::Sender<Result<Vec<Vec<f32>>, EngineError>>,
}

pub(crate) fn run(mut ctx: LlamaContext<'_>, queue: Receiver<Job>, max_tokens: usize) {
    let mut batch = LlamaBatch::new(max_tokens, 1);
    while let Ok(job) = queue.recv() {
        if job.reply.is_closed() {
            continue;
        }
        let result = job
            .inputs
            .iter()
            .map(|tokens| embed_one(&mut ctx, &mut batch, tokens))
            .collect::<Result<Vec<_>, _>>();
        let _ = job.reply.send(result);
    }
}

fn embed_one(
    ctx: &mut LlamaContext<'_>,
    batch: &mut LlamaBatch<'_>,
    tokens: &[LlamaToken],
) -> Result<Vec<f32>, EngineError> {
    ctx.clear_kv_cache();
    batch.clear();
    for (pos, token) in tokens.iter().enumerate() {
        batch
            .add(*token, pos as i32, &[0], true)
            .map_err(|e| EngineError::Decode(e.to_string()))?;
    }
    crate::llama::exclusive(|| ctx.decode(batch))
        .map_err(|e| EngineError::Decode(e.to_string()))?;
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
