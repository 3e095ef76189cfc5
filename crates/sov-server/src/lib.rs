//! Sovereign's HTTP API: the OpenAI-compatible endpoints, served by axum over the local engine.
//!
//! Why OpenAI's API: the tools an institution already has (the `openai` SDKs, LangChain, editors)
//! speak it, so an owned model is a base URL away. The shape of the crate follows axum's own
//! advice: [`app`] builds the router from an [`AppState`] (tested in-process with `oneshot`), a
//! JSON extractor of our own turns every rejection into OpenAI's error body, internal errors
//! become a generic 500 with the detail in the log, and the body size is limited explicitly.
//!
//! The crate is a translation between HTTP and the kernel (`sov-kernel`), which decides and
//! records: every authenticated request becomes a kernel exchange in the [`record`] layer, its
//! handler calls the kernel's use cases, and its entry is written before its answer leaves. The
//! record itself is published read-only under `/v1/audit/` ([`publish`]).

mod admin;
pub mod auth;
mod catalog;
mod completions;
pub mod console;
mod embeddings;
mod error;
mod health;
mod listen;
mod metrics;
pub mod publish;
pub mod record;
mod session;
mod sse;
mod throttle;
mod tools;

use std::sync::Arc;

use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use serde_json::json;
use sov_kernel::Kernel;
pub use sov_kernel::ServedModel;
use sov_policy::{Action, Resource};

use crate::record::Door;

pub use auth::{Access, Limits, PUBLIC_ROUTES};
pub use error::ApiError;
pub use listen::{FLUSH_INTERVAL, Timeouts, serve};

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
    kernel: Kernel,
    config: ServerConfig,
    access: Access,
    seal: std::sync::OnceLock<SealView>,
    metrics: metrics::Metrics,
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
    /// State serving the `kernel`'s use cases, with the HTTP door's `access` limits.
    pub fn new(kernel: Kernel, config: ServerConfig, access: Access) -> Self {
        Self {
            inner: Arc::new(StateInner {
                kernel,
                config,
                access,
                seal: std::sync::OnceLock::new(),
                metrics: metrics::Metrics::default(),
            }),
        }
    }

    /// Sets the seal report `GET /v1/seal` serves (once; later calls are ignored).
    pub fn set_seal(&self, seal: SealView) {
        let _ = self.inner.seal.set(seal);
    }

    /// The kernel.
    pub fn kernel(&self) -> &Kernel {
        &self.inner.kernel
    }

    pub(crate) fn config(&self) -> &ServerConfig {
        &self.inner.config
    }

    /// The seal as applied at start, once set.
    pub(crate) fn seal(&self) -> Option<&SealView> {
        self.inner.seal.get()
    }

    pub(crate) fn metrics(&self) -> &metrics::Metrics {
        &self.inner.metrics
    }

    /// The HTTP door's limits.
    pub fn access(&self) -> &Access {
        &self.inner.access
    }
}

/// `GET /v1/seal`: the seal report of this start, its SHA-256 (as in the seal attestation
/// entry) and the declaration changes waiting for the next start. Readable by whoever may read
/// the audit record (`read-audit` on `AuditLog::"seal"`).
async fn seal_status(
    State(state): State<AppState>,
    door: Door,
) -> Result<axum::response::Response, ApiError> {
    let kernel = state.kernel();
    let resource = Resource::AuditLog(SEAL_RESOURCE.to_owned());
    door.with(async |ex| {
        let _permit = kernel.authorize(ex, Action::ReadAudit, &resource)?;
        Ok(())
    })
    .await?;
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
    let limit = state.config().max_body_bytes;
    Router::new()
        .route("/healthz", get(health::healthz))
        .route("/console", get(console::serve))
        .route("/console/", get(console::serve))
        .route("/console/{*path}", get(console::serve))
        .route("/metrics", get(metrics::metrics))
        .route("/v1/models", get(list_models))
        .route("/v1/models/{id}", get(get_model))
        .route("/v1/catalog", get(catalog::catalog))
        .route("/v1/chat/completions", post(completions::chat))
        .route("/v1/completions", post(completions::text))
        .route("/v1/embeddings", post(embeddings::embed))
        .route("/v1/tools", get(tools::list))
        .route("/v1/tools/{name}", post(tools::call))
        .route("/v1/seal", get(seal_status))
        .route(session::ROUTE, get(session::show).delete(session::sign_out))
        .route("/v1/audit/checkpoint", get(publish::checkpoint))
        .route("/v1/audit/vkeys", get(publish::vkeys))
        .route("/v1/audit/tile/{*path}", get(publish::tile))
        .route("/v1/audit/entries/{index}", get(publish::entry))
        .route("/v1/audit/proof/{index}", get(publish::proof))
        .route(
            "/v1/audit/consistency/{size1}/{size2}",
            get(publish::consistency),
        )
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
        // Layers run outside in: metrics (counts), auth (who), then record (the exchange),
        // then the handler.
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            record::layer,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::layer,
        ))
        // Outermost: every request counts, refused authentication too.
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            metrics::layer,
        ))
        .with_state(state)
}

/// 405 in OpenAI's shape (axum's own answer has no body); axum adds the `Allow` header with the
/// route's methods.
async fn method_not_allowed() -> ApiError {
    ApiError::method_not_allowed()
}

fn card(state: &AppState, id: &str, model: &ServedModel) -> sov_openai::ModelCard {
    sov_openai::ModelCard {
        id: id.to_owned(),
        object: "model",
        created: model.created,
        owned_by: state.config().owner.clone(),
        sov_serves: if model.backend.embedding_only() {
            "embeddings"
        } else {
            "chat"
        },
    }
}

/// The models the caller may `infer` with (one recorded decision per served model).
async fn list_models(
    State(state): State<AppState>,
    door: Door,
) -> Result<impl IntoResponse, ApiError> {
    let visible = door
        .with(async |ex| Ok(state.kernel().visible_models(ex)))
        .await?;
    let data: Vec<_> = visible.iter().map(|(id, m)| card(&state, id, m)).collect();
    Ok(axum::Json(json!({"object": "list", "data": data})))
}

async fn get_model(
    State(state): State<AppState>,
    door: Door,
    error::ApiPath(id): error::ApiPath<String>,
) -> Result<impl IntoResponse, ApiError> {
    let model = door
        .with(async |ex| Ok(state.kernel().describe(ex, &id)?))
        .await?;
    Ok(axum::Json(card(&state, &id, &model)))
}
