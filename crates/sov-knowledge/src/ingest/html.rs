//! HTML (html5ever's parser, through scraper).

use ego_tree::iter::Edge;
use scraper::{Html, Node};

use super::Parsed;

/// Elements whose content is never text of the document.
const DROPPED: &[&str] = &[
    "script", "style", "nav", "noscript", "template", "svg", "math", "iframe", "object", "canvas",
    "select", "button",
];

/// Elements that end the paragraph before them and start a new one.
const BLOCKS: &[&str] = &[
    "p",
    "div",
    "section",
    "article",
    "main",
    "aside",
    "header",
    "footer",
    "blockquote",
    "pre",
    "ul",
    "ol",
    "dl",
    "dt",
    "dd",
    "figure",
    "figcaption",
    "address",
    "details",
    "summary",
    "form",
    "fieldset",
    "legend",
    "table",
    "caption",
    "thead",
    "tbody",
    "tfoot",
    "hr",
    "body",
    "html",
    "head",
];

/// HTML: headings `h1`-`h6`, paragraphs and other blocks, list items (`- ` before each),
/// table rows (cells joined by ` | `). `script`, `style`, `nav` and other non-text elements
/// are dropped with their content. The title is `<title>`, else the first `h1`.
///
/// The tree is walked without recursion, so nesting depth costs no stack.
pub fn html(text: &str) -> Parsed {
    let doc = Html::parse_document(text);
    let mut out = Parsed::default();
    let mut buf = String::new();
    let mut title = String::new();
    let mut dropped = 0usize;
    let mut in_title = 0usize;
    let mut heading: Option<u8> = None;
    let mut cells = 0usize;
    for edge in doc.tree.root().traverse() {
        match edge {
            Edge::Open(node) => match node.value() {
                Node::Element(e) => {
                    let name = e.name();
                    if dropped > 0 || DROPPED.contains(&name) {
                        dropped += usize::from(DROPPED.contains(&name));
                        continue;
                    }
                    if name == "title" {
                        in_title += 1;
                    } else if let Some(level) = heading_level(name) {
                        flush(&mut out, &mut buf);
                        heading = Some(level);
                    } else if name == "li" {
                        flush(&mut out, &mut buf);
                        buf.push_str("- ");
                    } else if name == "tr" {
                        flush(&mut out, &mut buf);
                        cells = 0;
                    } else if name == "td" || name == "th" {
                        if cells > 0 {
                            buf.push_str(" | ");
                        }
                        cells += 1;
                    } else if name == "br" {
                        buf.push(' ');
                    } else if BLOCKS.contains(&name) && heading.is_none() {
                        flush(&mut out, &mut buf);
                    }
                }
                Node::Text(t) if dropped == 0 => {
                    if in_title > 0 {
                        title.push_str(t);
                    } else {
                        buf.push_str(t);
                    }
                }
                _ => {}
            },
            Edge::Close(node) => {
                let Node::Element(e) = node.value() else {
                    continue;
                };
                let name = e.name();
                if DROPPED.contains(&name) {
                    dropped = dropped.saturating_sub(1);
                    continue;
                }
                if dropped > 0 {
                    continue;
                }
                if name == "title" {
                    in_title = in_title.saturating_sub(1);
                } else if heading_level(name).is_some() {
                    if let Some(level) = heading.take() {
                        out.heading(level, &buf);
                        buf.clear();
                    }
                } else if heading.is_none()
                    && (name == "li" || name == "tr" || BLOCKS.contains(&name))
                {
                    flush(&mut out, &mut buf);
                }
            }
        }
    }
    flush(&mut out, &mut buf);
    let title = super::clean(&title);
    if !title.is_empty() {
        out.title = Some(title);
    }
    out.with_title_from_heading()
}

fn flush(out: &mut Parsed, buf: &mut String) {
    if buf.trim() != "-" {
        out.paragraph(buf);
    }
    buf.clear();
}

fn heading_level(name: &str) -> Option<u8> {
    match name {
        "h1" => Some(1),
        "h2" => Some(2),
        "h3" => Some(3),
        "h4" => Some(4),
        "h5" => Some(5),
        "h6" => Some(6),
        _ => None,
    }
}
