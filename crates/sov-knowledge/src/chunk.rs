//! Structure-aware chunking: sections by heading, then paragraphs and sentences, packed into
//! chunks of at most [`MAX_WORDS`]; the last sentence of a chunk (its last [`OVERLAP_WORDS`]
//! words when it is longer) starts the next chunk of the same section.
//!
//! Why these sizes: all-MiniLM-L6-v2 reads 256 word pieces and ignores the rest; 200 words of
//! English are about 260 pieces with the title and heading path in front, so a chunk is read
//! whole. The overlap keeps a sentence that straddles a chunk boundary answerable from either
//! side. "Words" are weighed: a whitespace-separated token counts one per 12
//! characters (at least one), and each CJK character counts one, as MiniLM's tokenizer splits
//! them; so a text without spaces is chunked by length too.
//!
//! Deterministic: the same [`Parsed`] always gives the same chunks.

use crate::ingest::{Block, Parsed};

/// Most words in a chunk.
pub const MAX_WORDS: usize = 200;
/// Most words repeated from the end of one chunk at the start of the next (same section).
pub const OVERLAP_WORDS: usize = 30;

/// One chunk of a document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chunk {
    /// The headings above it, outermost first, joined by ` > ` (empty before the first).
    pub heading: String,
    /// Its text: sentences of one paragraph joined by a space, paragraphs by a blank line.
    /// The manifest's chunk digest is the SHA-256 of exactly these bytes.
    pub text: String,
}

impl Chunk {
    /// What is embedded and indexed for this chunk: the document title, the heading path and
    /// the text, one per line (the heading line left out when there is none).
    pub fn indexed_text(&self, title: &str) -> String {
        if self.heading.is_empty() {
            format!("{title}\n{}", self.text)
        } else {
            format!("{title}\n{}\n{}", self.heading, self.text)
        }
    }
}

/// A piece of text no heavier than [`MAX_WORDS`], in paragraph `para`.
#[derive(Debug, Clone)]
struct Unit {
    para: usize,
    text: String,
    weight: usize,
}

/// The chunks of a parsed document, in order.
pub fn chunk(parsed: &Parsed) -> Vec<Chunk> {
    let mut out = Vec::new();
    let mut path: Vec<(u8, String)> = Vec::new();
    let mut units: Vec<Unit> = Vec::new();
    let mut para = 0usize;
    for block in &parsed.blocks {
        match block {
            Block::Heading { level, text } => {
                pack(&heading_path(&path), &units, &mut out);
                units.clear();
                while path.last().is_some_and(|(l, _)| l >= level) {
                    path.pop();
                }
                path.push((*level, text.clone()));
            }
            Block::Paragraph(text) => {
                para += 1;
                for sentence in sentences(text) {
                    for piece in split_heavy(sentence) {
                        units.push(Unit {
                            para,
                            weight: text_weight(&piece),
                            text: piece,
                        });
                    }
                }
            }
        }
    }
    pack(&heading_path(&path), &units, &mut out);
    out
}

fn heading_path(path: &[(u8, String)]) -> String {
    path.iter()
        .map(|(_, t)| t.as_str())
        .collect::<Vec<_>>()
        .join(" > ")
}

/// Packs one section's units into chunks.
fn pack(heading: &str, units: &[Unit], out: &mut Vec<Chunk>) {
    let mut current: Vec<Unit> = Vec::new();
    let mut weight = 0usize;
    let mut fresh = 0usize;
    for unit in units {
        if fresh > 0 && weight + unit.weight > MAX_WORDS {
            out.push(render(heading, &current));
            current = overlap(&current);
            weight = current.iter().map(|u| u.weight).sum();
            if weight + unit.weight > MAX_WORDS {
                current.clear();
                weight = 0;
            }
            fresh = 0;
        }
        weight += unit.weight;
        fresh += 1;
        current.push(unit.clone());
    }
    if fresh > 0 {
        out.push(render(heading, &current));
    }
}

/// The end of a chunk repeated at the start of the next: its last sentence, or the last
/// [`OVERLAP_WORDS`] words of it when it is longer.
fn overlap(units: &[Unit]) -> Vec<Unit> {
    let Some(last) = units.last() else {
        return Vec::new();
    };
    if last.weight <= OVERLAP_WORDS {
        return vec![last.clone()];
    }
    let words: Vec<&str> = last.text.split(' ').collect();
    let mut start = words.len();
    let mut weight = 0usize;
    while let Some(word) = start.checked_sub(1).and_then(|i| words.get(i)) {
        if weight + weight_of(word) > OVERLAP_WORDS {
            break;
        }
        weight += weight_of(word);
        start -= 1;
    }
    let text = words.get(start..).unwrap_or_default().join(" ");
    if text.is_empty() {
        return Vec::new();
    }
    vec![Unit {
        para: last.para,
        text,
        weight,
    }]
}

fn render(heading: &str, units: &[Unit]) -> Chunk {
    let mut text = String::new();
    let mut last_para = None;
    for unit in units {
        match last_para {
            None => {}
            Some(p) if p == unit.para => text.push(' '),
            Some(_) => text.push_str("\n\n"),
        }
        text.push_str(&unit.text);
        last_para = Some(unit.para);
    }
    Chunk {
        heading: heading.to_owned(),
        text,
    }
}

/// Splits whitespace-normalised text after `.`, `!`, `?` (and their CJK forms) followed by a
/// space, or after a CJK full stop.
fn sentences(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut chars = text.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        let end = i + c.len_utf8();
        let next = chars.peek().map(|(_, n)| *n);
        let cut = match c {
            '.' | '!' | '?' => next == Some(' '),
            '。' | '！' | '？' => true,
            _ => false,
        };
        if cut {
            if let Some(s) = text
                .get(start..end)
                .map(str::trim)
                .filter(|s| !s.is_empty())
            {
                out.push(s);
            }
            start = end;
        }
    }
    if let Some(s) = text.get(start..).map(str::trim).filter(|s| !s.is_empty()) {
        out.push(s);
    }
    out
}

/// Splits a sentence heavier than [`MAX_WORDS`] into pieces that are not, by words, and a
/// single overweight word by characters.
fn split_heavy(sentence: &str) -> Vec<String> {
    if text_weight(sentence) <= MAX_WORDS {
        return vec![sentence.to_owned()];
    }
    let mut out = Vec::new();
    let mut piece = String::new();
    let mut weight = 0usize;
    for word in sentence.split(' ') {
        let w = weight_of(word);
        if w > MAX_WORDS {
            let mut part = String::new();
            let (mut cjk, mut other) = (0usize, 0usize);
            for c in word.chars() {
                part.push(c);
                if is_cjk(c) {
                    cjk += 1;
                } else {
                    other += 1;
                }
                if cjk + other.div_ceil(12) >= MAX_WORDS {
                    (cjk, other) = (0, 0);
                    if !piece.is_empty() {
                        out.push(std::mem::take(&mut piece));
                        weight = 0;
                    }
                    out.push(std::mem::take(&mut part));
                }
            }
            if !part.is_empty() {
                if !piece.is_empty() {
                    out.push(std::mem::take(&mut piece));
                }
                weight = weight_of(&part);
                piece = part;
            }
            continue;
        }
        if weight + w > MAX_WORDS && !piece.is_empty() {
            out.push(std::mem::take(&mut piece));
            weight = 0;
        }
        if !piece.is_empty() {
            piece.push(' ');
        }
        piece.push_str(word);
        weight += w;
    }
    if !piece.is_empty() {
        out.push(piece);
    }
    out
}

fn text_weight(text: &str) -> usize {
    text.split(' ')
        .filter(|w| !w.is_empty())
        .map(weight_of)
        .sum()
}

/// The weight of one word: see the module docs.
fn weight_of(word: &str) -> usize {
    let mut cjk = 0usize;
    let mut other = 0usize;
    for c in word.chars() {
        if is_cjk(c) {
            cjk += 1;
        } else {
            other += 1;
        }
    }
    (cjk + other.div_ceil(12)).max(1)
}

fn is_cjk(c: char) -> bool {
    matches!(c as u32,
        0x3040..=0x30FF | 0x3400..=0x4DBF | 0x4E00..=0x9FFF | 0xAC00..=0xD7AF | 0xF900..=0xFAFF
        | 0x20000..=0x2FFFF)
}
