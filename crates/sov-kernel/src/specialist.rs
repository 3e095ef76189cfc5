//! Specialists: a base model, instructions and corpora under one name, called as `model: NAME`,
//! and the router that answers `model: "auto"`.
//!
//! A specialist answer: authorise `infer` on `Specialist::"NAME"` (before any lookup), retrieve
//! a pool of passages from its corpora as the caller ([`crate::knowledge`]), rank their
//! sentences and keep the passages holding the best ([`crate::ground`]), build the prompt,
//! generate with the base model's engine (one engine per base, shared by every specialist on
//! it; a specialist with a LoRA adapter generates in the adapter's own context of that engine),
//! and answer with the evidence quoted and the passages cited. The request's entry names the
//! specialist manifest's hash, the base model's digest, the adapter's digest when there is one,
//! each corpus manifest's hash and the SHA-256 of every chunk placed in the prompt.
//!
//! The router scores each specialist the caller may use by the cosine similarity of the
//! question's embedding with its description's, and with the best passage the caller may read
//! in its corpora (the mean of the two); the best at or above the threshold answers. Below it,
//! the configured general model answers, or the request is refused with `no_specialist_fits`.
//! The candidates, their scores, the choice and the reason are a `route` entry, and the
//! response names the chosen specialist.

use std::sync::Arc;

use sov_audit_core::entry::{Kind, Outcome};
use sov_engine::ChatMessage;
use std::collections::BTreeMap;

use sov_policy::{Action, Permit, Resource};

use crate::exchange::Exchange;
use crate::ground::{self, Citation, Grounded};
use crate::infer::{ChatCall, Reply};
use crate::knowledge::{Queries, Retrieved};
use crate::tools::ToolStep;
use crate::{Kernel, KernelError};

/// A specialist the node serves, from its verified manifest.
#[derive(Debug, Clone)]
pub struct ServedSpecialist {
    /// SHA-256 of its signed manifest, lowercase hex.
    pub manifest_sha256: String,
    /// The served base model's name.
    pub base: String,
    /// Its corpora, in order.
    pub corpora: Vec<String>,
    /// What it is for (the router embeds it).
    pub description: String,
    /// Its instructions (the system message).
    pub instructions: String,
    /// The description's embedding, when the node has an embedding model.
    pub description_vector: Option<Vec<f32>>,
    /// Its LoRA adapter, when it has one: the base model with the adapter applied.
    pub adapter: Option<Adapted>,
    /// The tools it may call, by name.
    pub tools: Vec<String>,
    /// Whether its model's first answer must call one of them (the manifest's
    /// `tool_choice = "required"`; otherwise it may: [`crate::tool_loop`]).
    pub tools_required: bool,
}

/// A specialist's LoRA adapter, loaded with its base model.
#[derive(Debug, Clone)]
pub struct Adapted {
    /// SHA-256 of the adapter's bytes (the specialist's signed manifest names it too).
    pub sha256: String,
    /// The base model's engine for the adapter: it generates in a context of its own, with
    /// the adapter applied; it tokenises and embeds as the base does.
    pub backend: Arc<dyn crate::infer::Backend>,
}

/// How `model: "auto"` is answered.
#[derive(Debug, Clone)]
pub struct Router {
    /// The general model that answers when no specialist fits (none: refuse).
    pub fallback: Option<String>,
    /// The least score a specialist needs to be chosen.
    pub threshold: f32,
}

impl Default for Router {
    fn default() -> Self {
        Self {
            fallback: None,
            threshold: 0.25,
        }
    }
}

/// The name clients use for the router.
pub const AUTO: &str = "auto";

/// Passages placed in a specialist's prompt.
pub const PASSAGES: usize = 3;

/// What a grounded answer carries besides its text.
#[derive(Debug, Clone, PartialEq)]
pub struct Grounding {
    /// The specialist that answered.
    pub specialist: String,
    /// The passages in the prompt, as cited.
    pub citations: Vec<Citation>,
    /// The router's choice, when the request asked for `auto`.
    pub route: Option<Route>,
    /// The tools called before the model answered, in order.
    pub tool_steps: Vec<ToolStep>,
    /// The cited answer's parts: the evidence and prompt it was built from.
    pub(crate) grounded: Grounded,
}

/// What the router already did for the specialist it chose: the permit to use it and the
/// passages retrieved to score it (the same retrieval the answer needs, so it is not repeated).
#[derive(Debug)]
pub(crate) struct Routed {
    permit: Permit,
    route: Route,
    retrieved: Retrieved,
}

/// The router's decision, as the response shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct Route {
    /// The specialist or general model chosen, if any.
    pub choice: Option<String>,
    /// Every candidate the caller may use, with its score, best first.
    pub candidates: Vec<(String, f32)>,
    /// Why, in words.
    pub reason: String,
}

impl Kernel {
    /// The specialists the node serves.
    pub fn specialists(&self) -> &std::collections::BTreeMap<String, ServedSpecialist> {
        &self.inner.specialists
    }

    /// A chat answered by the specialist `name` (see the module docs).
    pub(crate) async fn specialist_chat(
        &self,
        ex: &mut Exchange,
        name: &str,
        call: ChatCall,
        routed: Option<Routed>,
    ) -> Result<Reply, KernelError> {
        let (permit, route, prepared) = match routed {
            Some(r) => (r.permit, Some(r.route), Some(r.retrieved)),
            None => (
                self.authorize(ex, Action::Infer, &Resource::Specialist(name.to_owned()))?,
                None,
                None,
            ),
        };
        let Some(spec) = self.inner.specialists.get(name).cloned() else {
            return Err(KernelError::ModelNotFound(name.to_owned()));
        };
        let mut base = self.inner.models.get(&spec.base).cloned().ok_or_else(|| {
            KernelError::Internal(format!(
                "the base model `{}` of specialist `{name}` is not served",
                spec.base
            ))
        })?;
        ex.set_model(name, base.sha256);
        ex.attr("specialist_manifest", &spec.manifest_sha256);
        ex.attr("base", &spec.base);
        if let Some(adapter) = &spec.adapter {
            // The entry's model stays the base's digest; the adapter's is named beside it.
            base.backend = Arc::clone(&adapter.backend);
            ex.attr("adapter_sha256", &adapter.sha256);
        }
        let question = last_user(&call.messages)?;
        // A plain computation goes straight to the calculator, and its statement of the
        // result is the answer: the model is not asked (see `tool_steps`).
        let steps = self.tool_steps(ex, &spec, &question).await?;
        if let Some(step) = steps.first() {
            ex.attr("answered_by", format!("tool:{}", step.tool));
            let answer = stated(step);
            let grounding = Grounding {
                specialist: name.to_owned(),
                citations: Vec::new(),
                route,
                tool_steps: steps,
                grounded: Grounded::default(),
            };
            let mut reply = Reply::new(sov_engine::Generation::finished(answer));
            reply.ground(Arc::new(grounding));
            return Ok(reply);
        }
        let mut retrieved = match prepared {
            Some(r) => r,
            None if spec.corpora.is_empty() => Retrieved::default(),
            None => {
                self.retrieve(
                    ex,
                    &spec.corpora,
                    &question,
                    ground::POOL,
                    &mut Queries::new(),
                )
                .await?
            }
        };
        // The pool's sentences ranked; the passages holding the best are the ones shown (and
        // the only ones the entry names: nothing else reaches the prompt).
        let ranked = ground::evidence(&question, &retrieved.passages);
        let (shown, evidence) =
            ground::narrow(std::mem::take(&mut retrieved.passages), &ranked, PASSAGES);
        retrieved.passages = shown;
        retrieved.note(ex);
        let grounded = ground::prompt(
            &spec.instructions,
            &call.messages,
            &retrieved.passages,
            &evidence,
        );
        // Given tools, the model may call them (or must, first): the tool loop's answer.
        if !spec.tools.is_empty()
            && let Some(looped) = self
                .tool_loop(
                    ex,
                    &permit,
                    &base,
                    &spec,
                    grounded.messages.clone(),
                    call.params.clone(),
                )
                .await?
        {
            if !looped.steps.is_empty() {
                ex.attr("answered_by", "model+tools");
            }
            let grounding = Grounding {
                specialist: name.to_owned(),
                citations: grounded.citations.clone(),
                route,
                tool_steps: looped.steps,
                grounded,
            };
            let mut reply = Reply::new(sov_engine::Generation::finished(looped.answer));
            reply.ground(Arc::new(grounding));
            return Ok(reply);
        }
        let prompt =
            crate::infer::chat_prompt(&base.backend, grounded.messages.clone(), None).await?;
        let grounding = Grounding {
            specialist: name.to_owned(),
            citations: grounded.citations.clone(),
            route,
            tool_steps: Vec::new(),
            grounded,
        };
        let mut reply = crate::infer::generate(&permit, &base, prompt, call.params, call.stream)?;
        reply.ground(Arc::new(grounding));
        Ok(reply)
    }

    /// Answers `model: "auto"` (see the module docs).
    pub(crate) async fn route(
        &self,
        ex: &mut Exchange,
        call: ChatCall,
    ) -> Result<Reply, KernelError> {
        let question = last_user(&call.messages)?;
        let mut usable = Vec::new();
        for (name, spec) in &self.inner.specialists {
            let verdict = self.inner.guard.decide(
                ex.caller(),
                Action::Infer,
                &Resource::Specialist(name.clone()),
                None,
            );
            ex.decided(&verdict);
            if let Ok(permit) = verdict.into_permit() {
                usable.push((name.clone(), spec.clone(), permit));
            }
        }
        let mut candidates = Vec::new();
        let mut scored: BTreeMap<String, (Permit, Retrieved)> = BTreeMap::new();
        if let Some(model) = self.inner.embedder.clone() {
            let mut queries = Queries::new();
            let qv = self.query_vector(&model, &question, &mut queries).await?;
            for (name, spec, permit) in usable.iter().cloned() {
                let described = spec
                    .description_vector
                    .as_deref()
                    .map_or(0.0, |d| ground::dot(&qv, d));
                let retrieved = if spec.corpora.is_empty() {
                    Retrieved::default()
                } else {
                    self.retrieve(ex, &spec.corpora, &question, ground::POOL, &mut queries)
                        .await?
                };
                // The best passage the caller may read, by its cosine similarity.
                let best = retrieved
                    .passages
                    .iter()
                    .filter_map(|p| p.similarity)
                    .fold(0.0f32, f32::max)
                    .min(1.0);
                candidates.push((name.clone(), (described + best) / 2.0));
                scored.insert(name, (permit, retrieved));
            }
        }
        candidates.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        let threshold = self.inner.router.threshold;
        let fallback = self.inner.router.fallback.clone();
        let (choice, reason) = match candidates.first() {
            _ if usable.is_empty() => (
                fallback.clone(),
                "no specialist is available to the caller".to_owned(),
            ),
            None => (
                fallback.clone(),
                "the node has no embedding model to route with".to_owned(),
            ),
            Some((name, score)) if *score >= threshold => (
                Some(name.clone()),
                format!("highest score {score:.3} (threshold {threshold:.2})"),
            ),
            Some((_, score)) => (
                fallback.clone(),
                format!("best score {score:.3} is below the threshold {threshold:.2}"),
            ),
        };
        let reason = match (&choice, &fallback) {
            (Some(c), Some(f)) if c == f => format!("{reason}: the general model `{f}` answers"),
            (None, _) => format!("{reason}: no specialist fits"),
            _ => reason,
        };
        let route = Route {
            choice: choice.clone(),
            candidates: candidates.clone(),
            reason: reason.clone(),
        };
        let listed = candidates
            .iter()
            .map(|(n, s)| format!("{n}:{s:.4}"))
            .collect::<Vec<_>>()
            .join(",");
        ex.noted(
            Kind::Route,
            AUTO,
            if choice.is_some() {
                Outcome::Ok
            } else {
                Outcome::Denied
            },
            &reason,
            vec![
                ("candidates".to_owned(), listed),
                ("choice".to_owned(), choice.clone().unwrap_or_default()),
                ("threshold".to_owned(), format!("{threshold:.2}")),
            ],
        );
        match choice {
            Some(c) if self.inner.specialists.contains_key(&c) => {
                let Some((permit, retrieved)) = scored.remove(&c) else {
                    return Err(KernelError::Internal(format!("`{c}` was chosen unscored")));
                };
                let routed = Routed {
                    permit,
                    route,
                    retrieved,
                };
                self.specialist_chat(ex, &c, call, Some(routed)).await
            }
            Some(model) => {
                let mut reply = self.model_chat(ex, ChatCall { model, ..call }).await?;
                reply.routed(route);
                Ok(reply)
            }
            None => Err(KernelError::NoSpecialistFits(reason)),
        }
    }
}

impl Kernel {
    /// The tool call a specialist makes instead of asking its model: when the question is a
    /// plain computation, conversion or calendar question for one of the specialist's tools
    /// ([`sov_tools::plain::recognise`]). Measured on the 135M starter model: given a computed
    /// result it restated it exactly in 20 of the eval's 40 arithmetic questions and added
    /// wrong numbers; offered the tools, it called none when free to and the wrong one when
    /// made to. So such a question is answered by the tool's statement alone. A caller not
    /// allowed the tool gets the model's answer without it (the refusal is recorded).
    async fn tool_steps(
        &self,
        ex: &mut Exchange,
        spec: &ServedSpecialist,
        question: &str,
    ) -> Result<Vec<ToolStep>, KernelError> {
        let Some(plain) = sov_tools::plain::recognise(question, &spec.tools) else {
            return Ok(Vec::new());
        };
        match self.call_tool(ex, plain.tool, plain.arguments, 1).await {
            Ok(step) => Ok(vec![step]),
            Err(KernelError::Forbidden(..)) => Ok(Vec::new()),
            Err(e) => Err(e),
        }
    }
}

/// A tool step's answer, stated from its result.
fn stated(step: &ToolStep) -> String {
    sov_tools::plain::statement(&step.tool, &step.arguments, &step.result)
}

/// The last user message's text: the question retrieval and routing work from.
fn last_user(messages: &[ChatMessage]) -> Result<String, KernelError> {
    messages
        .iter()
        .rev()
        .find(|m| m.role == "user" && !m.content.trim().is_empty())
        .map(|m| m.content.clone())
        .ok_or_else(|| KernelError::Invalid {
            message: "a specialist needs a user message to answer.".into(),
            param: Some("messages"),
        })
}
