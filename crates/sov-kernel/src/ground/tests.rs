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
    let passages = [passage("a.md", SICK), passage("b.md", PURCHASE)];
    let best = evidence("Which extension do I call to report an absence?", &passages);
    assert!(best[0].text.contains("4471"), "{best:?}");
    let best = evidence("Where does the finance committee meet?", &passages);
    assert!(best[0].text.contains("Room 3B"), "{best:?}");
    assert_eq!(best[0].index, 2);
    // Every sentence is ranked, none lost.
    assert_eq!(best.len(), sentences(&passages).len());
    assert_eq!(evidence("anything", &[]), Vec::new());
}

#[test]
fn a_word_in_every_passage_weighs_nothing() {
    // The institution's name is in every passage (and in the question): the sentence holding
    // the one rare word wins over the address line that holds the name three times.
    let head = "Hollowmere General Hospital, Fellgate Road, Hollowmere.";
    let passages = [
        passage(
            "a.md",
            &format!("{head}\nThe visiting hours are 11:00 to 19:00."),
        ),
        passage(
            "b.md",
            &format!("{head}\nMedication incidents go to the officer on bleep 3317."),
        ),
        passage("c.md", &format!("{head}\nAnnual leave is 27 days a year.")),
    ];
    let best = evidence(
        "Which bleep reaches the officer at Hollowmere General Hospital?",
        &passages,
    );
    assert!(best[0].text.contains("3317"), "{best:?}");
}

#[test]
fn an_faq_answer_follows_its_question_and_a_value_is_preferred_when_one_is_asked() {
    let faq = "Q: How often must I change my network password?\nA: Every 60 days.\nQ: Who \
resets a locked network account for me?\nA: The service desk resets it.";
    let passages = [
        passage("faq.txt", faq),
        passage(
            "wifi.md",
            "The guest network has no password for visitors to use.",
        ),
    ];
    let best = evidence(
        "How often must staff change their network password?",
        &passages,
    );
    let top: Vec<&str> = best.iter().take(2).map(|s| s.text.as_str()).collect();
    assert!(top.contains(&"A: Every 60 days."), "{best:?}");
    // The answer type: a sentence with a number the question lacks, over one without.
    let parking = [passage(
        "visit.md",
        "Visitor parking is in the multi-storey car park.\nVisitor parking costs £3.40 for two hours.",
    )];
    let best = evidence("How much is visitor parking?", &parking);
    assert!(best[0].text.contains("3.40"), "{best:?}");
    // A section number is not a value.
    let sections = [passage(
        "leave.md",
        "5.1 Leave is booked in PeopleDesk.\nLeave is booked on form L-12.",
    )];
    let best = evidence("Which form is leave booked on?", &sections);
    assert!(best[0].text.contains("L-12"), "{best:?}");
}

#[test]
fn the_passages_shown_are_those_of_the_best_sentences_renumbered() {
    let passages = vec![
        passage("1.md", "One one one."),
        passage("2.md", "Two two two."),
        passage("3.md", "Three three three."),
        passage("4.md", "Four four four."),
    ];
    let ranked = vec![
        Sentence {
            index: 3,
            text: "Three three three.".into(),
        },
        Sentence {
            index: 1,
            text: "One one one.".into(),
        },
        Sentence {
            index: 4,
            text: "Four four four.".into(),
        },
    ];
    let (shown, evidence) = narrow(passages, &ranked, 2);
    let docs: Vec<&str> = shown.iter().map(|p| p.document.as_str()).collect();
    assert_eq!(docs, ["3.md", "1.md"]);
    // Evidence only from the shown passages, numbered by their new places.
    assert_eq!(
        evidence
            .iter()
            .map(|s| (s.index, s.text.as_str()))
            .collect::<Vec<_>>(),
        [(1, "Three three three."), (2, "One one one.")]
    );
    // Passages without a ranked sentence fill the rest, in pool order.
    let (shown, _) = narrow(
        vec![
            passage("1.md", "x"),
            passage("2.md", "y"),
            passage("3.md", "z"),
        ],
        &[],
        2,
    );
    assert_eq!(
        shown
            .iter()
            .map(|p| p.document.as_str())
            .collect::<Vec<_>>(),
        ["1.md", "2.md"]
    );
}

#[test]
fn the_prompt_puts_evidence_and_passages_before_the_question_and_cites_every_passage() {
    let passages = [passage("a.md", SICK), passage("b.md", PURCHASE)];
    let question = "Which extension do I call?";
    let evidence: Vec<Sentence> = super::evidence(question, &passages)
        .into_iter()
        .take(EVIDENCE)
        .collect();
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
    let evidence = evidence("reported extension purchase form", &passages);
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
