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

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};
use sov_audit_core::entry::Kind;
use sov_kernel::{Exchange, Kernel};
use sov_policy::store::now_ms;
use sov_policy::token::parse_expiry;
use sov_policy::{Action, NewPrincipal, Permit, Principal, PrincipalKind, Resource, StoreError};

use crate::AppState;
use crate::error::{ApiError, ApiJson, ApiPath, ApiQuery};
use crate::record::Door;

fn not_found(e: StoreError) -> ApiError {
    sov_kernel::KernelError::Store(e).into()
}

/// Authorises `manage-principals` on the named principal, whether or not it exists (see the
/// module docs); the permit, and its record if it does.
async fn on_principal(
    kernel: &Kernel,
    ex: &mut Exchange,
    name: &str,
) -> Result<(Permit, Option<Principal>), ApiError> {
    let target = kernel.principal_record(name).await?;
    let permit = kernel.authorize_on(
        ex,
        Action::ManagePrincipals,
        &Resource::Principal(name.to_owned()),
        target.as_ref(),
    )?;
    Ok((permit, target))
}

/// Authorises `action` on the node.
fn on_node(kernel: &Kernel, ex: &mut Exchange, action: Action) -> Result<Permit, ApiError> {
    Ok(kernel.authorize(ex, action, &kernel.node())?)
}

/// `GET /v1/admin/principals`.
pub(crate) async fn list_principals(
    State(state): State<AppState>,
    door: Door,
) -> Result<Response, ApiError> {
    let k = state.kernel();
    door.with(async |ex| {
        let permit = on_node(k, ex, Action::ManagePrincipals)?;
        let all = k.principals(&permit).await?;
        let data: Vec<Value> = all.iter().map(Principal::to_json).collect();
        Ok(axum::Json(json!({"object": "list", "data": data})).into_response())
    })
    .await
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
    door: Door,
    ApiJson(req): ApiJson<AddPrincipal>,
) -> Result<Response, ApiError> {
    let k = state.kernel();
    door.with(async |ex| {
        ex.set_kind(Kind::IdentityChange);
        let permit = on_node(k, ex, Action::ManagePrincipals)?;
        let kind = match req.kind.as_deref() {
            None => PrincipalKind::Person,
            Some(k) => PrincipalKind::parse(k)
                .map_err(|e| ApiError::invalid(e.to_string(), Some("kind")))?,
        };
        let new = NewPrincipal {
            name: req.name,
            kind,
            roles: req.roles,
            attrs: req.attrs,
        };
        let added = k.add_principal(&permit, new).await?;
        Ok((StatusCode::CREATED, axum::Json(added.to_json())).into_response())
    })
    .await
}

/// `GET /v1/admin/principals/{name}`: the principal and its tokens.
pub(crate) async fn show_principal(
    State(state): State<AppState>,
    door: Door,
    ApiPath(name): ApiPath<String>,
) -> Result<Response, ApiError> {
    let k = state.kernel();
    door.with(async |ex| {
        let (permit, Some(p)) = on_principal(k, ex, &name).await? else {
            return Err(not_found(StoreError::NoPrincipal(name)));
        };
        let tokens = k.tokens(&permit, Some(p.name.clone())).await?;
        let now = now_ms();
        let mut body = p.to_json();
        body["tokens"] = tokens.iter().map(|t| t.to_json(now)).collect();
        Ok(axum::Json(body).into_response())
    })
    .await
}

/// `POST /v1/admin/principals/{name}/disable`.
pub(crate) async fn disable_principal(
    State(state): State<AppState>,
    door: Door,
    ApiPath(name): ApiPath<String>,
) -> Result<Response, ApiError> {
    let k = state.kernel();
    door.with(async |ex| {
        ex.set_kind(Kind::IdentityChange);
        let (permit, Some(_)) = on_principal(k, ex, &name).await? else {
            return Err(not_found(StoreError::NoPrincipal(name)));
        };
        let p = k.disable_principal(&permit, &name).await?;
        Ok(axum::Json(p.to_json()).into_response())
    })
    .await
}

#[derive(Debug, Deserialize)]
pub(crate) struct TokenFilter {
    principal: Option<String>,
}

/// `GET /v1/admin/tokens[?principal=NAME]`: never the secrets.
pub(crate) async fn list_tokens(
    State(state): State<AppState>,
    door: Door,
    ApiQuery(filter): ApiQuery<TokenFilter>,
) -> Result<Response, ApiError> {
    let k = state.kernel();
    door.with(async |ex| {
        let permit = on_node(k, ex, Action::ManagePrincipals)?;
        let tokens = k.tokens(&permit, filter.principal).await?;
        let now = now_ms();
        let data: Vec<Value> = tokens.iter().map(|t| t.to_json(now)).collect();
        Ok(axum::Json(json!({"object": "list", "data": data})).into_response())
    })
    .await
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
    door: Door,
    ApiJson(req): ApiJson<IssueToken>,
) -> Result<Response, ApiError> {
    let k = state.kernel();
    door.with(async |ex| {
        ex.set_kind(Kind::IdentityChange);
        let (permit, Some(_)) = on_principal(k, ex, &req.principal).await? else {
            return Err(not_found(StoreError::NoPrincipal(req.principal)));
        };
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
        let (token, info) = k
            .issue_token(&permit, &req.principal, expires, scope)
            .await?;
        let mut body = info.to_json(now);
        body["token"] = Value::String(token.secret().to_owned());
        Ok((StatusCode::CREATED, axum::Json(body)).into_response())
    })
    .await
}

/// `POST /v1/admin/tokens/{id}/revoke`.
pub(crate) async fn revoke_token(
    State(state): State<AppState>,
    door: Door,
    ApiPath(id): ApiPath<String>,
) -> Result<Response, ApiError> {
    let k = state.kernel();
    door.with(async |ex| {
        ex.set_kind(Kind::IdentityChange);
        let info = k.token_record(&id).await?;
        // Decided on the token's principal (or, for an unknown id, on the node); a refusal
        // names only the id the request gave, so it tells neither whether the token exists
        // nor whose it is.
        let hide = |e: ApiError| {
            if e.status() == StatusCode::FORBIDDEN {
                ApiError::forbidden_named(Action::ManagePrincipals, &format!("token `{id}`"))
            } else {
                e
            }
        };
        let Some(info) = info else {
            let _permit = on_node(k, ex, Action::ManagePrincipals).map_err(hide)?;
            return Err(not_found(StoreError::NoToken(id.clone())));
        };
        let (permit, _) = on_principal(k, ex, &info.principal).await.map_err(hide)?;
        let revoked = k.revoke_token(&permit, &info.principal, &id).await?;
        Ok(axum::Json(revoked.to_json(now_ms())).into_response())
    })
    .await
}

/// `GET /v1/admin/policies`: the set in force (hash, files, number of policies).
pub(crate) async fn show_policies(
    State(state): State<AppState>,
    door: Door,
) -> Result<Response, ApiError> {
    let k = state.kernel();
    door.with(async |ex| {
        let _permit = on_node(k, ex, Action::ChangePolicy)?;
        let p = k.guard().policies();
        Ok(axum::Json(json!({
            "object": "policy_set",
            "hash": p.hash_hex(),
            "files": p.files(),
            "policies": p.len(),
        }))
        .into_response())
    })
    .await
}

/// `POST /v1/admin/policies/reload`: reads `policies/*.cedar` again. An invalid set is refused
/// (422, naming the file and line) and the old one stays in force; either way the attempt is a
/// `policy.change` entry with the old hash (and the new one, when it took effect).
pub(crate) async fn reload_policies(
    State(state): State<AppState>,
    door: Door,
) -> Result<Response, ApiError> {
    let k = state.kernel();
    door.with(async |ex| {
        ex.set_kind(Kind::PolicyChange);
        let permit = on_node(k, ex, Action::ChangePolicy)?;
        let (old_hash, new) = k.reload_policies(ex, &permit).await?;
        Ok(axum::Json(json!({
            "object": "policy_set",
            "hash": new.hash_hex(),
            "previous_hash": old_hash,
            "files": new.files(),
            "policies": new.len(),
        }))
        .into_response())
    })
    .await
}
