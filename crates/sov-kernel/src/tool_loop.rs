//! A specialist's tool loop: for a question its tools do not answer on their own (the plain
//! step, `Kernel::tool_steps`), the model is offered the tools it was given and the caller may
//! use (by its own chat template when that takes tools, else in the generic function-calling
//! format: `crate::infer::offer`), with its answer constrained by the grammar
//! (`sov_infer::functions`), so a call always names one of them with arguments matching its
//! schema. Each round's calls are run through [`Kernel::call_tool`] (decided, receipted with
//! the round's number) and their results given back; the loop ends when the model answers in
//! words, and after [`MAX_ROUNDS`] rounds of calls the model answers without the tools. The
//! answer is the model's words followed by each tool's result as computed, stated by the
//! kernel (a small model restates numbers wrongly: the statement is the one to trust).
//!
//! The specialist's manifest says how the tools are offered: `auto` (the model may call them,
//! in up to [`MAX_ROUNDS`] rounds) or `required` (its first answer must call one, and the
//! answer after the results is in words).

use serde_json::Value;
use sov_engine::{ChatMessage, Event, FinishReason, SamplingParams};
use sov_infer::functions::{self, Choice, Format, Function, Functions};
use sov_policy::{Action, Permit, Resource};

use crate::exchange::Exchange;
use crate::specialist::ServedSpecialist;
use crate::tools::ToolStep;
use crate::{Kernel, KernelError, ServedModel};

/// The most rounds whose calls are run before the model must answer in words.
pub const MAX_ROUNDS: u32 = 3;

/// The fewest tokens a round that may call is given, whatever the request's `max_tokens` (which
/// bounds the answer in words): a call cut short is no call.
pub const CALL_TOKENS: u32 = 256;

/// The loop's answer: the model's words and the tools' statements, and every call it ran.
#[derive(Debug)]
pub(crate) struct Looped {
    pub answer: String,
    pub steps: Vec<ToolStep>,
}

impl Kernel {
    /// Runs the loop for `spec` on `base` over the prompt's `messages` (see the module docs).
    /// `None` when the caller may use none of the specialist's tools: the model answers as it
    /// would without them.
    pub(crate) async fn tool_loop(
        &self,
        ex: &mut Exchange,
        permit: &Permit,
        base: &ServedModel,
        spec: &ServedSpecialist,
        mut messages: Vec<ChatMessage>,
        params: SamplingParams,
    ) -> Result<Option<Looped>, KernelError> {
        let mut offered = Vec::new();
        for name in &spec.tools {
            let Some(tool) = self.inner.tools.get(name) else {
                continue;
            };
            if self
                .authorize(ex, Action::UseTool, &Resource::Tool(name.clone()))
                .is_ok()
            {
                let s = tool.spec();
                offered.push(Function {
                    name: s.name.clone(),
                    description: s.description.clone(),
                    parameters: s.parameters.clone(),
                });
            }
        }
        if offered.is_empty() {
            return Ok(None);
        }
        let first = if spec.tools_required {
            Choice::Required
        } else {
            Choice::Auto
        };
        ex.attr("tool_choice", first.describe());
        let mut steps: Vec<ToolStep> = Vec::new();
        let mut generated = 0;
        let mut rounds = 0;
        // `required`: one round that must call, then the answer in words (offered the tools
        // again, the 135M starter model calls them again in every round).
        let last = if spec.tools_required { 1 } else { MAX_ROUNDS };
        for round in 1..=last {
            let functions = Functions {
                functions: offered.clone(),
                choice: first.clone(),
                parallel: true,
            };
            let mut round_params = params.clone();
            round_params.max_tokens = Some(params.max_tokens.unwrap_or(0).max(CALL_TOKENS));
            let (text, cut, tokens) =
                ask(permit, base, &messages, Some(&functions), &round_params).await?;
            generated += tokens;
            let Some(calls) = functions::parse_calls(&text, cut) else {
                if text.trim_start().starts_with(functions::OPEN) {
                    // A call cut short (or malformed): no call; the model answers in words.
                    break;
                }
                return Ok(Some(finish(ex, text, steps, rounds, generated)));
            };
            rounds = round;
            let rendered: Vec<String> = calls
                .iter()
                .map(|c| {
                    let args = serde_json::from_str(&c.arguments).unwrap_or(Value::Null);
                    functions::render_call(&c.name, &args)
                })
                .collect();
            messages.push(ChatMessage {
                role: "assistant".into(),
                content: rendered.join("\n"),
            });
            for (i, c) in calls.iter().enumerate() {
                // The grammar wrote JSON matching the schema; a tool checks it again.
                let args: Value = serde_json::from_str(&c.arguments).unwrap_or(Value::Null);
                let content = match self.call_tool(ex, &c.name, args, round).await {
                    Ok(step) => {
                        let content = match &step.result {
                            Ok(v) => v.to_string(),
                            Err(e) => format!("error: {e}"),
                        };
                        steps.push(step);
                        content
                    }
                    Err(e @ (KernelError::Forbidden(..) | KernelError::NotFound(_))) => {
                        format!("error: {e}")
                    }
                    Err(e) => return Err(e),
                };
                messages.push(ChatMessage {
                    role: "user".into(),
                    content: functions::render_result(
                        &c.name,
                        &format!("{round}.{}", i + 1),
                        &content,
                    ),
                });
            }
        }
        let (text, _, tokens) = ask(permit, base, &messages, None, &params).await?;
        generated += tokens;
        Ok(Some(finish(ex, text, steps, rounds, generated)))
    }
}

/// The answer: the model's words, then each call's result as computed.
fn finish(
    ex: &mut Exchange,
    text: String,
    steps: Vec<ToolStep>,
    rounds: u32,
    tokens: usize,
) -> Looped {
    ex.attr("tool_rounds", rounds);
    ex.attr("tool_loop_completion_tokens", tokens);
    let mut answer = text.trim().to_owned();
    if !steps.is_empty() {
        let stated: Vec<String> = steps
            .iter()
            .map(|s| sov_tools::plain::statement(&s.tool, &s.arguments, &s.result))
            .collect();
        answer = format!("{answer}\n\nTool results: {}", stated.join("; "));
    }
    Looped { answer, steps }
}

/// One whole answer of the model to `messages`, offered `functions` (`crate::infer::offer`:
/// by its template or the system message, their grammar on the sampler) or nothing: its text,
/// whether it was cut by `max_tokens`, and the tokens it took.
async fn ask(
    permit: &Permit,
    base: &ServedModel,
    messages: &[ChatMessage],
    functions: Option<&Functions>,
    params: &SamplingParams,
) -> Result<(String, bool, usize), KernelError> {
    debug_assert_eq!(permit.action(), Action::Infer);
    let mut messages = messages.to_vec();
    let mut params = params.clone();
    let tools = crate::infer::offer(
        base.backend.as_ref(),
        &mut messages,
        &mut params,
        functions,
        &Format::Text,
    );
    let prompt = crate::infer::chat_prompt(&base.backend, messages, tools).await?;
    let mut generation = base.backend.generate(prompt, params, true)?;
    let mut text = String::new();
    while let Some(event) = generation.next().await {
        match event {
            Event::Text(t) => text.push_str(&t),
            Event::Done {
                finish_reason,
                completion_tokens,
            } => {
                return Ok((
                    text,
                    finish_reason == FinishReason::Length,
                    completion_tokens,
                ));
            }
            Event::Failed(why) => {
                return Err(KernelError::Internal(format!("the model failed: {why}")));
            }
        }
    }
    Err(KernelError::Internal(
        "the generation ended without an answer".into(),
    ))
}
