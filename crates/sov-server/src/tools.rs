//! Sovereign's own tool endpoints: `GET /v1/tools` lists the tools the caller may use, in
//! OpenAI's function shape (ready to pass as a chat request's `tools`), and
//! `POST /v1/tools/{name}` calls one with the body as its arguments. Each call is decided
//! (`use-tool`), run and receipted by the kernel ([`sov_kernel::tools`]); the request's own
//! entry is a `tool.call` entry too, naming the route, and lists the receipt among its
//! decisions.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use sov_audit_core::entry::Kind;

use crate::AppState;
use crate::error::{ApiError, ApiJson, ApiPath};
use crate::record::Door;

/// `GET /v1/tools`.
pub(crate) async fn list(State(state): State<AppState>, door: Door) -> Result<Response, ApiError> {
    let k = state.kernel();
    door.with(async |ex| {
        let data: Vec<Value> = k
            .visible_tools(ex)
            .into_iter()
            .map(|(spec, version)| {
                json!({"type": "function", "version": version, "function": {
                    "name": spec.name, "description": spec.description,
                    "parameters": spec.parameters}})
            })
            .collect();
        Ok(axum::Json(json!({"object": "list", "data": data})).into_response())
    })
    .await
}

/// `POST /v1/tools/{name}` with the arguments as the body: `{"tool", "version", "result"}`, or
/// `{"tool", "version", "error"}` with status 422 when the tool refused its arguments or
/// failed.
pub(crate) async fn call(
    State(state): State<AppState>,
    door: Door,
    ApiPath(name): ApiPath<String>,
    ApiJson(arguments): ApiJson<Value>,
) -> Result<Response, ApiError> {
    let k = state.kernel();
    door.with(async |ex| {
        ex.set_kind(Kind::ToolCall);
        let step = k.call_tool(ex, &name, arguments, 0).await?;
        Ok(match step.result {
            Ok(result) => axum::Json(json!({
                "tool": step.tool, "version": step.version, "result": result,
            }))
            .into_response(),
            Err(e) => {
                let mut r = (
                    axum::http::StatusCode::UNPROCESSABLE_ENTITY,
                    axum::Json(json!({"tool": step.tool, "version": step.version, "error": e})),
                )
                    .into_response();
                // The request's entry says why, as for any refusal (never the message).
                r.extensions_mut().insert(sov_kernel::Refusal {
                    kind: "invalid_request_error".into(),
                    code: Some("tool_error".into()),
                    param: None,
                });
                r
            }
        })
    })
    .await
}
