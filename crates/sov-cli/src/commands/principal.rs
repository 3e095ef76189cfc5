//! `sov principal add | list | show | disable`: the directory's principals, changed locally
//! (see [`crate::identity`] for who acts and how the change is recorded).

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write as _;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use sov_audit_core::entry::rfc3339_ms;
use sov_policy::store::now_ms;
use sov_policy::{NewPrincipal, Principal, PrincipalKind};

use crate::home::Home;
use crate::{identity, record};

/// `sov principal add NAME [--kind K] [--role R]... [--attr K=V]...`
pub fn add(
    home: &Home,
    name: &str,
    kind: &str,
    roles: &[String],
    attrs: &[String],
) -> Result<ExitCode> {
    let config = home.config()?;
    let kind = PrincipalKind::parse(kind)?;
    let mut attr_map = BTreeMap::new();
    for a in attrs {
        let Some((k, v)) = a.split_once('=') else {
            bail!("--attr `{a}` is not KEY=VALUE");
        };
        if attr_map.insert(k.to_owned(), v.to_owned()).is_some() {
            bail!("--attr `{k}` is given twice");
        }
    }
    let new = NewPrincipal {
        name: name.to_owned(),
        kind,
        roles: roles.iter().cloned().collect::<BTreeSet<_>>(),
        attrs: attr_map,
    };
    let directory = identity::open_directory(home)?;
    let added = directory.add_principal(&new, &record::local_principal())?;
    let recorded = identity::record_outbox(home, &config, &directory)?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "Added principal `{}`.", added.name)?;
    print_principal(&mut out, &added)?;
    writeln!(out, "{}", identity::recorded_line(recorded))?;
    writeln!(
        out,
        "Issue it a token with `sov token issue {}`.",
        added.name
    )?;
    Ok(ExitCode::SUCCESS)
}

/// `sov principal list [--json]`
pub fn list(home: &Home, json: bool) -> Result<ExitCode> {
    let directory = identity::open_directory(home)?;
    let all = directory.principals()?;
    let mut out = std::io::stdout().lock();
    if json {
        let data: Vec<_> = all.iter().map(Principal::to_json).collect();
        writeln!(out, "{}", serde_json::to_string_pretty(&data)?)?;
        return Ok(ExitCode::SUCCESS);
    }
    if all.is_empty() {
        writeln!(
            out,
            "No principals. Add one with `sov principal add NAME --role ROLE`."
        )?;
        return Ok(ExitCode::SUCCESS);
    }
    writeln!(
        out,
        "{:<24} {:<8} {:<9} {:<20} ATTRIBUTES",
        "NAME", "KIND", "STATE", "ROLES"
    )?;
    for p in &all {
        let attrs: Vec<String> = p.attrs.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let roles: Vec<&str> = p.roles.iter().map(String::as_str).collect();
        writeln!(
            out,
            "{:<24} {:<8} {:<9} {:<20} {}",
            p.name,
            p.kind.name(),
            if p.disabled_ms.is_some() {
                "disabled"
            } else {
                "active"
            },
            roles.join(","),
            attrs.join(" ")
        )?;
    }
    Ok(ExitCode::SUCCESS)
}

/// `sov principal show NAME [--json]`: the principal and its tokens.
pub fn show(home: &Home, name: &str, json: bool) -> Result<ExitCode> {
    let directory = identity::open_directory(home)?;
    let Some(p) = directory.principal(name)? else {
        bail!("no principal named `{name}` (see `sov principal list`)");
    };
    let tokens = directory.tokens(Some(name))?;
    let now = now_ms();
    let mut out = std::io::stdout().lock();
    if json {
        let mut body = p.to_json();
        body["tokens"] = tokens.iter().map(|t| t.to_json(now)).collect();
        writeln!(out, "{}", serde_json::to_string_pretty(&body)?)?;
        return Ok(ExitCode::SUCCESS);
    }
    print_principal(&mut out, &p)?;
    if tokens.is_empty() {
        writeln!(out, "  tokens:     none")?;
    } else {
        writeln!(out, "  tokens:")?;
        for t in &tokens {
            writeln!(out, "    {}", super::token::line(t, now))?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `sov principal disable NAME`
pub fn disable(home: &Home, name: &str) -> Result<ExitCode> {
    let config = home.config()?;
    let directory = identity::open_directory(home)?;
    let p = directory
        .disable_principal(name, &record::local_principal())
        .with_context(|| format!("failed to disable `{name}`"))?;
    let recorded = identity::record_outbox(home, &config, &directory)?;
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "Principal `{}` is disabled: every token of it is refused from now on.",
        p.name
    )?;
    writeln!(out, "{}", identity::recorded_line(recorded))?;
    Ok(ExitCode::SUCCESS)
}

fn print_principal(out: &mut impl std::io::Write, p: &Principal) -> Result<()> {
    let roles: Vec<&str> = p.roles.iter().map(String::as_str).collect();
    writeln!(out, "  name:       {}", p.name)?;
    writeln!(out, "  kind:       {}", p.kind.name())?;
    writeln!(
        out,
        "  roles:      {}",
        if roles.is_empty() {
            "none".to_owned()
        } else {
            roles.join(", ")
        }
    )?;
    for (k, v) in &p.attrs {
        writeln!(out, "  attribute:  {k} = {v}")?;
    }
    writeln!(out, "  created:    {}", rfc3339_ms(p.created_ms))?;
    if let Some(d) = p.disabled_ms {
        writeln!(out, "  disabled:   {}", rfc3339_ms(d))?;
    }
    Ok(())
}
