//! DOCX: `word/document.xml` in the ZIP archive (zip, quick-xml).

use std::collections::HashMap;
use std::io::{Cursor, Read};

use quick_xml::Reader;
use quick_xml::events::{BytesRef, BytesStart, Event};

use super::Parsed;
use crate::IngestError;

/// Largest `word/document.xml` (or `word/styles.xml`) read, uncompressed: a guard against a
/// ZIP bomb.
const MAX_XML: u64 = 64 * 1024 * 1024;

/// A DOCX: paragraphs of `word/document.xml`; headings from their style (`Heading1`..`Heading6`
/// or `Title`, by id or, through `word/styles.xml`, by the built-in style name `heading N`
/// that localised Word keeps) or a direct outline level; table rows with cells joined by
/// ` | `. The title is the first `Title` or level-1 heading.
pub fn docx(bytes: &[u8]) -> Result<Parsed, IngestError> {
    let bad = |e: &dyn std::fmt::Display| IngestError::Docx(e.to_string());
    let mut archive = zip::ZipArchive::new(Cursor::new(bytes)).map_err(|e| bad(&e))?;
    let document = read_part(&mut archive, "word/document.xml")?
        .ok_or_else(|| IngestError::Docx("it has no word/document.xml".into()))?;
    let styles = match read_part(&mut archive, "word/styles.xml")? {
        Some(xml) => heading_styles(&xml).unwrap_or_default(),
        None => HashMap::new(),
    };
    paragraphs(&document, &styles).map_err(|e| bad(&e))
}

fn read_part<R: Read + std::io::Seek>(
    archive: &mut zip::ZipArchive<R>,
    name: &str,
) -> Result<Option<String>, IngestError> {
    let bad = |e: &dyn std::fmt::Display| IngestError::Docx(format!("{name}: {e}"));
    let file = match archive.by_name(name) {
        Ok(f) => f,
        Err(zip::result::ZipError::FileNotFound) => return Ok(None),
        Err(e) => return Err(bad(&e)),
    };
    if file.size() > MAX_XML {
        return Err(bad(&format!("it is over {MAX_XML} bytes uncompressed")));
    }
    let mut bytes = Vec::new();
    file.take(MAX_XML + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| bad(&e))?;
    if bytes.len() as u64 > MAX_XML {
        return Err(bad(&format!("it is over {MAX_XML} bytes uncompressed")));
    }
    String::from_utf8(bytes)
        .map(Some)
        .map_err(|_| bad(&"it is not UTF-8"))
}

/// Style id -> heading level (0 for `Title`), from `word/styles.xml`.
fn heading_styles(xml: &str) -> Result<HashMap<String, u8>, quick_xml::Error> {
    let mut map = HashMap::new();
    let mut reader = Reader::from_str(xml);
    let mut current: Option<String> = None;
    loop {
        match reader.read_event()? {
            Event::Eof => break,
            Event::Start(e) | Event::Empty(e) => match e.local_name().as_ref() {
                "style" => current = attr(&e, "styleId"),
                "name" => {
                    if let (Some(id), Some(level)) =
                        (&current, attr(&e, "val").and_then(|n| style_level(&n)))
                    {
                        map.insert(id.clone(), level);
                    }
                }
                "outlineLvl" => {
                    if let (Some(id), Some(level)) = (&current, outline_level(&e)) {
                        map.entry(id.clone()).or_insert(level);
                    }
                }
                _ => {}
            },
            _ => {}
        }
    }
    Ok(map)
}

fn paragraphs(xml: &str, styles: &HashMap<String, u8>) -> Result<Parsed, quick_xml::Error> {
    let mut out = Parsed::default();
    let mut reader = Reader::from_str(xml);
    let mut para = String::new();
    let mut level: Option<u8> = None;
    let mut in_text = false;
    let mut tables = 0usize;
    let mut cell = String::new();
    let mut row: Vec<String> = Vec::new();
    loop {
        match reader.read_event()? {
            Event::Eof => break,
            Event::Start(e) => match e.local_name().as_ref() {
                "p" => {
                    para.clear();
                    level = None;
                }
                "t" => in_text = true,
                "tbl" => tables += 1,
                "tr" if tables == 1 => row.clear(),
                "tc" if tables == 1 => cell.clear(),
                "pStyle" | "outlineLvl" => level = level.or(paragraph_level(&e, styles)),
                _ => {}
            },
            Event::Empty(e) => match e.local_name().as_ref() {
                "tab" | "br" | "cr" => para.push(' '),
                "pStyle" | "outlineLvl" => level = level.or(paragraph_level(&e, styles)),
                _ => {}
            },
            Event::Text(t) if in_text => para.push_str(&t.xml10_content()),
            Event::GeneralRef(r) if in_text => para.push_str(&entity(&r)),
            Event::End(e) => match e.local_name().as_ref() {
                "t" => in_text = false,
                "p" if tables > 0 => {
                    cell.push_str(&para);
                    cell.push(' ');
                    para.clear();
                }
                "p" => {
                    match level {
                        Some(0) => {
                            if out.title.is_none() {
                                out.title = Some(super::clean(&para)).filter(|t| !t.is_empty());
                            }
                            out.heading(1, &para);
                        }
                        Some(l) => out.heading(l, &para),
                        None => out.paragraph(&para),
                    }
                    para.clear();
                }
                "tc" if tables == 1 => row.push(super::clean(&cell)),
                "tr" if tables == 1 => out.paragraph(&row.join(" | ")),
                "tbl" => tables = tables.saturating_sub(1),
                _ => {}
            },
            _ => {}
        }
    }
    Ok(out.with_title_from_heading())
}

fn attr(e: &BytesStart<'_>, local: &str) -> Option<String> {
    e.attributes()
        .with_checks(false)
        .flatten()
        .find(|a| a.key.local_name().as_ref() == local)
        .map(|a| a.value.into_owned())
}

fn outline_level(e: &BytesStart<'_>) -> Option<u8> {
    let level: u8 = attr(e, "val")?.parse().ok()?;
    (level < 6).then_some(level + 1)
}

/// The heading level of a `pStyle` or `outlineLvl` element.
fn paragraph_level(e: &BytesStart<'_>, styles: &HashMap<String, u8>) -> Option<u8> {
    if e.local_name().as_ref() == "outlineLvl" {
        return outline_level(e);
    }
    let id = attr(e, "val")?;
    styles.get(&id).copied().or_else(|| style_level(&id))
}

/// `Heading1`, `heading 1` -> 1 ... 6; `Title` -> 0.
fn style_level(name: &str) -> Option<u8> {
    let lower = name.to_ascii_lowercase();
    if lower == "title" {
        return Some(0);
    }
    let digit = lower.strip_prefix("heading")?.trim_start();
    match digit.parse::<u8>() {
        Ok(n @ 1..=6) => Some(n),
        _ => None,
    }
}

/// The text of an entity reference: a character reference or one of XML's five.
fn entity(r: &BytesRef<'_>) -> String {
    if let Ok(Some(c)) = r.resolve_char_ref() {
        return c.to_string();
    }
    match r.xml10_content().as_ref() {
        "amp" => "&",
        "lt" => "<",
        "gt" => ">",
        "quot" => "\"",
        "apos" => "'",
        _ => "",
    }
    .to_owned()
}
