//! The parsers `sov model import DIR_OR_ZIP` runs on a model's files before converting it:
//! the safetensors header (`sov_models::convert::safetensors`), `config.json`, `tokenizer.json`
//! and `1_Pooling/config.json` (`bert`, `wordpiece`), and the tensor plan built from them. None
//! panics; an accepted safetensors header keeps every tensor inside the file and of the size its
//! shape says; a plan's tensors are exactly the header's bytes.
//!
//! Input: byte 0 picks the parser (0 safetensors, 1 config, 2 tokenizer, 3 pooling, 4 a
//! safetensors file planned with a fixed tiny BERT config and vocabulary); the rest is the file.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sov_models::convert::{bert, safetensors, wordpiece};

const CONFIG: &str = r#"{"model_type": "bert", "hidden_size": 8, "num_hidden_layers": 1,
 "num_attention_heads": 2, "intermediate_size": 16, "max_position_embeddings": 32,
 "type_vocab_size": 2, "vocab_size": 4}"#;
const TOKENIZER: &str = r###"{"model": {"type": "WordPiece", "unk_token": "[UNK]",
 "vocab": {"[UNK]": 0, "[CLS]": 1, "[SEP]": 2, "##a": 3}},
 "normalizer": {"type": "BertNormalizer", "lowercase": true},
 "pre_tokenizer": {"type": "BertPreTokenizer"},
 "post_processor": {"type": "BertProcessing", "cls": ["[CLS]", 1], "sep": ["[SEP]", 2]},
 "added_tokens": [{"id": 1, "content": "[CLS]", "special": true}]}"###;

fuzz_target!(|data: &[u8]| {
    let Some((&which, file)) = data.split_first() else {
        return;
    };
    match which % 5 {
        0 => {
            if let Ok(header) = safetensors::parse(file) {
                for t in header.tensors.values() {
                    let end = t
                        .start
                        .checked_add(t.len)
                        .expect("a tensor's end fits in u64");
                    assert!(
                        end <= file.len() as u64,
                        "a tensor outside the file was accepted"
                    );
                    let n = t
                        .shape
                        .iter()
                        .try_fold(t.dtype.size(), |a, d| a.checked_mul(*d));
                    assert_eq!(n, Some(t.len), "a tensor's size is not its shape's");
                }
            }
        }
        1 => {
            if let Ok(c) = bert::parse_config(file) {
                assert!(c.hidden > 0 && c.heads > 0 && c.hidden % c.heads == 0);
            }
        }
        2 => {
            if let Ok(v) = wordpiece::parse_tokenizer(file) {
                assert_eq!(v.tokens.len(), v.types.len());
                for id in [v.unk, v.cls, v.sep] {
                    assert!((id as usize) < v.tokens.len());
                }
            }
        }
        3 => {
            let _ = bert::parse_pooling(file);
        }
        _ => {
            let config = bert::parse_config(CONFIG.as_bytes()).expect("the fixed config parses");
            let vocab = wordpiece::parse_tokenizer(TOKENIZER.as_bytes())
                .expect("the fixed tokenizer parses");
            let Ok(header) = safetensors::parse(file) else {
                return;
            };
            if let Ok(plan) = bert::plan(&config, &vocab, bert::Pooling::Mean, &header) {
                let bytes: u64 = plan.writer.tensors().iter().map(|t| t.bytes).sum();
                let source: u64 = plan.sources.iter().map(|t| t.len).sum();
                assert_eq!(bytes, source);
                assert!(!plan.writer.header().is_empty());
            }
        }
    }
});
