//! What a node serves, as a caller may see it: the models and specialists they may `infer`
//! with (the decisions of [`Kernel::visible_models`]), and the corpora they may `read-corpus`
//! with the documents of each they may read (one decision per document, recorded as one entry
//! per corpus like a search's), each with the hashes that pin it.

use std::collections::BTreeMap;

use sov_policy::{Action, Resource};

use crate::Kernel;
use crate::exchange::Exchange;
use crate::specialist::AUTO;

/// A served model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CatalogModel {
    /// Its name.
    pub name: String,
    /// SHA-256 of its file (verified against its signed manifest at every load), hex.
    pub sha256: String,
    /// When it was imported (Unix seconds).
    pub created: i64,
    /// Whether it only embeds.
    pub embedding_only: bool,
}

/// A served specialist.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CatalogSpecialist {
    /// Its name.
    pub name: String,
    /// SHA-256 of its signed manifest, hex.
    pub manifest_sha256: String,
    /// Its base model and that model's SHA-256.
    pub base: String,
    /// SHA-256 of the base model's file, hex.
    pub base_sha256: String,
    /// Its LoRA adapter's SHA-256, if it has one.
    pub adapter_sha256: Option<String>,
    /// Its corpora.
    pub corpora: Vec<String>,
    /// What it is for.
    pub description: String,
    /// The tools it may call.
    pub tools: Vec<String>,
}

/// A document the caller may read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CatalogDocument {
    /// Its id in the corpus.
    pub id: String,
    /// Its clearance level, if it has one.
    pub clearance: Option<i64>,
    /// The owner's attributes.
    pub attrs: BTreeMap<String, String>,
}

/// A corpus the caller may read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CatalogCorpus {
    /// Its name.
    pub name: String,
    /// SHA-256 of its signed manifest, hex.
    pub manifest_sha256: String,
    /// The embedding model of its vectors.
    pub embedding_model: String,
    /// The documents the caller may read (the others are in the record's decision entry
    /// only, as a count and a digest of their ids).
    pub documents: Vec<CatalogDocument>,
}

/// Everything above, for one caller.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Catalog {
    /// Models, by name.
    pub models: Vec<CatalogModel>,
    /// Specialists, by name.
    pub specialists: Vec<CatalogSpecialist>,
    /// Corpora, by name.
    pub corpora: Vec<CatalogCorpus>,
}

impl Kernel {
    /// What the caller may see of what the node serves (see the module docs).
    pub fn catalog(&self, ex: &mut Exchange) -> Catalog {
        let mut out = Catalog::default();
        for (name, served) in self.visible_models(ex) {
            if name == AUTO {
                continue;
            }
            match self.inner.specialists.get(&name) {
                Some(spec) => out.specialists.push(CatalogSpecialist {
                    name,
                    manifest_sha256: spec.manifest_sha256.clone(),
                    base: spec.base.clone(),
                    base_sha256: hex::encode(served.sha256),
                    adapter_sha256: spec.adapter.as_ref().map(|a| a.sha256.clone()),
                    corpora: spec.corpora.clone(),
                    description: spec.description.clone(),
                    tools: spec.tools.clone(),
                }),
                None => out.models.push(CatalogModel {
                    name,
                    sha256: hex::encode(served.sha256),
                    created: served.created,
                    embedding_only: served.backend.embedding_only(),
                }),
            }
        }
        for (name, corpus) in &self.inner.corpora {
            let verdict = self.inner.guard.decide(
                ex.caller(),
                Action::ReadCorpus,
                &Resource::Corpus(name.clone()),
                None,
            );
            ex.decided(&verdict);
            if !verdict.is_allowed() {
                continue;
            }
            let verdicts = self.decide_documents(ex, name, &corpus.documents());
            let readable: Vec<CatalogDocument> = verdicts
                .iter()
                .filter(|v| v.is_allowed())
                .filter_map(|v| match v.resource() {
                    Resource::Document {
                        id,
                        clearance,
                        attrs,
                        ..
                    } => Some(CatalogDocument {
                        id: id.clone(),
                        clearance: *clearance,
                        attrs: attrs.clone(),
                    }),
                    _ => None,
                })
                .collect();
            out.corpora.push(CatalogCorpus {
                name: name.clone(),
                manifest_sha256: corpus.manifest_sha256(),
                embedding_model: corpus.embedding_model(),
                documents: readable,
            });
        }
        out
    }
}
