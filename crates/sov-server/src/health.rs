//! `GET /healthz` (public) and `GET /metrics` (Prometheus text, for a token that may
//! `read-audit` on `AuditLog::"metrics"`).
//!
//! Health is the record's health: a node whose record cannot be written refuses every action
//! with 503, so it is not healthy even if its engine is. `/healthz` answers 200
//! `{"status":"ok"}`, or 503 `{"status":"degraded", "audit": {...}}` while the record is failed
//! (it recovers by itself once the disk accepts writes again; see `sov-audit`). Being public, it
//! says what is wrong and since when, not the error's detail (paths, OS messages), which goes to
//! the server's log and to `/metrics`' callers as counters.

use std::fmt::Write as _;

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use sov_audit::Health;
use sov_policy::{Action, Resource};

use crate::AppState;
use crate::error::ApiError;
use crate::record::Door;

/// The metrics as a resource of `read-audit`.
pub const METRICS_RESOURCE: &str = "metrics";

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

pub(crate) async fn metrics(
    State(state): State<AppState>,
    door: Door,
) -> Result<Response, ApiError> {
    let resource = Resource::AuditLog(METRICS_RESOURCE.to_owned());
    door.with(async |ex| {
        let _permit = state.kernel().authorize(ex, Action::ReadAudit, &resource)?;
        Ok(())
    })
    .await?;
    let log = state.kernel().log();
    let stats = log.counters();
    let healthy = u8::from(matches!(log.health(), Health::Ok));
    let mut out = String::new();
    let mut metric = |name: &str, kind: &str, help: &str, value: String| {
        let _ = writeln!(
            out,
            "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
        );
    };
    metric(
        "sov_audit_healthy",
        "gauge",
        "1 while the audit record accepts entries, 0 while writing it fails.",
        healthy.to_string(),
    );
    metric(
        "sov_audit_write_failures_total",
        "counter",
        "Writes of the audit record (log, tiles, checkpoints) that failed since the server started.",
        stats.write_failures.to_string(),
    );
    metric(
        "sov_audit_recoveries_total",
        "counter",
        "Times the audit record recovered from a write failure without a restart.",
        stats.recoveries.to_string(),
    );
    metric(
        "sov_audit_entries_total",
        "counter",
        "Entries appended to the audit record since the server started.",
        stats.entries_appended.to_string(),
    );
    let _ = writeln!(
        out,
        "# HELP sov_engine_running Generations running now.\n# TYPE sov_engine_running gauge"
    );
    let mut counters = String::new();
    for (name, model) in state.kernel().models() {
        let s = model.backend.stats();
        let label = escape_label(name);
        let _ = writeln!(out, "sov_engine_running{{model=\"{label}\"}} {}", s.running);
        for (what, n) in [
            ("completed", s.completed),
            ("cancelled", s.cancelled),
            ("failed", s.failed),
        ] {
            let _ = writeln!(
                counters,
                "sov_engine_generations_total{{model=\"{label}\",outcome=\"{what}\"}} {n}"
            );
        }
    }
    let _ = writeln!(
        out,
        "# HELP sov_engine_generations_total Generations that ended, by outcome.\n# TYPE sov_engine_generations_total counter\n{counters}"
    );
    Ok((
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        out,
    )
        .into_response())
}

/// A Prometheus label value: backslash, quote and newline escaped.
fn escape_label(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}
