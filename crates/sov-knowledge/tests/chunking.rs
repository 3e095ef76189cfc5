//! Structure-aware chunking: sizes, overlap, heading paths, determinism.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use sov_knowledge::chunk::{Chunk, MAX_WORDS, OVERLAP_WORDS, chunk};
use sov_knowledge::ingest::{Block, Parsed, markdown};

fn words(text: &str) -> usize {
    text.split_whitespace().count()
}

/// `n` sentences of ten words, numbered so each is unique.
fn sentences(n: usize) -> String {
    (0..n)
        .map(|i| format!("Sentence {i} has exactly ten words in it, counted here."))
        .collect::<Vec<_>>()
        .join(" ")
}

#[test]
fn a_long_section_is_packed_with_one_sentence_of_overlap() {
    let parsed = Parsed {
        title: None,
        blocks: vec![
            Block::Heading {
                level: 1,
                text: "Leave policy".into(),
            },
            Block::Heading {
                level: 2,
                text: "Sick leave".into(),
            },
            Block::Paragraph(sentences(100)),
        ],
    };
    let chunks = chunk(&parsed);
    assert!(chunks.len() >= 5, "{} chunks", chunks.len());
    for c in &chunks {
        assert_eq!(c.heading, "Leave policy > Sick leave");
        assert!(words(&c.text) <= MAX_WORDS, "{} words", words(&c.text));
    }
    for pair in chunks.windows(2) {
        let [a, b] = pair else { unreachable!() };
        // The next chunk starts with the previous one's last sentence.
        let last = a.text.rsplit_once(". ").map_or(a.text.as_str(), |(_, s)| s);
        assert!(
            b.text.starts_with(last),
            "{last:?} does not start {:?}",
            b.text
        );
        assert!(words(last) <= OVERLAP_WORDS);
    }
    // Every sentence is in some chunk.
    let all: String = chunks.iter().map(|c| c.text.as_str()).collect();
    for i in 0..100 {
        assert!(all.contains(&format!("Sentence {i} has")), "sentence {i}");
    }
}

#[test]
fn sections_do_not_overlap_and_keep_their_heading_paths() {
    let parsed = markdown(
        "# A\n\nIntro.\n\n## B\n\nUnder B.\n\n### C\n\nUnder C.\n\n## D\n\nUnder D, not C.\n",
    );
    let chunks = chunk(&parsed);
    let got: Vec<(&str, &str)> = chunks
        .iter()
        .map(|c| (c.heading.as_str(), c.text.as_str()))
        .collect();
    assert_eq!(
        got,
        [
            ("A", "Intro."),
            ("A > B", "Under B."),
            ("A > B > C", "Under C."),
            ("A > D", "Under D, not C."),
        ]
    );
}

#[test]
fn paragraphs_of_a_chunk_are_separated_by_a_blank_line() {
    let parsed = markdown("# T\n\nFirst one. Second one.\n\nThird one.\n");
    assert_eq!(
        chunk(&parsed),
        [Chunk {
            heading: "T".into(),
            text: "First one. Second one.\n\nThird one.".into(),
        }]
    );
}

#[test]
fn text_without_spaces_is_chunked_by_length() {
    // CJK: each character counts as a word, as MiniLM's tokenizer splits them.
    let cjk: String = "休暇規程は全従業員に適用される".repeat(100);
    let chunks = chunk(&Parsed {
        title: None,
        blocks: vec![Block::Paragraph(cjk.clone())],
    });
    assert!(chunks.len() >= 7, "{}", chunks.len());
    assert!(chunks.iter().all(|c| c.text.chars().count() <= MAX_WORDS));
    // One long token (a hash, a URL) is split too, and nothing is lost.
    let token = "x".repeat(10_000);
    let chunks = chunk(&Parsed {
        title: None,
        blocks: vec![Block::Paragraph(token.clone())],
    });
    assert!(chunks.len() >= 4);
    assert!(chunks.iter().all(|c| c.text.len() <= MAX_WORDS * 12));
    assert_eq!(chunks.iter().map(|c| c.text.len()).sum::<usize>(), 10_000);
}

#[test]
fn chunking_is_deterministic_and_indexed_text_has_title_and_path() {
    let parsed = markdown(&format!("# Policy\n\n## Part\n\n{}\n", sentences(50)));
    let a = chunk(&parsed);
    let b = chunk(&parsed);
    assert_eq!(a, b);
    let first = a.first().unwrap();
    assert_eq!(
        first.indexed_text("Handbook"),
        format!("Handbook\nPolicy > Part\n{}", first.text)
    );
    let bare = Chunk {
        heading: String::new(),
        text: "x".into(),
    };
    assert_eq!(bare.indexed_text("T"), "T\nx");
}
