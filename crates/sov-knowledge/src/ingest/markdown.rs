//! Markdown (CommonMark with tables, through pulldown-cmark).

use pulldown_cmark::{Event, HeadingLevel, Options, Parser, Tag, TagEnd};

use super::Parsed;

/// Markdown: ATX and setext headings, paragraphs, list items (`- ` before each), table rows
/// (cells joined by ` | `), block quotes and code blocks as paragraphs. Raw HTML is dropped.
/// The title is the first level-1 heading.
pub fn markdown(text: &str) -> Parsed {
    let options = Options::ENABLE_TABLES
        | Options::ENABLE_STRIKETHROUGH
        | Options::ENABLE_TASKLISTS
        | Options::ENABLE_FOOTNOTES;
    let mut out = Parsed::default();
    let mut buf = String::new();
    let mut cells = 0usize;
    for event in Parser::new_ext(text, options) {
        match event {
            Event::Start(Tag::Heading { .. }) => flush(&mut out, &mut buf),
            Event::End(TagEnd::Heading(level)) => {
                out.heading(level_number(level), &buf);
                buf.clear();
            }
            Event::Start(Tag::Item) => {
                flush(&mut out, &mut buf);
                buf.push_str("- ");
            }
            // A list item's first paragraph continues its "- ".
            Event::Start(Tag::Paragraph) if buf.trim() != "-" => flush(&mut out, &mut buf),
            Event::Start(Tag::TableHead | Tag::TableRow) => {
                flush(&mut out, &mut buf);
                cells = 0;
            }
            Event::Start(Tag::TableCell) => {
                if cells > 0 {
                    buf.push_str(" | ");
                }
                cells += 1;
            }
            Event::Start(Tag::CodeBlock(_) | Tag::BlockQuote(_) | Tag::FootnoteDefinition(_))
            | Event::End(
                TagEnd::Paragraph
                | TagEnd::Item
                | TagEnd::TableHead
                | TagEnd::TableRow
                | TagEnd::CodeBlock
                | TagEnd::BlockQuote(_)
                | TagEnd::FootnoteDefinition,
            )
            | Event::Rule => flush(&mut out, &mut buf),
            Event::Text(t) | Event::Code(t) => buf.push_str(&t),
            Event::SoftBreak | Event::HardBreak => buf.push(' '),
            Event::TaskListMarker(done) => buf.push_str(if done { "[x] " } else { "[ ] " }),
            _ => {}
        }
    }
    flush(&mut out, &mut buf);
    out.with_title_from_heading()
}

fn flush(out: &mut Parsed, buf: &mut String) {
    if buf.trim() != "-" {
        out.paragraph(buf);
    }
    buf.clear();
}

fn level_number(level: HeadingLevel) -> u8 {
    match level {
        HeadingLevel::H1 => 1,
        HeadingLevel::H2 => 2,
        HeadingLevel::H3 => 3,
        HeadingLevel::H4 => 4,
        HeadingLevel::H5 => 5,
        HeadingLevel::H6 => 6,
    }
}
