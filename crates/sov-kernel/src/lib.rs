//! The application layer: one place for each use case, which every front door calls.
//!
//! A front door (the HTTP API in `sov-server`, `sov chat` in `sov-cli`, the console later)
//! translates its own shape into a call here and the result back; the kernel authenticates
//! nothing and speaks no HTTP, but it **decides and records**:
//!
//! ```text
//! door: authenticate -> Caller            (sov-policy: only authentication makes one)
//! kernel.begin(caller, door)  -> Exchange  (one request's record in progress)
//! kernel.chat(&mut exchange, call)         authorise: Verdict -> policy.decision entry -> Permit
//!                                          infer with the Permit's model (Backend seam)
//! kernel.finish(exchange, end)             the request's own entry, once every decision is durable
//! ```
//!
//! So the same request makes entries with the same fields whichever door it came through; a
//! door adds only what is its own (the route, the peer address, the HTTP status) and the
//! commitments to the exact bytes it received and sent. No other crate assembles an entry for a
//! request (the lint test `tests/drafts_lint.rs` fails otherwise).
//!
//! - [`Kernel`]: built once from its [`Parts`] (served models, the [`Guard`], the log, the
//!   egress gate).
//! - [`exchange`]: [`Exchange`], the request's facts and its entries.
//! - [`infer`]: chat, complete, embed; [`Backend`], the seam in front of an engine.
//! - [`admin`]: principals, tokens and the policy set, each change taking its [`Permit`].
//! - [`tools`]: tool calls, authorised, run and receipted in one place.
//! - [`node`]: entries for what the node itself does (model import, load and removal, server
//!   start and stop), and loading a verified model from the store.

pub mod admin;
pub mod catalog;
pub mod exchange;
pub mod ground;
pub mod infer;
pub mod knowledge;
pub mod node;
pub mod session;
pub mod specialist;
pub mod tool_loop;
pub mod tools;

use std::collections::BTreeMap;
use std::sync::Arc;

use sov_audit::AuditLog;
use sov_audit_core::hash::Hash;
use sov_policy::{Action, Caller, Guard, Permit, Principal, Resource};

pub use exchange::{Door, End, Exchange, Refusal, Unrecorded};
pub use infer::{Backend, ChatCall, CompleteCall, EmbedCall, Embeddings, KernelError, Reply};
pub use knowledge::{Corpora, Retrieved, SearchCall, Searchable};
pub use session::SignedIn;
pub use sov_egress::Gate;
pub use specialist::{AUTO, Adapted, Grounding, Route, Router, ServedSpecialist};
pub use tools::{ToolStep, Toolbox};

/// A model the node answers for.
#[derive(Debug, Clone)]
pub struct ServedModel {
    /// The engine (or any backend) with the model loaded.
    pub backend: Arc<dyn Backend>,
    /// Unix time of the model's import.
    pub created: i64,
    /// SHA-256 of the model file (its content address), recorded in every entry it serves.
    pub sha256: Hash,
}

/// The application layer (see the crate docs). Cheap to clone.
#[derive(Debug, Clone)]
pub struct Kernel {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    models: BTreeMap<String, ServedModel>,
    guard: Guard,
    log: AuditLog,
    node: String,
    gate: Gate,
    corpora: Corpora,
    specialists: BTreeMap<String, ServedSpecialist>,
    embedder: Option<String>,
    router: Router,
    tools: Toolbox,
}

/// The knowledge a node serves: its corpora, its specialists, the embedding model that
/// searches and routes with, and the router's settings. Empty by default.
#[derive(Debug, Default)]
pub struct Library {
    /// The corpora, by name.
    pub corpora: Corpora,
    /// The specialists, by name (never the name of a served model, nor `auto`).
    pub specialists: BTreeMap<String, ServedSpecialist>,
    /// The served model that embeds queries, passages' sentences and descriptions.
    pub embedder: Option<String>,
    /// How `model: "auto"` is answered.
    pub router: Router,
    /// The tools specialists (and later the API) may call.
    pub tools: Toolbox,
}

/// What a kernel is built from.
#[derive(Debug)]
pub struct Parts {
    /// The served models, by the name clients use.
    pub models: BTreeMap<String, ServedModel>,
    /// Authentication and the policy set in force.
    pub guard: Guard,
    /// The record every use case writes into.
    pub log: AuditLog,
    /// The node's name: the resource of node-wide actions is `Node::"<node>"`.
    pub node: String,
    /// The egress gate, built from the seal's declaration: the only way out for a use case
    /// that reaches another machine (an upstream engine, an MCP server over HTTP).
    pub gate: Gate,
    /// Corpora, specialists and the router.
    pub library: Library,
}

impl Kernel {
    /// A kernel serving `parts.models`, deciding with `parts.guard`, recording into `parts.log`.
    pub fn new(parts: Parts) -> Self {
        let Parts {
            models,
            guard,
            log,
            node,
            gate,
            library,
        } = parts;
        Self {
            inner: Arc::new(Inner {
                models,
                guard,
                log,
                node,
                gate,
                corpora: library.corpora,
                specialists: library.specialists,
                embedder: library.embedder,
                router: library.router,
                tools: library.tools,
            }),
        }
    }

    /// The egress gate (remote MCP servers reach out through it; `sov serve` hands the same
    /// gate to their clients).
    pub fn gate(&self) -> &Gate {
        &self.inner.gate
    }

    /// The guard (authentication and the policy set in force).
    pub fn guard(&self) -> &Guard {
        &self.inner.guard
    }

    /// The log the kernel records into (for the doors' read-only views of it).
    pub fn log(&self) -> &AuditLog {
        &self.inner.log
    }

    /// `Node::"<node>"`, the resource of node-wide actions.
    pub fn node(&self) -> Resource {
        Resource::Node(self.inner.node.clone())
    }

    /// The served models, by the name clients use.
    pub fn models(&self) -> &BTreeMap<String, ServedModel> {
        &self.inner.models
    }

    /// Starts the record of one request of `caller` through `door`.
    pub fn begin(&self, caller: Caller, door: Door) -> Result<Exchange, Unrecorded> {
        Exchange::new(self.inner.log.clone(), caller, door)
    }

    /// Decides `action` on `resource` for the exchange's caller, submits the decision's
    /// `policy.decision` entry (the request's own entry waits until it is durable) and returns
    /// the [`Permit`] if allowed.
    pub fn authorize(
        &self,
        ex: &mut Exchange,
        action: Action,
        resource: &Resource,
    ) -> Result<Permit, KernelError> {
        self.authorize_on(ex, action, resource, None)
    }

    /// [`Kernel::authorize`] on a principal's record.
    pub fn authorize_on(
        &self,
        ex: &mut Exchange,
        action: Action,
        resource: &Resource,
        target: Option<&Principal>,
    ) -> Result<Permit, KernelError> {
        let verdict = self
            .inner
            .guard
            .decide(ex.caller(), action, resource, target);
        ex.decided(&verdict);
        verdict
            .into_permit()
            .map_err(|_| KernelError::Forbidden(action, resource.clone()))
    }

    /// The models and specialists the caller may `infer` with (one recorded decision each),
    /// and `auto` when at least one specialist is among them. A specialist is listed with its
    /// base model's facts.
    pub fn visible_models(&self, ex: &mut Exchange) -> Vec<(String, ServedModel)> {
        let mut out = Vec::new();
        for (name, model) in &self.inner.models {
            if self
                .authorize(ex, Action::Infer, &Resource::Model(name.clone()))
                .is_ok()
            {
                out.push((name.clone(), model.clone()));
            }
        }
        let mut first_specialist = None;
        for (name, spec) in &self.inner.specialists {
            let Some(base) = self.inner.models.get(&spec.base) else {
                continue;
            };
            if self
                .authorize(ex, Action::Infer, &Resource::Specialist(name.clone()))
                .is_ok()
            {
                first_specialist.get_or_insert_with(|| base.clone());
                out.push((name.clone(), base.clone()));
            }
        }
        if let Some(base) = first_specialist {
            out.push((AUTO.to_owned(), base));
        }
        out
    }

    /// What `GET /v1/models/{name}` shows: the served model, or a specialist's base, or (for
    /// `auto`) the first specialist's base; decided before the lookup like a request to it.
    pub fn describe(&self, ex: &mut Exchange, name: &str) -> Result<ServedModel, KernelError> {
        if name == AUTO {
            let visible = self.visible_models(ex);
            return visible
                .into_iter()
                .find(|(n, _)| n == AUTO)
                .map(|(_, m)| m)
                .ok_or_else(|| KernelError::ModelNotFound(name.to_owned()));
        }
        if let Some(spec) = self.inner.specialists.get(name) {
            let _permit =
                self.authorize(ex, Action::Infer, &Resource::Specialist(name.to_owned()))?;
            return self
                .inner
                .models
                .get(&spec.base)
                .cloned()
                .ok_or_else(|| KernelError::ModelNotFound(name.to_owned()));
        }
        Ok(self.model(ex, name)?.1)
    }

    /// The served model `name`, if the caller may `infer` with it (decided before the lookup,
    /// so a refused caller does not learn which models exist); the request's entry names it.
    pub fn model(
        &self,
        ex: &mut Exchange,
        name: &str,
    ) -> Result<(Permit, ServedModel), KernelError> {
        let permit = self.authorize(ex, Action::Infer, &Resource::Model(name.to_owned()))?;
        let model = self.served(&permit)?;
        ex.set_model(name, model.sha256);
        Ok((permit, model))
    }

    /// The model a permit to `infer` names.
    fn served(&self, permit: &Permit) -> Result<ServedModel, KernelError> {
        let Resource::Model(name) = permit.resource() else {
            return Err(KernelError::Internal(format!(
                "a permit for {} is not a permit to use a model",
                permit.resource()
            )));
        };
        if permit.action() != Action::Infer {
            return Err(KernelError::Internal(format!(
                "a permit to {} is not a permit to infer",
                permit.action()
            )));
        }
        self.inner
            .models
            .get(name)
            .cloned()
            .ok_or_else(|| KernelError::ModelNotFound(name.clone()))
    }
}
