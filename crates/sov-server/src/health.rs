//! `GET /healthz` (public; the metrics are `crate::metrics`).
//!
//! Health is the record's health: a node whose record cannot be written refuses every action
//! with 503, so it is not healthy even if its engine is. `/healthz` answers 200
//! `{"status":"ok"}`, or 503 `{"status":"degraded", "audit": {...}}` while the record is failed
//! (it recovers by itself once the disk accepts writes again; see `sov-audit`). Being public, it
//! says what is wrong and since when, not the error's detail (paths, OS messages), which goes to
//! the server's log and to `/metrics`' callers as counters.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;
use sov_audit::Health;

use crate::AppState;

pub(crate) async fn healthz(State(state): State<AppState>) -> Response {
    match state.kernel().log().health() {
        Health::Ok => axum::Json(json!({"status": "ok"})).into_response(),
        Health::Degraded { since_ms, .. } => (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(json!({
                "status": "degraded",
                "audit": {
                    "status": "failed",
                    "reason": "the audit record cannot be written, so every action is refused until it recovers (it retries by itself); the details are in the server's log",
                    "since": sov_audit_core::entry::rfc3339_ms(since_ms),
                },
            })),
        )
            .into_response(),
    }
}
