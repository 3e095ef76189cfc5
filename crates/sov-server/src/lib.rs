//! Sovereign's HTTP API: the OpenAI-compatible endpoints, served by axum over the local engine.
//!
//! Why OpenAI's API: the tools an institution already has (the `openai` SDKs, LangChain, editors)
//! speak it, so an owned model is a base URL away. The shape of the crate follows axum's own
//! advice: [`app`] builds the router from an [`AppState`] (tested in-process with `oneshot`), a
//! JSON extractor of our own turns every rejection into OpenAI's error body, internal errors
//! become a generic 500 with the detail in the log, and the body size is limited explicitly.
//!
//! Every request that acts is recorded in the Open Audit Record by the [`audit`] layer before
//! its answer leaves, and the record itself is published read-only under `/v1/audit/`.

mod admin;
pub mod audit;
pub mod auth;
mod completions;
mod embeddings;
mod error;
mod health;
mod listen;
mod openai;
mod throttle;

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, State};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Extension, Router};
use serde_json::json;
use sov_audit::AuditLog;
use sov_audit_core::hash::Hash;
use sov_engine::Engine;
use sov_policy::{Action, Resource};

pub use auth::{Access, Limits, PUBLIC_ROUTES};
pub use error::ApiError;
pub use listen::{FLUSH_INTERVAL, Timeouts, serve};

/// A model the server answers for.
#[derive(Debug, Clone)]
pub struct ServedModel {
    /// The engine with the model loaded.
    pub engine: Engine,
    /// Unix time of the model's import, shown as `created`.
    pub created: i64,
    /// SHA-256 of the model file (its content address), recorded in every audit entry it serves.
    pub sha256: Hash,
}

/// Settings of the HTTP layer.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Largest request body accepted, in bytes; larger ones get a 413.
    pub max_body_bytes: usize,
    /// Shown as `owned_by` in the model list.
    pub owner: String,
    /// How long a request's head and body may take.
    pub timeouts: Timeouts,
    /// Connections open at once, from everyone.
    pub max_connections: usize,
    /// Connections open at once from one address (an IPv6 /64).
    pub max_connections_per_address: usize,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            max_body_bytes: 4 * 1024 * 1024,
            owner: "owner".into(),
            timeouts: Timeouts::default(),
            max_connections: 512,
            max_connections_per_address: 64,
        }
    }
}

/// What every handler can see.
#[derive(Debug, Clone)]
pub struct AppState {
    inner: Arc<StateInner>,
}

#[derive(Debug)]
struct StateInner {
    models: BTreeMap<String, ServedModel>,
    config: ServerConfig,
    audit: AuditLog,
    access: Access,
    seal: std::sync::OnceLock<SealView>,
}

/// The seal as applied when the server started, for `GET /v1/seal`.
#[derive(Debug, Clone)]
pub struct SealView {
    /// The report written at start.
    pub report: sov_seal::Report,
    /// Its bytes, as stored (their SHA-256 is in the seal attestation entry).
    pub report_json: Vec<u8>,
    /// `sov.toml`, read on each request to show the changes waiting for the next start.
    pub config_path: std::path::PathBuf,
    /// The index of the report's seal.attestation entry in the audit record.
    pub attestation: u64,
}

impl AppState {
    /// State for the given models, keyed by the name clients use, recording into `audit`,
    /// with callers checked by `access`.
    pub fn new(
        models: BTreeMap<String, ServedModel>,
        config: ServerConfig,
        audit: AuditLog,
        access: Access,
    ) -> Self {
        Self {
            inner: Arc::new(StateInner {
                models,
                config,
                audit,
                access,
                seal: std::sync::OnceLock::new(),
            }),
        }
    }

    /// Sets the seal report `GET /v1/seal` serves (once; later calls are ignored).
    pub fn set_seal(&self, seal: SealView) {
        let _ = self.inner.seal.set(seal);
    }

    /// The engine serving `name`, if the caller may `infer` with it (decided before the model
    /// is looked up, so a refused caller does not learn which models exist); notes the model
    /// (and its digest) for the audit entry.
    pub(crate) fn engine(&self, name: &str, note: &audit::AuditNote) -> Result<&Engine, ApiError> {
        self.authorize(note, Action::Infer, &Resource::Model(name.to_owned()))?;
        let model = self
            .inner
            .models
            .get(name)
            .ok_or_else(|| ApiError::model_not_found(name))?;
        note.model(name, model.sha256);
        Ok(&model.engine)
    }

    pub(crate) fn audit(&self) -> &AuditLog {
        &self.inner.audit
    }

    pub(crate) fn access(&self) -> &Access {
        &self.inner.access
    }
}

/// `GET /v1/seal`: the seal report of this start, its SHA-256 (as in the seal attestation
/// entry) and the declaration changes waiting for the next start. Readable by whoever may read
/// the audit record (`read-audit` on `AuditLog::"seal"`).
async fn seal_status(
    State(state): State<AppState>,
    Extension(note): Extension<audit::AuditNote>,
) -> Result<axum::response::Response, ApiError> {
    state.authorize(
        &note,
        Action::ReadAudit,
        &Resource::AuditLog(SEAL_RESOURCE.to_owned()),
    )?;
    let Some(seal) = state.inner.seal.get() else {
        return Err(ApiError::not_found(
            "This server was started without a seal report.",
        ));
    };
    let path = seal.config_path.clone();
    let config = tokio::task::spawn_blocking(move || std::fs::read_to_string(&path))
        .await
        .map_err(|e| ApiError::internal(&e.to_string()))?
        .map_err(|e| format!("{}: {e}", seal.config_path.display()));
    let pending = sov_seal::report::pending_in(&seal.report, config);
    let body = sov_seal::report::status_json(
        &seal.report,
        &seal.report_json,
        Some(seal.attestation),
        &pending,
    );
    Ok(axum::Json(body).into_response())
}

/// The seal report as a resource of `read-audit`.
pub const SEAL_RESOURCE: &str = "seal";

/// The router with every endpoint.
pub fn app(state: AppState) -> Router {
    let limit = state.inner.config.max_body_bytes;
    Router::new()
        .route("/healthz", get(health::healthz))
        .route("/metrics", get(health::metrics))
        .route("/v1/models", get(list_models))
        .route("/v1/models/{id}", get(get_model))
        .route("/v1/chat/completions", post(completions::chat))
        .route("/v1/completions", post(completions::text))
        .route("/v1/embeddings", post(embeddings::embed))
        .route("/v1/seal", get(seal_status))
        .route("/v1/audit/checkpoint", get(audit::checkpoint))
        .route("/v1/audit/vkeys", get(audit::vkeys))
        .route("/v1/audit/tile/{*path}", get(audit::tile))
        .route("/v1/audit/entries/{index}", get(audit::entry))
        .route("/v1/audit/proof/{index}", get(audit::proof))
        .route(
            "/v1/admin/principals",
            get(admin::list_principals).post(admin::add_principal),
        )
        .route("/v1/admin/principals/{name}", get(admin::show_principal))
        .route(
            "/v1/admin/principals/{name}/disable",
            post(admin::disable_principal),
        )
        .route(
            "/v1/admin/tokens",
            get(admin::list_tokens).post(admin::issue_token),
        )
        .route("/v1/admin/tokens/{id}/revoke", post(admin::revoke_token))
        .route("/v1/admin/policies", get(admin::show_policies))
        .route("/v1/admin/policies/reload", post(admin::reload_policies))
        .fallback(|| async { ApiError::route_not_found() })
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(limit))
        // Layers run outside in: auth (who), then audit (record), then the handler.
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            audit::layer,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::layer,
        ))
        .with_state(state)
}

/// 405 in OpenAI's shape (axum's own answer has no body); axum adds the `Allow` header with the
/// route's methods.
async fn method_not_allowed() -> ApiError {
    ApiError::method_not_allowed()
}

fn card(state: &AppState, id: &str, model: &ServedModel) -> openai::ModelCard {
    openai::ModelCard {
        id: id.to_owned(),
        object: "model",
        created: model.created,
        owned_by: state.inner.config.owner.clone(),
    }
}

/// The models the caller may `infer` with (one recorded decision per served model).
async fn list_models(
    State(state): State<AppState>,
    Extension(note): Extension<audit::AuditNote>,
) -> impl IntoResponse {
    let data: Vec<_> = state
        .inner
        .models
        .iter()
        .filter(|(id, _)| {
            state
                .authorize(&note, Action::Infer, &Resource::Model((*id).clone()))
                .is_ok()
        })
        .map(|(id, m)| card(&state, id, m))
        .collect();
    axum::Json(json!({"object": "list", "data": data}))
}

async fn get_model(
    State(state): State<AppState>,
    Extension(note): Extension<audit::AuditNote>,
    error::ApiPath(id): error::ApiPath<String>,
) -> Result<impl IntoResponse, ApiError> {
    state.authorize(&note, Action::Infer, &Resource::Model(id.clone()))?;
    let model = state
        .inner
        .models
        .get(&id)
        .ok_or_else(|| ApiError::model_not_found(&id))?;
    Ok(axum::Json(card(&state, &id, model)))
}
