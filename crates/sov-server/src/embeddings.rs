//! `POST /v1/embeddings`: pooled, normalised vectors from a loaded model.

use axum::extract::State;
use axum::response::IntoResponse;
use base64::Engine as _;
use serde_json::{Value, json};
use sov_kernel::EmbedCall;
use sov_openai::{EmbeddingRequest, Encoding};

use crate::AppState;
use crate::error::{ApiError, ApiJson};
use crate::record::Door;

pub async fn embed(
    State(state): State<AppState>,
    door: Door,
    ApiJson(req): ApiJson<EmbeddingRequest>,
) -> Result<impl IntoResponse, ApiError> {
    let model = req.model.clone();
    let as_base64 = req.encoding()? == Encoding::Base64;
    let call = EmbedCall {
        model: req.model,
        inputs: req.input.into_vec(),
        dimensions: req.dimensions.map(|d| d as usize),
    };
    let kernel = state.kernel();
    let embeddings = door
        .with(async |ex| {
            // The kernel authorises first, then checks the width and the inputs; the engine
            // bounds the inputs and their tokens, refuses before any work, and stops between
            // inputs when this future is dropped (the client left).
            Ok(kernel.embed(ex, call).await?)
        })
        .await?;
    let sov_kernel::Embeddings { vectors, tokens } = embeddings;
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
        "model": model,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    })))
}
