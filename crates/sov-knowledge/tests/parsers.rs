//! Each parser on its fixture (tests/fixtures, see its README), and the content checks.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::fixture;
use sov_knowledge::IngestError;
use sov_knowledge::ingest::{Block, MediaType, Parsed, parse};

fn read(name: &str) -> Vec<u8> {
    std::fs::read(fixture(name)).unwrap()
}

fn h(level: u8, text: &str) -> Block {
    Block::Heading {
        level,
        text: text.into(),
    }
}

fn p(text: &str) -> Block {
    Block::Paragraph(text.into())
}

fn all_text(parsed: &Parsed) -> String {
    parsed
        .blocks
        .iter()
        .map(|b| match b {
            Block::Heading { text, .. } | Block::Paragraph(text) => text.as_str(),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn markdown_keeps_headings_lists_tables_and_code_and_drops_html_blocks() {
    let parsed = parse(MediaType::Markdown, &read("handbook.md")).unwrap();
    assert_eq!(parsed.title.as_deref(), Some("Leave policy"));
    assert_eq!(
        parsed.blocks,
        [
            h(1, "Leave policy"),
            p("Every employee accrues leave from the first day of work."),
            h(2, "Annual leave"),
            p(
                "Each employee has 25 days of annual leave per year. Unused days carry over until the end of March. Leave is booked in the HR system at least two weeks ahead."
            ),
            h(2, "Sick leave"),
            p("A doctor's note is needed after three days of sick leave."),
            p("- Tell your manager before 10:00 on the first day."),
            p("- Record the absence in the HR system."),
            p("Days | Note needed"),
            p("1-3 | no"),
            p("4+ | yes"),
            h(3, "Long illness"),
            p(
                "After six weeks, the occupational health service gets in touch. Inline tags are dropped, their text is kept."
            ),
            p("code blocks are kept as text"),
        ]
    );
}

#[test]
fn html_drops_scripts_styles_and_navigation() {
    let parsed = parse(MediaType::Html, &read("intranet.html")).unwrap();
    assert_eq!(parsed.title.as_deref(), Some("Remote work guidelines"));
    assert_eq!(
        parsed.blocks,
        [
            h(1, "Working from home"),
            p("Staff may work from home up to three days a week."),
            h(2, "Equipment"),
            p("The company lends a laptop and a headset. Monitors are not lent."),
            p("- Return equipment when you leave."),
            p("- Report damage within a week."),
            p("Item | Deposit"),
            p("Laptop | none"),
            p("Contact HR for questions."),
        ]
    );
    let text = all_text(&parsed);
    for dropped in [
        "tracking",
        "color",
        "HR menu",
        "Enable scripts",
        "Remote work",
    ] {
        assert!(!text.contains(dropped), "{dropped} leaked into {text}");
    }
}

#[test]
fn plain_text_is_paragraphs() {
    let parsed = parse(MediaType::Text, &read("canteen.txt")).unwrap();
    assert_eq!(parsed.title, None);
    assert_eq!(
        parsed.blocks,
        [
            p("Canteen opening hours"),
            p("The canteen opens at 11:30 and closes at 14:00. On Fridays it closes at 13:00."),
            p("Vegetarian dishes are served every day."),
        ]
    );
}

#[test]
fn a_pdf_gives_its_pages_and_title() {
    let parsed = parse(MediaType::Pdf, &read("plain.pdf")).unwrap();
    assert_eq!(parsed.title.as_deref(), Some("Expense policy"));
    assert_eq!(
        parsed.blocks,
        [
            h(1, "Page 1"),
            p("Expense policy"),
            p("Travel must be booked through the travel desk. Receipts are kept for seven years."),
            p("Meals are refunded up to 40 euros a day."),
            h(1, "Page 2"),
            p("Approvals"),
            p("A manager approves every claim over 500 euros."),
        ]
    );
}

#[test]
fn encrypted_pdfs_are_refused_even_with_an_empty_password() {
    for name in ["encrypted.pdf", "encrypted-empty-password.pdf"] {
        let err = parse(MediaType::Pdf, &read(name)).unwrap_err();
        assert!(matches!(err, IngestError::EncryptedPdf), "{name}: {err:?}");
        assert!(err.to_string().contains("encrypted"));
    }
}

#[test]
fn pdfs_the_extractor_would_recurse_through_without_end_are_refused_before_extraction() {
    for (name, why) in [
        // A form XObject that draws itself.
        ("cycle.pdf", "cycle in the form XObjects"),
        // The same through an /Image: pdf-extract draws whatever stream `Do` names, so the
        // check cannot trust /Subtype (the pdf fuzz target found it with a corrupted `/Form`:
        // before, a stack overflow).
        ("cycle-image.pdf", "cycle in the form XObjects"),
        // No cycle, but 300 levels of the extractor's recursion.
        ("deep-forms.pdf", "nested 300 deep (at most 256)"),
    ] {
        let err = parse(MediaType::Pdf, &read(name)).unwrap_err();
        assert!(
            matches!(&err, IngestError::Pdf(message) if message.contains(why)),
            "{name}: {err:?}"
        );
    }
}

#[test]
fn a_truncated_pdf_is_an_error_not_a_crash() {
    let bytes = read("plain.pdf");
    for cut in [10, 100, 400, bytes.len() - 30] {
        assert!(
            parse(MediaType::Pdf, &bytes[..cut]).is_err(),
            "cut at {cut}"
        );
    }
}

#[test]
fn docx_headings_come_from_styles_and_outline_levels() {
    let parsed = parse(MediaType::Docx, &read("handbook.docx")).unwrap();
    assert_eq!(parsed.title.as_deref(), Some("Safety handbook"));
    assert_eq!(
        parsed.blocks,
        [
            h(1, "Safety handbook"),
            h(1, "Protective equipment"),
            p(
                "Wear a helmet on site at all times. Gloves are required when handling glass & metal."
            ),
            h(2, "Reporting"),
            p("Report every incident within 24 hours."),
            p("Severity | Deadline"),
            p("High | 1 hour"),
            h(2, "Contacts"),
            p("The safety officer is on extension 4242."),
        ]
    );
}

#[test]
fn content_must_be_what_the_extension_says() {
    let pdf = read("plain.pdf");
    let cases: [(MediaType, &[u8], &str); 7] = [
        (MediaType::Markdown, &pdf, "not UTF-8"),
        (MediaType::Text, b"abc\0def", "NUL byte at byte 3"),
        (MediaType::Html, b"\xff\xfe<p>x</p>", "not UTF-8"),
        (MediaType::Pdf, b"just text", "%PDF-"),
        (MediaType::Docx, b"just text", "not a ZIP archive"),
        (
            MediaType::Docx,
            b"PK\x03\x04broken",
            "DOCX could not be read",
        ),
        (MediaType::Markdown, b"   \n\n  ", "no text"),
    ];
    for (media, bytes, expected) in cases {
        let err = parse(media, bytes).unwrap_err();
        assert!(err.to_string().contains(expected), "{media:?}: {err}");
    }
    let only_script = b"<html><script>x()</script><nav>menu</nav></html>";
    assert!(matches!(
        parse(MediaType::Html, only_script),
        Err(IngestError::NoText)
    ));
    // A byte-order mark is not text.
    let parsed = parse(MediaType::Text, b"\xEF\xBB\xBFhello").unwrap();
    assert_eq!(parsed.blocks, [p("hello")]);
}

#[test]
fn a_docx_without_its_document_part_is_refused() {
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    zip.start_file("word/other.xml", zip::write::SimpleFileOptions::default())
        .unwrap();
    std::io::Write::write_all(&mut zip, b"<x/>").unwrap();
    let bytes = zip.finish().unwrap().into_inner();
    let err = parse(MediaType::Docx, &bytes).unwrap_err();
    assert!(err.to_string().contains("no word/document.xml"), "{err}");
}

#[test]
fn deep_html_nesting_costs_no_stack() {
    // Deep enough that a recursive walk would overflow a test thread's stack; html5ever's
    // own cost grows with the square of the depth, so not deeper.
    let depth = 20_000;
    let html = format!(
        "{}<p>deep text</p>{}",
        "<div>".repeat(depth),
        "</div>".repeat(depth)
    );
    let parsed = parse(MediaType::Html, html.as_bytes()).unwrap();
    assert!(all_text(&parsed).contains("deep text"));
}
