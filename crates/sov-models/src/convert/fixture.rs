//! A tiny BERT in Hugging Face's sentence-transformers layout, for tests (here and, with the
//! `fixtures` feature, in other crates): 2 layers, width 8, 2 heads, a 24-token vocabulary,
//! weights from a fixed pseudo-random sequence. It converts and runs like a real one.

use std::fs;
use std::io::Write;
use std::path::Path;

/// The vocabulary, in id order: the five BERT specials first, as in `bert-base-uncased`.
pub const VOCAB: [&str; 24] = [
    "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "cat", "sat", "on", "mat", ".", "##s",
    "dog", "a", "run", "##ning", ",", "is", "cafe", "!", "1", "##2", "big", "red",
];
/// Width of the tiny model.
pub const HIDDEN: usize = 8;
/// Its context length.
pub const MAX_POSITIONS: usize = 32;
const FFN: usize = 16;
const LAYERS: usize = 2;

/// `config.json` of the tiny model.
pub fn config_json() -> String {
    format!(
        r#"{{"architectures": ["BertModel"], "model_type": "bert", "hidden_act": "gelu",
  "hidden_size": {HIDDEN}, "num_hidden_layers": {LAYERS}, "num_attention_heads": 2,
  "intermediate_size": {FFN}, "max_position_embeddings": {MAX_POSITIONS}, "type_vocab_size": 2,
  "vocab_size": {}, "layer_norm_eps": 1e-12, "position_embedding_type": "absolute"}}"#,
        VOCAB.len()
    )
}

/// `tokenizer.json` of the tiny model (the shape `tokenizers` writes for BERT).
pub fn tokenizer_json() -> String {
    let vocab: Vec<String> = VOCAB
        .iter()
        .enumerate()
        .map(|(i, t)| format!("{t:?}: {i}"))
        .collect();
    let added: Vec<String> = (0..5)
        .map(|i| format!(r#"{{"id": {i}, "content": {:?}, "special": true, "single_word": false, "lstrip": false, "rstrip": false, "normalized": false}}"#, VOCAB[i]))
        .collect();
    format!(
        r###"{{"version": "1.0", "truncation": null, "padding": null, "added_tokens": [{}],
  "normalizer": {{"type": "BertNormalizer", "clean_text": true, "handle_chinese_chars": true, "strip_accents": null, "lowercase": true}},
  "pre_tokenizer": {{"type": "BertPreTokenizer"}},
  "post_processor": {{"type": "TemplateProcessing",
    "single": [{{"SpecialToken": {{"id": "[CLS]", "type_id": 0}}}}, {{"Sequence": {{"id": "A", "type_id": 0}}}}, {{"SpecialToken": {{"id": "[SEP]", "type_id": 0}}}}],
    "pair": [], "special_tokens": {{}}}},
  "decoder": {{"type": "WordPiece", "prefix": "##", "cleanup": true}},
  "model": {{"type": "WordPiece", "unk_token": "[UNK]", "continuing_subword_prefix": "##", "max_input_chars_per_word": 100, "vocab": {{{}}}}}}}"###,
        added.join(", "),
        vocab.join(", ")
    )
}

/// `1_Pooling/config.json`: mean pooling.
pub const POOLING_JSON: &str = r#"{"word_embedding_dimension": 8, "pooling_mode_cls_token": false, "pooling_mode_mean_tokens": true, "pooling_mode_max_tokens": false, "pooling_mode_mean_sqrt_len_tokens": false}"#;

/// The tiny model's tensors: `(name, shape)` in BertModel's names, the extras a real
/// checkpoint has (`position_ids`, the pooler) included.
pub fn tensor_shapes() -> Vec<(String, Vec<usize>)> {
    let mut out = vec![
        ("embeddings.position_ids".to_owned(), vec![1, MAX_POSITIONS]),
        (
            "embeddings.word_embeddings.weight".into(),
            vec![VOCAB.len(), HIDDEN],
        ),
        (
            "embeddings.position_embeddings.weight".into(),
            vec![MAX_POSITIONS, HIDDEN],
        ),
        (
            "embeddings.token_type_embeddings.weight".into(),
            vec![2, HIDDEN],
        ),
        ("embeddings.LayerNorm.weight".into(), vec![HIDDEN]),
        ("embeddings.LayerNorm.bias".into(), vec![HIDDEN]),
    ];
    for i in 0..LAYERS {
        for (part, rows, cols) in [
            ("attention.self.query", HIDDEN, Some(HIDDEN)),
            ("attention.self.key", HIDDEN, Some(HIDDEN)),
            ("attention.self.value", HIDDEN, Some(HIDDEN)),
            ("attention.output.dense", HIDDEN, Some(HIDDEN)),
            ("attention.output.LayerNorm", HIDDEN, None),
            ("intermediate.dense", FFN, Some(HIDDEN)),
            ("output.dense", HIDDEN, Some(FFN)),
            ("output.LayerNorm", HIDDEN, None),
        ] {
            let weight = cols.map_or_else(|| vec![rows], |c| vec![rows, c]);
            out.push((format!("encoder.layer.{i}.{part}.weight"), weight));
            out.push((format!("encoder.layer.{i}.{part}.bias"), vec![rows]));
        }
    }
    out.push(("pooler.dense.weight".into(), vec![HIDDEN, HIDDEN]));
    out.push(("pooler.dense.bias".into(), vec![HIDDEN]));
    out
}

/// A safetensors file of `tensors` (`(name, dtype, shape, bytes)`), written as PyTorch's
/// `safetensors` does: header keys sorted, data in header order.
pub fn safetensors(tensors: &[(String, &str, Vec<usize>, Vec<u8>)]) -> Vec<u8> {
    let mut entries = Vec::new();
    let mut offset = 0usize;
    for (name, dtype, shape, bytes) in tensors {
        entries.push(format!(
            r#"{name:?}: {{"dtype": "{dtype}", "shape": {shape:?}, "data_offsets": [{offset}, {}]}}"#,
            offset + bytes.len()
        ));
        offset += bytes.len();
    }
    let header = format!(
        r#"{{"__metadata__": {{"format": "pt"}}, {}}}"#,
        entries.join(", ")
    );
    let mut out = (header.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(header.as_bytes());
    for (_, _, _, bytes) in tensors {
        out.extend_from_slice(bytes);
    }
    out
}

/// The tiny model's weights: F32 from a fixed sequence (layer-norm weights near 1), the
/// position ids as I64.
pub fn weights() -> Vec<(String, &'static str, Vec<usize>, Vec<u8>)> {
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        ((state >> 40) as f32 / (1u64 << 24) as f32) - 0.5
    };
    tensor_shapes()
        .into_iter()
        .map(|(name, shape)| {
            let n: usize = shape.iter().product();
            if name == "embeddings.position_ids" {
                let bytes = (0..n as i64).flat_map(i64::to_le_bytes).collect();
                return (name, "I64", shape, bytes);
            }
            let norm = name.ends_with("LayerNorm.weight");
            let bytes = (0..n)
                .map(|_| if norm { 1.0 + next() / 4.0 } else { next() })
                .flat_map(f32::to_le_bytes)
                .collect();
            (name, "F32", shape, bytes)
        })
        .collect()
}

/// Writes the tiny model's four files into `dir`.
pub fn write_dir(dir: &Path) -> std::io::Result<()> {
    fs::create_dir_all(dir.join("1_Pooling"))?;
    fs::write(dir.join("config.json"), config_json())?;
    fs::write(dir.join("tokenizer.json"), tokenizer_json())?;
    fs::write(dir.join("1_Pooling/config.json"), POOLING_JSON)?;
    fs::write(dir.join("model.safetensors"), safetensors(&weights()))
}

/// Writes a `.zip` (stored, not compressed) of `(name, bytes)` entries, in order.
pub fn write_zip(path: &Path, entries: &[(&str, &[u8])]) -> std::io::Result<()> {
    let mut zip = zip::ZipWriter::new(fs::File::create(path)?);
    let options =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    for (name, bytes) in entries {
        zip.start_file(*name, options)
            .map_err(std::io::Error::other)?;
        zip.write_all(bytes)?;
    }
    zip.finish().map_err(std::io::Error::other)?;
    Ok(())
}

/// The tiny model's four files as `(name, bytes)`, for [`write_zip`].
pub fn files() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        ("config.json", config_json().into_bytes()),
        ("tokenizer.json", tokenizer_json().into_bytes()),
        ("1_Pooling/config.json", POOLING_JSON.as_bytes().to_vec()),
        ("model.safetensors", safetensors(&weights())),
    ]
}
