//! Evidence: which sentences of the retrieved passages answer the question, and which passages
//! are shown for them.
//!
//! Measured on the domain eval (`eval/`, 48 questions, SmolLM2-135M): with the three best
//! fused passages and sentences scored by words shared with the question (weighted by their
//! rarity among the sentences) plus embedding similarity, the sentence holding the answer was
//! among the two quoted for 33 of 48 questions, and the right document among the first three
//! for 43. The institution's own name, in nearly every question and passage, outweighed the
//! one rare word that mattered, and a question's answer often sits in a passage that BM25
//! ranks first and the dense list does not. So, in this order:
//!
//! 1. A **pool** of [`POOL`] fused passages is retrieved, not only the three shown.
//! 2. A question word's weight is its BM25 inverse document frequency **among the pool's
//!    passages** (their document, heading path and text): a word in every passage (the
//!    institution's name) weighs nearly nothing. Counted over passages the caller may read
//!    only, so no unreadable document shifts it.
//! 3. A sentence scores the weights of the question words it holds, over their total. Words
//!    meet by a crude stem (lower case, one of `-ing`, `-ed`, `-es`, `-s` cut, then the first
//!    six characters), which needs no language data.
//! 4. A sentence that follows a question or a colon in its passage (an FAQ's `A:` after its
//!    `Q:`, a list after its lead-in) scores at least 0.7 of its lead-in's score.
//! 5. A question that asks for a quantity, a time or an identifier (`how much`, `how long`,
//!    `when`, `which form`, ...) adds [`ANSWER_TYPE_BONUS`] to sentences holding a number or a
//!    code that the question does not (a leading section number like `5.2` is not counted).
//!    English question words only.
//! 6. A small prior for the better-fused passage breaks ties.
//!
//! The passages shown are those holding the best sentences ([`narrow`]). Embedding similarity
//! of single sentences was dropped: on the eval it added nothing (it moved the two quoted
//! sentences to the answer's for fewer questions, not more) and cost an embedding per
//! sentence of the pool. These rules were chosen on that eval, which is therefore a
//! development set: they are simple and general, but its scores are not a held-out measure.

use std::collections::{BTreeMap, BTreeSet};

use super::Passage;

/// Passages retrieved for a specialist's answer, from which the shown ones are chosen.
pub const POOL: usize = 12;

/// Evidence sentences shown to the model.
pub const EVIDENCE: usize = 3;

/// Added to a sentence holding a number or code when the question asks for one.
pub const ANSWER_TYPE_BONUS: f64 = 0.2;

/// How much of its lead-in's score a sentence after a `?` or `:` keeps at least.
const CARRY: f64 = 0.7;

/// A sentence of a passage, a candidate for evidence.
#[derive(Debug, Clone, PartialEq)]
pub struct Sentence {
    /// The passage's `[n]`, from 1.
    pub index: usize,
    /// The sentence, as it is in the passage.
    pub text: String,
}

/// The sentences of the passages (numbered from 1 in order), the candidates for evidence.
pub fn sentences(passages: &[Passage]) -> Vec<Sentence> {
    let mut out = Vec::new();
    for (i, p) in passages.iter().enumerate() {
        for s in split_sentences(&p.text) {
            out.push(Sentence {
                index: i + 1,
                text: s.to_owned(),
            });
        }
    }
    out
}

/// Splits text into sentences: at `.`, `!` or `?` followed by white space, and at line breaks.
/// Fragments too short to state anything (under three words) are dropped.
pub(crate) fn split_sentences(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    for line in text.lines() {
        let mut start = 0;
        let bytes = line.as_bytes();
        for (i, b) in bytes.iter().enumerate() {
            let end = matches!(b, b'.' | b'!' | b'?')
                && bytes.get(i + 1).is_some_and(u8::is_ascii_whitespace);
            if end {
                out.push(line[start..=i].trim());
                start = i + 1;
            }
        }
        out.push(line[start..].trim());
    }
    out.retain(|s| s.split_whitespace().count() >= 3);
    out
}

/// Words too common to tell sentences apart.
const STOP: &[&str] = &[
    "a", "an", "and", "are", "as", "at", "be", "by", "can", "do", "does", "for", "from", "has",
    "have", "how", "i", "if", "in", "is", "it", "its", "many", "may", "much", "must", "my", "of",
    "on", "or", "our", "should", "the", "their", "there", "this", "to", "was", "we", "what",
    "when", "where", "which", "who", "whom", "why", "will", "with", "you", "your",
];

fn words(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
}

/// A word's key for matching (see the module docs, rule 3).
fn stem(word: &str) -> String {
    let mut w = word;
    for suffix in ["ing", "ed", "es", "s"] {
        if w.len() > suffix.len() + 2
            && let Some(cut) = w.strip_suffix(suffix)
        {
            w = cut;
            break;
        }
    }
    w.chars().take(6).collect()
}

fn keys(text: &str) -> BTreeSet<String> {
    words(text)
        .filter(|w| !STOP.contains(&w.as_str()))
        .map(|w| stem(&w))
        .collect()
}

/// Whether the question asks for a quantity, a time or an identifier (rule 5).
fn asks_for_a_value(question: &str) -> bool {
    const HOW: &[&str] = &["much", "many", "long", "often", "soon", "far", "old"];
    const THING: &[&str] = &[
        "form",
        "room",
        "number",
        "bleep",
        "extension",
        "code",
        "fee",
        "percentage",
        "ratio",
        "time",
    ];
    let w: Vec<String> = words(question).collect();
    w.iter().any(|x| x == "when")
        || w.windows(2).any(|p| match p {
            [a, b] => {
                (a == "how" && HOW.contains(&b.as_str()))
                    || ((a == "which" || a == "what") && THING.contains(&b.as_str()))
            }
            _ => false,
        })
}

/// Whether `sentence` holds a token with a digit that `question` does not, after a leading
/// list mark and section number (`- 5.2 `).
fn holds_a_value(sentence: &str, question: &str) -> bool {
    let asked: BTreeSet<String> = question
        .split_whitespace()
        .filter(|t| t.chars().any(|c| c.is_ascii_digit()))
        .map(|t| {
            t.trim_matches(|c: char| !c.is_alphanumeric())
                .to_lowercase()
        })
        .collect();
    let mut tokens = sentence.split_whitespace().peekable();
    if tokens.peek().is_some_and(|t| matches!(*t, "-" | "*")) {
        tokens.next();
    }
    if tokens
        .peek()
        .is_some_and(|t| t.chars().all(|c| c.is_ascii_digit() || c == '.'))
    {
        tokens.next();
    }
    tokens.any(|t| {
        let t = t
            .trim_matches(|c: char| !c.is_alphanumeric())
            .to_lowercase();
        t.chars().any(|c| c.is_ascii_digit()) && !asked.contains(&t)
    })
}

/// Every sentence of `passages` ranked for `question`, best first (see the module docs).
/// Ties keep the passages' order.
pub fn evidence(question: &str, passages: &[Passage]) -> Vec<Sentence> {
    let candidates = sentences(passages);
    let q = keys(question);
    // Rule 2: inverse document frequency among the pool's passages.
    let pool: Vec<BTreeSet<String>> = passages
        .iter()
        .map(|p| keys(&format!("{}\n{}\n{}", p.document, p.heading, p.text)))
        .collect();
    let n = pool.len() as f64;
    let weight: BTreeMap<&str, f64> = q
        .iter()
        .map(|k| {
            let df = pool.iter().filter(|set| set.contains(k)).count() as f64;
            (k.as_str(), (1.0 + (n - df + 0.5) / (df + 0.5)).ln())
        })
        .collect();
    let total = weight.values().sum::<f64>().max(f64::MIN_POSITIVE);
    let wants_value = asks_for_a_value(question);
    let base: Vec<f64> = candidates
        .iter()
        .map(|s| {
            let set = keys(&s.text);
            let lexical = weight
                .iter()
                .filter(|(k, _)| set.contains(**k))
                .map(|(_, w)| w)
                .sum::<f64>()
                / total;
            let value = if wants_value && holds_a_value(&s.text, question) {
                ANSWER_TYPE_BONUS
            } else {
                0.0
            };
            lexical + value + 0.05 / s.index as f64
        })
        .collect();
    let mut score = base.clone();
    for i in 1..candidates.len() {
        let (Some(prev), Some(this)) = (candidates.get(i - 1), candidates.get(i)) else {
            continue;
        };
        if prev.index == this.index && prev.text.trim_end().ends_with(['?', ':']) {
            let carried = base[i - 1] * CARRY + base[i] * (1.0 - CARRY);
            score[i] = score[i].max(carried);
        }
    }
    let mut order: Vec<usize> = (0..candidates.len()).collect();
    order.sort_by(|a, b| score[*b].total_cmp(&score[*a]).then(a.cmp(b)));
    order
        .into_iter()
        .filter_map(|i| candidates.get(i).cloned())
        .collect()
}

/// The `keep` passages holding the best-ranked sentences, in that order (passages with no
/// sentence follow in pool order), and the best [`EVIDENCE`] sentences among them, renumbered
/// to the passages' new places.
pub fn narrow(
    passages: Vec<Passage>,
    ranked: &[Sentence],
    keep: usize,
) -> (Vec<Passage>, Vec<Sentence>) {
    let mut order: Vec<usize> = Vec::new();
    for s in ranked {
        if !order.contains(&s.index) {
            order.push(s.index);
        }
    }
    for i in 1..=passages.len() {
        if !order.contains(&i) {
            order.push(i);
        }
    }
    order.truncate(keep);
    let place = |index: usize| order.iter().position(|i| *i == index).map(|p| p + 1);
    let evidence = ranked
        .iter()
        .filter_map(|s| {
            Some(Sentence {
                index: place(s.index)?,
                text: s.text.clone(),
            })
        })
        .take(EVIDENCE)
        .collect();
    let mut slots: Vec<Option<Passage>> = passages.into_iter().map(Some).collect();
    let shown = order
        .iter()
        .filter_map(|i| slots.get_mut(i - 1).and_then(Option::take))
        .collect();
    (shown, evidence)
}

/// The dot product of two vectors (their cosine similarity when both are normalised); 0 when
/// their lengths differ.
pub(crate) fn dot(a: &[f32], b: &[f32]) -> f32 {
    if a.len() != b.len() {
        return 0.0;
    }
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}
