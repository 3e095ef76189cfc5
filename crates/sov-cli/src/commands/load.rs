//! Loading a model for inference: verify it against its signed manifest, then start the engine.

use std::time::Instant;

use anyhow::{Context, Result, bail};
use sov_audit::AuditLog;
use sov_audit_core::entry::{Kind, Outcome};
use sov_engine::Engine;
use sov_keys::OwnerPublicKeys;
use sov_models::{Manifest, ModelStore};

use crate::home::Config;
use crate::record;

/// A verified, loaded model.
pub struct Loaded {
    pub name: String,
    pub manifest: Manifest,
    pub engine: Engine,
}

/// Verifies `name` (manifest signature, then every byte) and loads it. Refuses a model that
/// fails. The load, or the refusal, is recorded in `log`: a model that fails verification is
/// `denied`; one that verifies but will not start is an `error`.
pub fn load(
    config: &Config,
    store: &ModelStore,
    owner: &OwnerPublicKeys,
    name: &str,
    log: &AuditLog,
) -> Result<Loaded> {
    let started = Instant::now();
    let verified = match store.verify(name, owner) {
        Ok(verified) => verified,
        Err(err) => {
            let err = anyhow::Error::new(err).context(format!("refusing to load model `{name}`"));
            let digest = store.get(name).ok().and_then(|m| record::digest(&m.sha256));
            let reason = record::reason(&err);
            record::append(
                log,
                Kind::ModelLoad,
                name,
                Outcome::Denied,
                &reason,
                digest,
                vec![],
            )?;
            return Err(err);
        }
    };
    tracing::info!(
        model = name,
        elapsed_ms = started.elapsed().as_millis() as u64,
        "model verified"
    );
    let manifest = verified.manifest().clone();
    let digest = record::digest(&manifest.sha256);
    let started = Instant::now();
    let engine = match Engine::load(verified.path(), &config.engine.engine_config()) {
        Ok(engine) => engine,
        Err(err) => {
            let err = anyhow::Error::new(err).context(format!("failed to load model `{name}`"));
            let reason = record::reason(&err);
            record::append(
                log,
                Kind::ModelLoad,
                name,
                Outcome::Error,
                &reason,
                digest,
                vec![],
            )?;
            return Err(err);
        }
    };
    tracing::info!(
        model = name,
        elapsed_ms = started.elapsed().as_millis() as u64,
        "model loaded"
    );
    record::append(log, Kind::ModelLoad, name, Outcome::Ok, "", digest, vec![])?;
    Ok(Loaded {
        name: name.to_owned(),
        manifest,
        engine,
    })
}

/// The model `sov chat` uses: the one asked for, the configured default, or the only one.
pub fn pick(config: &Config, store: &ModelStore, asked: Option<&str>) -> Result<String> {
    if let Some(name) = asked {
        return Ok(name.to_owned());
    }
    if !config.chat.default_model.is_empty() {
        return Ok(config.chat.default_model.clone());
    }
    let models = store.list().context("failed to list the model store")?;
    match models.as_slice() {
        [] => bail!("the model store is empty: import a model with `sov model import FILE.gguf`"),
        [only] => Ok(only.name.clone()),
        _ => bail!(
            "several models are in the store ({}); choose one with --model or set chat.default_model",
            models
                .iter()
                .map(|m| m.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}
