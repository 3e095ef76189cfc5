//! `GET /v1/catalog`: what the node serves, as the caller may see it (the kernel's
//! `Kernel::catalog`: models and specialists they may `infer` with, corpora and documents they
//! may `read-corpus`; nothing about the others, not even how many), with the hashes that pin each and the owner's key that signed their
//! manifests. The console's models page reads it.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::AppState;
use crate::error::ApiError;
use crate::record::Door;

pub(crate) async fn catalog(
    State(state): State<AppState>,
    door: Door,
) -> Result<Response, ApiError> {
    let kernel = state.kernel();
    let c = door.with(async |ex| Ok(kernel.catalog(ex))).await?;
    let models: Vec<_> = c
        .models
        .iter()
        .map(|m| {
            json!({"name": m.name, "sha256": m.sha256, "created": m.created,
                   "serves": if m.embedding_only { "embeddings" } else { "chat" }})
        })
        .collect();
    let specialists: Vec<_> = c
        .specialists
        .iter()
        .map(|s| {
            json!({"name": s.name, "manifest_sha256": s.manifest_sha256, "base": s.base,
                   "base_sha256": s.base_sha256, "adapter_sha256": s.adapter_sha256,
                   "corpora": s.corpora, "description": s.description, "tools": s.tools})
        })
        .collect();
    let corpora: Vec<_> = c
        .corpora
        .iter()
        .map(|k| {
            let documents: Vec<_> = k
                .documents
                .iter()
                .map(|d| json!({"id": d.id, "clearance": d.clearance, "attrs": d.attrs}))
                .collect();
            // Not how many were withheld: that there are documents a caller may not see is
            // itself not theirs to know (the record has the count and a digest of the ids).
            json!({"name": k.name, "manifest_sha256": k.manifest_sha256,
                   "embedding_model": k.embedding_model, "documents": documents})
        })
        .collect();
    Ok(axum::Json(json!({
        "object": "catalog",
        // Every manifest is signed by the owner's keys (Ed25519 and ML-DSA-65), and each model,
        // adapter and corpus was verified against its manifest when `sov serve` started.
        "signed_by": state.config().owner,
        "signatures": "Ed25519 and ML-DSA-65, verified at start",
        "models": models,
        "specialists": specialists,
        "corpora": corpora,
    }))
    .into_response())
}
