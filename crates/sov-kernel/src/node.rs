//! Entries outside an exchange: what the node itself does (a model imported, loaded or removed,
//! the server started, stopped or refused to start), actions of a local principal
//! (`local:<user>`, the operating-system user running a command), and requests turned away at
//! a door before they had a caller (no valid token, a rate limit, and the summary of those
//! counted instead of recorded one by one). Their entries are assembled here, like every
//! request's entry in [`crate::exchange`], so the cleaning rules live in one place.
//!
//! And the one way a model gets served: [`load_model`] verifies it against its signed manifest
//! (every byte), loads the [`sov_models::VerifiedModel`] into the engine, and records the load
//! or the refusal.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use sov_audit_core::entry::{Kind, Outcome, clean_text};
use sov_audit_core::hash::Hash;
use sov_audit_core::record::{Appended, Draft, Record, RecordError};
use sov_engine::{Engine, EngineConfig, EngineError};
use sov_keys::OwnerPublicKeys;
use sov_models::{Manifest, ModelStore, StoreError};

use crate::ServedModel;

/// An action of the node or of a local principal, to record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeEntry {
    /// What happened.
    pub kind: Kind,
    /// What it was about (a model's name, the server's URL).
    pub resource: String,
    /// How it ended.
    pub outcome: Outcome,
    /// Why, for a refusal or an error (empty otherwise).
    pub reason: String,
    /// The model's SHA-256, for an action on a model.
    pub model: Option<Hash>,
    /// Further facts.
    pub attrs: Vec<(String, String)>,
}

impl NodeEntry {
    /// An entry of `kind` on `resource` ending with `outcome`, and nothing else yet.
    pub fn new(kind: Kind, resource: impl Into<String>, outcome: Outcome) -> Self {
        Self {
            kind,
            resource: resource.into(),
            outcome,
            reason: String::new(),
            model: None,
            attrs: Vec::new(),
        }
    }

    /// With a reason.
    pub fn reason(mut self, reason: impl Into<String>) -> Self {
        self.reason = reason.into();
        self
    }

    /// With the model's digest.
    pub fn model(mut self, digest: Option<Hash>) -> Self {
        self.model = digest;
        self
    }

    /// With a fact.
    pub fn attr(mut self, key: &str, value: impl ToString) -> Self {
        self.attrs.push((key.to_owned(), value.to_string()));
        self
    }

    /// Appends the entry as `principal` and waits until it is durable (blocking the thread).
    pub fn record(self, log: &dyn Record, principal: &str) -> Result<Appended, RecordError> {
        log.append(self.into_draft(principal))
    }

    /// [`NodeEntry::record`] for an async task: waits without blocking the thread.
    pub async fn record_async(
        self,
        log: &dyn Record,
        principal: &str,
    ) -> Result<Appended, crate::Unrecorded> {
        crate::exchange::append(log, self.into_draft(principal)).await
    }

    fn into_draft(self, principal: &str) -> Draft {
        let mut attrs: Vec<(String, String)> = self
            .attrs
            .into_iter()
            .map(|(k, v)| (k, clean_text(&v, 1024)))
            .collect();
        attrs.sort();
        Draft {
            kind: self.kind,
            principal: clean_text(principal, 255),
            resource: clean_text(&self.resource, 1024),
            outcome: self.outcome,
            reason: clean_text(&self.reason, 2048),
            model: self.model,
            input: None,
            output: None,
            attrs,
        }
    }
}

/// A model's SHA-256 from its manifest's hex form.
pub fn digest(sha256_hex: &str) -> Option<Hash> {
    let bytes = hex::decode(sha256_hex).ok()?;
    bytes.try_into().ok()
}

/// Why a model was not loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// It failed verification (signature, size or a byte): refused.
    #[error("refusing to load model `{name}`")]
    Refused {
        /// The model.
        name: String,
        /// What failed.
        source: StoreError,
    },
    /// It verified but the engine would not start it.
    #[error("failed to load model `{name}`")]
    Engine {
        /// The model.
        name: String,
        /// What failed.
        source: EngineError,
    },
    /// Its manifest's digest is not 32 bytes of hex.
    #[error("model `{0}` has a malformed sha256 in its manifest")]
    Digest(String),
    /// The load (or its refusal) could not be recorded.
    #[error("failed to write the audit record: {0}")]
    Record(#[from] RecordError),
}

/// A model verified, loaded and recorded.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// Served as.
    pub model: ServedModel,
    /// Its verified manifest.
    pub manifest: Manifest,
    /// The engine itself (for callers that want its statistics).
    pub engine: Engine,
    /// The model with each LoRA adapter it was loaded with applied (each in a generation
    /// context of its own), by the adapter's SHA-256.
    pub adapted: BTreeMap<String, ServedModel>,
}

/// A LoRA adapter to load with its base model: the file whose bytes the specialist store
/// checked against the owner's signed manifest, and their SHA-256.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct AdapterFile {
    /// SHA-256 of the adapter's bytes, lowercase hex.
    pub sha256: String,
    /// The checked file.
    pub path: PathBuf,
}

/// Verifies `name` (manifest signature, then every byte) and loads it with `adapters` (see
/// [`Engine::load_with_adapters`]); the load, or the refusal, is recorded as `principal`: a
/// model that fails verification is `denied`, one that verifies but will not start (or whose
/// adapter llama.cpp refuses) is an `error`. The entry names the adapters' digests.
pub fn load_model(
    store: &ModelStore,
    owner: &OwnerPublicKeys,
    name: &str,
    config: &EngineConfig,
    adapters: &[AdapterFile],
    log: &dyn Record,
    principal: &str,
) -> Result<Loaded, LoadError> {
    let started = Instant::now();
    let verified = match store.verify(name, owner) {
        Ok(v) => v,
        Err(source) => {
            let err = LoadError::Refused {
                name: name.to_owned(),
                source,
            };
            let model = store.get(name).ok().and_then(|m| digest(&m.sha256));
            NodeEntry::new(Kind::ModelLoad, name, Outcome::Denied)
                .reason(chain(&err))
                .model(model)
                .record(log, principal)?;
            return Err(err);
        }
    };
    tracing::info!(
        model = name,
        elapsed_ms = started.elapsed().as_millis() as u64,
        "model verified"
    );
    let manifest = verified.manifest().clone();
    let sha256 = digest(&manifest.sha256).ok_or_else(|| LoadError::Digest(name.to_owned()))?;
    let started = Instant::now();
    let paths: Vec<&std::path::Path> = adapters.iter().map(|a| a.path.as_path()).collect();
    let named = |entry: NodeEntry| {
        if adapters.is_empty() {
            entry
        } else {
            let shas: Vec<&str> = adapters.iter().map(|a| a.sha256.as_str()).collect();
            entry.attr("adapters_sha256", shas.join(","))
        }
    };
    let (engine, adapted) = match Engine::load_with_adapters(&verified, config, &paths) {
        Ok(loaded) => loaded,
        Err(source) => {
            let err = LoadError::Engine {
                name: name.to_owned(),
                source,
            };
            named(NodeEntry::new(Kind::ModelLoad, name, Outcome::Error))
                .reason(chain(&err))
                .model(Some(sha256))
                .record(log, principal)?;
            return Err(err);
        }
    };
    tracing::info!(
        model = name,
        elapsed_ms = started.elapsed().as_millis() as u64,
        "model loaded"
    );
    named(NodeEntry::new(Kind::ModelLoad, name, Outcome::Ok))
        .model(Some(sha256))
        .record(log, principal)?;
    let created = time_of(&manifest.imported_at);
    let adapted = adapters
        .iter()
        .zip(adapted)
        .map(|(a, engine)| {
            let served = ServedModel {
                backend: Arc::new(engine),
                created,
                sha256,
            };
            (a.sha256.clone(), served)
        })
        .collect();
    Ok(Loaded {
        model: ServedModel {
            backend: Arc::new(engine.clone()),
            created,
            sha256,
        },
        manifest,
        engine,
        adapted,
    })
}

/// An error and its causes on one line (as `anyhow`'s `{:#}` prints it).
fn chain(e: &dyn std::error::Error) -> String {
    RecordError::from_error(e).0
}

/// Unix seconds of an RFC 3339 UTC time; 0 if it does not parse (the field is informative).
fn time_of(rfc3339: &str) -> i64 {
    time::OffsetDateTime::parse(rfc3339, &time::format_description::well_known::Rfc3339)
        .map_or(0, time::OffsetDateTime::unix_timestamp)
}
