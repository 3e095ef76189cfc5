//! Hugging Face BERT (`BertModel`, sentence-transformers layout) to llama.cpp's `bert` GGUF.
//!
//! What llama.cpp reads for `LLM_ARCH_BERT` (`src/models/bert.cpp`, `src/llama-vocab.cpp`,
//! names from `src/llama-arch.cpp`), and where each value comes from here:
//!
//! | GGUF | source |
//! |---|---|
//! | `bert.context_length`, `embedding_length`, `feed_forward_length`, `block_count`, `attention.head_count`, `attention.layer_norm_epsilon` | `config.json` |
//! | `bert.attention.causal` = false | a BERT encoder attends both ways |
//! | `bert.pooling_type` (1 mean, 2 CLS, 3 last) | `1_Pooling/config.json` |
//! | `tokenizer.ggml.model` = `bert`, `token_type_count` | WordPiece; `config.json` `type_vocab_size` |
//! | `tokenizer.ggml.tokens`, `token_type` | `tokenizer.json` vocab in id order, "phantom space" form (`wordpiece`) |
//! | `*_token_id`, `add_bos_token`, `add_sep_token` | `tokenizer.json` (`[CLS]` as BOS, as llama.cpp does) |
//! | `tokenizer.ggml.normalizer.lowercase`, `strip_accents` | `tokenizer.json`'s BertNormalizer |
//!
//! Tensors keep their bytes: a safetensors `[rows, cols]` F32 tensor is row-major, which is a
//! ggml tensor of dimensions `[cols, rows]`. Only F32 is accepted, so the output is exactly the
//! weights that were published. `embeddings.position_ids` and the pooler (unused for sentence
//! embeddings) are dropped; any other tensor that is not BERT's is refused.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::safetensors::{Dtype, Header, TensorInfo};
use super::wordpiece::Vocab;
use crate::gguf::writer::{GgufWriter, MetaValue, TensorEntry};

/// llama.cpp's `LLAMA_MAX_LAYERS`.
const MAX_LAYERS: u32 = 512;

/// The parts of `config.json` the converter uses, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct BertConfig {
    /// `hidden_size`.
    pub hidden: u32,
    /// `num_hidden_layers`.
    pub layers: u32,
    /// `num_attention_heads`.
    pub heads: u32,
    /// `intermediate_size`.
    pub ffn: u32,
    /// `max_position_embeddings`: the context length.
    pub max_positions: u32,
    /// `type_vocab_size`.
    pub type_vocab: u32,
    /// `vocab_size`.
    pub vocab: u32,
    /// `layer_norm_eps`.
    pub layer_norm_eps: f32,
}

#[derive(Deserialize)]
struct RawConfig {
    model_type: Option<String>,
    hidden_size: Option<u32>,
    num_hidden_layers: Option<u32>,
    num_attention_heads: Option<u32>,
    intermediate_size: Option<u32>,
    max_position_embeddings: Option<u32>,
    type_vocab_size: Option<u32>,
    vocab_size: Option<u32>,
    layer_norm_eps: Option<f64>,
    hidden_act: Option<String>,
    position_embedding_type: Option<String>,
    is_decoder: Option<bool>,
}

/// Parses and checks `config.json`; the error is the reason, for the caller to name the file.
pub fn parse_config(bytes: &[u8]) -> Result<BertConfig, String> {
    let raw: RawConfig =
        serde_json::from_slice(bytes).map_err(|e| format!("not valid JSON: {e}"))?;
    match raw.model_type.as_deref() {
        Some("bert") => {}
        Some(other) => {
            return Err(format!(
                "model_type is `{}`; only `bert` is supported",
                other.chars().take(64).collect::<String>()
            ));
        }
        None => return Err("model_type is missing".into()),
    }
    if raw.is_decoder == Some(true) {
        return Err("is_decoder is true; only BERT encoders are supported".into());
    }
    if let Some(act) = raw.hidden_act.as_deref()
        && act != "gelu"
    {
        return Err(format!(
            "hidden_act is `{}`; llama.cpp's BERT uses `gelu`",
            act.chars().take(64).collect::<String>()
        ));
    }
    if let Some(kind) = raw.position_embedding_type.as_deref()
        && kind != "absolute"
    {
        return Err(format!(
            "position_embedding_type is `{}`; only `absolute` is supported",
            kind.chars().take(64).collect::<String>()
        ));
    }
    let field = |v: Option<u32>, name: &str| match v {
        Some(0) => Err(format!("{name} is 0")),
        Some(v) => Ok(v),
        None => Err(format!("{name} is missing")),
    };
    let config = BertConfig {
        hidden: field(raw.hidden_size, "hidden_size")?,
        layers: field(raw.num_hidden_layers, "num_hidden_layers")?,
        heads: field(raw.num_attention_heads, "num_attention_heads")?,
        ffn: field(raw.intermediate_size, "intermediate_size")?,
        max_positions: field(raw.max_position_embeddings, "max_position_embeddings")?,
        type_vocab: raw.type_vocab_size.unwrap_or(2).max(1),
        vocab: field(raw.vocab_size, "vocab_size")?,
        layer_norm_eps: match raw.layer_norm_eps {
            None => 1e-12,
            Some(e) if e.is_finite() && e > 0.0 && e < 1.0 => e as f32,
            Some(e) => return Err(format!("layer_norm_eps {e} is not a small positive number")),
        },
    };
    if !config.hidden.is_multiple_of(config.heads) {
        return Err(format!(
            "hidden_size {} is not a multiple of num_attention_heads {}",
            config.hidden, config.heads
        ));
    }
    if config.layers > MAX_LAYERS {
        return Err(format!(
            "{} layers, llama.cpp takes at most {MAX_LAYERS}",
            config.layers
        ));
    }
    if config.vocab as usize > super::wordpiece::MAX_VOCAB {
        return Err(format!(
            "vocab_size {} is over {}",
            config.vocab,
            super::wordpiece::MAX_VOCAB
        ));
    }
    Ok(config)
}

/// How the sentence embedding is pooled (`1_Pooling/config.json`), as llama.cpp numbers it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pooling {
    /// Mean of the token vectors (`LLAMA_POOLING_TYPE_MEAN`, 1).
    Mean,
    /// The `[CLS]` token's vector (2).
    Cls,
    /// The last token's vector (3).
    Last,
}

impl Pooling {
    /// llama.cpp's `enum llama_pooling_type` value.
    pub fn gguf_value(self) -> u32 {
        match self {
            Self::Mean => 1,
            Self::Cls => 2,
            Self::Last => 3,
        }
    }
}

/// Parses sentence-transformers' `1_Pooling/config.json`: exactly one mode llama.cpp has.
pub fn parse_pooling(bytes: &[u8]) -> Result<Pooling, String> {
    let modes: BTreeMap<String, serde_json::Value> =
        serde_json::from_slice(bytes).map_err(|e| format!("not valid JSON: {e}"))?;
    let on: Vec<&str> = modes
        .iter()
        .filter(|(k, v)| k.starts_with("pooling_mode_") && v.as_bool() == Some(true))
        .map(|(k, _)| k.as_str())
        .collect();
    match on.as_slice() {
        ["pooling_mode_mean_tokens"] => Ok(Pooling::Mean),
        ["pooling_mode_cls_token"] => Ok(Pooling::Cls),
        ["pooling_mode_lasttoken"] => Ok(Pooling::Last),
        [] => Err("no pooling mode is on".into()),
        [one] => Err(format!(
            "pooling mode `{}` is not one llama.cpp has (mean, cls, last token)",
            one.chars().take(64).collect::<String>()
        )),
        _ => Err(format!(
            "several pooling modes are on ({}); llama.cpp pools one way",
            on.join(", ")
        )),
    }
}

/// The GGUF file to write: metadata, and for each of its tensors (in order) the safetensors
/// tensor whose bytes it holds.
#[derive(Debug)]
pub struct Plan {
    /// Metadata and tensor infos.
    pub writer: GgufWriter,
    /// The source of each tensor, in the writer's order.
    pub sources: Vec<TensorInfo>,
}

/// A tensor the converter cannot use: the message names it and says why.
pub type TensorProblem = (String, String);

/// Maps the checked inputs to a GGUF plan, checking every tensor's presence, type and shape.
pub fn plan(
    config: &BertConfig,
    vocab: &Vocab,
    pooling: Pooling,
    header: &Header,
) -> Result<Plan, TensorProblem> {
    if vocab.tokens.len() != config.vocab as usize {
        return Err((
            "embeddings.word_embeddings.weight".into(),
            format!(
                "config.json says vocab_size {}, tokenizer.json holds {} tokens",
                config.vocab,
                vocab.tokens.len()
            ),
        ));
    }
    let mut w = GgufWriter::new();
    metadata(&mut w, config, vocab, pooling);
    let (h, f) = (u64::from(config.hidden), u64::from(config.ffn));
    let mut wanted: Vec<(String, String, Vec<u64>)> = vec![
        (
            "embeddings.word_embeddings.weight".into(),
            "token_embd.weight".into(),
            vec![u64::from(config.vocab), h],
        ),
        (
            "embeddings.token_type_embeddings.weight".into(),
            "token_types.weight".into(),
            vec![u64::from(config.type_vocab), h],
        ),
        (
            "embeddings.position_embeddings.weight".into(),
            "position_embd.weight".into(),
            vec![u64::from(config.max_positions), h],
        ),
        (
            "embeddings.LayerNorm.weight".into(),
            "token_embd_norm.weight".into(),
            vec![h],
        ),
        (
            "embeddings.LayerNorm.bias".into(),
            "token_embd_norm.bias".into(),
            vec![h],
        ),
    ];
    for i in 0..config.layers {
        let hf = |s: &str| format!("encoder.layer.{i}.{s}");
        let gg = |s: &str| format!("blk.{i}.{s}");
        // (BertModel name, GGUF name, output width, input width; none for a layer norm)
        for (from, to, out, input) in [
            ("attention.self.query", "attn_q", h, Some(h)),
            ("attention.self.key", "attn_k", h, Some(h)),
            ("attention.self.value", "attn_v", h, Some(h)),
            ("attention.output.dense", "attn_output", h, Some(h)),
            ("attention.output.LayerNorm", "attn_output_norm", h, None),
            ("intermediate.dense", "ffn_up", f, Some(h)),
            ("output.dense", "ffn_down", h, Some(f)),
            ("output.LayerNorm", "layer_output_norm", h, None),
        ] {
            let weight = match input {
                Some(input) => vec![out, input],
                None => vec![out],
            };
            wanted.push((
                hf(&format!("{from}.weight")),
                gg(&format!("{to}.weight")),
                weight,
            ));
            wanted.push((
                hf(&format!("{from}.bias")),
                gg(&format!("{to}.bias")),
                vec![out],
            ));
        }
    }
    // Each source tensor by its BertModel name ("bert." prefixed in BertFor* checkpoints).
    let mut by_name: BTreeMap<&str, &TensorInfo> = BTreeMap::new();
    for (name, info) in &header.tensors {
        let short = name.strip_prefix("bert.").unwrap_or(name);
        if by_name.insert(short, info).is_some() {
            return Err((
                name.clone(),
                "it is in the file twice (with and without `bert.`)".into(),
            ));
        }
    }
    let mut sources = Vec::with_capacity(wanted.len());
    for (from, to, shape) in wanted {
        let info = by_name
            .remove(from.as_str())
            .ok_or_else(|| (from.clone(), "it is missing".to_owned()))?;
        if info.dtype != Dtype::F32 {
            return Err((
                from,
                format!("it is {:?}; only F32 weights are converted", info.dtype),
            ));
        }
        if info.shape != shape {
            return Err((
                from,
                format!(
                    "its shape is {:?}, config.json implies {shape:?}",
                    info.shape
                ),
            ));
        }
        let dims = shape.iter().rev().copied().collect();
        w.tensor(TensorEntry {
            name: to,
            dims,
            ggml_type: 0,
            bytes: info.len,
        });
        sources.push(info.clone());
    }
    for name in [
        "embeddings.position_ids",
        "pooler.dense.weight",
        "pooler.dense.bias",
    ] {
        by_name.remove(name);
    }
    if let Some(extra) = by_name.keys().next() {
        return Err((
            (*extra).to_owned(),
            "it is not a tensor of BertModel; the converter knows BertModel's tensors only".into(),
        ));
    }
    Ok(Plan { writer: w, sources })
}

fn metadata(w: &mut GgufWriter, c: &BertConfig, v: &Vocab, pooling: Pooling) {
    use MetaValue::{Bool, F32, I32Array, Str, StrArray, U32};
    w.meta("general.architecture", Str("bert".into()));
    w.meta("general.file_type", U32(0));
    w.meta("bert.context_length", U32(c.max_positions));
    w.meta("bert.embedding_length", U32(c.hidden));
    w.meta("bert.feed_forward_length", U32(c.ffn));
    w.meta("bert.block_count", U32(c.layers));
    w.meta("bert.attention.head_count", U32(c.heads));
    w.meta("bert.attention.layer_norm_epsilon", F32(c.layer_norm_eps));
    w.meta("bert.attention.causal", Bool(false));
    w.meta("bert.pooling_type", U32(pooling.gguf_value()));
    w.meta("tokenizer.ggml.model", Str("bert".into()));
    w.meta("tokenizer.ggml.token_type_count", U32(c.type_vocab));
    w.meta("tokenizer.ggml.tokens", StrArray(v.tokens.clone()));
    w.meta("tokenizer.ggml.token_type", I32Array(v.types.clone()));
    w.meta("tokenizer.ggml.bos_token_id", U32(v.cls));
    w.meta("tokenizer.ggml.cls_token_id", U32(v.cls));
    w.meta("tokenizer.ggml.seperator_token_id", U32(v.sep));
    w.meta("tokenizer.ggml.unknown_token_id", U32(v.unk));
    if let Some(pad) = v.pad {
        w.meta("tokenizer.ggml.padding_token_id", U32(pad));
    }
    if let Some(mask) = v.mask {
        w.meta("tokenizer.ggml.mask_token_id", U32(mask));
    }
    w.meta("tokenizer.ggml.add_bos_token", Bool(true));
    w.meta("tokenizer.ggml.add_sep_token", Bool(true));
    w.meta("tokenizer.ggml.add_eos_token", Bool(false));
    w.meta("tokenizer.ggml.normalizer.lowercase", Bool(v.lowercase));
    w.meta(
        "tokenizer.ggml.normalizer.strip_accents",
        Bool(v.strip_accents),
    );
}
