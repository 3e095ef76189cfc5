//! The record, published read-only under `/v1/audit/`: the C2SP tlog-tiles layout (checkpoint,
//! verifier keys, tiles and entry bundles), plus one entry decoded, one entry's receipt, and a
//! consistency proof between two tree sizes.
//! Readable by whoever may `read-audit` on `AuditLog::"record"`; each read is recorded through
//! its decision.

use std::time::Duration;

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use serde_json::Value;
use sov_audit::LogReader;
use sov_audit_core::entry::Entry;
use sov_kernel::Exchange;
use sov_policy::{Action, Resource};

use crate::AppState;
use crate::error::{ApiError, ApiPath};
use crate::record::Door;

/// An error with its causes, for the server's log.
fn chain(e: &dyn std::error::Error) -> String {
    sov_audit::RecordError::from_error(e).0
}

/// The audit log as a resource of `read-audit`.
pub const AUDIT_RESOURCE: &str = "record";

/// Whether the caller may read the record (`read-audit` on `AuditLog::"record"`).
fn may_read(state: &AppState, ex: &mut Exchange) -> Result<(), ApiError> {
    let _permit = state.kernel().authorize(
        ex,
        Action::ReadAudit,
        &Resource::AuditLog(AUDIT_RESOURCE.to_owned()),
    )?;
    Ok(())
}

fn reader(state: &AppState) -> Result<LogReader, ApiError> {
    LogReader::open(state.kernel().log().dir()).map_err(|e| ApiError::internal(&chain(&e)))
}

fn text(body: Vec<u8>, cache: &'static str, content_type: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, cache),
        ],
        body,
    )
        .into_response()
}

/// `GET /v1/audit/checkpoint`: the latest signed checkpoint (C2SP tlog-checkpoint).
pub(crate) async fn checkpoint(
    State(state): State<AppState>,
    door: Door,
) -> Result<Response, ApiError> {
    door.with(async |ex| {
        may_read(&state, ex)?;
        let reader = reader(&state)?;
        Ok(text(
            reader.checkpoint().0.to_vec(),
            "no-cache",
            "text/plain; charset=utf-8",
        ))
    })
    .await
}

/// `GET /v1/audit/vkeys`: the log's verifier keys, one signed-note vkey per line.
pub(crate) async fn vkeys(State(state): State<AppState>, door: Door) -> Result<Response, ApiError> {
    door.with(async |ex| {
        may_read(&state, ex)?;
        let body = reader(&state)?
            .file("vkeys")
            .map_err(|e| ApiError::internal(&chain(&e)))?;
        Ok(text(body, "no-cache", "text/plain; charset=utf-8"))
    })
    .await
}

/// `GET /v1/audit/tile/{*path}`: hash tiles and entry bundles, at their C2SP paths.
pub(crate) async fn tile(
    State(state): State<AppState>,
    door: Door,
    ApiPath(path): ApiPath<String>,
) -> Result<Response, ApiError> {
    door.with(async |ex| {
        may_read(&state, ex)?;
        let path = format!("tile/{path}");
        let tile = sov_audit_core::tile::Tile::parse_path(&path)
            .map_err(|e| ApiError::not_found(&format!("{path} is not a tile path: {e}")))?;
        let body = reader(&state)?
            .file(&path)
            .map_err(|_| ApiError::not_found(&format!("{path} does not exist (yet)")))?;
        let cache = if tile.is_full() {
            "public, max-age=31536000, immutable"
        } else {
            "public, max-age=60"
        };
        Ok(text(body, cache, "application/octet-stream"))
    })
    .await
}

/// Waits (up to about two checkpoint intervals) until `index` is covered by a signed checkpoint.
async fn covered(state: &AppState, index: u64) -> Result<LogReader, ApiError> {
    for _ in 0..30 {
        let reader = reader(state)?;
        if index < reader.checkpoint().1.size {
            return Ok(reader);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let size = reader(state)?.checkpoint().1.size;
    Err(ApiError::not_found(&format!(
        "the record's latest signed checkpoint covers entries 0 to {} and not entry {index}",
        size.saturating_sub(1)
    )))
}

/// `GET /v1/audit/entries/{index}`: one entry, decoded, as JSON (with its bytes in base64).
pub(crate) async fn entry(
    State(state): State<AppState>,
    door: Door,
    ApiPath(index): ApiPath<u64>,
) -> Result<Response, ApiError> {
    door.with(async |ex| {
        may_read(&state, ex)?;
        let reader = covered(&state, index).await?;
        let bytes = reader
            .entry(index)
            .map_err(|e| ApiError::internal(&chain(&e)))?;
        let entry = Entry::decode(&bytes).map_err(|e| ApiError::internal(&chain(&e)))?;
        let mut json: Value =
            serde_json::from_str(&entry.to_json()).map_err(|e| ApiError::internal(&chain(&e)))?;
        json["leaf"] = Value::String(
            base64::engine::general_purpose::STANDARD
                .encode(sov_audit_core::hash::leaf_hash(&bytes)),
        );
        json["bytes"] = Value::String(base64::engine::general_purpose::STANDARD.encode(&bytes));
        Ok(axum::Json(json).into_response())
    })
    .await
}

/// `GET /v1/audit/proof/{index}`: a `c2sp.org/tlog-proof@v1` receipt for one entry, with the
/// entry's bytes as its `extra` data.
pub(crate) async fn proof(
    State(state): State<AppState>,
    door: Door,
    ApiPath(index): ApiPath<u64>,
) -> Result<Response, ApiError> {
    door.with(async |ex| {
        may_read(&state, ex)?;
        let reader = covered(&state, index).await?;
        let receipt = reader
            .receipt(index)
            .map_err(|e| ApiError::internal(&chain(&e)))?;
        Ok(text(
            receipt.to_bytes(),
            "no-cache",
            "text/plain; charset=utf-8",
        ))
    })
    .await
}

/// `GET /v1/audit/consistency/{size1}/{size2}`: an RFC 9162 consistency proof that the tree of
/// `size1` entries is a prefix of the tree of `size2` (at most the latest signed checkpoint's
/// size), one base64 hash per line.
pub(crate) async fn consistency(
    State(state): State<AppState>,
    door: Door,
    ApiPath((size1, size2)): ApiPath<(u64, u64)>,
) -> Result<Response, ApiError> {
    door.with(async |ex| {
        may_read(&state, ex)?;
        let reader = reader(&state)?;
        let size = reader.checkpoint().1.size;
        if size1 > size2 || size2 > size {
            return Err(ApiError::not_found(&format!(
                "a consistency proof needs 0 <= size1 <= size2 <= {size} (the latest signed checkpoint's size)"
            )));
        }
        let proof = reader
            .consistency_between(size1, size2)
            .map_err(|e| ApiError::internal(&chain(&e)))?;
        let b64 = base64::engine::general_purpose::STANDARD;
        let body: String = proof.iter().map(|h| format!("{}\n", b64.encode(h))).collect();
        Ok(text(body.into_bytes(), "no-cache", "text/plain; charset=utf-8"))
    })
    .await
}
