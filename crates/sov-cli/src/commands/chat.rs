//! `sov chat [--model NAME] ["question"]`: talk to a model loaded in this process.

use std::io::{BufRead, IsTerminal, Write};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use sov_engine::{ChatMessage, Event, SamplingParams};
use sov_keys::OwnerPublicKeys;

use super::load::{self, Loaded};
use super::model::open_store;
use crate::cli::ChatArgs;
use crate::home::Home;

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
    let loaded = load::load(&config, &store, &owner, &name)?;
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
            answer(&loaded, &conversation, &params)?;
            Ok(ExitCode::SUCCESS)
        }
        None => interactive(&loaded, conversation, &params),
    }
}

/// Streams one answer to stdout and returns its text.
fn answer(
    loaded: &Loaded,
    conversation: &[ChatMessage],
    params: &SamplingParams,
) -> Result<String> {
    let prompt = loaded.engine.chat_prompt(conversation)?;
    let mut generation = loaded.engine.generate(prompt, params.clone())?;
    let mut out = std::io::stdout().lock();
    let mut text = String::new();
    loop {
        match generation.blocking_next() {
            Some(Event::Text(piece)) => {
                out.write_all(piece.as_bytes())?;
                out.flush()?;
                text.push_str(&piece);
            }
            Some(Event::Done { .. }) => break,
            Some(Event::Failed(reason)) => bail!("generation failed: {reason}"),
            None => bail!("the engine stopped during the answer"),
        }
    }
    writeln!(out)?;
    Ok(text)
}

fn interactive(
    loaded: &Loaded,
    mut conversation: Vec<ChatMessage>,
    params: &SamplingParams,
) -> Result<ExitCode> {
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
        match answer(loaded, &conversation, params) {
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
