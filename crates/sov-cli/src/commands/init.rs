//! `sov init`: create the home, its configuration and the owner's keys. Idempotent.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::process::ExitCode;

use anyhow::{Context, Result};
use sov_keys::{InitOutcome, OwnerKeys, OwnerPublicKeys};

use crate::home::{DEFAULT_CONFIG, Home};
use crate::record;

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
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&config)
            .with_context(|| format!("failed to create {}", config.display()))?;
        file.write_all(DEFAULT_CONFIG.as_bytes())
            .and_then(|()| file.sync_all())
            .with_context(|| format!("failed to write {}", config.display()))?;
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
    Ok(ExitCode::SUCCESS)
}
