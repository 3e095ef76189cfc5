//! `sov token issue | list | revoke`: API tokens, changed locally (see [`crate::identity`]).

use std::collections::BTreeSet;
use std::io::Write as _;
use std::process::ExitCode;

use anyhow::{Context, Result, anyhow};
use sov_audit_core::entry::rfc3339_ms;
use sov_policy::store::now_ms;
use sov_policy::token::parse_expiry;
use sov_policy::{Action, TokenInfo};

use crate::home::Home;
use crate::{identity, record};

/// `sov token issue PRINCIPAL [--expires 90d] [--scope a,b]`: prints the secret once.
pub fn issue(
    home: &Home,
    principal: &str,
    expires: &str,
    scope: Option<&[String]>,
) -> Result<ExitCode> {
    let config = home.config()?;
    let expires_ms = parse_expiry(expires, now_ms()).map_err(|e| anyhow!("--expires: {e}"))?;
    let scope = scope
        .map(|names| {
            names
                .iter()
                .map(|n| n.trim().parse::<Action>())
                .collect::<Result<BTreeSet<_>, _>>()
        })
        .transpose()
        .map_err(|e| anyhow!("--scope: {e}"))?;
    let directory = identity::open_directory(home)?;
    let (token, info) = directory
        .issue_token(
            principal,
            expires_ms,
            scope.as_ref(),
            &record::local_principal(),
        )
        .with_context(|| format!("failed to issue a token for `{principal}`"))?;
    let recorded = identity::record_outbox(home, &config, &directory)?;
    let mut out = std::io::stdout().lock();
    // The secret alone on stdout's first line, so `sov token issue x | head -1` captures it.
    writeln!(out, "{}", token.secret())?;
    let mut err = std::io::stderr().lock();
    writeln!(
        err,
        "Token {} for `{}` (shown only this once; only its hash is kept), {}.",
        info.id,
        info.principal,
        expiry_words(&info)
    )?;
    if let Some(s) = &info.scope {
        writeln!(err, "Limited to: {}.", s.join(", "))?;
    }
    writeln!(err, "{}", identity::recorded_line(recorded))?;
    Ok(ExitCode::SUCCESS)
}

/// `sov token list [--principal P] [--json]`
pub fn list(home: &Home, principal: Option<&str>, json: bool) -> Result<ExitCode> {
    let directory = identity::open_directory(home)?;
    let tokens = directory.tokens(principal)?;
    let now = now_ms();
    let mut out = std::io::stdout().lock();
    if json {
        let data: Vec<_> = tokens.iter().map(|t| t.to_json(now)).collect();
        writeln!(out, "{}", serde_json::to_string_pretty(&data)?)?;
        return Ok(ExitCode::SUCCESS);
    }
    if tokens.is_empty() {
        writeln!(out, "No tokens.")?;
        return Ok(ExitCode::SUCCESS);
    }
    for t in &tokens {
        writeln!(out, "{}", line(t, now))?;
    }
    Ok(ExitCode::SUCCESS)
}

/// `sov token revoke ID`
pub fn revoke(home: &Home, id: &str) -> Result<ExitCode> {
    let config = home.config()?;
    // Accept a whole token too (the id is its first 12 characters after `sov_`), without
    // ever echoing the secret part back.
    let id = id
        .strip_prefix(sov_policy::token::PREFIX)
        .map_or(id, |body| {
            body.get(..sov_policy::token::ID_CHARS).unwrap_or(body)
        });
    let directory = identity::open_directory(home)?;
    let info = directory
        .revoke_token(id, &record::local_principal())
        .with_context(|| format!("failed to revoke token `{id}`"))?;
    let recorded = identity::record_outbox(home, &config, &directory)?;
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "Token {} of `{}` is revoked: it is refused from now on.",
        info.id, info.principal
    )?;
    writeln!(out, "{}", identity::recorded_line(recorded))?;
    Ok(ExitCode::SUCCESS)
}

/// One token on one line: id, principal, state, expiry, scope.
pub fn line(t: &TokenInfo, now: u64) -> String {
    let scope = t
        .scope
        .as_ref()
        .map_or_else(|| "all actions".to_owned(), |s| s.join(","));
    format!(
        "{}  {:<20} {:<8} issued {}  {}  scope: {}",
        t.id,
        t.principal,
        t.state(now),
        rfc3339_ms(t.created_ms),
        expiry_words(t),
        scope
    )
}

fn expiry_words(t: &TokenInfo) -> String {
    match (t.revoked_ms, t.expires_ms) {
        (Some(r), _) => format!("revoked {}", rfc3339_ms(r)),
        (None, Some(e)) => format!("expires {}", rfc3339_ms(e)),
        (None, None) => "never expires".to_owned(),
    }
}
