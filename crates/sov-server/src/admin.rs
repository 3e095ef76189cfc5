//! `/v1/admin/...`: principals, tokens and the policy set, over HTTP, governed by policy like
//! everything else (`manage-principals`, `change-policy`).
//!
//! Which resource a request is decided on: the principal it names (`Principal::"<name>"`), with
//! its record when it exists and as a principal with no roles or attributes when it does not, so
//! a caller who may not manage it gets the same 403 (naming what the request named) whether or not
//! the name exists, and only an allowed caller learns that it does not (404). A token is decided on
//! its principal, and a refusal names only the token id the request gave. Every change lands in the audit record twice over: the
//! directory's own `identity.change` entry (through its outbox, moved into the log before the
//! answer) and the request's entry.

use std::collections::{BTreeMap, BTreeSet};

use axum::Extension;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};
use sov_audit::Draft;
use sov_audit_core::entry::{Kind, Outcome, clean_text};
use sov_policy::store::now_ms;
use sov_policy::token::parse_expiry;
use sov_policy::{Action, NewPrincipal, Principal, PrincipalKind, Resource, StoreError};

use crate::AppState;
use crate::audit::{self, AuditNote};
use crate::error::{ApiError, ApiJson, ApiPath, ApiQuery};

fn store_error(e: StoreError) -> ApiError {
    match e {
        StoreError::Invalid(e) => ApiError::invalid(e.to_string(), None),
        StoreError::Exists(_) => ApiError::conflict(e.to_string()),
        StoreError::NoPrincipal(_) | StoreError::NoToken(_) => ApiError::not_found(&e.to_string()),
        StoreError::Disabled(_) | StoreError::Expiry => ApiError::invalid(e.to_string(), None),
        other => ApiError::internal(&other.to_string()),
    }
}

/// Runs a blocking directory call off the async threads.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::internal(&e.to_string()))?
        .map_err(store_error)
}

/// Moves the directory's queued entries into the record before answering.
async fn drain(state: &AppState) -> Result<(), ApiError> {
    let dir = state.access().directory().clone();
    let log = state.audit().clone();
    blocking(move || dir.drain_outbox(&log)).await.map(|_| ())
}

/// Authorises `manage-principals` on the named principal, whether or not it exists (see the
/// module docs); its record, if it does.
async fn on_principal(
    state: &AppState,
    note: &AuditNote,
    name: &str,
) -> Result<Option<Principal>, ApiError> {
    let dir = state.access().directory().clone();
    let lookup = name.to_owned();
    let target = blocking(move || dir.principal(&lookup)).await?;
    state.authorize_on(
        note,
        Action::ManagePrincipals,
        &Resource::Principal(name.to_owned()),
        target.as_ref(),
    )?;
    Ok(target)
}

fn actor(note: &AuditNote) -> String {
    note.caller().map(|c| c.principal.name).unwrap_or_default()
}

/// `GET /v1/admin/principals`.
pub(crate) async fn list_principals(
    State(state): State<AppState>,
    Extension(note): Extension<AuditNote>,
) -> Result<Response, ApiError> {
    state.authorize(&note, Action::ManagePrincipals, &state.access().node())?;
    let dir = state.access().directory().clone();
    let all = blocking(move || dir.principals()).await?;
    let data: Vec<Value> = all.iter().map(Principal::to_json).collect();
    Ok(axum::Json(json!({"object": "list", "data": data})).into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AddPrincipal {
    name: String,
    #[serde(default)]
    kind: Option<String>,
    #[serde(default)]
    roles: BTreeSet<String>,
    #[serde(default)]
    attrs: BTreeMap<String, String>,
}

/// `POST /v1/admin/principals` `{"name", "kind"?, "roles"?, "attrs"?}`.
pub(crate) async fn add_principal(
    State(state): State<AppState>,
    Extension(note): Extension<AuditNote>,
    ApiJson(req): ApiJson<AddPrincipal>,
) -> Result<Response, ApiError> {
    note.kind(Kind::IdentityChange);
    state.authorize(&note, Action::ManagePrincipals, &state.access().node())?;
    let kind = match req.kind.as_deref() {
        None => PrincipalKind::Person,
        Some(k) => {
            PrincipalKind::parse(k).map_err(|e| ApiError::invalid(e.to_string(), Some("kind")))?
        }
    };
    let new = NewPrincipal {
        name: req.name,
        kind,
        roles: req.roles,
        attrs: req.attrs,
    };
    let dir = state.access().directory().clone();
    let actor = actor(&note);
    let added = blocking(move || dir.add_principal(&new, &actor)).await?;
    drain(&state).await?;
    Ok((StatusCode::CREATED, axum::Json(added.to_json())).into_response())
}

/// `GET /v1/admin/principals/{name}`: the principal and its tokens.
pub(crate) async fn show_principal(
    State(state): State<AppState>,
    Extension(note): Extension<AuditNote>,
    ApiPath(name): ApiPath<String>,
) -> Result<Response, ApiError> {
    let Some(p) = on_principal(&state, &note, &name).await? else {
        return Err(store_error(StoreError::NoPrincipal(name)));
    };
    let dir = state.access().directory().clone();
    let owner = p.name.clone();
    let tokens = blocking(move || dir.tokens(Some(&owner))).await?;
    let now = now_ms();
    let mut body = p.to_json();
    body["tokens"] = tokens.iter().map(|t| t.to_json(now)).collect();
    Ok(axum::Json(body).into_response())
}

/// `POST /v1/admin/principals/{name}/disable`.
pub(crate) async fn disable_principal(
    State(state): State<AppState>,
    Extension(note): Extension<AuditNote>,
    ApiPath(name): ApiPath<String>,
) -> Result<Response, ApiError> {
    note.kind(Kind::IdentityChange);
    if on_principal(&state, &note, &name).await?.is_none() {
        return Err(store_error(StoreError::NoPrincipal(name)));
    }
    let dir = state.access().directory().clone();
    let actor = actor(&note);
    let p = blocking(move || dir.disable_principal(&name, &actor)).await?;
    drain(&state).await?;
    Ok(axum::Json(p.to_json()).into_response())
}

#[derive(Debug, Deserialize)]
pub(crate) struct TokenFilter {
    principal: Option<String>,
}

/// `GET /v1/admin/tokens[?principal=NAME]`: never the secrets.
pub(crate) async fn list_tokens(
    State(state): State<AppState>,
    Extension(note): Extension<AuditNote>,
    ApiQuery(filter): ApiQuery<TokenFilter>,
) -> Result<Response, ApiError> {
    state.authorize(&note, Action::ManagePrincipals, &state.access().node())?;
    let dir = state.access().directory().clone();
    let tokens = blocking(move || dir.tokens(filter.principal.as_deref())).await?;
    let now = now_ms();
    let data: Vec<Value> = tokens.iter().map(|t| t.to_json(now)).collect();
    Ok(axum::Json(json!({"object": "list", "data": data})).into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct IssueToken {
    principal: String,
    /// `90d`, `12h`, `30m`, `never` or an RFC 3339 time; default 90 days.
    #[serde(default)]
    expires: Option<String>,
    /// Action names the token is limited to; default: none (all the policies allow).
    #[serde(default)]
    scope: Option<Vec<String>>,
}

/// Default token lifetime.
pub const DEFAULT_EXPIRY: &str = "90d";

/// `POST /v1/admin/tokens` `{"principal", "expires"?, "scope"?}`: the secret, once.
pub(crate) async fn issue_token(
    State(state): State<AppState>,
    Extension(note): Extension<AuditNote>,
    ApiJson(req): ApiJson<IssueToken>,
) -> Result<Response, ApiError> {
    note.kind(Kind::IdentityChange);
    if on_principal(&state, &note, &req.principal).await?.is_none() {
        return Err(store_error(StoreError::NoPrincipal(req.principal)));
    }
    let now = now_ms();
    let expires = parse_expiry(req.expires.as_deref().unwrap_or(DEFAULT_EXPIRY), now)
        .map_err(|e| ApiError::invalid(e, Some("expires")))?;
    let scope = match req.scope {
        None => None,
        Some(names) => {
            let mut set = BTreeSet::new();
            for n in names {
                set.insert(
                    n.parse::<Action>()
                        .map_err(|e| ApiError::invalid(e.to_string(), Some("scope")))?,
                );
            }
            Some(set)
        }
    };
    let dir = state.access().directory().clone();
    let actor = actor(&note);
    let principal = req.principal;
    let (token, info) =
        blocking(move || dir.issue_token(&principal, expires, scope.as_ref(), &actor)).await?;
    drain(&state).await?;
    let mut body = info.to_json(now);
    body["token"] = Value::String(token.secret().to_owned());
    Ok((StatusCode::CREATED, axum::Json(body)).into_response())
}

/// `POST /v1/admin/tokens/{id}/revoke`.
pub(crate) async fn revoke_token(
    State(state): State<AppState>,
    Extension(note): Extension<AuditNote>,
    ApiPath(id): ApiPath<String>,
) -> Result<Response, ApiError> {
    note.kind(Kind::IdentityChange);
    let dir = state.access().directory().clone();
    let lookup = id.clone();
    let info = blocking(move || dir.token(&lookup)).await?;
    // Decided on the token's principal (or, for an unknown id, on the node); a refusal names only
    // the id the request gave, so it tells neither whether the token exists nor whose it is.
    let hide = |e: ApiError| {
        if e.status() == StatusCode::FORBIDDEN {
            ApiError::forbidden_named(Action::ManagePrincipals, &format!("token `{id}`"))
        } else {
            e
        }
    };
    let Some(info) = info else {
        state
            .authorize(&note, Action::ManagePrincipals, &state.access().node())
            .map_err(hide)?;
        return Err(store_error(StoreError::NoToken(id)));
    };
    on_principal(&state, &note, &info.principal)
        .await
        .map_err(hide)?;
    let dir = state.access().directory().clone();
    let actor = actor(&note);
    let revoked = blocking(move || dir.revoke_token(&id, &actor)).await?;
    drain(&state).await?;
    Ok(axum::Json(revoked.to_json(now_ms())).into_response())
}

/// `GET /v1/admin/policies`: the set in force (hash, files, number of policies).
pub(crate) async fn show_policies(
    State(state): State<AppState>,
    Extension(note): Extension<AuditNote>,
) -> Result<Response, ApiError> {
    state.authorize(&note, Action::ChangePolicy, &state.access().node())?;
    let p = state.access().policies();
    Ok(axum::Json(json!({
        "object": "policy_set",
        "hash": p.hash_hex(),
        "files": p.files(),
        "policies": p.len(),
    }))
    .into_response())
}

/// `POST /v1/admin/policies/reload`: reads `policies/*.cedar` again. An invalid set is refused
/// (422, naming the file and line) and the old one stays in force; either way the attempt is a
/// `policy.change` entry with the old hash (and the new one, when it took effect).
pub(crate) async fn reload_policies(
    State(state): State<AppState>,
    Extension(note): Extension<AuditNote>,
) -> Result<Response, ApiError> {
    note.kind(Kind::PolicyChange);
    state.authorize(&note, Action::ChangePolicy, &state.access().node())?;
    let access = state.access().clone();
    let old_hash = access.policies().hash_hex();
    let result = tokio::task::spawn_blocking(move || access.reload())
        .await
        .map_err(|e| ApiError::internal(&e.to_string()))?;
    match result {
        Ok((_, new)) => {
            // The directory keeps the hash in force and queues the change entry (old, new)
            // in one transaction, as a start does; the entry is durable before the answer.
            let dir = state.access().directory().clone();
            let (hash, files, who) = (new.hash_hex(), new.files().to_vec(), actor(&note));
            blocking(move || dir.policy_loaded(&hash, &files, "policy.reload", &who)).await?;
            drain(&state).await?;
            Ok(axum::Json(json!({
                "object": "policy_set",
                "hash": new.hash_hex(),
                "previous_hash": old_hash,
                "files": new.files(),
                "policies": new.len(),
            }))
            .into_response())
        }
        Err(e) => {
            let attrs = vec![
                ("change".to_owned(), "policy.reload".to_owned()),
                ("old".to_owned(), old_hash),
            ];
            let draft = Draft {
                kind: Kind::PolicyChange,
                principal: clean_text(&actor(&note), 255),
                resource: "policies".to_owned(),
                outcome: Outcome::Error,
                reason: clean_text(&e.to_string(), 2048),
                model: None,
                input: None,
                output: None,
                attrs: note.context_attrs(attrs),
            };
            audit::append(state.audit(), draft)
                .await
                .map_err(|e| ApiError::internal(&e))?;
            Err(ApiError::invalid_policy(format!(
                "The policy set was not changed: {e}"
            )))
        }
    }
}
