//! `sov chat [--model NAME] [--as PRINCIPAL] ["question"]`: talk to a model loaded in this
//! process, through the same kernel use case as `POST /v1/chat/completions`: the principal's
//! permission to `infer` on the model is decided (and recorded), and each answer is recorded
//! with the same fields as the API's, with commitments to the question and the answer under a
//! salt that is not kept (the record shows that the exchange happened, never what was said).
//!
//! `--model` may name a specialist, or `auto` for the router: the process then loads what
//! `sov serve` serves (its models, corpora and specialists, each verified as `sov serve` verifies
//! them), and prints the answer's citations after it (and, for `auto`, the router's choice).
//!
//! Who is calling: a local command is run by whoever can read the node's home (its keys and its
//! identity database), so it may act as any enabled principal (`--as`, default `owner`, the
//! principal `sov init` creates); its decisions carry the operating-system user (`local`).

use std::collections::BTreeMap;
use std::io::{BufRead, IsTerminal, Write};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result, anyhow};
use sov_engine::{ChatMessage, Event, SamplingParams};
use sov_kernel::infer::end_of;
use sov_kernel::{AUTO, ChatCall, Door, End, Gate, Kernel, KernelError, Parts, Refusal};
use sov_keys::OwnerPublicKeys;
use sov_policy::{Caller, Guard};

use super::model::open_store;
use super::{library, load};
use crate::cli::ChatArgs;
use crate::home::Home;
use crate::{identity, record};

/// The route `sov chat`'s entries carry.
pub const ROUTE: &str = "sov chat";

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
    let grounded = name == AUTO || is_specialist(home, &name)?;
    let policies = identity::load_policies(home)?;
    let directory = Arc::new(identity::open_directory(home)?);
    let log = record::open(home, &config)?;
    let result = (|| {
        let guard = Guard::new(directory.clone(), policies, Some(home.policies_dir()));
        let caller = guard
            .local(&args.as_principal, &record::local_principal())
            .with_context(|| format!("sov chat cannot act as `{}`", args.as_principal))?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("failed to start the async runtime")?;
        let (loaded, library) = if grounded {
            let names = load::served(&config, &store)?;
            library::load_served(home, &config, &store, &owner, &names, &log, &runtime)?
        } else {
            let loaded = load::load(&config, &store, &owner, &name, &[], &log)?;
            (BTreeMap::from([(name.clone(), loaded)]), Default::default())
        };
        let models = loaded.into_iter().map(|(n, l)| (n, l.model)).collect();
        let kernel = Kernel::new(Parts {
            models,
            guard,
            log: log.clone(),
            node: record::node(home, &config)?,
            gate: Gate::new(config.seal.clone(), Arc::new(log.clone()), "system"),
            library,
        });
        let chat = Chat {
            kernel,
            caller,
            model: name.clone(),
            params,
            runtime,
        };
        chat.run(args)
    })();
    let drained = directory
        .drain_outbox(&log)
        .context("failed to move the directory's changes into the audit record");
    let closed = log.close().context("failed to close the audit record");
    let code = result?;
    drained?;
    closed?;
    Ok(code)
}

struct Chat {
    kernel: Kernel,
    caller: Caller,
    model: String,
    params: SamplingParams,
    runtime: tokio::runtime::Runtime,
}

impl Chat {
    fn run(&self, args: &ChatArgs) -> Result<ExitCode> {
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
                self.answer(&conversation)?;
                Ok(ExitCode::SUCCESS)
            }
            None => interactive(self, conversation),
        }
    }

    /// Streams one answer to stdout through the kernel (which records it) and returns its text.
    fn answer(&self, conversation: &[ChatMessage]) -> Result<String> {
        self.runtime.block_on(self.exchange(conversation))
    }

    async fn exchange(&self, conversation: &[ChatMessage]) -> Result<String> {
        let door = Door {
            route: ROUTE.to_owned(),
            peer: None,
            read: false,
        };
        let mut ex = self.kernel.begin(self.caller.clone(), door)?;
        // The door's bytes: the question asked and the answer printed.
        let question = conversation.last().map_or("", |m| m.content.as_str());
        ex.commit_input(question.as_bytes());
        let call = ChatCall {
            model: self.model.clone(),
            messages: conversation.to_vec(),
            params: self.params.clone(),
            stream: true,
            // --max-tokens is the most an answer may take; near the end of the window the
            // answer takes what is left.
            fit: true,
            functions: None,
            format: Default::default(),
        };
        let mut reply = match self.kernel.chat(&mut ex, call).await {
            Ok(reply) => reply,
            Err(err) => {
                ex.finish(end_of(&err), None).await?;
                return Err(explain(err));
            }
        };
        let mut out = std::io::stdout().lock();
        let mut text = String::new();
        let failure = loop {
            match reply.next(&mut ex).await {
                Some(Event::Text(piece)) => {
                    ex.feed_output(piece.as_bytes());
                    text.push_str(&piece);
                    if let Err(e) = out.write_all(piece.as_bytes()).and_then(|()| out.flush()) {
                        break Some(anyhow!(e).context("failed to write the answer"));
                    }
                }
                Some(Event::Done { .. }) => break None,
                Some(Event::Failed(reason)) => break Some(anyhow!("generation failed: {reason}")),
                None => break Some(anyhow!("the engine stopped during the answer")),
            }
        };
        let end = match &failure {
            None => End::Answered,
            Some(_) => End::Failed(Refusal {
                kind: "server_error".into(),
                code: None,
                param: None,
            }),
        };
        ex.finish(end, None).await?;
        if let Some(e) = failure {
            return Err(e);
        }
        writeln!(out)?;
        if let Some(route) = reply.route() {
            eprintln!(
                "(router: {}; {})",
                route.choice.as_deref().unwrap_or("no choice"),
                route.reason
            );
        }
        if let Some(grounding) = reply.grounding() {
            for step in &grounding.tool_steps {
                let result = match &step.result {
                    Ok(v) => v.to_string(),
                    Err(e) => format!("error: {e}"),
                };
                eprintln!("(tool {} {}: {result})", step.tool, step.arguments);
            }
            for c in &grounding.citations {
                writeln!(
                    out,
                    "[{}] {}/{} (chunk sha256 {})",
                    c.index, c.corpus, c.document, c.chunk_sha256
                )?;
            }
        }
        Ok(text)
    }
}

/// Whether `name` is one of the home's specialists (signed manifests under `specialists/`).
fn is_specialist(home: &Home, name: &str) -> Result<bool> {
    if !home.specialists_dir().is_dir() {
        return Ok(false);
    }
    let store = sov_specialist::SpecialistStore::open(&home.specialists_dir())
        .context("failed to open the specialists")?;
    Ok(store
        .list()
        .context("failed to list the specialists")?
        .iter()
        .any(|m| m.name == name))
}

/// The kernel's refusal for a person at a terminal.
fn explain(err: KernelError) -> anyhow::Error {
    match err {
        KernelError::Forbidden(action, resource) => anyhow!(
            "permission denied: the policies do not allow {action} on {resource} for this principal (see `sov policy check`)"
        ),
        other => anyhow::Error::new(other),
    }
}

fn interactive(chat: &Chat, mut conversation: Vec<ChatMessage>) -> Result<ExitCode> {
    let start = conversation.clone();
    let tty = std::io::stdin().is_terminal();
    if tty {
        eprintln!(
            "Chatting with {} (type /reset to start over, /exit or Ctrl-D to leave).",
            chat.model
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
                if err.chain().any(|c| {
                    matches!(
                        c.downcast_ref::<KernelError>(),
                        Some(KernelError::Engine(
                            sov_engine::EngineError::ContextExceeded { .. }
                        ))
                    )
                }) {
                    eprintln!(
                        "hint: the conversation no longer fits the context window; type /reset"
                    );
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
