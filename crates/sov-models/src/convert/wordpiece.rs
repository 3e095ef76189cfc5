//! `tokenizer.json` (Hugging Face `tokenizers`) to the WordPiece vocabulary llama.cpp reads.
//!
//! llama.cpp's WordPiece tokenizer (`llm_tokenizer_wpm_session` in `src/llama-vocab.cpp`)
//! implements `BertNormalizer` (lowercase, accent stripping; text cleaning and CJK splitting
//! always on), `BertPreTokenizer` (split at whitespace and punctuation) and greedy
//! longest-match WordPiece with `##` continuations, and writes `[CLS] text [SEP]`. A
//! `tokenizer.json` that asks for anything else is refused: the model would see other tokens
//! than it was trained on.
//!
//! The vocabulary is stored as llama.cpp matches it (as its own `convert_hf_to_gguf.py` writes
//! it): a special token (an added token marked `special`) is kept as it is, with type CONTROL
//! (3); `##x` (a word's continuation) becomes `x`; every other token `x` becomes `\u{2581}x`,
//! the "phantom space" that marks the start of a word.

use serde::Deserialize;

/// Largest vocabulary accepted.
pub const MAX_VOCAB: usize = 1 << 20;

/// A WordPiece vocabulary in the form llama.cpp stores it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vocab {
    /// Tokens in id order, in "phantom space" form.
    pub tokens: Vec<String>,
    /// llama.cpp token types: 1 normal, 3 control.
    pub types: Vec<i32>,
    /// `[UNK]`.
    pub unk: u32,
    /// `[CLS]`, written first in every input.
    pub cls: u32,
    /// `[SEP]`, written last.
    pub sep: u32,
    /// `[PAD]`, if the vocabulary has one.
    pub pad: Option<u32>,
    /// `[MASK]`, if the vocabulary has one.
    pub mask: Option<u32>,
    /// BertNormalizer `lowercase`.
    pub lowercase: bool,
    /// BertNormalizer `strip_accents` (when unset, it follows `lowercase`, as in `tokenizers`).
    pub strip_accents: bool,
}

#[derive(Deserialize)]
struct RawTokenizer {
    model: RawModel,
    normalizer: Option<serde_json::Value>,
    pre_tokenizer: Option<serde_json::Value>,
    post_processor: Option<serde_json::Value>,
    #[serde(default)]
    added_tokens: Vec<RawAdded>,
}

#[derive(Deserialize)]
struct RawModel {
    #[serde(rename = "type")]
    kind: Option<String>,
    vocab: Option<serde_json::Value>,
    unk_token: Option<String>,
    continuing_subword_prefix: Option<String>,
}

#[derive(Deserialize)]
struct RawAdded {
    id: u64,
    content: String,
    #[serde(default)]
    special: bool,
}

/// Parses and checks `tokenizer.json`: a WordPiece model with the BERT normalizer and
/// pre-tokenizer (what llama.cpp's WordPiece tokenizer implements) and `[CLS] A [SEP]` inputs.
pub fn parse_tokenizer(bytes: &[u8]) -> Result<Vocab, String> {
    let raw: RawTokenizer =
        serde_json::from_slice(bytes).map_err(|e| format!("not valid JSON: {e}"))?;
    let kind = raw.model.kind.as_deref().unwrap_or("none");
    if kind != "WordPiece" {
        return Err(format!(
            "the tokenizer model is `{}`; only WordPiece is supported",
            kind.chars().take(64).collect::<String>()
        ));
    }
    if raw
        .model
        .continuing_subword_prefix
        .as_deref()
        .unwrap_or("##")
        != "##"
    {
        return Err("continuing_subword_prefix is not `##`".into());
    }
    let (lowercase, strip_accents) = normalizer(raw.normalizer.as_ref())?;
    let pre = raw
        .pre_tokenizer
        .as_ref()
        .and_then(|p| p.get("type"))
        .and_then(|t| t.as_str());
    if pre != Some("BertPreTokenizer") {
        return Err(format!(
            "the pre-tokenizer is {}; only BertPreTokenizer is supported",
            pre.map_or_else(
                || "missing".to_owned(),
                |p| format!("`{}`", p.chars().take(64).collect::<String>())
            )
        ));
    }
    let words = vocab_in_order(raw.model.vocab.as_ref())?;
    let mut types = vec![1i32; words.len()];
    for added in &raw.added_tokens {
        let slot = usize::try_from(added.id).ok().filter(|i| *i < words.len());
        let Some(i) = slot.filter(|i| words.get(*i) == Some(&added.content)) else {
            return Err(format!(
                "added token {} `{}` is not the vocabulary's token of that id",
                added.id,
                added.content.chars().take(64).collect::<String>()
            ));
        };
        if added.special
            && let Some(t) = types.get_mut(i)
        {
            *t = 3;
        }
    }
    let id = |token: &str| {
        words
            .iter()
            .position(|w| w == token)
            .and_then(|i| u32::try_from(i).ok())
    };
    let unk_token = raw.model.unk_token.as_deref().unwrap_or("[UNK]");
    let unk = id(unk_token)
        .ok_or_else(|| format!("the unknown token `{unk_token}` is not in the vocabulary"))?;
    let (cls, sep) = cls_sep(raw.post_processor.as_ref(), &id)?;
    let tokens = words
        .iter()
        .zip(&types)
        .map(|(w, t)| phantom(w, *t))
        .collect();
    Ok(Vocab {
        tokens,
        types,
        unk,
        cls,
        sep,
        pad: id("[PAD]"),
        mask: id("[MASK]"),
        lowercase,
        strip_accents,
    })
}

/// llama.cpp's form of a WordPiece token (see the module docs).
fn phantom(word: &str, token_type: i32) -> String {
    if token_type == 3 {
        word.to_owned()
    } else if let Some(rest) = word.strip_prefix("##") {
        rest.to_owned()
    } else {
        format!("\u{2581}{word}")
    }
}

fn normalizer(n: Option<&serde_json::Value>) -> Result<(bool, bool), String> {
    let Some(n) = n.filter(|n| !n.is_null()) else {
        return Err("there is no normalizer; only BertNormalizer is supported".into());
    };
    let kind = n.get("type").and_then(|t| t.as_str()).unwrap_or("");
    if kind != "BertNormalizer" {
        return Err(format!(
            "the normalizer is `{}`; only BertNormalizer is supported",
            kind.chars().take(64).collect::<String>()
        ));
    }
    let flag = |key: &str| match n.get(key) {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(serde_json::Value::Bool(b)) => Ok(Some(*b)),
        Some(_) => Err(format!("normalizer `{key}` is not true, false or null")),
    };
    // llama.cpp always cleans text and splits CJK characters, as BertNormalizer does by default.
    for key in ["clean_text", "handle_chinese_chars"] {
        if flag(key)? == Some(false) {
            return Err(format!(
                "normalizer `{key}` is false; llama.cpp's WordPiece always applies it"
            ));
        }
    }
    let lowercase = flag("lowercase")?.unwrap_or(true);
    let strip_accents = flag("strip_accents")?.unwrap_or(lowercase);
    Ok((lowercase, strip_accents))
}

fn vocab_in_order(vocab: Option<&serde_json::Value>) -> Result<Vec<String>, String> {
    let Some(serde_json::Value::Object(map)) = vocab else {
        return Err("the WordPiece vocabulary is missing or not an object".into());
    };
    if map.is_empty() || map.len() > MAX_VOCAB {
        return Err(format!(
            "the vocabulary holds {} tokens (1 to {MAX_VOCAB} accepted)",
            map.len()
        ));
    }
    let mut words: Vec<Option<String>> = vec![None; map.len()];
    for (word, id) in map {
        let slot = id
            .as_u64()
            .and_then(|i| usize::try_from(i).ok())
            .and_then(|i| words.get_mut(i));
        match slot {
            Some(slot @ None) => *slot = Some(word.clone()),
            _ => {
                return Err(format!(
                    "token `{}` has id {id}: ids must be 0 to {} with none repeated",
                    word.chars().take(64).collect::<String>(),
                    map.len() - 1
                ));
            }
        }
    }
    // Every slot is filled: `map.len()` distinct ids below `map.len()`.
    Ok(words.into_iter().map(Option::unwrap_or_default).collect())
}

/// `[CLS]` and `[SEP]` from a post-processor that writes `[CLS] A [SEP]` for one input.
fn cls_sep(
    post: Option<&serde_json::Value>,
    id: &dyn Fn(&str) -> Option<u32>,
) -> Result<(u32, u32), String> {
    let bad = || {
        "the post-processor does not write `[CLS] text [SEP]` (TemplateProcessing or BertProcessing)".to_owned()
    };
    let post = post.ok_or_else(bad)?;
    let (cls, sep) = match post.get("type").and_then(|t| t.as_str()) {
        Some("BertProcessing") => {
            let name = |key: &str| {
                post.get(key)
                    .and_then(|v| v.get(0))
                    .and_then(|v| v.as_str())
                    .map(str::to_owned)
            };
            (name("cls").ok_or_else(bad)?, name("sep").ok_or_else(bad)?)
        }
        Some("TemplateProcessing") => {
            let single = post
                .get("single")
                .and_then(|s| s.as_array())
                .ok_or_else(bad)?;
            let special = |item: &serde_json::Value| {
                item.get("SpecialToken")
                    .and_then(|s| s.get("id"))
                    .and_then(|s| s.as_str())
                    .map(str::to_owned)
            };
            match single.as_slice() {
                [first, middle, last] if middle.get("Sequence").is_some() => (
                    special(first).ok_or_else(bad)?,
                    special(last).ok_or_else(bad)?,
                ),
                _ => return Err(bad()),
            }
        }
        _ => return Err(bad()),
    };
    let find = |t: &str| {
        id(t).ok_or_else(|| {
            format!(
                "the post-processor's token `{}` is not in the vocabulary",
                t.chars().take(64).collect::<String>()
            )
        })
    };
    Ok((find(&cls)?, find(&sep)?))
}
