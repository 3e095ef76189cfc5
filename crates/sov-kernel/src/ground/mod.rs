//! Grounding: from the passages retrieved for a question to the prompt a specialist's model
//! sees, and from the model's words to the cited answer the caller gets.
//!
//! A 135M model reads badly: given a whole document it answered 64% of a domain eval, and it
//! often copies the wrong number from a long passage. So the prompt is built around
//! **evidence**: the few sentences of the retrieved passages that best match the question
//! (by the words they share, weighted by how rare each word is among the candidates, and by
//! embedding similarity when the kernel has an embedding model), shown first and marked with
//! their passage's number, followed by the passages themselves. The answer the caller gets is
//! the model's words followed by the two best evidence sentences quoted verbatim with their
//! `[n]` markers, so a reader always sees the exact text the answer rests on, whatever the
//! model made of it. Every passage placed in the prompt is cited (`citations`), in the order shown.

use std::collections::{BTreeMap, BTreeSet};

use sov_engine::ChatMessage;

/// A passage retrieved for a question: what the prompt shows and its citation names.
#[derive(Debug, Clone, PartialEq)]
pub struct Passage {
    /// The corpus it is in.
    pub corpus: String,
    /// The document's id in the corpus.
    pub document: String,
    /// The heading path of its section (`Leave policy > Sick leave`), possibly empty.
    pub heading: String,
    /// The chunk's exact text.
    pub text: String,
    /// SHA-256 of the chunk's text, lowercase hex.
    pub chunk_sha256: String,
    /// Its fused retrieval score.
    pub score: f64,
    /// The cosine similarity of its embedding with the query's, if it was ranked by it.
    pub similarity: Option<f32>,
}

/// A citation as the response carries it: the passage numbered `index` in the answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Citation {
    /// The `[n]` of the passage, from 1.
    pub index: usize,
    /// The corpus.
    pub corpus: String,
    /// The document's id.
    pub document: String,
    /// SHA-256 of the chunk's text.
    pub chunk_sha256: String,
    /// The passage's retrieval score.
    pub score: f64,
}

/// A sentence of a passage, a candidate for evidence.
#[derive(Debug, Clone, PartialEq)]
pub struct Sentence {
    /// The passage's `[n]`, from 1.
    pub index: usize,
    /// The sentence, as it is in the passage.
    pub text: String,
}

/// The prompt and citations of a grounded answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Grounded {
    /// The conversation the model sees.
    pub messages: Vec<ChatMessage>,
    /// One per passage in the prompt, in order.
    pub citations: Vec<Citation>,
    /// The evidence sentences shown, best first.
    pub evidence: Vec<Sentence>,
}

/// Evidence sentences shown to the model.
pub const EVIDENCE: usize = 3;

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
fn split_sentences(text: &str) -> Vec<&str> {
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

/// A word's key for matching: lower case, cut to its first six characters, so that `report`,
/// `reports` and `reported` meet (a crude stem that needs no language data).
fn keys(text: &str) -> BTreeSet<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .filter(|w| !STOP.contains(&w.as_str()))
        .map(|w| w.chars().take(6).collect())
        .collect()
}

/// Ranks the candidate sentences for `question`, best first, keeping at most `n`.
///
/// A sentence's score is the sum, over the question's words it contains, of the word's rarity
/// among the candidates (`ln(1 + N / df)`), normalised by the question's total, plus the cosine
/// similarity of its embedding with the question's when both are given (`vectors[i]` belongs
/// to `candidates[i]`), plus a small prior for the better-ranked passage. Ties keep the
/// passages' order.
pub fn select(
    question: &str,
    question_vector: Option<&[f32]>,
    candidates: &[Sentence],
    vectors: Option<&[Vec<f32>]>,
    n: usize,
) -> Vec<Sentence> {
    let q = keys(question);
    let sets: Vec<BTreeSet<String>> = candidates.iter().map(|s| keys(&s.text)).collect();
    let mut df: BTreeMap<&str, usize> = BTreeMap::new();
    for set in &sets {
        for k in set.iter().filter(|k| q.contains(*k)) {
            *df.entry(k.as_str()).or_default() += 1;
        }
    }
    let total = candidates.len().max(1) as f64;
    let weight = |k: &str| (1.0 + total / df.get(k).copied().unwrap_or(1) as f64).ln();
    let max: f64 = q
        .iter()
        .map(|k| weight(k))
        .sum::<f64>()
        .max(f64::MIN_POSITIVE);
    let mut scored: Vec<(f64, usize)> = candidates
        .iter()
        .zip(&sets)
        .enumerate()
        .map(|(i, (s, set))| {
            let lexical: f64 = set.intersection(&q).map(|k| weight(k)).sum::<f64>() / max;
            let dense = match (question_vector, vectors.and_then(|v| v.get(i))) {
                (Some(qv), Some(sv)) if qv.len() == sv.len() => f64::from(dot(qv, sv)),
                _ => 0.0,
            };
            let prior = 0.05 / s.index as f64;
            (lexical + dense + prior, i)
        })
        .collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    scored
        .into_iter()
        .take(n)
        .filter_map(|(_, i)| candidates.get(i).cloned())
        .collect()
}

/// The dot product of two vectors (their cosine similarity when both are normalised); 0 when
/// their lengths differ.
pub(crate) fn dot(a: &[f32], b: &[f32]) -> f32 {
    if a.len() != b.len() {
        return 0.0;
    }
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// The default instructions of a specialist with none of its own.
pub const DEFAULT_INSTRUCTIONS: &str = "Answer the question using only the numbered passages. \
Give the short answer first, then cite the passage as [n]. If the passages do not contain the \
answer, say that you do not know.";

/// Builds the model's conversation: the instructions as the system message, then the
/// conversation's earlier turns, then the last user message with the evidence and passages
/// placed before the question (a small model follows what is nearest the question best).
pub fn prompt(
    instructions: &str,
    conversation: &[ChatMessage],
    passages: &[Passage],
    evidence: &[Sentence],
) -> Grounded {
    let citations = passages
        .iter()
        .enumerate()
        .map(|(i, p)| Citation {
            index: i + 1,
            corpus: p.corpus.clone(),
            document: p.document.clone(),
            chunk_sha256: p.chunk_sha256.clone(),
            score: p.score,
        })
        .collect();
    let mut messages = vec![ChatMessage {
        role: "system".into(),
        content: instructions.to_owned(),
    }];
    let last_user = conversation.iter().rposition(|m| m.role == "user");
    for (i, m) in conversation.iter().enumerate() {
        if m.role == "system" {
            continue;
        }
        if Some(i) != last_user {
            messages.push(m.clone());
            continue;
        }
        let mut text = String::new();
        if !evidence.is_empty() {
            text.push_str("Most relevant sentences:\n");
            for s in evidence {
                text.push_str(&format!("[{}] {}\n", s.index, s.text));
            }
            text.push('\n');
        }
        if !passages.is_empty() {
            text.push_str("Passages:\n");
            for (n, p) in passages.iter().enumerate() {
                let title = if p.heading.is_empty() {
                    p.document.clone()
                } else {
                    format!("{}, {}", p.document, p.heading)
                };
                text.push_str(&format!("[{}] ({title}) {}\n\n", n + 1, p.text.trim()));
            }
        }
        text.push_str(&format!("Question: {}", m.content.trim()));
        messages.push(ChatMessage {
            role: "user".into(),
            content: text,
        });
    }
    Grounded {
        messages,
        citations,
        evidence: evidence.to_vec(),
    }
}

/// Evidence sentences quoted after the model's words.
pub const QUOTED: usize = 2;

/// What follows the model's words in the answer the caller gets: the best [`QUOTED`] evidence
/// sentences quoted with their markers (a sentence the model already quoted gets only its
/// marker, if it lacks it), so the exact source text is always shown. Without evidence (no
/// passage was readable or relevant) nothing follows. Appended after the generation, so a
/// stream ends with it too.
pub fn tail(model_text: &str, grounded: &Grounded) -> String {
    let mut out = String::new();
    let mut quotes = Vec::new();
    for s in grounded.evidence.iter().take(QUOTED) {
        let marker = format!("[{}]", s.index);
        if model_text.contains(s.text.as_str()) {
            if !model_text.contains(&marker) && !out.contains(&marker) {
                out.push_str(&format!(" {marker}"));
            }
        } else {
            quotes.push(format!("{marker} \"{}\"", s.text));
        }
    }
    if !quotes.is_empty() {
        out.push_str("\n\nSources: ");
        out.push_str(&quotes.join(" "));
    }
    out
}

#[cfg(test)]
mod tests;
