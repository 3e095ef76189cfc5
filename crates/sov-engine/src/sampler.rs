//! llama.cpp's sampler chain for a request's [`SamplingParams`] (checked by
//! [`SamplingParams::validate`] before a request is queued).

use llama_cpp_2::sampling::LlamaSampler;
use llama_cpp_2::token::LlamaToken;
use sov_infer::SamplingParams;

/// How many recent tokens the repetition penalty looks at.
const PENALTY_WINDOW: i32 = 64;

/// Builds llama.cpp's sampler chain: the request's grammar (`constraint`: only tokens it allows
/// stay candidates), penalties (primed with the end of the prompt, `recent`), top-k, top-p,
/// min-p, temperature, then a seeded draw (or a greedy pick when the temperature is 0). The
/// grammar sees only generated tokens: the chain accepts each one after it is drawn.
pub(crate) fn chain(
    params: &SamplingParams,
    n_vocab: i32,
    recent: &[LlamaToken],
    constraint: Option<LlamaSampler>,
) -> LlamaSampler {
    let mut chain = Vec::new();
    if let Some(c) = constraint {
        chain.push(c);
    }
    if (params.repeat_penalty - 1.0).abs() > f32::EPSILON {
        let mut penalties =
            LlamaSampler::penalties(n_vocab, PENALTY_WINDOW, params.repeat_penalty, 0.0, 0.0);
        // The repetition penalty also looks at the end of the prompt, as llama.cpp's tools do.
        penalties.accept_many(recent);
        chain.push(penalties);
    }
    if params.temperature <= 0.0 {
        chain.push(LlamaSampler::greedy());
        return LlamaSampler::chain_simple(chain);
    }
    if params.top_k > 0 {
        chain.push(LlamaSampler::top_k(params.top_k));
    }
    if params.top_p < 1.0 {
        chain.push(LlamaSampler::top_p(params.top_p, 1));
    }
    if params.min_p > 0.0 {
        chain.push(LlamaSampler::min_p(params.min_p, 1));
    }
    chain.push(LlamaSampler::temp(params.temperature));
    let seed = params.seed.unwrap_or_else(random_seed);
    chain.push(LlamaSampler::dist(seed));
    LlamaSampler::chain_simple(chain)
}

fn random_seed() -> u32 {
    let mut bytes = [0u8; 4];
    // A seed only decides which answer is drawn; if the OS cannot give randomness, a time-based
    // seed is an acceptable fallback (it is not a secret).
    if getrandom::fill(&mut bytes).is_err() {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        return nanos;
    }
    u32::from_le_bytes(bytes)
}
