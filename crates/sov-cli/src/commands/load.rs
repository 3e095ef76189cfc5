//! Loading a model for inference, through the kernel (`sov_kernel::node::load_model`): verify
//! it against its signed manifest, then start the engine; the load or the refusal is recorded.

use anyhow::{Context, Result, bail};
use sov_audit::AuditLog;
use sov_keys::OwnerPublicKeys;
use sov_models::ModelStore;

use crate::home::Config;
use crate::record;

pub use sov_kernel::node::{AdapterFile, Loaded};

/// Verifies `name` (manifest signature, then every byte) and loads it with `adapters` (LoRA
/// files already checked by the specialist store), as the local principal.
pub fn load(
    config: &Config,
    store: &ModelStore,
    owner: &OwnerPublicKeys,
    name: &str,
    adapters: &[AdapterFile],
    log: &AuditLog,
) -> Result<Loaded> {
    Ok(sov_kernel::node::load_model(
        store,
        owner,
        name,
        &config.engine.engine_config(),
        adapters,
        log,
        &record::local_principal(),
    )?)
}

/// The models `sov serve` serves: `[server] models`, or every model in the store.
pub fn served(config: &Config, store: &ModelStore) -> Result<Vec<String>> {
    let names: Vec<String> = if config.server.models.is_empty() {
        store
            .list()
            .context("failed to list the model store")?
            .into_iter()
            .map(|m| m.name)
            .collect()
    } else {
        config.server.models.clone()
    };
    if names.is_empty() {
        bail!("there is no model to serve: import one with `sov model import FILE.gguf`");
    }
    Ok(names)
}

/// The model `sov chat` uses: the one asked for, the configured default, or the only one that
/// can chat (embedding models, such as all-MiniLM-L6-v2 beside the starter model, are passed
/// over).
pub fn pick(config: &Config, store: &ModelStore, asked: Option<&str>) -> Result<String> {
    if let Some(name) = asked {
        return Ok(name.to_owned());
    }
    if !config.chat.default_model.is_empty() {
        return Ok(config.chat.default_model.clone());
    }
    let mut models = store.list().context("failed to list the model store")?;
    if models.is_empty() {
        bail!("the model store is empty: import a model with `sov model import FILE.gguf`");
    }
    models.retain(|m| !sov_models::is_embedding_architecture(&m.gguf.architecture));
    match models.as_slice() {
        [] => bail!(
            "the model store holds embedding models only: import a chat model with `sov model import FILE.gguf`"
        ),
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
