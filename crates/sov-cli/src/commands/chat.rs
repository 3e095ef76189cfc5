//! `sov chat [--model NAME] ["question"]`: talk to a model loaded in this process.

use std::io::{BufRead, IsTerminal, Write};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use sov_audit::AuditLog;
use sov_audit_core::entry::{Kind, Outcome, commitment};
use sov_engine::{ChatMessage, Event, SamplingParams};
use sov_keys::OwnerPublicKeys;

use super::load::{self, Loaded};
use super::model::open_store;
use crate::cli::ChatArgs;
use crate::home::Home;
use crate::record;

pub fn run(home: &Home, args: &ChatArgs) -> Result<ExitCode> {
    let config = home.config()?;
    let store = open_store(home)?;
    let owner = OwnerPublicKeys::load(&home.keys_dir())
        .context("failed to load the owner's public keys")?;
    let defaults = SamplingParams::default();
    let params = SamplingParams {
        temperature: args.temperature.unwrap_or(defaults.temperature),
        max_tokens: Some(args.max_tokens),
        seed: args.seed,
        ..defaults
    };
    // Refuse bad options before spending seconds on verifying and loading the model.
    params.validate()?;
    let name = load::pick(&config, &store, args.model.as_deref())?;
    let log = record::open(home, &config)?;
    let result = chat(&log, &config, &store, &owner, &name, args, &params);
    let closed = log.close().context("failed to close the audit record");
    let code = result?;
    closed?;
    Ok(code)
}

fn chat(
    log: &AuditLog,
    config: &crate::home::Config,
    store: &sov_models::ModelStore,
    owner: &OwnerPublicKeys,
    name: &str,
    args: &ChatArgs,
    params: &SamplingParams,
) -> Result<ExitCode> {
    let loaded = load::load(config, store, owner, name, log)?;
    let chat = Chat {
        loaded: &loaded,
        log,
        params,
    };
    let mut conversation = Vec::new();
    if let Some(system) = &args.system {
        conversation.push(ChatMessage {
            role: "system".into(),
            content: system.clone(),
        });
    }
    match &args.question {
        Some(question) => {
            conversation.push(ChatMessage {
                role: "user".into(),
                content: question.clone(),
            });
            chat.answer(&conversation)?;
            Ok(ExitCode::SUCCESS)
        }
        None => interactive(&chat, conversation),
    }
}

struct Chat<'a> {
    loaded: &'a Loaded,
    log: &'a AuditLog,
    params: &'a SamplingParams,
}

impl Chat<'_> {
    /// Streams one answer to stdout, records it, and returns its text.
    fn answer(&self, conversation: &[ChatMessage]) -> Result<String> {
        let mut tokens = None;
        let result = self.generate(conversation, &mut tokens);
        // Commitments to the question and the answer, under a salt that is not kept: the record
        // shows that this exchange happened, never what was said.
        let mut salt = [0u8; 32];
        getrandom::fill(&mut salt).map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
        let question = conversation.last().map_or("", |m| m.content.as_str());
        let (outcome, reason, answer) = match &result {
            Ok(text) => (Outcome::Ok, String::new(), text.as_str()),
            Err(err) => (Outcome::Error, record::reason(err), ""),
        };
        let mut attrs = vec![("route", "sov chat".to_owned())];
        if let Some((prompt, completion)) = tokens {
            attrs.push(("completion_tokens", format!("{completion}")));
            attrs.push(("prompt_tokens", format!("{prompt}")));
        }
        let mut draft = record::draft(
            Kind::Inference,
            &self.loaded.name,
            outcome,
            &reason,
            record::digest(&self.loaded.manifest.sha256),
            attrs,
        );
        draft.input = Some(commitment("input", &salt, question.as_bytes()));
        draft.output = Some(commitment("output", &salt, answer.as_bytes()));
        record::append_draft(self.log, draft)?;
        result
    }

    fn generate(
        &self,
        conversation: &[ChatMessage],
        tokens: &mut Option<(usize, usize)>,
    ) -> Result<String> {
        let engine = &self.loaded.engine;
        let prompt = engine.chat_prompt(conversation)?;
        // --max-tokens is the most an answer may take; near the end of the window the answer
        // takes what is left (the engine refuses a request that asks for more than fits).
        let room = (engine.info().context_length as usize).saturating_sub(prompt.len());
        let mut params = self.params.clone();
        if let Some(max) = params.max_tokens {
            let room = u32::try_from(room).unwrap_or(u32::MAX).max(1);
            params.max_tokens = Some(max.min(room));
        }
        let mut generation = engine.generate(prompt, params)?;
        let mut out = std::io::stdout().lock();
        let mut text = String::new();
        loop {
            match generation.blocking_next() {
                Some(Event::Text(piece)) => {
                    out.write_all(piece.as_bytes())?;
                    out.flush()?;
                    text.push_str(&piece);
                }
                Some(Event::Done {
                    completion_tokens, ..
                }) => {
                    *tokens = Some((generation.prompt_tokens(), completion_tokens));
                    break;
                }
                Some(Event::Failed(reason)) => bail!("generation failed: {reason}"),
                None => bail!("the engine stopped during the answer"),
            }
        }
        writeln!(out)?;
        Ok(text)
    }
}

fn interactive(chat: &Chat<'_>, mut conversation: Vec<ChatMessage>) -> Result<ExitCode> {
    let loaded = chat.loaded;
    let start = conversation.clone();
    let tty = std::io::stdin().is_terminal();
    if tty {
        eprintln!(
            "Chatting with {} (type /reset to start over, /exit or Ctrl-D to leave).",
            loaded.name
        );
    }
    let stdin = std::io::stdin();
    let mut lines = stdin.lock().lines();
    loop {
        if tty {
            eprint!("> ");
            std::io::stderr().flush()?;
        }
        let Some(line) = lines.next() else { break };
        let line = line.context("failed to read from the terminal")?;
        let line = line.trim();
        match line {
            "" => continue,
            "/exit" | "/quit" => break,
            "/reset" => {
                conversation = start.clone();
                eprintln!("(conversation cleared)");
                continue;
            }
            _ => {}
        }
        conversation.push(ChatMessage {
            role: "user".into(),
            content: line.to_owned(),
        });
        match chat.answer(&conversation) {
            Ok(text) => conversation.push(ChatMessage {
                role: "assistant".into(),
                content: text,
            }),
            Err(err) => {
                conversation.pop();
                eprintln!("error: {err:#}");
                if matches!(
                    err.downcast_ref(),
                    Some(sov_engine::EngineError::ContextExceeded { .. })
                ) {
                    eprintln!(
                        "hint: the conversation no longer fits the context window; type /reset"
                    );
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
