//! What a search may read ([`Readable`]), what it returns ([`Hit`]), and its two pure parts:
//! the FTS5 query built from the user's words ([`fts_query`]) and reciprocal rank fusion
//! ([`rrf`]).

use std::collections::{BTreeMap, HashMap};

use sov_policy::{Action, Permit, Resource};

/// The `k` of reciprocal rank fusion: a hit's fused score is the sum, over the lists it is
/// in, of `1 / (RRF_K + rank)`, ranks counted from 1.
pub const RRF_K: f64 = 60.0;
/// Most distinct terms taken from a query.
pub const MAX_TERMS: usize = 32;
/// Longest term taken from a query, in characters (longer ones are dropped).
pub const MAX_TERM_CHARS: usize = 64;

/// The documents of one corpus a caller may read: built only from [`Permit`]s, so only from
/// allowed decisions.
///
/// A document is readable when one of the permits covers [`Action::ReadCorpus`] on exactly
/// its [`Resource::Document`]: its id, `corpus: Some(<this corpus>)` and its clearance as the
/// manifest says it now. Anything else (a permit for another corpus, another action, a
/// clearance that has changed since the decision) reads nothing: the search fails closed.
#[derive(Debug, Clone)]
pub struct Readable {
    corpus: String,
    permits: HashMap<String, Vec<Permit>>,
}

impl Readable {
    /// The readable documents of `corpus`, from the permits the kernel was given for them
    /// (permits for anything else are dropped).
    pub fn from_permits(corpus: &str, permits: impl IntoIterator<Item = Permit>) -> Self {
        let mut by_id: HashMap<String, Vec<Permit>> = HashMap::new();
        for permit in permits {
            let keep = permit.action() == Action::ReadCorpus
                && matches!(permit.resource(),
                    Resource::Document { corpus: Some(c), .. } if c == corpus);
            if keep {
                by_id
                    .entry(permit.resource().id().to_owned())
                    .or_default()
                    .push(permit);
            }
        }
        Self {
            corpus: corpus.to_owned(),
            permits: by_id,
        }
    }

    /// The corpus these permits are for.
    pub fn corpus(&self) -> &str {
        &self.corpus
    }

    /// How many documents the permits name.
    pub fn len(&self) -> usize {
        self.permits.len()
    }

    /// Whether no permit was kept (nothing is readable).
    pub fn is_empty(&self) -> bool {
        self.permits.is_empty()
    }

    /// Whether a permit covers reading `resource`, a document of corpus `corpus`.
    pub(crate) fn allows(&self, corpus: &str, resource: &Resource) -> bool {
        corpus == self.corpus
            && self
                .permits
                .get(resource.id())
                .is_some_and(|ps| ps.iter().any(|p| p.covers(Action::ReadCorpus, resource)))
    }
}

/// One result of a search, with what a citation and the provenance entry need.
#[derive(Debug, Clone, PartialEq)]
pub struct Hit {
    /// 1 for the best.
    pub rank: usize,
    /// The document id.
    pub document: String,
    /// The document's title.
    pub title: String,
    /// The chunk's position in the document, from 0.
    pub chunk: usize,
    /// SHA-256 of the chunk's text (as in the signed manifest), lowercase hex.
    pub chunk_sha256: String,
    /// The heading path above the chunk (`Leave policy > Sick leave`), empty if none.
    pub heading: String,
    /// The chunk's text: what goes into a prompt, and what `chunk_sha256` is the digest of.
    pub text: String,
    /// Its fused score (see [`RRF_K`]).
    pub score: f64,
    /// Its rank among the BM25 candidates, if it was one.
    pub bm25_rank: Option<usize>,
    /// Its rank among the vector candidates, if it was one.
    pub dense_rank: Option<usize>,
    /// The dot product of its vector with the query's (cosine similarity), if it was a vector
    /// candidate.
    pub similarity: Option<f32>,
}

/// The FTS5 `MATCH` expression for what a user typed: every distinct word ([`fts_terms`]) as a
/// quoted string, joined by `OR`. `None` when there is no word.
///
/// Nothing the user types is FTS5 syntax: quotes, `*`, `-`, `^`, `:`, parentheses and
/// operators (`NEAR`, `AND`, `NOT`) are either separators or, being words, quoted as strings.
/// A word never contains `"`, so the quoting cannot be escaped.
pub fn fts_query(text: &str) -> Option<String> {
    match_expression(&fts_terms(text))
}

/// The distinct words of a query, in order: runs of letters and digits, lowercased, at most
/// [`MAX_TERMS`], each at most [`MAX_TERM_CHARS`] characters (longer ones are dropped).
pub fn fts_terms(text: &str) -> Vec<String> {
    let mut terms: Vec<String> = Vec::new();
    for word in text.split(|c: char| !c.is_alphanumeric()) {
        if word.is_empty() || word.chars().count() > MAX_TERM_CHARS {
            continue;
        }
        let term = word.to_lowercase();
        if !terms.contains(&term) {
            terms.push(term);
            if terms.len() == MAX_TERMS {
                break;
            }
        }
    }
    terms
}

/// `"t1" OR "t2" ...` for terms of [`fts_terms`].
pub(crate) fn match_expression(terms: &[String]) -> Option<String> {
    if terms.is_empty() {
        return None;
    }
    Some(
        terms
            .iter()
            .map(|t| format!("\"{t}\""))
            .collect::<Vec<_>>()
            .join(" OR "),
    )
}

/// One fused candidate.
#[derive(Debug, Clone, PartialEq)]
pub struct Fused<K> {
    /// The candidate.
    pub key: K,
    /// Its fused score.
    pub score: f64,
    /// Its rank in the first list, from 1.
    pub bm25_rank: Option<usize>,
    /// Its rank in the second list, from 1.
    pub dense_rank: Option<usize>,
}

/// Reciprocal rank fusion of two ranked lists (best first): every key in either, by fused
/// score, highest first; equal scores in key order, so the result is deterministic. A key
/// repeated within one list counts at its first (best) rank only.
pub fn rrf<K: Ord + Clone>(bm25: &[K], dense: &[K]) -> Vec<Fused<K>> {
    let mut all: BTreeMap<K, Fused<K>> = BTreeMap::new();
    for (list, is_bm25) in [(bm25, true), (dense, false)] {
        for (i, key) in list.iter().enumerate() {
            let rank = i + 1;
            let entry = all.entry(key.clone()).or_insert_with(|| Fused {
                key: key.clone(),
                score: 0.0,
                bm25_rank: None,
                dense_rank: None,
            });
            let slot = if is_bm25 {
                &mut entry.bm25_rank
            } else {
                &mut entry.dense_rank
            };
            if slot.is_none() {
                *slot = Some(rank);
                entry.score += 1.0 / (RRF_K + rank as f64);
            }
        }
    }
    let mut out: Vec<Fused<K>> = all.into_values().collect();
    out.sort_by(|a, b| b.score.total_cmp(&a.score).then_with(|| a.key.cmp(&b.key)));
    out
}
