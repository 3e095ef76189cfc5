//! `sov specialist show NAME [--json]`: the manifest, once its signature and adapter are checked,
//! and whether the model store still holds the base model the owner approved.

use std::io::Write;
use std::process::ExitCode;

use anyhow::{Context, Result};
use sov_keys::OwnerPublicKeys;
use sov_specialist::Manifest;

use super::{open_store, or_none};
use crate::commands::model;
use crate::home::Home;

pub fn run(home: &Home, name: &str, json: bool) -> Result<ExitCode> {
    let store = open_store(home)?;
    let owner = OwnerPublicKeys::load(&home.keys_dir())
        .context("failed to load the owner's public keys")?;
    let verified = store.get(name, &owner)?;
    let m = verified.manifest();
    let base = base_status(home, m)?;
    let mut out = std::io::stdout().lock();
    if json {
        let value = serde_json::json!({
            "manifest": m,
            "sha256": verified.sha256(),
            "signature": "valid",
            "base_in_store": base.0,
        });
        writeln!(out, "{}", serde_json::to_string_pretty(&value)?)?;
        return Ok(ExitCode::SUCCESS);
    }
    writeln!(out, "name:            {}", m.name)?;
    writeln!(out, "manifest sha256: {}", verified.sha256())?;
    writeln!(
        out,
        "base model:      {} (sha256 {})",
        m.base.name, m.base.sha256
    )?;
    writeln!(out, "base in store:   {}", base.1)?;
    writeln!(out, "corpora:         {}", or_none(&m.corpora))?;
    writeln!(out, "tools:           {}", or_none(&m.tools))?;
    match &m.adapter {
        Some(a) => writeln!(
            out,
            "adapter:         {} ({} bytes, sha256 {})",
            a.file_name, a.size, a.sha256
        )?,
        None => writeln!(out, "adapter:         none")?,
    }
    writeln!(out, "description:     {}", m.description)?;
    writeln!(
        out,
        "instructions:    {} bytes, sha256 {}",
        m.instructions.len(),
        m.instructions_sha256
    )?;
    for line in m.instructions.lines() {
        writeln!(out, "  {line}")?;
    }
    writeln!(out, "created at:      {}", m.created_at)?;
    writeln!(
        out,
        "signed by:       {} (Ed25519 + ML-DSA-65), signature valid",
        m.owner_key_id
    )?;
    Ok(ExitCode::SUCCESS)
}

/// Whether the model store holds the approved base: a short code for JSON and a sentence.
fn base_status(home: &Home, m: &Manifest) -> Result<(&'static str, String)> {
    let models = model::open_store(home)?;
    let listed = models.list().context("failed to list the model store")?;
    Ok(match listed.iter().find(|b| b.name == m.base.name) {
        Some(b) if b.sha256 == m.base.sha256 => {
            ("same", "the same bytes the owner approved".into())
        }
        Some(b) => (
            "changed",
            format!(
                "changed: `{}` is now sha256 {}, which this specialist refuses until it is added again with --replace",
                b.name, b.sha256
            ),
        ),
        None => (
            "missing",
            format!("missing: the store has no model `{}`", m.base.name),
        ),
    })
}
