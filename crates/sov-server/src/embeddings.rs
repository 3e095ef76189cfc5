//! `POST /v1/embeddings`: pooled, normalised vectors from a loaded model.

use axum::Extension;
use axum::extract::State;
use axum::response::IntoResponse;
use base64::Engine as _;
use serde_json::{Value, json};

use crate::AppState;
use crate::audit::AuditNote;
use crate::error::{ApiError, ApiJson};
use crate::openai::EmbeddingRequest;

pub async fn embed(
    State(state): State<AppState>,
    Extension(note): Extension<AuditNote>,
    ApiJson(req): ApiJson<EmbeddingRequest>,
) -> Result<impl IntoResponse, ApiError> {
    let engine = state.engine(&req.model, &note)?;
    let as_base64 = match req.encoding_format.as_deref() {
        None | Some("float") => false,
        Some("base64") => true,
        Some(other) => {
            return Err(ApiError::invalid(
                format!("encoding_format must be \"float\" or \"base64\", not {other:?}."),
                Some("encoding_format"),
            ));
        }
    };
    let width = engine.info().embedding_length;
    if req.dimensions.is_some_and(|d| d != width) {
        return Err(ApiError::invalid(
            format!(
                "This model's embeddings have {width} dimensions; other sizes are not supported."
            ),
            Some("dimensions"),
        ));
    }
    let inputs = req.input.into_vec();
    if inputs.is_empty() {
        return Err(ApiError::invalid(
            "input must hold at least one string.",
            Some("input"),
        ));
    }
    if inputs.iter().any(String::is_empty) {
        return Err(ApiError::invalid(
            "input strings must not be empty.",
            Some("input"),
        ));
    }
    // The engine bounds the inputs and their tokens (EngineConfig::max_embedding_*), refuses
    // before any work, and stops between inputs when this future is dropped (the client left).
    let (vectors, tokens) = engine.embed(&inputs).await?;
    note.attr("inputs", inputs.len());
    note.attr("prompt_tokens", tokens);
    let data: Vec<Value> = vectors
        .iter()
        .enumerate()
        .map(|(index, v)| {
            let embedding = if as_base64 {
                let bytes: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
                json!(base64::engine::general_purpose::STANDARD.encode(bytes))
            } else {
                json!(v)
            };
            json!({"object": "embedding", "index": index, "embedding": embedding})
        })
        .collect();
    Ok(axum::Json(json!({
        "object": "list",
        "data": data,
        "model": req.model,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    })))
}
