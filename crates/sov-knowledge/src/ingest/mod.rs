//! From a file's bytes to its text structure: headings and paragraphs.
//!
//! The media type comes from the extension and is checked against the content: text types
//! (Markdown, plain text, HTML) must be UTF-8 without NUL bytes (a leading byte-order mark is
//! dropped), a PDF must start with `%PDF-`, a DOCX with a ZIP header. Each parser here turns
//! the content into a [`Parsed`]: a title, if the document has one, and [`Block`]s in reading
//! order. The chunker ([`crate::chunk`]) takes it from there.
//!
//! Every parser takes untrusted bytes and must not panic (the fuzz targets in `fuzz/` run each
//! one); the PDF extractor, a third-party crate, runs inside `catch_unwind` for that reason.

mod docx;
mod files;
mod html;
mod markdown;
mod pdf;

pub use docx::docx;
pub(crate) use files::{collect, read_limited};
pub use html::html;
pub use markdown::markdown;
pub use pdf::{EXTRACT_THREAD as PDF_EXTRACT_THREAD, pdf};

use crate::IngestError;

/// The document types Sovereign reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MediaType {
    /// `.md`, `.markdown`: CommonMark with tables.
    Markdown,
    /// `.txt`, `.text`: paragraphs separated by blank lines.
    Text,
    /// `.html`, `.htm`.
    Html,
    /// `.pdf`: its text layer, page by page.
    Pdf,
    /// `.docx`: `word/document.xml`.
    Docx,
}

impl MediaType {
    /// The media type for a file name's extension (case-insensitive), if it is one we read.
    pub fn from_path(path: &std::path::Path) -> Option<Self> {
        let ext = path.extension()?.to_str()?.to_ascii_lowercase();
        Some(match ext.as_str() {
            "md" | "markdown" => Self::Markdown,
            "txt" | "text" => Self::Text,
            "html" | "htm" => Self::Html,
            "pdf" => Self::Pdf,
            "docx" => Self::Docx,
            _ => return None,
        })
    }

    /// The IANA media type, as the manifest records it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Markdown => "text/markdown",
            Self::Text => "text/plain",
            Self::Html => "text/html",
            Self::Pdf => "application/pdf",
            Self::Docx => "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        }
    }
}

/// A document's text structure.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Parsed {
    /// Its title, if it names one.
    pub title: Option<String>,
    /// Its headings and paragraphs in reading order.
    pub blocks: Vec<Block>,
}

/// One block of text. Text is whitespace-normalised (single spaces, trimmed) and never empty.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Block {
    /// A heading of level 1 to 6.
    Heading {
        /// 1 (the outermost) to 6.
        level: u8,
        /// Its text.
        text: String,
    },
    /// A paragraph, a list item, a table row (cells joined by ` | `), a code block.
    Paragraph(String),
}

impl Parsed {
    /// Appends a heading, unless its text is empty; level clamped to 1..=6.
    pub(crate) fn heading(&mut self, level: u8, raw: &str) {
        let text = clean(raw);
        if !text.is_empty() {
            self.blocks.push(Block::Heading {
                level: level.clamp(1, 6),
                text,
            });
        }
    }

    /// Appends a paragraph, unless its text is empty.
    pub(crate) fn paragraph(&mut self, raw: &str) {
        let text = clean(raw);
        if !text.is_empty() {
            self.blocks.push(Block::Paragraph(text));
        }
    }

    /// The title, else the first level-1 heading.
    pub(crate) fn with_title_from_heading(mut self) -> Self {
        if self.title.as_deref().is_none_or(str::is_empty) {
            self.title = self.blocks.iter().find_map(|b| match b {
                Block::Heading { level: 1, text } => Some(text.clone()),
                _ => None,
            });
        }
        self
    }
}

/// Whitespace-normalised text: control characters become spaces, runs of whitespace one space.
pub(crate) fn clean(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    for word in raw
        .split(|c: char| c.is_whitespace() || c.is_control())
        .filter(|w| !w.is_empty())
    {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    out
}

/// Parses `bytes` as `media`, after checking the content is of that type.
pub fn parse(media: MediaType, bytes: &[u8]) -> Result<Parsed, IngestError> {
    let parsed = match media {
        MediaType::Markdown => markdown(as_text(media, bytes)?),
        MediaType::Text => text(as_text(media, bytes)?),
        MediaType::Html => html(as_text(media, bytes)?),
        MediaType::Pdf => {
            if !bytes.starts_with(b"%PDF-") {
                return Err(not(media, "it does not start with `%PDF-`".into()));
            }
            pdf(bytes)?
        }
        MediaType::Docx => {
            if !bytes.starts_with(b"PK\x03\x04") {
                return Err(not(media, "it is not a ZIP archive".into()));
            }
            docx(bytes)?
        }
    };
    if !parsed
        .blocks
        .iter()
        .any(|b| matches!(b, Block::Paragraph(_)))
    {
        return Err(IngestError::NoText);
    }
    Ok(parsed)
}

fn not(media: MediaType, why: String) -> IngestError {
    IngestError::NotWhatItSays {
        media: media.as_str(),
        why,
    }
}

/// The bytes as text: UTF-8, no NUL, a leading byte-order mark dropped.
fn as_text(media: MediaType, bytes: &[u8]) -> Result<&str, IngestError> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let text = std::str::from_utf8(bytes).map_err(|e| {
        not(
            media,
            format!("it is not UTF-8 text (byte {} is invalid)", e.valid_up_to()),
        )
    })?;
    if let Some(at) = text.find('\0') {
        return Err(not(media, format!("it has a NUL byte at byte {at}")));
    }
    Ok(text)
}

/// Plain text: paragraphs are separated by blank lines; no headings.
pub fn text(text: &str) -> Parsed {
    let mut parsed = Parsed::default();
    let mut para = String::new();
    for line in text.lines() {
        if line.trim().is_empty() {
            parsed.paragraph(&para);
            para.clear();
        } else {
            para.push_str(line);
            para.push('\n');
        }
    }
    parsed.paragraph(&para);
    parsed
}
