//! LoRA adapters for tests (here and, with the `fixtures` feature, in other crates): GGUF files
//! laid out as llama.cpp's `convert_lora_to_gguf.py` writes them, for a llama-architecture base
//! of width `n_embd`, on the attention output of its first layers.
//!
//! There is no trained adapter for the starter model that a package ships, so the weights are a
//! fixed pseudo-random sequence: they change what the model says (the engine's and the CLI's
//! tests check that, and that nothing else changes), and a zero `B` changes nothing at all.

use super::writer::{GgufWriter, MetaValue, TensorEntry};

/// The adapter's rank; `adapter.lora.alpha` equals it, so llama.cpp scales it by 1.
pub const RANK: u64 = 4;

/// What the adapter is made of.
#[derive(Debug, Clone, Copy)]
pub struct Lora<'a> {
    /// `general.architecture` (the base's: `llama` for SmolLM2).
    pub arch: &'a str,
    /// The base's `{arch}.embedding_length` (576 for SmolLM2-135M).
    pub n_embd: u64,
    /// Layers `0..layers` get an adapter on `blk.N.attn_output.weight`.
    pub layers: u32,
    /// Each weight of `A` and `B` lies in `[-magnitude, magnitude]`. 0 makes `B` zero (and `A`
    /// small, not zero): llama.cpp still computes the adapter, which then adds exactly nothing.
    pub magnitude: f32,
    /// Changes the weights.
    pub seed: u64,
}

impl Lora<'_> {
    /// The adapter's GGUF bytes.
    pub fn bytes(&self) -> Vec<u8> {
        let mut w = GgufWriter::new();
        w.meta("general.architecture", MetaValue::Str(self.arch.to_owned()));
        w.meta("general.type", MetaValue::Str("adapter".into()));
        w.meta(
            "general.name",
            MetaValue::Str("sovereign test adapter".into()),
        );
        w.meta("adapter.type", MetaValue::Str("lora".into()));
        w.meta("adapter.lora.alpha", MetaValue::F32(RANK as f32));
        let mut data = Vec::new();
        let mut state = self.seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        let mut next = move || {
            // xorshift64*: a fixed sequence, the same on every machine.
            state ^= state >> 12;
            state ^= state << 25;
            state ^= state >> 27;
            let x = state.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 40;
            (x as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        };
        for layer in 0..self.layers {
            let target = format!("blk.{layer}.attn_output.weight");
            // `A` maps the input (ne0 = n_embd) to the rank; `B` the rank to the output.
            for (suffix, dims, zero) in [
                ("lora_a", [self.n_embd, RANK], false),
                ("lora_b", [RANK, self.n_embd], self.magnitude == 0.0),
            ] {
                let count = dims[0] * dims[1];
                w.tensor(TensorEntry {
                    name: format!("{target}.{suffix}"),
                    dims: dims.to_vec(),
                    ggml_type: 0,
                    bytes: count * 4,
                });
                let mut values = Vec::with_capacity(count as usize * 4);
                for _ in 0..count {
                    let v = if zero {
                        0.0
                    } else {
                        next() * self.magnitude.max(0.01)
                    };
                    values.extend_from_slice(&v.to_le_bytes());
                }
                data.push(values);
            }
        }
        let mut out = w.header();
        for (i, values) in data.iter().enumerate() {
            out.extend_from_slice(values);
            out.resize(out.len() + w.padding_after(i), 0);
        }
        out
    }
}
