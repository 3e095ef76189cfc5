//! The node's Open Audit Record as the commands use it: opening the log with the node's log key,
//! and the entries of the commands' own actions (model import and removal, server start and
//! stop), assembled by the kernel.

use std::time::Duration;

use anyhow::{Context, Result, bail};
use sha2::{Digest as _, Sha256};
use sov_audit::{Appended, AuditLog, LogConfig};
use sov_audit_core::entry::{Kind, Outcome, clean_text};
use sov_audit_core::hash::Hash;
use sov_audit_core::note::Vkey;
use sov_kernel::node::NodeEntry;
use sov_keys::LogKey;

use crate::home::{Config, Home};

/// Opens (creating on first use) the audit log. Only one process writes it at a time: a second
/// `sov` that needs it while `sov serve` runs is refused with a clear error.
pub fn open(home: &Home, config: &Config) -> Result<AuditLog> {
    let key =
        LogKey::init_or_load(&home.keys_dir()).context("failed to load the audit log's key")?;
    let (origin, node) = names(config, &key);
    let mut log_config = LogConfig::new(origin, node);
    log_config.checkpoint_interval =
        Duration::from_millis(config.audit.checkpoint_interval_ms.max(1));
    let (log, recovery) =
        AuditLog::open(&home.audit_dir(), key, log_config).with_context(|| {
            format!(
                "failed to open the audit record at {}",
                home.audit_dir().display()
            )
        })?;
    if recovery.unclean || recovery.truncated_bytes > 0 {
        eprintln!(
            "note: the audit record recovered from an unclean stop ({} entries kept, {} torn bytes dropped); the recovery is recorded as entry {}",
            recovery.size,
            recovery.truncated_bytes,
            recovery
                .entry
                .map_or_else(|| "-".to_owned(), |a| a.index.to_string()),
        );
    }
    Ok(log)
}

/// The log's origin and this node's name, from the configuration or derived from the log key.
fn names(config: &Config, key: &LogKey) -> (String, String) {
    let node = if config.audit.node.is_empty() {
        let digest = Sha256::digest(key.ed25519_public().as_bytes());
        format!("sov-{}", hex::encode(&digest[..4]))
    } else {
        config.audit.node.clone()
    };
    let origin = if config.audit.origin.is_empty() {
        format!("sovereign/{node}")
    } else {
        config.audit.origin.clone()
    };
    (origin, node)
}

/// This node's name (as in its entries).
pub fn node(home: &Home, config: &Config) -> Result<String> {
    let key =
        LogKey::init_or_load(&home.keys_dir()).context("failed to load the audit log's key")?;
    Ok(names(config, &key).1)
}

/// The log's verifier keys as this node knows them (from its own key, not from the log folder).
pub fn own_vkeys(home: &Home, config: &Config) -> Result<Vec<Vkey>> {
    if !home.keys_dir().join(sov_keys::LOG_KEY_FILE).is_file() {
        bail!(
            "this home has no audit log key yet (it is created by `sov init` and the first logged action)"
        );
    }
    let key =
        LogKey::init_or_load(&home.keys_dir()).context("failed to load the audit log's key")?;
    let (origin, _) = names(config, &key);
    Ok(vec![
        Vkey::from_ed25519(&origin, key.ed25519_public()),
        Vkey::from_mldsa44(&origin, key.mldsa44_public()),
    ])
}

/// Who is acting in a local command: `local:` and the OS user name.
pub fn local_principal() -> String {
    let user = std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .unwrap_or_default();
    if user.is_empty() {
        // No user name in the environment (a service, a container): say so rather than guess.
        return "local".to_owned();
    }
    clean_text(&format!("local:{user}"), 255)
}

/// Appends an entry for a local action (as [`local_principal`]) and waits until it is durable.
/// The entry is assembled by the kernel ([`sov_kernel::node::NodeEntry`]).
pub fn append(
    log: &AuditLog,
    kind: Kind,
    resource: &str,
    outcome: Outcome,
    reason: &str,
    model: Option<Hash>,
    attrs: Vec<(&str, String)>,
) -> Result<Appended> {
    let mut entry = NodeEntry::new(kind, resource, outcome)
        .reason(reason)
        .model(model);
    for (k, v) in attrs {
        entry = entry.attr(k, v);
    }
    entry
        .record(log, &local_principal())
        .context("failed to write the audit record")
}

/// The error and its causes on one line, for an entry's reason.
pub fn reason(err: &anyhow::Error) -> String {
    format!("{err:#}")
}
