//! `sov policy check | show`: the policy set on disk, validated and explained.
//!
//! `check` decides with the files in `policies/` as they are now (what the next start or
//! `POST /v1/admin/policies/reload` would put in force), for the principal as the directory
//! holds it. It changes nothing and is not an access, so it is not recorded.

use std::io::Write as _;
use std::process::ExitCode;

use anyhow::{Result, anyhow, bail};
use serde_json::json;
use sov_policy::{Action, Basis, Resource};

use crate::home::Home;
use crate::identity;

/// Exit status of `sov policy check` when the decision is deny (errors exit with 1).
const DENIED: u8 = 2;

/// `sov policy check PRINCIPAL ACTION RESOURCE [--json]`: exits 0 if allowed, 2 if denied.
pub fn check(
    home: &Home,
    principal: &str,
    action: &str,
    resource: &str,
    json: bool,
) -> Result<ExitCode> {
    let action: Action = action.parse().map_err(|e| anyhow!("{e}"))?;
    let resource = Resource::parse(resource).map_err(|e| anyhow!("{e}"))?;
    let policies = identity::load_policies(home)?;
    let directory = identity::open_directory(home)?;
    let Some(who) = directory.principal(principal)? else {
        bail!("no principal named `{principal}` (see `sov principal list`)");
    };
    let target = match &resource {
        Resource::Principal(name) => directory.principal(name)?,
        _ => None,
    };
    let decision = policies.decide_on(&who, action, &resource, target.as_ref());
    let mut out = std::io::stdout().lock();
    if json {
        let basis = match decision.basis() {
            Basis::Permitted => "permitted",
            Basis::Forbidden => "forbidden",
            Basis::NoPermit => "no-permit",
            Basis::OutOfScope => "out-of-scope",
            Basis::Invalid(_) => "invalid",
        };
        let body = json!({
            "decision": decision.word(),
            "principal": who.name,
            "principal_disabled": who.disabled_ms.is_some(),
            "action": action.name(),
            "resource": resource.to_string(),
            "basis": basis,
            "explanation": decision.explain(),
            "policies": decision.policies().iter().map(|p| json!({
                "id": p.id, "effect": p.effect, "file": p.file, "line": p.line,
            })).collect::<Vec<_>>(),
            "errors": decision.errors(),
            "policy_set": policies.hash_hex(),
        });
        writeln!(out, "{}", serde_json::to_string_pretty(&body)?)?;
    } else {
        writeln!(
            out,
            "{}: Principal::\"{}\" {} {resource}",
            decision.word().to_uppercase(),
            who.name,
            action.name()
        )?;
        writeln!(out, "  {}", decision.explain())?;
        for e in decision.errors() {
            writeln!(out, "  a policy failed to evaluate (it never allows): {e}")?;
        }
        if who.disabled_ms.is_some() {
            writeln!(
                out,
                "  note: `{}` is disabled, so its tokens are refused before any policy is asked",
                who.name
            )?;
        }
        writeln!(out, "  policy set {}", policies.hash_hex())?;
    }
    Ok(if decision.is_allowed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(DENIED)
    })
}

/// `sov policy show [--json]`: validates the set and shows its hash and files.
pub fn show(home: &Home, json: bool) -> Result<ExitCode> {
    let policies = identity::load_policies(home)?;
    let mut out = std::io::stdout().lock();
    if json {
        let body = json!({
            "object": "policy_set",
            "hash": policies.hash_hex(),
            "files": policies.files(),
            "policies": policies.len(),
        });
        writeln!(out, "{}", serde_json::to_string_pretty(&body)?)?;
    } else {
        writeln!(
            out,
            "The policy set in {} is valid: {} policies in {} files.",
            home.policies_dir().display(),
            policies.len(),
            policies.files().len()
        )?;
        writeln!(out, "  hash:  {}", policies.hash_hex())?;
        for f in policies.files() {
            writeln!(out, "  file:  {f}")?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
