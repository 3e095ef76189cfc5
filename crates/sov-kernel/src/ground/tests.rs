#![allow(clippy::unwrap_used)]

use super::*;

fn passage(doc: &str, text: &str) -> Passage {
    Passage {
        corpus: "hr".into(),
        document: doc.into(),
        heading: "Leave > Sick leave".into(),
        text: text.into(),
        chunk_sha256: "ab".repeat(32),
        score: 0.03,
        similarity: None,
    }
}

fn user(text: &str) -> ChatMessage {
    ChatMessage {
        role: "user".into(),
        content: text.into(),
    }
}

const SICK: &str = "Staff may take up to 12 days of paid sick leave each year. A sick note is \
required for any absence longer than 3 consecutive days. Absences must be reported to the duty \
manager on extension 4471 before 07:30 on the first day.";
const PURCHASE: &str = "Any purchase above 2,500 crowns needs form PX-19.\nThe Finance \
Committee meets on the second Tuesday of each month in Room 3B.";

#[test]
fn sentences_split_at_stops_and_line_breaks_and_keep_their_passage() {
    let s = sentences(&[passage("a.md", SICK), passage("b.md", PURCHASE)]);
    let texts: Vec<(usize, &str)> = s.iter().map(|s| (s.index, s.text.as_str())).collect();
    assert_eq!(
        texts,
        vec![
            (
                1,
                "Staff may take up to 12 days of paid sick leave each year."
            ),
            (
                1,
                "A sick note is required for any absence longer than 3 consecutive days."
            ),
            (
                1,
                "Absences must be reported to the duty manager on extension 4471 before 07:30 on the first day."
            ),
            (2, "Any purchase above 2,500 crowns needs form PX-19."),
            (
                2,
                "The Finance Committee meets on the second Tuesday of each month in Room 3B."
            ),
        ]
    );
    // A number with a decimal point or a time is not a sentence end.
    assert_eq!(
        split_sentences("It costs 2.50 crowns at 07.30 daily.").len(),
        1
    );
}

#[test]
fn the_sentence_sharing_the_rarest_words_of_the_question_comes_first() {
    let cands = sentences(&[passage("a.md", SICK), passage("b.md", PURCHASE)]);
    let best = select(
        "Which extension do I call to report an absence?",
        None,
        &cands,
        None,
        2,
    );
    assert!(best[0].text.contains("4471"), "{best:?}");
    let best = select(
        "Where does the finance committee meet?",
        None,
        &cands,
        None,
        1,
    );
    assert!(best[0].text.contains("Room 3B"), "{best:?}");
    assert_eq!(best[0].index, 2);
    assert_eq!(select("anything", None, &cands, None, 0), Vec::new());
}

#[test]
fn embedding_similarity_decides_when_no_word_is_shared() {
    let cands = sentences(&[passage("a.md", SICK)]);
    // Unit vectors: the question points at the second sentence.
    let vectors: Vec<Vec<f32>> = (0..cands.len())
        .map(|i| {
            if i == 1 {
                vec![1.0, 0.0]
            } else {
                vec![0.0, 1.0]
            }
        })
        .collect();
    let best = select("zzz", Some(&[1.0, 0.0]), &cands, Some(&vectors), 1);
    assert!(best[0].text.contains("sick note"), "{best:?}");
}

#[test]
fn the_prompt_puts_evidence_and_passages_before_the_question_and_cites_every_passage() {
    let passages = [passage("a.md", SICK), passage("b.md", PURCHASE)];
    let cands = sentences(&passages);
    let question = "Which extension do I call?";
    let evidence = select(question, None, &cands, None, EVIDENCE);
    let conversation = [
        ChatMessage {
            role: "system".into(),
            content: "ignored: the specialist's instructions are the system message".into(),
        },
        user("hello"),
        ChatMessage {
            role: "assistant".into(),
            content: "hi".into(),
        },
        user(question),
    ];
    let g = prompt(DEFAULT_INSTRUCTIONS, &conversation, &passages, &evidence);
    assert_eq!(g.messages.len(), 4);
    assert_eq!(g.messages[0].content, DEFAULT_INSTRUCTIONS);
    assert_eq!(g.messages[1].content, "hello");
    let last = &g.messages[3].content;
    assert!(
        last.starts_with("Most relevant sentences:\n[1] Absences"),
        "{last}"
    );
    assert!(
        last.contains("[2] (b.md, Leave > Sick leave) Any purchase"),
        "{last}"
    );
    assert!(
        last.ends_with("Question: Which extension do I call?"),
        "{last}"
    );
    assert_eq!(
        g.citations.iter().map(|c| c.index).collect::<Vec<_>>(),
        [1, 2]
    );
    assert_eq!(g.citations[1].document, "b.md");
}

#[test]
fn the_answer_quotes_its_best_evidence_once() {
    let passages = [passage("a.md", SICK), passage("b.md", PURCHASE)];
    let evidence = select(
        "extension absence form",
        None,
        &sentences(&passages),
        None,
        3,
    );
    assert!(evidence[0].text.contains("4471"), "{evidence:?}");
    assert!(evidence[1].text.contains("PX-19"), "{evidence:?}");
    let g = prompt(DEFAULT_INSTRUCTIONS, &[user("q")], &passages, &evidence);
    assert_eq!(
        tail("Call 4471.", &g),
        "\n\nSources: [1] \"Absences must be reported to the duty manager on extension 4471 before 07:30 on the first day.\" [2] \"Any purchase above 2,500 crowns needs form PX-19.\""
    );
    // A sentence the model quoted gets its marker; only the other one is quoted.
    let quoted = format!("It says: {}", evidence[0].text);
    assert_eq!(
        tail(&quoted, &g),
        " [1]\n\nSources: [2] \"Any purchase above 2,500 crowns needs form PX-19.\""
    );
    let both = format!("{} [1] {} [2]", evidence[0].text, evidence[1].text);
    assert_eq!(tail(&both, &g), "");
    let none = prompt(DEFAULT_INSTRUCTIONS, &[user("q")], &[], &[]);
    assert_eq!(tail("I do not know.", &none), "");
}
