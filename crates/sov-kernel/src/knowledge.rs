//! Retrieval as the caller: the corpora the node serves and the one use case that reads them.
//!
//! Every document of a corpus is decided as `read-corpus` on its `Document` (with its clearance
//! and attributes) for the caller **before** anything is ranked, after a decision on the
//! `Corpus` itself; the corpus is searched only over the documents whose decision gave a
//! [`Permit`] (a denied or failed decision removes the document: fail closed). So a caller
//! never receives text, a citation or a score of a document they may not read, and neither
//! does a prompt built for them. The decisions make one entry per corpus
//! ([`crate::Exchange`]'s `decided_documents`); the passages returned are named in the request's
//! entry by their chunks' SHA-256, with each corpus's manifest hash.

use std::collections::BTreeMap;
use std::sync::Arc;

use sov_audit_core::entry::Kind;
use sov_policy::{Action, Permit, Resource};

use crate::exchange::Exchange;
use crate::ground::Passage;
use crate::{Kernel, KernelError};

/// A corpus as the kernel sees it (`sov-knowledge`'s corpus implements it in the node).
pub trait Searchable: Send + Sync + std::fmt::Debug {
    /// SHA-256 of the corpus's signed manifest, lowercase hex: what provenance names.
    fn manifest_sha256(&self) -> String;
    /// The name of the served embedding model its vectors come from.
    fn embedding_model(&self) -> String;
    /// Every document as the resource a `read-corpus` decision is made on.
    fn documents(&self) -> Vec<Resource>;
    /// The best `k` passages for the query among the documents `readable` permits.
    fn search(
        &self,
        text: &str,
        vector: &[f32],
        readable: Vec<Permit>,
        k: usize,
    ) -> Result<Vec<Passage>, String>;
}

/// The corpora a node serves, by name.
pub type Corpora = BTreeMap<String, Arc<dyn Searchable>>;

/// Passages found for a caller, and the facts their entry names.
#[derive(Debug, Clone, Default)]
pub struct Retrieved {
    /// Best first, across the corpora searched.
    pub passages: Vec<Passage>,
    /// `name=manifest_sha256` of each corpus searched.
    pub manifests: Vec<String>,
    /// Documents decided readable and withheld, over all corpora searched.
    pub readable: usize,
    /// Documents withheld (denied or failed decisions).
    pub withheld: usize,
    /// The query's embedding (for the evidence sentences and the router).
    pub vector: Vec<f32>,
}

impl Retrieved {
    /// Names the passages in the request's entry: each corpus's manifest hash, the counts of
    /// readable and withheld documents, and the SHA-256 of every chunk returned (for a
    /// specialist: every chunk placed in the prompt).
    pub(crate) fn note(&self, ex: &mut Exchange) {
        ex.attr("corpora", self.manifests.join(","));
        ex.attr("readable", self.readable);
        ex.attr("withheld", self.withheld);
        ex.attr(
            "chunks",
            self.passages
                .iter()
                .map(|p| p.chunk_sha256.as_str())
                .collect::<Vec<_>>()
                .join(","),
        );
    }
}

/// The query's embeddings within one request, by embedding model: computed once, whichever
/// corpora and specialists the request searches.
pub(crate) type Queries = BTreeMap<String, Vec<f32>>;

/// The most passages one retrieval returns.
pub const MAX_PASSAGES: usize = 12;

/// Words of a query that are embedded.
const QUERY_WORDS: usize = 200;

/// A search to run: `sov corpus search`, or an API door later.
#[derive(Debug, Clone)]
pub struct SearchCall {
    /// The corpus.
    pub corpus: String,
    /// The query.
    pub query: String,
    /// How many passages (1 to [`MAX_PASSAGES`]).
    pub k: usize,
}

impl Kernel {
    /// Searches one corpus as the exchange's caller (a `retrieval` entry): refused with 403
    /// when the caller may not read the corpus, 404 when it does not exist (decided first, so a
    /// refused caller does not learn which corpora exist).
    pub async fn search(
        &self,
        ex: &mut Exchange,
        call: SearchCall,
    ) -> Result<Retrieved, KernelError> {
        ex.set_kind(Kind::Retrieval);
        if call.k == 0 || call.k > MAX_PASSAGES {
            return Err(KernelError::Invalid {
                message: format!("k must be between 1 and {MAX_PASSAGES}."),
                param: Some("k"),
            });
        }
        let resource = Resource::Corpus(call.corpus.clone());
        let permit = self.authorize(ex, Action::ReadCorpus, &resource)?;
        if !self.inner.corpora.contains_key(&call.corpus) {
            return Err(KernelError::NotFound(format!(
                "the corpus `{}` does not exist",
                call.corpus
            )));
        }
        let found = self
            .retrieve_permitted(
                ex,
                vec![(call.corpus, Some(permit))],
                &call.query,
                call.k,
                &mut Queries::new(),
            )
            .await?;
        found.note(ex);
        Ok(found)
    }

    /// Retrieves the best `k` passages for `query` from `corpora`, as the caller: a corpus the
    /// caller may not read is skipped (its decision is recorded). The passages, manifests and
    /// counts are noted in the request's entry.
    pub(crate) async fn retrieve(
        &self,
        ex: &mut Exchange,
        corpora: &[String],
        query: &str,
        k: usize,
        queries: &mut Queries,
    ) -> Result<Retrieved, KernelError> {
        let mut decided = Vec::with_capacity(corpora.len());
        for name in corpora {
            let resource = Resource::Corpus(name.clone());
            let verdict = self
                .inner
                .guard
                .decide(ex.caller(), Action::ReadCorpus, &resource, None);
            ex.decided(&verdict);
            decided.push((name.clone(), verdict.into_permit().ok()));
        }
        self.retrieve_permitted(ex, decided, query, k, queries)
            .await
    }

    /// `read-corpus` decided on each of corpus `name`'s `documents` for the caller, recorded as
    /// one entry (search and the catalog alike).
    pub(crate) fn decide_documents(
        &self,
        ex: &mut Exchange,
        name: &str,
        documents: &[Resource],
    ) -> Vec<sov_policy::Verdict> {
        let verdicts: Vec<_> = documents
            .iter()
            .map(|d| {
                self.inner
                    .guard
                    .decide(ex.caller(), Action::ReadCorpus, d, None)
            })
            .collect();
        ex.decided_documents(name, &verdicts);
        verdicts
    }

    /// [`Kernel::retrieve`] once each corpus is decided: a corpus without a permit to read it
    /// is withheld whole.
    async fn retrieve_permitted(
        &self,
        ex: &mut Exchange,
        corpora: Vec<(String, Option<Permit>)>,
        query: &str,
        k: usize,
        queries: &mut Queries,
    ) -> Result<Retrieved, KernelError> {
        let query = query.trim();
        if query.is_empty() {
            return Err(KernelError::Invalid {
                message: "the query is empty.".into(),
                param: Some("query"),
            });
        }
        let mut out = Retrieved::default();
        let mut found = Vec::new();
        for (name, corpus_permit) in corpora {
            let Some(corpus) = self.inner.corpora.get(&name).cloned() else {
                return Err(KernelError::Internal(format!(
                    "the corpus `{name}` is not served"
                )));
            };
            out.manifests
                .push(format!("{name}={}", corpus.manifest_sha256()));
            let documents = corpus.documents();
            if corpus_permit.is_none() {
                out.withheld += documents.len();
                continue;
            }
            let verdicts = self.decide_documents(ex, &name, &documents);
            let permits: Vec<Permit> = verdicts
                .into_iter()
                .filter_map(|v| v.into_permit().ok())
                .collect();
            out.readable += permits.len();
            out.withheld += documents.len() - permits.len();
            if permits.is_empty() {
                continue;
            }
            let vector = self
                .query_vector(&corpus.embedding_model(), query, queries)
                .await?;
            let query = query.to_owned();
            let corpus = corpus.clone();
            let v = vector.clone();
            let hits = tokio::task::spawn_blocking(move || corpus.search(&query, &v, permits, k))
                .await
                .map_err(|e| KernelError::Internal(e.to_string()))?
                .map_err(|e| KernelError::Internal(format!("search of `{name}` failed: {e}")))?;
            found.extend(hits);
            out.vector = vector;
        }
        // Across corpora, the fused scores are comparable (reciprocal ranks).
        found.sort_by(|a, b| b.score.total_cmp(&a.score));
        found.truncate(k);
        out.passages = found;
        Ok(out)
    }

    /// The query's embedding by `model`, from `queries` or computed and kept there.
    pub(crate) async fn query_vector(
        &self,
        model: &str,
        query: &str,
        queries: &mut Queries,
    ) -> Result<Vec<f32>, KernelError> {
        if let Some(v) = queries.get(model) {
            return Ok(v.clone());
        }
        let v = self.embed_query(model, query).await?;
        queries.insert(model.to_owned(), v.clone());
        Ok(v)
    }

    /// The embedding of a query by the served model `model`: its first [`QUERY_WORDS`] words
    /// (a longer query does not fit an embedding model's window; BM25 still sees all of it).
    async fn embed_query(&self, model: &str, text: &str) -> Result<Vec<f32>, KernelError> {
        let words: Vec<&str> = text.split_whitespace().take(QUERY_WORDS).collect();
        self.embed_texts(model, &[words.join(" ")])
            .await?
            .pop()
            .ok_or_else(|| KernelError::Internal("the embedding model returned nothing".into()))
    }

    /// Embeddings of `texts` by the served model `model` (the node's own embedding model: the
    /// caller's permission to read was decided before, and embedding for them is part of it).
    pub(crate) async fn embed_texts(
        &self,
        model: &str,
        texts: &[String],
    ) -> Result<Vec<Vec<f32>>, KernelError> {
        let served = self.inner.models.get(model).cloned().ok_or_else(|| {
            KernelError::Internal(format!("the embedding model `{model}` is not served"))
        })?;
        Ok(served.backend.embed(texts).await?.0)
    }
}

/// A corpus of `sov-knowledge`, served: searched with the [`Permit`]s of the caller's
/// decisions, which it turns into its [`sov_knowledge::Readable`] (kept only when each covers
/// reading exactly that document with its clearance and attributes).
#[derive(Debug)]
pub struct Served {
    corpus: sov_knowledge::Corpus,
}

impl Served {
    /// Serves a verified, opened corpus.
    pub fn new(corpus: sov_knowledge::Corpus) -> Self {
        Self { corpus }
    }

    /// The corpus.
    pub fn corpus(&self) -> &sov_knowledge::Corpus {
        &self.corpus
    }
}

impl Searchable for Served {
    fn manifest_sha256(&self) -> String {
        self.corpus.manifest_sha256().to_owned()
    }
    fn embedding_model(&self) -> String {
        self.corpus.embedder().name.clone()
    }
    fn documents(&self) -> Vec<Resource> {
        self.corpus.document_resources()
    }
    fn search(
        &self,
        text: &str,
        vector: &[f32],
        readable: Vec<Permit>,
        k: usize,
    ) -> Result<Vec<Passage>, String> {
        let readable = sov_knowledge::Readable::from_permits(self.corpus.name(), readable);
        let hits = self
            .corpus
            .search(text, vector, &readable, k)
            .map_err(|e| e.to_string())?;
        Ok(hits
            .into_iter()
            .map(|h| Passage {
                corpus: self.corpus.name().to_owned(),
                document: h.document,
                heading: h.heading,
                text: h.text,
                chunk_sha256: h.chunk_sha256,
                score: h.score,
                similarity: h.similarity,
            })
            .collect())
    }
}
