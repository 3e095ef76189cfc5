//! `sov corpus add|list|show|rm|search`: the owner's corpora (sov-knowledge), embedded with the
//! node's embedding model loaded in this process. Every change, and every refused one, is a
//! `corpus.change` entry; a search runs through the kernel as a principal and is a `retrieval`
//! entry with its decisions.

mod add;
mod search;

use std::io::Write;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use sov_audit_core::entry::{Kind, Outcome};
use sov_keys::{OwnerKeys, OwnerPublicKeys};
use sov_knowledge::{EmbedError, Embedder, EmbedderId, KnowledgeStore};

use super::model::open_store;
use crate::cli::CorpusCommand;
use crate::home::{Config, Home};
use crate::record;

pub fn run(home: &Home, cmd: CorpusCommand) -> Result<ExitCode> {
    match cmd {
        CorpusCommand::Add(args) => add::run(home, &args),
        CorpusCommand::List => list(home),
        CorpusCommand::Show { name, json } => show(home, &name, json),
        CorpusCommand::Rm { name, document } => rm(home, &name, document.as_deref()),
        CorpusCommand::Search {
            name,
            query,
            principal,
            k,
            json,
        } => search::run(home, &name, &query, &principal, k, json),
    }
}

pub(crate) fn open_knowledge(home: &Home) -> Result<KnowledgeStore> {
    KnowledgeStore::open(&home.corpora_dir()).context("failed to open the corpora")
}

/// The embedding model among `models` (manifests, by name): `[knowledge] embedding_model` if
/// set (it must be among them), else the only embedding-only one (`None` if there is none).
/// One rule for `sov corpus` (the store's models) and `sov serve` (the served ones).
pub(crate) fn pick_embedding<'a>(
    config: &Config,
    models: impl IntoIterator<Item = &'a sov_models::Manifest>,
    among: &str,
) -> Result<Option<String>> {
    let models: Vec<&sov_models::Manifest> = models.into_iter().collect();
    let configured = &config.knowledge.embedding_model;
    if !configured.is_empty() {
        if !models.iter().any(|m| &m.name == configured) {
            bail!("[knowledge] embedding_model is `{configured}`, which is not {among}");
        }
        return Ok(Some(configured.clone()));
    }
    let embedding: Vec<&str> = models
        .iter()
        .filter(|m| sov_models::is_embedding_architecture(&m.gguf.architecture))
        .map(|m| m.name.as_str())
        .collect();
    match embedding.as_slice() {
        [] => Ok(None),
        [only] => Ok(Some((*only).to_owned())),
        several => bail!(
            "several embedding models are {among} ({}); choose one with [knowledge] embedding_model",
            several.join(", ")
        ),
    }
}

/// The embedding model corpora use (see [`pick_embedding`]), from the store.
pub(crate) fn embedding_model(home: &Home, config: &Config) -> Result<String> {
    let models = open_store(home)?
        .list()
        .context("failed to list the model store")?;
    pick_embedding(config, &models, "in the store")?.context(
        "there is no embedding model in the store: import one, e.g. `sov model import all-minilm-l6-v2.zip --name all-minilm-l6-v2` (scripts/run does)",
    )
}

/// An engine as sov-knowledge's synchronous embedder.
pub(crate) struct EngineEmbedder {
    pub engine: sov_engine::Engine,
    pub id: EmbedderId,
    pub runtime: tokio::runtime::Runtime,
}

impl Embedder for EngineEmbedder {
    fn id(&self) -> EmbedderId {
        self.id.clone()
    }
    fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, EmbedError> {
        let mut out = Vec::with_capacity(texts.len());
        // The engine bounds one request's inputs; batches stay under it.
        for batch in texts.chunks(64) {
            let (vectors, _) = self
                .runtime
                .block_on(self.engine.embed(batch))
                .map_err(|e| EmbedError::Engine(Box::new(e)))?;
            out.extend(vectors);
        }
        Ok(out)
    }
}

fn list(home: &Home) -> Result<ExitCode> {
    let corpora = open_knowledge(home)?
        .list()
        .context("failed to list the corpora")?;
    let mut out = std::io::stdout().lock();
    if corpora.is_empty() {
        writeln!(
            out,
            "No corpora yet: add documents with `sov corpus add NAME PATH...`."
        )?;
    }
    for c in corpora {
        writeln!(
            out,
            "{:<24} {:>5} documents {:>7} chunks  embedded by {}  manifest {}",
            c.name,
            c.documents,
            c.chunks,
            c.embedder.name,
            &c.manifest_sha256[..16.min(c.manifest_sha256.len())]
        )?;
    }
    Ok(ExitCode::SUCCESS)
}

fn show(home: &Home, name: &str, json: bool) -> Result<ExitCode> {
    let owner = OwnerPublicKeys::load(&home.keys_dir())
        .context("failed to load the owner's public keys")?;
    let corpus = open_knowledge(home)?
        .open_corpus(name, &owner)
        .with_context(|| format!("failed to open the corpus `{name}`"))?;
    let mut out = std::io::stdout().lock();
    if json {
        out.write_all(corpus.signed_manifest())?;
        writeln!(out)?;
        return Ok(ExitCode::SUCCESS);
    }
    let e = corpus.embedder();
    writeln!(out, "corpus:          {}", corpus.name())?;
    writeln!(
        out,
        "manifest sha256: {} (signature checked)",
        corpus.manifest_sha256()
    )?;
    writeln!(
        out,
        "embedded by:     {} ({} dimensions, sha256 {})",
        e.name, e.dims, e.sha256
    )?;
    writeln!(out, "chunks:          {}", corpus.chunk_count())?;
    writeln!(out, "documents:")?;
    for d in corpus.documents() {
        let clearance = d
            .clearance
            .map_or_else(|| "-".to_owned(), |c| c.to_string());
        writeln!(
            out,
            "  {}  clearance {clearance}  {} chunks  {} bytes  sha256 {}{}",
            d.id,
            d.chunks.len(),
            d.size,
            d.sha256,
            if d.attributes.is_empty() {
                String::new()
            } else {
                format!("  {}", d.attributes.join(" "))
            }
        )?;
    }
    Ok(ExitCode::SUCCESS)
}

fn rm(home: &Home, name: &str, document: Option<&str>) -> Result<ExitCode> {
    let config = home.config()?;
    let owner =
        OwnerKeys::load(&home.keys_dir()).context("failed to load the owner's signing key")?;
    // Open the record first: a change that could not be recorded must not happen.
    let log = record::open(home, &config)?;
    let store = open_knowledge(home)?;
    let result = (|| -> Result<String> {
        match document {
            None => {
                store.remove(name)?;
                Ok(String::new())
            }
            Some(id) => {
                let mut corpus = store.open_corpus(name, &owner.public())?;
                Ok(corpus.remove_document(id, &owner)?.manifest_sha256)
            }
        }
    })();
    let change = if document.is_some() {
        "corpus.document.remove"
    } else {
        "corpus.remove"
    };
    let mut attrs = vec![("change", change.to_owned())];
    if let Some(id) = document {
        attrs.push(("document", id.to_owned()));
    }
    let entry = match &result {
        Ok(manifest) => {
            if !manifest.is_empty() {
                attrs.push(("manifest_sha256", manifest.clone()));
            }
            record::append(&log, Kind::CorpusChange, name, Outcome::Ok, "", None, attrs)
        }
        Err(e) => record::append(
            &log,
            Kind::CorpusChange,
            name,
            Outcome::Denied,
            &record::reason(e),
            None,
            attrs,
        ),
    };
    let closed = log.close().context("failed to close the audit record");
    result.with_context(|| format!("failed to remove from the corpus `{name}`"))?;
    let entry = entry?;
    closed?;
    let what = document.map_or_else(
        || format!("corpus `{name}`"),
        |d| format!("document `{d}` of `{name}`"),
    );
    println!("Removed {what}.\n  audit entry: {}", entry.index);
    Ok(ExitCode::SUCCESS)
}
