//! What `sov serve` (and `sov chat`, for a specialist) serves: the models, the corpora and the
//! specialists, each verified against the owner's signature before it is served, and the
//! embedding model that searches and routes. A model, corpus or specialist that does not
//! verify, or whose models are not served, stops the start with a clear error (recorded):
//! nothing is served that the owner did not approve as it is.
//!
//! The specialists are verified first, because a LoRA adapter is loaded with its base model:
//! each base starts with the adapters of the specialists on it (each in a generation context
//! of its own), and a specialist with an adapter answers through the adapter's context.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use sov_audit::AuditLog;
use sov_audit_core::entry::{Kind, Outcome};
use sov_kernel::node::{AdapterFile, Loaded, NodeEntry};
use sov_kernel::{Adapted, Library, Searchable, ServedSpecialist};
use sov_keys::OwnerPublicKeys;
use sov_models::ModelStore;
use sov_specialist::VerifiedSpecialist;

use super::load;
use crate::home::{Config, Home};
use crate::record;

/// Verifies the home's specialists, loads the models `names` (each with its specialists'
/// adapters), and verifies and opens every corpus; the models are served by name.
pub fn load_served(
    home: &Home,
    config: &Config,
    store: &ModelStore,
    owner: &OwnerPublicKeys,
    names: &[String],
    log: &AuditLog,
    runtime: &tokio::runtime::Runtime,
) -> Result<(BTreeMap<String, Loaded>, Library)> {
    let verified = verify_specialists(home, owner, log)?;
    let mut adapters: BTreeMap<&str, BTreeSet<AdapterFile>> = BTreeMap::new();
    for spec in &verified {
        let m = spec.manifest();
        if let (Some(a), Some(path)) = (&m.adapter, spec.adapter_path()) {
            adapters
                .entry(m.base.name.as_str())
                .or_default()
                .insert(AdapterFile {
                    sha256: a.sha256.clone(),
                    path: path.to_path_buf(),
                });
        }
    }
    let mut loaded = BTreeMap::new();
    for name in names {
        let with: Vec<AdapterFile> = adapters
            .get(name.as_str())
            .map(|set| set.iter().cloned().collect())
            .unwrap_or_default();
        loaded.insert(
            name.clone(),
            load::load(config, store, owner, name, &with, log)?,
        );
    }
    let library = library(home, config, owner, &loaded, verified, log, runtime)?;
    Ok((loaded, library))
}

/// Opens every corpus of the home, and serves the `verified` specialists, for the `models`.
fn library(
    home: &Home,
    config: &Config,
    owner: &OwnerPublicKeys,
    models: &BTreeMap<String, Loaded>,
    verified: Vec<VerifiedSpecialist>,
    log: &AuditLog,
    runtime: &tokio::runtime::Runtime,
) -> Result<Library> {
    let embedder = super::corpus::pick_embedding(
        config,
        models.values().map(|m| &m.manifest),
        "served (import it, or add it to [server] models)",
    )?;
    let corpora = corpora(home, owner, models, log)?;
    // Queries, passages' sentences and descriptions are compared in one vector space: every
    // corpus must have been embedded by the node's embedding model.
    for (name, corpus) in &corpora {
        let built = corpus.embedding_model();
        if embedder.as_deref() != Some(built.as_str()) {
            let err = anyhow::anyhow!(
                "the corpus `{name}` was embedded by `{built}`, but the node embeds with {}: set [knowledge] embedding_model = \"{built}\", or add its documents again to a corpus made with the node's model",
                embedder
                    .as_deref()
                    .map_or_else(|| "no model".to_owned(), |e| format!("`{e}`"))
            );
            refused(log, &format!("corpus:{name}"), &err)?;
            return Err(err);
        }
    }
    let specialists = specialists(verified, models, &corpora, log)?;
    let mut library = Library {
        corpora,
        specialists,
        embedder: embedder.clone(),
        router: config.router.router()?,
        tools: super::tools::toolbox(home, config)?,
    };
    if let Some(fallback) = &library.router.fallback
        && !models.contains_key(fallback)
    {
        bail!("[router] fallback is `{fallback}`, which is not served");
    }
    // The router compares questions with each specialist's description.
    if let Some(name) = &embedder
        && let Some(model) = models.get(name)
    {
        for spec in library.specialists.values_mut() {
            let inputs = [spec.description.clone()];
            let (mut vectors, _) = runtime
                .block_on(model.engine.embed(&inputs))
                .context("failed to embed a specialist's description")?;
            spec.description_vector = vectors.pop();
        }
    }
    Ok(library)
}

fn refused(log: &AuditLog, what: &str, err: &anyhow::Error) -> Result<()> {
    NodeEntry::new(Kind::ModelLoad, what, Outcome::Denied)
        .reason(record::reason(err))
        .record(log, &record::local_principal())
        .context("failed to record a refused load")?;
    Ok(())
}

fn corpora(
    home: &Home,
    owner: &OwnerPublicKeys,
    models: &BTreeMap<String, Loaded>,
    log: &AuditLog,
) -> Result<sov_kernel::Corpora> {
    let mut out: sov_kernel::Corpora = BTreeMap::new();
    // Under the seal the home is read-only: corpora are read immutable.
    let store = sov_knowledge::KnowledgeStore::open_read_only(&home.corpora_dir())
        .context("failed to open the corpora")?;
    for summary in store.list().context("failed to list the corpora")? {
        let name = summary.name;
        let opened = (|| {
            let corpus = store
                .open_corpus(&name, owner)
                .with_context(|| format!("the corpus `{name}` did not verify"))?;
            let served: Arc<dyn Searchable> = Arc::new(sov_kernel::knowledge::Served::new(corpus));
            let embedding = summary.embedder;
            match models.get(&embedding.name) {
                None => bail!(
                    "the corpus `{name}` was built with the embedding model `{}`, which is not served: import it, or add it to [server] models",
                    embedding.name
                ),
                Some(m) if m.manifest.sha256 != embedding.sha256 => bail!(
                    "the corpus `{name}` was built with `{}` of SHA-256 {}, but the model of that name is now {}: add its documents again to a new corpus",
                    embedding.name,
                    embedding.sha256,
                    m.manifest.sha256
                ),
                Some(_) => {}
            }
            Ok(served)
        })();
        match opened {
            Ok(served) => {
                out.insert(name, served);
            }
            Err(e) => {
                refused(log, &format!("corpus:{name}"), &e)?;
                return Err(e);
            }
        }
    }
    Ok(out)
}

/// Every specialist of the home, its signature, rules and adapter bytes checked (a refusal is
/// recorded and stops the start).
fn verify_specialists(
    home: &Home,
    owner: &OwnerPublicKeys,
    log: &AuditLog,
) -> Result<Vec<VerifiedSpecialist>> {
    let mut out = Vec::new();
    // Under the seal the home is read-only: a home without specialists has no folder to make.
    if !home.specialists_dir().is_dir() {
        return Ok(out);
    }
    let store = sov_specialist::SpecialistStore::open(&home.specialists_dir())
        .context("failed to open the specialists")?;
    for listed in store.list().context("failed to list the specialists")? {
        let name = listed.name;
        match store
            .get(&name, owner)
            .with_context(|| format!("the specialist `{name}` did not verify"))
        {
            Ok(verified) => out.push(verified),
            Err(e) => {
                refused(log, &format!("specialist:{name}"), &e)?;
                return Err(e);
            }
        }
    }
    Ok(out)
}

fn specialists(
    verified: Vec<VerifiedSpecialist>,
    models: &BTreeMap<String, Loaded>,
    corpora: &sov_kernel::Corpora,
    log: &AuditLog,
) -> Result<BTreeMap<String, ServedSpecialist>> {
    let mut out = BTreeMap::new();
    for verified in verified {
        let name = verified.manifest().name.clone();
        let checked = (|| {
            let m = verified.manifest();
            let Some(base) = models.get(&m.base.name) else {
                bail!(
                    "the base model `{}` of specialist `{name}` is not served",
                    m.base.name
                );
            };
            if base.manifest.sha256 != m.base.sha256 {
                bail!(
                    "the base model `{}` of specialist `{name}` changed since the owner approved it (approved {}, now {}): add the specialist again to approve the new one",
                    m.base.name,
                    m.base.sha256,
                    base.manifest.sha256
                );
            }
            if let Some(c) = m.corpora.iter().find(|c| !corpora.contains_key(*c)) {
                bail!("the corpus `{c}` of specialist `{name}` does not exist");
            }
            let adapter = match &m.adapter {
                None => None,
                Some(a) => {
                    let Some(served) = base.adapted.get(&a.sha256) else {
                        bail!(
                            "the LoRA adapter {} of specialist `{name}` was not loaded with its base model `{}`",
                            a.sha256,
                            m.base.name
                        );
                    };
                    Some(Adapted {
                        sha256: a.sha256.clone(),
                        backend: Arc::clone(&served.backend),
                    })
                }
            };
            Ok(ServedSpecialist {
                manifest_sha256: verified.sha256().to_owned(),
                base: m.base.name.clone(),
                corpora: m.corpora.clone(),
                description: m.description.clone(),
                instructions: m.instructions.clone(),
                description_vector: None,
                adapter,
                tools: m.tools.clone(),
                tools_required: m.tool_choice == sov_specialist::ToolChoice::Required,
            })
        })();
        match checked {
            Ok(spec) => {
                out.insert(name, spec);
            }
            Err(e) => {
                refused(log, &format!("specialist:{name}"), &e)?;
                return Err(e);
            }
        }
    }
    Ok(out)
}
