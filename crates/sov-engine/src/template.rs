//! Chat templates: the model's own Jinja template, rendered faithfully.
//!
//! llama.cpp's built-in template matcher recognises a template by looking for marker strings and
//! then formats messages with hand-written C++; parts of a template it does not model (SmolLM2's
//! default system prompt, for example) are silently dropped. We render the template itself with
//! minijinja, with the Python-compatible string methods (`.strip()`, `.startswith()`, ...) and the
//! helpers that Hugging Face templates expect (`raise_exception`, `strftime_now`, and its
//! Python `tojson`: [`crate::pyjson`]).
//!
//! A template **takes tools** when it reads the `tools` variable and writes calls as
//! `<tool_call>` (the Hermes format: Qwen 2.5 and the models tuned like it): the same call
//! syntax the grammar of `sov_infer::functions` enforces, so the model is offered its functions
//! in its own words and answers in its own format. Other templates get the generic format's
//! system message instead (`sov_infer::functions`).

use minijinja::{Environment, Error as JinjaError, ErrorKind, Value, context};
use sov_infer::ChatMessage;

use crate::error::EngineError;

/// A compiled chat template with the special-token strings it refers to.
#[derive(Debug)]
pub struct ChatTemplate {
    env: Environment<'static>,
    bos_token: String,
    eos_token: String,
    takes_tools: bool,
}

const NAME: &str = "chat";

impl ChatTemplate {
    /// Compiles `source`. Fails if the template does not parse.
    pub fn new(source: &str, bos_token: &str, eos_token: &str) -> Result<Self, EngineError> {
        let mut env = Environment::new();
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        env.set_trim_blocks(false);
        env.set_lstrip_blocks(false);
        env.add_function("raise_exception", raise_exception);
        env.add_function("strftime_now", strftime_now);
        env.add_filter("tojson", crate::pyjson::tojson);
        env.add_template_owned(NAME, source.to_owned())
            .map_err(|source| EngineError::Template { source })?;
        let takes_tools = source.contains(sov_infer::functions::OPEN)
            && env
                .get_template(NAME)
                .map_err(|source| EngineError::Template { source })?
                .undeclared_variables(false)
                .contains("tools");
        Ok(Self {
            env,
            bos_token: bos_token.to_owned(),
            eos_token: eos_token.to_owned(),
            takes_tools,
        })
    }

    /// Whether the template offers tools itself (see the module docs).
    pub fn takes_tools(&self) -> bool {
        self.takes_tools
    }

    /// Renders `messages` with the generation prompt for the assistant's turn appended, and
    /// `tools` (OpenAI's shape: `{"type": "function", "function": {...}}`) in the `tools`
    /// variable when given (`none` otherwise, as Hugging Face's renderer passes it).
    pub fn render(
        &self,
        messages: &[ChatMessage],
        tools: Option<&[serde_json::Value]>,
    ) -> Result<String, EngineError> {
        let template = self
            .env
            .get_template(NAME)
            .map_err(|source| EngineError::Template { source })?;
        template
            .render(context! {
                messages => messages,
                tools => tools,
                add_generation_prompt => true,
                bos_token => self.bos_token,
                eos_token => self.eos_token,
            })
            .map_err(|source| EngineError::Template { source })
    }
}

fn raise_exception(message: String) -> Result<Value, JinjaError> {
    Err(JinjaError::new(ErrorKind::InvalidOperation, message))
}

fn strftime_now(format: String) -> Result<Value, JinjaError> {
    let now = time::OffsetDateTime::now_utc();
    // The formats templates use in practice; anything else is an error rather than a guess.
    let rendered = match format.as_str() {
        "%d %b %Y" => now
            .format(time::macros::format_description!(
                "[day] [month repr:short] [year]"
            ))
            .map_err(|e| JinjaError::new(ErrorKind::InvalidOperation, e.to_string()))?,
        "%Y-%m-%d" => now
            .format(time::macros::format_description!("[year]-[month]-[day]"))
            .map_err(|e| JinjaError::new(ErrorKind::InvalidOperation, e.to_string()))?,
        "%B %d, %Y" => now
            .format(time::macros::format_description!(
                "[month repr:long] [day], [year]"
            ))
            .map_err(|e| JinjaError::new(ErrorKind::InvalidOperation, e.to_string()))?,
        other => {
            return Err(JinjaError::new(
                ErrorKind::InvalidOperation,
                format!("strftime_now: unsupported format {other:?}"),
            ));
        }
    };
    Ok(Value::from(rendered))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// SmolLM2-135M-Instruct's template, as shipped in its GGUF (`tokenizer.chat_template`).
    const SMOLLM2: &str = "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";

    fn msg(role: &str, content: &str) -> ChatMessage {
        ChatMessage {
            role: role.into(),
            content: content.into(),
        }
    }

    #[test]
    fn smollm2_keeps_its_default_system_prompt() {
        let t = ChatTemplate::new(SMOLLM2, "<|im_start|>", "<|im_end|>").unwrap();
        let out = t.render(&[msg("user", "Hi")], None).unwrap();
        assert_eq!(
            out,
            "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
        );
    }

    #[test]
    fn explicit_system_prompt_replaces_default() {
        let t = ChatTemplate::new(SMOLLM2, "", "").unwrap();
        let out = t
            .render(&[msg("system", "Be brief."), msg("user", "Hi")], None)
            .unwrap();
        assert!(out.starts_with("<|im_start|>system\nBe brief.<|im_end|>\n"));
        assert!(!out.contains("SmolLM"));
    }

    #[test]
    fn python_methods_and_raise_exception() {
        let src = "{% if messages[0]['role'] == 'bad' %}{{ raise_exception('no bad roles') }}{% endif %}{{ bos_token }}{{ messages[0]['content'].strip() }}";
        let t = ChatTemplate::new(src, "<s>", "</s>").unwrap();
        assert_eq!(t.render(&[msg("user", "  x  ")], None).unwrap(), "<s>x");
        let err = t.render(&[msg("bad", "x")], None).unwrap_err();
        let reason = std::error::Error::source(&err).unwrap().to_string();
        assert!(reason.contains("no bad roles"), "{reason}");
    }

    #[test]
    fn gemma_folds_the_system_message_into_the_first_user_turn() {
        let t = ChatTemplate::new(sov_models::templates::GEMMA, "<bos>", "<eos>").unwrap();
        let out = t
            .render(
                &[
                    msg("system", "Be brief."),
                    msg("user", "  Hi  "),
                    msg("assistant", "Hello."),
                    msg("user", "Name a colour."),
                ],
                None,
            )
            .unwrap();
        assert_eq!(
            out,
            "<bos><start_of_turn>user\nBe brief.\n\nHi<end_of_turn>\n<start_of_turn>model\nHello.<end_of_turn>\n<start_of_turn>user\nName a colour.<end_of_turn>\n<start_of_turn>model\n"
        );
        let plain = t.render(&[msg("user", "Hi")], None).unwrap();
        assert_eq!(
            plain,
            "<bos><start_of_turn>user\nHi<end_of_turn>\n<start_of_turn>model\n"
        );
        let err = t
            .render(&[msg("user", "a"), msg("user", "b")], None)
            .unwrap_err();
        let reason = std::error::Error::source(&err).unwrap().to_string();
        assert!(reason.contains("must alternate"), "{reason}");
    }

    #[test]
    fn chatml_renders_turns_and_the_generation_prompt() {
        let t = ChatTemplate::new(sov_models::templates::CHATML, "", "").unwrap();
        let out = t
            .render(&[msg("system", "S"), msg("user", "U")], None)
            .unwrap();
        assert_eq!(
            out,
            "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nU<|im_end|>\n<|im_start|>assistant\n"
        );
    }

    #[test]
    fn broken_template_is_an_error() {
        assert!(ChatTemplate::new("{% for %}", "", "").is_err());
    }

    const HERMES: &str = include_str!("../tests/hermes_tools.jinja");

    #[test]
    fn a_template_that_writes_tool_calls_takes_tools() {
        let t = ChatTemplate::new(HERMES, "", "").unwrap();
        assert!(t.takes_tools());
        for other in [
            SMOLLM2,
            sov_models::templates::GEMMA,
            sov_models::templates::CHATML,
        ] {
            assert!(!ChatTemplate::new(other, "", "").unwrap().takes_tools());
        }
        // Reading `tools` without writing `<tool_call>`, or the marker without `tools`: not a
        // format the grammar knows.
        let reads = "{% if tools %}{{ tools | tojson }}{% endif %}{{ messages[0]['content'] }}";
        assert!(!ChatTemplate::new(reads, "", "").unwrap().takes_tools());
        let marker = "<tool_call>{{ messages[0]['content'] }}";
        assert!(!ChatTemplate::new(marker, "", "").unwrap().takes_tools());
    }

    #[test]
    fn tools_are_written_in_the_template_s_own_words() {
        let t = ChatTemplate::new(HERMES, "", "").unwrap();
        let tool = serde_json::json!({"type": "function", "function": {"name": "get_time", "description": "The time <now>", "parameters": {"type": "object", "properties": {"zone": {"type": "string"}}}}});
        let out = t
            .render(
                &[msg("system", "Be brief."), msg("user", "Hi")],
                Some(&[tool]),
            )
            .unwrap();
        assert!(
            out.starts_with(
                "<|im_start|>system\nBe brief.\n\nYou may call one or more functions. Their signatures are within <tools></tools>:\n<tools>\n{\"type\": \"function\", \"function\": {\"name\": \"get_time\", \"description\": \"The time <now>\", \"parameters\": {\"type\": \"object\", \"properties\": {\"zone\": {\"type\": \"string\"}}}}}\n</tools>\n"
            ),
            "{out}"
        );
        assert!(
            out.ends_with("<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"),
            "{out}"
        );
        // Without tools, the same template is plain ChatML.
        let plain = t.render(&[msg("user", "Hi")], None).unwrap();
        assert_eq!(
            plain,
            "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
        );
    }
}
