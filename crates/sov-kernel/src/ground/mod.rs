//! Grounding: from the passages retrieved for a question to the prompt a specialist's model
//! sees, and from the model's words to the cited answer the caller gets.
//!
//! A 135M model reads badly: given a whole document it answered 64% of a domain eval, and it
//! often copies the wrong number from a long passage. So the prompt is built around
//! **evidence** ([`evidence`]): the sentences of the retrieved passages that best answer the
//! question. A pool of passages is retrieved ([`POOL`]), its sentences are ranked, and the
//! passages holding the best sentences are the ones shown ([`narrow`]), best evidence first,
//! followed by the passages themselves. The answer the caller gets is the model's words
//! followed by the two best evidence sentences quoted verbatim with their `[n]` markers, so a
//! reader always sees the exact text the answer rests on, whatever the model made of it. Every
//! passage placed in the prompt is cited (`citations`), in the order shown.

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
    /// The heading path of its section, possibly empty.
    pub heading: String,
    /// The chunk's exact text (what `chunk_sha256` is the SHA-256 of): the caller was allowed
    /// to read its document, or it would not be here.
    pub text: String,
    /// SHA-256 of the chunk's text.
    pub chunk_sha256: String,
    /// The passage's retrieval score.
    pub score: f64,
}

/// The prompt and citations of a grounded answer.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Grounded {
    /// The conversation the model sees.
    pub messages: Vec<ChatMessage>,
    /// One per passage in the prompt, in order.
    pub citations: Vec<Citation>,
    /// The evidence sentences shown, best first.
    pub evidence: Vec<Sentence>,
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
            heading: p.heading.clone(),
            text: p.text.clone(),
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

mod evidence;

pub(crate) use evidence::dot;
pub use evidence::{EVIDENCE, POOL, Sentence, evidence, narrow};
#[cfg(test)]
pub(crate) use evidence::{sentences, split_sentences};

#[cfg(test)]
mod tests;
