//! `sov specialist ...`: specialists, each a base model with instructions, corpora, tools and
//! an optional LoRA adapter, in a manifest the owner signs (sov-specialist).

pub mod add;
pub mod list;
pub mod rm;
pub mod show;

use anyhow::{Context, Result};
use sov_specialist::{Manifest, SpecialistStore};

use crate::home::Home;

pub(crate) fn open_store(home: &Home) -> Result<SpecialistStore> {
    home.require_initialised()?;
    SpecialistStore::open(&home.specialists_dir()).context("failed to open the specialist store")
}

/// Whether the corpus `name` exists in this home's knowledge store (its signature is checked
/// when it is served).
pub(crate) fn corpus_exists(home: &Home, name: &str) -> bool {
    super::corpus::open_knowledge(home).is_ok_and(|store| store.contains(name))
}

/// The tools installed on this node (the built-in ones, the SQL databases `sov.toml` declares
/// and the tools its MCP servers offer, each server started in its sandbox or reached through
/// the egress gate to list them),
/// which a specialist's tools are checked against.
pub(crate) fn installed_tools(home: &Home, log: &sov_audit::AuditLog) -> Result<Vec<String>> {
    let config = home.config()?;
    let mut names = crate::commands::tools::toolbox(home, &config)?.names();
    if !config.tools.mcp.is_empty() {
        names.extend(crate::commands::tools::mcp_tool_names(home, &config, log)?);
    }
    Ok(names)
}

/// What a specialist.change entry says about a specialist: its base model and the digest the
/// owner approved, its corpora, its manifest's digest, and its adapter and tools if it has any.
pub(crate) fn entry_attrs(m: &Manifest) -> Vec<(&'static str, String)> {
    let mut attrs = vec![
        ("base", m.base.name.clone()),
        ("base_sha256", m.base.sha256.clone()),
        ("corpora", m.corpora.join(",")),
        ("manifest_sha256", m.sha256()),
    ];
    if let Some(a) = &m.adapter {
        attrs.push(("adapter_sha256", a.sha256.clone()));
    }
    if !m.tools.is_empty() {
        attrs.push(("tools", m.tools.join(",")));
    }
    attrs
}

/// A list for people: `a, b` or `none`.
pub(crate) fn or_none(items: &[String]) -> String {
    if items.is_empty() {
        "none".to_owned()
    } else {
        items.join(", ")
    }
}
