//! `sov init`: create the home, its configuration, the owner's keys, the starter policy set and
//! the owner's admin principal with its first API token (shown once). Idempotent: a second run
//! changes nothing and shows no token.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::process::ExitCode;

use std::collections::{BTreeMap, BTreeSet};

use anyhow::{Context, Result};
use sov_audit_core::entry::rfc3339_ms;
use sov_keys::{InitOutcome, OwnerKeys, OwnerPublicKeys};
use sov_policy::policy::STARTER;
use sov_policy::store::now_ms;
use sov_policy::token::parse_expiry;
use sov_policy::{NewPrincipal, PrincipalKind};

use crate::home::{DEFAULT_CONFIG, Home, rename_durably, write_new_private};
use crate::{identity, record};

pub fn run(home: &Home) -> Result<ExitCode> {
    let root = home.root();
    let mut created = Vec::new();
    if !root.exists() {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(root)
            .with_context(|| format!("failed to create {}", root.display()))?;
        created.push("home");
    }
    // The home holds signing keys and models: nobody else may list or enter it.
    let mode = fs::metadata(root)
        .with_context(|| format!("failed to read {}", root.display()))?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        fs::set_permissions(root, fs::Permissions::from_mode(0o700))
            .with_context(|| format!("failed to restrict {} to its owner", root.display()))?;
    }
    let config = home.config_path();
    if !config.exists() {
        write_new_private(&config, DEFAULT_CONFIG)?;
        created.push("configuration");
    } else {
        // An existing configuration must still parse: say so now rather than at `sov serve`.
        home.config()?;
    }
    match OwnerKeys::init(&home.keys_dir()).context("failed to create the owner's signing keys")? {
        InitOutcome::Created => created.push("owner keys"),
        InitOutcome::AlreadyPresent => {}
    }
    sov_models::ModelStore::open(&home.models_dir()).context("failed to create the model store")?;
    let public = OwnerPublicKeys::load(&home.keys_dir())
        .context("failed to read the owner's public keys")?;
    // The audit record starts empty, with a signed checkpoint of size 0 and its key.
    if !home.audit_dir().join("checkpoint").is_file() {
        let log = record::open(home, &home.config()?)?;
        log.close().context("failed to close the audit record")?;
        created.push("audit record");
    }
    let vkeys = record::own_vkeys(home, &home.config()?)?;
    if install_starter_policies(home)? {
        created.push("starter policies");
    }
    let policies = identity::load_policies(home)?;
    let directory = identity::open_directory(home)?;
    let actor = record::local_principal();
    directory
        .policy_loaded(
            &policies.hash_hex(),
            policies.files(),
            "policy.install",
            &actor,
        )
        .context("failed to note the policy set")?;
    let owner_token = if directory
        .principals()
        .context("failed to read the identity directory")?
        .is_empty()
    {
        let owner = NewPrincipal {
            name: OWNER.to_owned(),
            kind: PrincipalKind::Person,
            roles: BTreeSet::from(["admin".to_owned()]),
            attrs: BTreeMap::new(),
        };
        directory
            .add_principal(&owner, &actor)
            .context("failed to create the owner's principal")?;
        let expires = parse_expiry(OWNER_TOKEN_LIFETIME, now_ms()).map_err(anyhow::Error::msg)?;
        let (token, info) = directory
            .issue_token(OWNER, expires, None, &actor)
            .context("failed to issue the owner's token")?;
        created.push("owner principal");
        Some((token, info))
    } else {
        None
    };
    identity::record_outbox(home, &home.config()?, &directory)?;

    let mut out = std::io::stdout().lock();
    if created.is_empty() {
        writeln!(
            out,
            "Sovereign home at {} is already initialised; nothing changed.",
            root.display()
        )?;
    } else {
        writeln!(
            out,
            "Initialised Sovereign home at {} (created: {}).",
            root.display(),
            created.join(", ")
        )?;
    }
    writeln!(out, "  configuration: {}", config.display())?;
    writeln!(
        out,
        "  owner key id:  {} (Ed25519 + ML-DSA-65)",
        public.key_id
    )?;
    if let Some(v) = vkeys.first() {
        writeln!(out, "  audit record:  {} (Ed25519 + ML-DSA-44)", v.name)?;
    }
    writeln!(
        out,
        "  policies:      {} ({} policies, set {})",
        home.policies_dir().display(),
        policies.len(),
        &policies.hash_hex()[..16]
    )?;
    if let Some((token, info)) = owner_token {
        let expires = info
            .expires_ms
            .map_or_else(|| "never".to_owned(), rfc3339_ms);
        writeln!(out)?;
        writeln!(
            out,
            "API token of principal `{OWNER}` (role admin), shown only this once; keep it safe:"
        )?;
        writeln!(out)?;
        writeln!(out, "  {}", token.secret())?;
        writeln!(out)?;
        writeln!(
            out,
            "It expires {expires}. Send it as `Authorization: Bearer <token>` (the openai clients' api_key)."
        )?;
        writeln!(
            out,
            "Lost it? `sov token issue {OWNER}` prints a new one; `sov token revoke {}` ends this one.",
            info.id
        )?;
    }
    Ok(ExitCode::SUCCESS)
}

/// The owner's principal, created by the first `sov init`.
pub const OWNER: &str = "owner";

/// How long the owner's first token lasts.
const OWNER_TOKEN_LIFETIME: &str = "90d";

/// Writes the starter policies into an absent `policies/`; `false` if the folder exists (it is
/// the owner's, whatever it holds).
fn install_starter_policies(home: &Home) -> Result<bool> {
    let dir = home.policies_dir();
    if dir.exists() {
        return Ok(false);
    }
    // Written beside the final folder and renamed, so a crash never leaves half a set.
    let tmp = home.root().join(".policies.tmp");
    if tmp.exists() {
        fs::remove_dir_all(&tmp).with_context(|| format!("failed to remove {}", tmp.display()))?;
    }
    fs::DirBuilder::new()
        .mode(0o700)
        .create(&tmp)
        .with_context(|| format!("failed to create {}", tmp.display()))?;
    for (name, text) in STARTER {
        write_new_private(&tmp.join(name), text)?;
    }
    rename_durably(&tmp, &dir)?;
    Ok(true)
}
