//! Errors in OpenAI's shape, and the JSON extractor that produces them.
//!
//! Every error a client sees is `{"error": {"message", "type", "param", "code"}}` with the status
//! OpenAI uses for it. Internal failures become a generic 500; their detail goes to the log only.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::error::Category;
use sov_engine::EngineError;
use sov_openai::WireError;

/// An error answered to the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    status: StatusCode,
    message: String,
    kind: &'static str,
    param: Option<String>,
    code: Option<&'static str>,
}

#[derive(Serialize)]
struct Body<'a> {
    error: Inner<'a>,
}

#[derive(Serialize)]
struct Inner<'a> {
    message: &'a str,
    #[serde(rename = "type")]
    kind: &'a str,
    param: Option<&'a str>,
    code: Option<&'a str>,
}

impl ApiError {
    /// 400: the request is malformed or a field is out of range.
    pub fn invalid(message: impl Into<String>, param: Option<&str>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            message: message.into(),
            kind: "invalid_request_error",
            param: param.map(str::to_owned),
            code: None,
        }
    }

    /// 404: no such model is served.
    pub fn model_not_found(model: &str) -> Self {
        Self {
            status: StatusCode::NOT_FOUND,
            message: format!("The model `{model}` does not exist or is not served here."),
            kind: "invalid_request_error",
            param: Some("model".into()),
            code: Some("model_not_found"),
        }
    }

    /// 404 for an unknown path.
    pub fn route_not_found() -> Self {
        Self {
            status: StatusCode::NOT_FOUND,
            message: "No such endpoint.".into(),
            kind: "invalid_request_error",
            param: None,
            code: Some("unknown_url"),
        }
    }

    /// 405: the route exists, but not with this method (the `Allow` header names its methods).
    pub fn method_not_allowed() -> Self {
        Self {
            status: StatusCode::METHOD_NOT_ALLOWED,
            message:
                "This endpoint does not take this method; the Allow header names those it takes."
                    .to_owned(),
            kind: "invalid_request_error",
            param: None,
            code: Some("method_not_allowed"),
        }
    }

    /// 408: the request's body did not arrive within the time allowed.
    pub fn body_timeout(limit: std::time::Duration) -> Self {
        Self {
            status: StatusCode::REQUEST_TIMEOUT,
            message: format!(
                "The request body did not arrive within {:.1} s.",
                limit.as_secs_f64()
            ),
            kind: "invalid_request_error",
            param: None,
            code: Some("request_timeout"),
        }
    }

    /// 404 for something that does not exist (an audit entry, a tile).
    pub fn not_found(message: &str) -> Self {
        Self {
            status: StatusCode::NOT_FOUND,
            message: message.to_owned(),
            kind: "invalid_request_error",
            param: None,
            code: Some("not_found"),
        }
    }

    /// 413: the body is over the configured limit.
    pub fn too_large() -> Self {
        Self {
            status: StatusCode::PAYLOAD_TOO_LARGE,
            message: "The request body is larger than this server accepts.".into(),
            kind: "invalid_request_error",
            param: None,
            code: Some("request_too_large"),
        }
    }

    /// 503: the audit record cannot be written, so nothing is done.
    pub fn audit_unavailable() -> Self {
        Self {
            status: StatusCode::SERVICE_UNAVAILABLE,
            message: "The audit record cannot be written, so the request was not carried out; the details are in the server's log.".into(),
            kind: "server_error",
            param: None,
            code: Some("audit_unavailable"),
        }
    }

    /// 500 with nothing internal in it; `detail` is logged.
    pub fn internal(detail: &str) -> Self {
        tracing::error!(detail, "request failed inside the server");
        Self {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            message: "The server failed to handle the request; the details are in its log.".into(),
            kind: "server_error",
            param: None,
            code: None,
        }
    }

    /// 401: no valid API token. Says why (missing, malformed, unknown, expired, revoked,
    /// disabled): the secret is checked before the state, so only a holder of the token learns
    /// more than "unknown".
    pub fn unauthenticated(err: &sov_policy::AuthError) -> Self {
        let message = match err {
            sov_policy::AuthError::Missing => {
                "You didn't provide an API key. Send it as `Authorization: Bearer sov_...`."
                    .to_owned()
            }
            other => format!("Invalid API key: {other}."),
        };
        Self {
            status: StatusCode::UNAUTHORIZED,
            message,
            kind: "invalid_request_error",
            param: None,
            code: Some("invalid_api_key"),
        }
    }

    /// 401: a session cookie that does not admit (see `sov_policy::SessionError`).
    pub fn session_refused(err: &sov_policy::SessionError) -> Self {
        Self {
            status: StatusCode::UNAUTHORIZED,
            message: format!("Invalid console session: {err}."),
            kind: "invalid_request_error",
            param: None,
            code: Some("invalid_session"),
        }
    }

    /// 403: a state-changing request through a session without its CSRF token.
    pub fn csrf() -> Self {
        Self {
            status: StatusCode::FORBIDDEN,
            message: "A request through a console session that changes anything must carry the session's CSRF token in X-Sov-CSRF.".into(),
            kind: "invalid_request_error",
            param: None,
            code: Some("csrf_failed"),
        }
    }

    /// 403: a request from another site's page.
    pub fn cross_origin() -> Self {
        Self {
            status: StatusCode::FORBIDDEN,
            message: "Requests from another site's pages are refused.".into(),
            kind: "invalid_request_error",
            param: None,
            code: Some("cross_origin"),
        }
    }

    /// 403: the policies do not allow `action` on `resource`. Names both, nothing internal.
    pub fn forbidden(action: sov_policy::Action, resource: &sov_policy::Resource) -> Self {
        Self {
            status: StatusCode::FORBIDDEN,
            message: format!("You are not allowed to `{action}` on {resource}."),
            kind: "invalid_request_error",
            param: None,
            code: Some("permission_denied"),
        }
    }

    /// 403 naming `what` as the request named it (when the resource decided on would tell more).
    pub fn forbidden_named(action: sov_policy::Action, what: &str) -> Self {
        Self {
            status: StatusCode::FORBIDDEN,
            message: format!("You are not allowed to `{action}` on {what}."),
            kind: "invalid_request_error",
            param: None,
            code: Some("permission_denied"),
        }
    }

    /// 429: over a rate limit.
    pub fn rate_limited(wait: std::time::Duration, failures: bool) -> Self {
        let what = if failures {
            "Too many failed authentications from this address"
        } else {
            "Too many requests for this principal"
        };
        Self {
            status: StatusCode::TOO_MANY_REQUESTS,
            message: format!("{what}; retry in {:.1} s.", wait.as_secs_f64().max(0.1)),
            kind: "requests",
            param: None,
            code: Some("rate_limit_exceeded"),
        }
    }

    /// 409: the request conflicts with the current state (a name already taken).
    pub fn conflict(message: String) -> Self {
        Self {
            status: StatusCode::CONFLICT,
            message,
            kind: "invalid_request_error",
            param: None,
            code: Some("conflict"),
        }
    }

    /// 422: the policy files on disk are invalid; the message names the file and line.
    pub fn invalid_policy(message: String) -> Self {
        Self {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            message,
            kind: "invalid_request_error",
            param: None,
            code: Some("invalid_policy"),
        }
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.status
    }
}

impl From<EngineError> for ApiError {
    fn from(err: EngineError) -> Self {
        match err {
            EngineError::InvalidParam { param, .. } => Self::invalid(err.to_string(), Some(param)),
            EngineError::ContextExceeded { .. } => Self {
                code: Some("context_length_exceeded"),
                ..Self::invalid(err.to_string(), Some("messages"))
            },
            EngineError::TooMuchInput { .. } => Self::invalid(err.to_string(), Some("input")),
            EngineError::InvalidRole { .. } => Self::invalid(err.to_string(), Some("messages")),
            EngineError::EmptyPrompt => Self::invalid(err.to_string(), None),
            EngineError::NoChatTemplate | EngineError::EmbeddingOnly => {
                Self::invalid(err.to_string(), Some("model"))
            }
            EngineError::Template { .. } => {
                // A template error comes from the conversation the client sent (e.g. roles the
                // template refuses with raise_exception), so the client sees the reason.
                let mut message = err.to_string();
                if let Some(source) = std::error::Error::source(&err) {
                    message = format!("{message}: {source}");
                }
                Self::invalid(message, Some("messages"))
            }
            EngineError::Busy { .. } => Self {
                status: StatusCode::SERVICE_UNAVAILABLE,
                message: err.to_string(),
                kind: "server_error",
                param: None,
                code: Some("engine_busy"),
            },
            other => Self::internal(&other.to_string()),
        }
    }
}

/// A request the wire format accepts but Sovereign does not: a 400 with its message and `param`.
impl From<WireError> for ApiError {
    fn from(err: WireError) -> Self {
        Self::invalid(err.message, err.param)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = Body {
            error: Inner {
                message: &self.message,
                kind: self.kind,
                param: self.param.as_deref(),
                code: self.code,
            },
        };
        let mut response = (self.status, axum::Json(body)).into_response();
        // What the request's entry says of the refusal (never the message): read by the
        // recording layer from the response, not parsed back out of the body.
        response.extensions_mut().insert(self.refusal());
        response
    }
}

impl ApiError {
    /// The refusal's type, code and parameter, as the request's entry records them.
    pub fn refusal(&self) -> sov_kernel::Refusal {
        sov_kernel::Refusal {
            kind: self.kind.to_owned(),
            code: self.code.map(str::to_owned),
            param: self.param.clone(),
        }
    }
}

impl From<sov_kernel::KernelError> for ApiError {
    fn from(err: sov_kernel::KernelError) -> Self {
        use sov_kernel::KernelError as K;
        use sov_policy::StoreError as S;
        match err {
            K::Forbidden(action, resource) => Self::forbidden(action, &resource),
            K::ModelNotFound(name) => Self::model_not_found(&name),
            K::NotFound(what) => Self::not_found(&what),
            K::NoSpecialistFits(reason) => Self {
                status: StatusCode::NOT_FOUND,
                message: format!(
                    "No specialist fits this request ({reason}). Name a model or a specialist, \
                     or ask the owner to set a general model for `auto` ([router] fallback)."
                ),
                kind: "invalid_request_error",
                param: Some("model".into()),
                code: Some("no_specialist_fits"),
            },
            K::Invalid { message, param } => Self::invalid(message, param),
            e @ K::EmbeddingOnly { .. } => Self::invalid(e.to_string(), Some("model")),
            K::Engine(e) => e.into(),
            K::Unrecorded(e) => {
                tracing::error!(detail = %e, "the audit record could not be written; the request is refused");
                Self::audit_unavailable()
            }
            K::Store(e) => match e {
                S::Invalid(e) => Self::invalid(e.to_string(), None),
                S::Exists(_) => Self::conflict(e.to_string()),
                S::NoPrincipal(_) | S::NoToken(_) => Self::not_found(&e.to_string()),
                S::Disabled(_) | S::Expiry => Self::invalid(e.to_string(), None),
                other => Self::internal(&other.to_string()),
            },
            K::Policy(e) => Self::invalid_policy(format!("The policy set was not changed: {e}")),
            K::Internal(detail) => Self::internal(&detail),
        }
    }
}

/// A JSON body whose every rejection is an [`ApiError`]: 413 over the body limit, 400 otherwise.
#[derive(Debug)]
pub struct ApiJson<T>(pub T);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::too_large()
            } else {
                ApiError::invalid(
                    format!("Failed to read the request body: {rejection}"),
                    None,
                )
            }
        })?;
        let mut de = serde_json::Deserializer::from_slice(&bytes);
        let value = serde_path_to_error::deserialize(&mut de).map_err(|e| {
            let path = e.path().to_string();
            let inner = e.into_inner();
            match inner.classify() {
                Category::Syntax | Category::Eof | Category::Io => {
                    ApiError::invalid(format!("The body is not valid JSON: {inner}"), None)
                }
                // A data error names the field it is about, as OpenAI's `param` does.
                Category::Data if path == "." => {
                    ApiError::invalid(format!("Invalid request: {inner}"), None)
                }
                Category::Data => {
                    ApiError::invalid(format!("Invalid request: `{path}`: {inner}"), Some(&path))
                }
            }
        })?;
        de.end()
            .map_err(|e| ApiError::invalid(format!("The body is not valid JSON: {e}"), None))?;
        Ok(Self(value))
    }
}

/// A path parameter whose rejection is an [`ApiError`] (400 naming the parameter), not axum's
/// plain-text answer.
#[derive(Debug)]
pub struct ApiPath<T>(pub T);

impl<S, T> axum::extract::FromRequestParts<S> for ApiPath<T>
where
    S: Send + Sync,
    T: DeserializeOwned + Send,
{
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, Self::Rejection> {
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(v)) => Ok(Self(v)),
            Err(rejection) => Err(ApiError::invalid(
                format!("Invalid path: {}", rejection.body_text()),
                Some("path"),
            )),
        }
    }
}

/// A query string whose rejection is an [`ApiError`] (400), not axum's plain-text answer.
#[derive(Debug)]
pub struct ApiQuery<T>(pub T);

impl<S, T> axum::extract::FromRequestParts<S> for ApiQuery<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, Self::Rejection> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(v)) => Ok(Self(v)),
            Err(rejection) => Err(ApiError::invalid(
                format!("Invalid query string: {}", rejection.body_text()),
                Some("query"),
            )),
        }
    }
}
