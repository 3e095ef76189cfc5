//! Shared by the document-parser targets: what every parse must satisfy.

use sov_knowledge::chunk::{MAX_WORDS, chunk};
use sov_knowledge::ingest::{Block, Parsed};

/// Blocks are non-empty, whitespace-normalised text, headings of level 1 to 6; chunking them
/// never panics, is deterministic, and every chunk is non-empty and within its size.
pub fn check_parsed(parsed: &Parsed) {
    for block in &parsed.blocks {
        let text = match block {
            Block::Heading { level, text } => {
                assert!((1..=6).contains(level), "heading level {level}");
                text
            }
            Block::Paragraph(text) => text,
        };
        assert!(!text.is_empty(), "an empty block");
        assert_eq!(text.trim(), text, "untrimmed block {text:?}");
        assert!(!text.contains("  "), "a double space in {text:?}");
        assert!(
            !text.chars().any(char::is_control),
            "a control character in {text:?}"
        );
    }
    let chunks = chunk(parsed);
    assert_eq!(chunks, chunk(parsed), "chunking is not deterministic");
    for c in &chunks {
        assert!(!c.text.is_empty(), "an empty chunk");
        // At most MAX_WORDS words of one character, each at least one.
        assert!(
            c.text.split_whitespace().count() <= MAX_WORDS,
            "a chunk of {} words",
            c.text.split_whitespace().count()
        );
    }
}
