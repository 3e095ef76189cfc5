//! Console sessions over HTTP: sign in with a token once, then a cookie (see
//! `sov_policy::session` for what a session is and how it ends).
//!
//! - `POST /v1/console/session` with `{"token": "sov_..."}` (`Content-Type: application/json`)
//!   signs in: the answer sets the cookie `sov_session` (`HttpOnly; SameSite=Strict; Path=/`,
//!   `Secure` when the request came over TLS through a proxy that says so with
//!   `X-Forwarded-Proto: https`, `Max-Age` the session's lifetime) and carries the session's
//!   CSRF token. It is the one route that takes a token in its body: it is throttled and
//!   recorded like a bearer token (a refused sign-in is a `refusal` entry and a failed
//!   authentication of its address), and its body is not committed to (it is the secret).
//! - `GET /v1/console/session`: the session (principal, roles, expiry) and its CSRF token again,
//!   for a page that was reloaded. `DELETE` signs out (a `session` entry) and clears the cookie.
//! - Every other route takes the cookie instead of `Authorization` (both at once is refused).
//!   A request through a session that changes anything (any method but `GET`, `HEAD` and
//!   `OPTIONS`) must carry the CSRF token in `X-Sov-CSRF`, and an `Origin`, if sent, must be the
//!   node's own (`Sec-Fetch-Site: cross-site` is refused too): a cross-site form or script gets a
//!   recorded 403. SameSite=Strict already keeps the cookie off cross-site requests; the token
//!   is the second lock, for browsers or proxies that do not honour it.

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;
use sov_audit_core::entry::rfc3339_ms;
use sov_policy::{Caller, session::csrf_of};

use crate::AppState;
use crate::error::ApiError;
use crate::record::Door;

/// The route that signs in (POST), shows (GET) and signs out (DELETE).
pub const ROUTE: &str = "/v1/console/session";
/// The session cookie's name.
pub const COOKIE: &str = "sov_session";
/// The header a state-changing request through a session carries its CSRF token in.
pub const CSRF_HEADER: &str = "x-sov-csrf";
/// The largest sign-in body read.
const MAX_SIGN_IN_BYTES: usize = 4096;

/// Whether a request is the sign-in.
pub(crate) fn is_sign_in(req: &Request) -> bool {
    req.method() == Method::POST && req.uri().path() == ROUTE
}

/// Whether a method changes nothing (and so needs no CSRF token).
pub(crate) fn is_safe(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// The session cookie's value: `Ok(None)` without one, `Err` if it is sent twice (a cookie set
/// for another path or by a sibling domain must not be settled by order).
pub(crate) fn cookie(headers: &HeaderMap) -> Result<Option<&str>, ()> {
    let mut found = None;
    for value in headers.get_all(header::COOKIE) {
        let Ok(value) = value.to_str() else {
            continue;
        };
        for pair in value.split(';') {
            let Some((name, v)) = pair.trim().split_once('=') else {
                continue;
            };
            if name.trim() == COOKIE {
                if found.is_some() {
                    return Err(());
                }
                found = Some(v.trim());
            }
        }
    }
    Ok(found)
}

/// Whether a state-changing request through a session may go on: its origin is the node's own
/// and it carries the session's CSRF token.
pub(crate) fn check_unsafe(headers: &HeaderMap, secret: &str) -> Result<(), ApiError> {
    if !same_origin(headers) {
        return Err(ApiError::cross_origin());
    }
    let mut presented = headers.get_all(CSRF_HEADER).iter();
    let (Some(token), None) = (presented.next(), presented.next()) else {
        return Err(ApiError::csrf());
    };
    match token.to_str() {
        Ok(t) if sov_policy::session::csrf_matches(secret, t) => Ok(()),
        _ => Err(ApiError::csrf()),
    }
}

/// `Origin` (if sent) names this host, and the browser does not call the request cross-site.
fn same_origin(headers: &HeaderMap) -> bool {
    if headers
        .get("sec-fetch-site")
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"cross-site"))
    {
        return false;
    }
    let Some(origin) = headers.get(header::ORIGIN) else {
        return true;
    };
    let Some(host) = headers.get(header::HOST).and_then(|h| h.to_str().ok()) else {
        return false;
    };
    let Ok(origin) = origin.to_str() else {
        return false;
    };
    origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"))
        .is_some_and(|rest| rest.eq_ignore_ascii_case(host))
}

/// Whether the request reached the node over TLS, as a proxy in front says (the cookie is then
/// `Secure`).
pub(crate) fn behind_tls(headers: &HeaderMap) -> bool {
    headers
        .get("x-forwarded-proto")
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"https"))
}

fn set_cookie(headers: &mut HeaderMap, value: &str, max_age_s: u64, secure: bool) {
    let secure = if secure { "; Secure" } else { "" };
    let cookie =
        format!("{COOKIE}={value}; HttpOnly; SameSite=Strict; Path=/; Max-Age={max_age_s}{secure}");
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        headers.append(header::SET_COOKIE, v);
    }
}

/// Tells the browser to drop the session cookie (signed out, or a session that ended).
pub(crate) fn clear_cookie(headers: &mut HeaderMap, secure: bool) {
    set_cookie(headers, "", 0, secure);
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SignIn {
    token: String,
}

/// Why a sign-in body is refused before its token is looked at.
fn parse_sign_in(headers: &HeaderMap, body: &[u8]) -> Result<SignIn, ApiError> {
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(';')
                .next()
                .is_some_and(|t| t.trim().eq_ignore_ascii_case("application/json"))
        });
    if !json {
        return Err(ApiError::invalid(
            "Sign in with a JSON body {\"token\": \"sov_...\"} and Content-Type: application/json.",
            None,
        ));
    }
    serde_json::from_slice(body).map_err(|_| {
        ApiError::invalid(
            "The sign-in body must be {\"token\": \"sov_...\"} and nothing else.",
            Some("token"),
        )
    })
}

/// The session's description, for the sign-in answer and `GET`.
fn describe(caller: &Caller, info: &sov_policy::SessionInfo, csrf: &str) -> serde_json::Value {
    json!({
        "object": "console.session",
        "id": info.id,
        "principal": caller.name(),
        "roles": caller.principal().roles,
        "token": info.token,
        "signed_in_at": rfc3339_ms(info.opened_ms),
        "expires_at": rfc3339_ms(info.expires_ms),
        "idle_timeout_s": info.idle.as_secs(),
        "csrf_token": csrf,
    })
}

/// The body of a sign-in, or the refusal of one that cannot be read; the caller of [`sign_in`]
/// has checked the address's failures already.
pub(crate) async fn read_sign_in(state: &AppState, req: Request) -> Result<String, ApiError> {
    let (parts, body) = req.into_parts();
    if !same_origin(&parts.headers) {
        return Err(ApiError::cross_origin());
    }
    let timeout = state.config().timeouts.body;
    let bytes =
        match tokio::time::timeout(timeout, axum::body::to_bytes(body, MAX_SIGN_IN_BYTES)).await {
            Ok(Ok(bytes)) => bytes,
            Ok(Err(_)) => return Err(ApiError::too_large()),
            Err(_) => return Err(ApiError::body_timeout(timeout)),
        };
    Ok(parse_sign_in(&parts.headers, &bytes)?.token)
}

/// The answer to a sign-in that opened a session.
pub(crate) fn signed_in(signed: &sov_kernel::SignedIn, secure: bool) -> Response {
    let info = &signed.opened.info;
    let mut response =
        axum::Json(describe(&signed.caller, info, &signed.opened.csrf)).into_response();
    let lifetime = info
        .expires_ms
        .saturating_sub(info.opened_ms)
        .div_ceil(1000);
    set_cookie(
        response.headers_mut(),
        &signed.opened.secret,
        lifetime,
        secure,
    );
    crate::record::set_entry_headers(response.headers_mut(), &signed.appended);
    no_store(response)
}

fn no_store(mut response: Response) -> Response {
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// `GET /v1/console/session`: the session the request came through.
pub(crate) async fn show(
    State(state): State<AppState>,
    door: Door,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let caller = door.with(async |ex| Ok(ex.caller().clone())).await?;
    let (Some(info), Ok(Some(secret))) =
        (state.kernel().guard().session(&caller), cookie(&headers))
    else {
        return Err(ApiError::not_found(
            "This request did not come through a console session.",
        ));
    };
    Ok(no_store(
        axum::Json(describe(&caller, &info, &csrf_of(secret))).into_response(),
    ))
}

/// `DELETE /v1/console/session`: signs out.
pub(crate) async fn sign_out(
    State(state): State<AppState>,
    door: Door,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let kernel = state.kernel();
    let closed = door.with(async |ex| Ok(kernel.sign_out(ex))).await?;
    if !closed {
        return Err(ApiError::not_found(
            "This request did not come through a console session.",
        ));
    }
    let mut response =
        axum::Json(json!({"object": "console.session", "signed_out": true})).into_response();
    clear_cookie(response.headers_mut(), behind_tls(&headers));
    Ok(no_store(response))
}
