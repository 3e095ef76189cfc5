//! PDF: the text layer, page by page (pdf-extract, on lopdf).
//!
//! pdf-extract is a third-party extractor that unwraps freely, so it runs on a thread of its
//! own: a panic there ends that thread and becomes [`IngestError::PdfPanicked`]. A stack
//! overflow cannot be caught that way, and pdf-extract recurses along two kinds of references
//! without checking for cycles (a page's `/Parent` chain, and form XObjects drawn with `Do`);
//! [`check_structure`] refuses a document where either has a cycle, or where XObjects nest
//! deeper than [`MAX_NESTING`], before extraction starts, and the thread has a large stack.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use pdf_extract::{Dictionary, Document, Object, ObjectId, PlainTextOutput};

use super::Parsed;
use crate::IngestError;

/// Stack of the extraction thread.
const STACK: usize = 64 * 1024 * 1024;
/// Name of the extraction thread (the pdf fuzz target's panic hook knows it).
pub const EXTRACT_THREAD: &str = "sov-pdf-extract";

/// A PDF: one level-1 heading `Page N` per page with text, its paragraphs below; the title is
/// the document information's `Title`. Encrypted PDFs (even with an empty password) are
/// refused with [`IngestError::EncryptedPdf`].
pub fn pdf(bytes: &[u8]) -> Result<Parsed, IngestError> {
    let owned = bytes.to_vec();
    let worker = std::thread::Builder::new()
        .name(EXTRACT_THREAD.to_owned())
        .stack_size(STACK)
        .spawn(move || extract(&owned))
        .map_err(|e| IngestError::Pdf(format!("the extraction thread did not start: {e}")))?;
    worker.join().unwrap_or(Err(IngestError::PdfPanicked))
}

fn extract(bytes: &[u8]) -> Result<Parsed, IngestError> {
    let doc = Document::load_mem(bytes).map_err(|e| IngestError::Pdf(e.to_string()))?;
    if doc.is_encrypted() || doc.was_encrypted() {
        return Err(IngestError::EncryptedPdf);
    }
    check_structure(&doc)?;
    let mut out = Parsed {
        title: info_title(&doc),
        blocks: Vec::new(),
    };
    for (number, _) in doc.get_pages() {
        let mut text = String::new();
        {
            let mut output = PlainTextOutput::new(&mut text);
            pdf_extract::output_doc_page(&doc, &mut output, number)
                .map_err(|e| IngestError::Pdf(format!("page {number}: {e}")))?;
        }
        let page = super::text(&text);
        if !page.blocks.is_empty() {
            out.heading(1, &format!("Page {number}"));
            out.blocks.extend(page.blocks);
        }
    }
    Ok(out)
}

/// Refuses documents on which the extractor would recurse forever.
fn check_structure(doc: &Document) -> Result<(), IngestError> {
    let cycle = |what: &str| IngestError::Pdf(format!("malformed: a cycle in {what}"));
    for (_, page) in doc.get_pages() {
        let mut seen = HashSet::from([page]);
        let mut at = page;
        while let Some(parent) = doc
            .get_dictionary(at)
            .ok()
            .and_then(|d| d.get(b"Parent").ok())
            .and_then(|p| p.as_reference().ok())
        {
            if !seen.insert(parent) {
                return Err(cycle("the page tree"));
            }
            if seen.len() > MAX_NESTING {
                return Err(IngestError::Pdf(format!(
                    "malformed: a page tree deeper than {MAX_NESTING}"
                )));
            }
            at = parent;
        }
    }
    // Every stream named in an /XObject dictionary may be drawn with `Do`, whatever its
    // /Subtype: pdf-extract draws any stream so named (an image, or a form whose /Subtype is
    // corrupt, as well), with its own /Resources when it has a dictionary there, else with
    // those of whoever draws it (every resource dictionary it is found in, here). It draws
    // further only if its content parses as a content stream with a `Do` in it.
    let mut found_in: BTreeMap<ObjectId, Vec<Vec<ObjectId>>> = BTreeMap::new();
    let mut own_resources: BTreeMap<ObjectId, Option<Vec<ObjectId>>> = BTreeMap::new();
    for (id, object) in &doc.objects {
        let dict = match object {
            Object::Dictionary(d) => d,
            Object::Stream(s) => &s.dict,
            _ => continue,
        };
        let own = resources_xobjects(doc, dict);
        if let Some(list) = &own {
            for target in list {
                found_in.entry(*target).or_default().push(list.clone());
            }
        }
        if matches!(object, Object::Stream(_)) {
            own_resources.insert(*id, own);
        }
    }
    let mut forms: BTreeMap<ObjectId, (Option<Vec<ObjectId>>, bool)> = BTreeMap::new();
    for id in found_in.keys() {
        let (Some(own), Ok(Object::Stream(s))) = (own_resources.get(id), doc.get_object(*id))
        else {
            continue;
        };
        forms.insert(*id, (own.clone(), draws(s)));
    }
    let mut edges: BTreeMap<ObjectId, BTreeSet<ObjectId>> = BTreeMap::new();
    for (id, (own, draws)) in &forms {
        if !draws {
            continue;
        }
        let targets = edges.entry(*id).or_default();
        match own {
            Some(list) => targets.extend(list.iter().copied()),
            None => {
                for list in found_in.get(id).into_iter().flatten() {
                    targets.extend(list.iter().copied());
                }
            }
        }
    }
    match nesting(&edges) {
        None => return Err(cycle("the form XObjects")),
        Some(depth) if depth > MAX_NESTING => {
            return Err(IngestError::Pdf(format!(
                "malformed: XObjects nested {depth} deep (at most {MAX_NESTING})"
            )));
        }
        Some(_) => {}
    }
    Ok(())
}

/// The objects named in `dict`'s `/Resources` `/XObject` dictionary, if it has resources.
fn resources_xobjects(doc: &Document, dict: &Dictionary) -> Option<Vec<ObjectId>> {
    let resources = deref_dict(doc, dict.get(b"Resources").ok()?)?;
    let Some(xobjects) = resources
        .get(b"XObject")
        .ok()
        .and_then(|x| deref_dict(doc, x))
    else {
        return Some(Vec::new());
    };
    Some(
        xobjects
            .iter()
            .filter_map(|(_, v)| v.as_reference().ok())
            .collect(),
    )
}

fn deref_dict<'a>(doc: &'a Document, object: &'a Object) -> Option<&'a Dictionary> {
    match object {
        Object::Dictionary(d) => Some(d),
        Object::Reference(id) => doc.get_dictionary(*id).ok(),
        _ => None,
    }
}

/// Whether `stream` draws anything when pdf-extract runs it: its content (decompressed when
/// its filters allow, as the extractor does) parses as a content stream with a `Do` operator.
/// A cheap byte search first, so that images and fonts are rarely parsed.
fn draws(stream: &pdf_extract::Stream) -> bool {
    let content = if stream.filters().is_ok() {
        stream
            .decompressed_content()
            .unwrap_or_else(|_| stream.content.clone())
    } else {
        stream.content.clone()
    };
    let may = content.windows(2).enumerate().any(|(i, w)| {
        w == b"Do"
            && content
                .get(i + 2)
                .is_none_or(|b| b.is_ascii_whitespace() || b"/[<(%".contains(b))
    });
    may && pdf_extract::content::Content::decode(&content)
        .is_ok_and(|c| c.operations.iter().any(|op| op.operator == "Do"))
}

/// How deep XObjects may draw one another, and page trees nest: the extractor recurses once
/// per level, and real documents nest a handful.
const MAX_NESTING: usize = 256;

/// The longest chain of drawing in `edges` (1 for a stream that draws nothing), or `None` if
/// it has a cycle. An iterative depth-first search: a node's depth is known once all it draws
/// are done.
fn nesting(edges: &BTreeMap<ObjectId, BTreeSet<ObjectId>>) -> Option<usize> {
    let mut depth: HashMap<ObjectId, usize> = HashMap::new();
    let mut deepest = 0;
    for start in edges.keys() {
        if depth.contains_key(start) {
            continue;
        }
        let mut on_path: HashSet<ObjectId> = HashSet::from([*start]);
        let mut stack: Vec<(ObjectId, Vec<ObjectId>)> = vec![(*start, next(edges, *start))];
        while let Some((node, pending)) = stack.last_mut() {
            let node = *node;
            match pending.pop() {
                Some(target) if on_path.contains(&target) => return None,
                Some(target) if !depth.contains_key(&target) => {
                    on_path.insert(target);
                    stack.push((target, next(edges, target)));
                }
                Some(_) => {}
                None => {
                    let below = edges
                        .get(&node)
                        .into_iter()
                        .flatten()
                        .filter_map(|t| depth.get(t))
                        .max()
                        .copied()
                        .unwrap_or(0);
                    depth.insert(node, below + 1);
                    deepest = deepest.max(below + 1);
                    on_path.remove(&node);
                    stack.pop();
                }
            }
        }
    }
    Some(deepest)
}

fn next(edges: &BTreeMap<ObjectId, BTreeSet<ObjectId>>, node: ObjectId) -> Vec<ObjectId> {
    edges
        .get(&node)
        .map(|t| t.iter().copied().collect())
        .unwrap_or_default()
}

/// The document information's `Title` (UTF-16BE with a byte-order mark, else Latin-1).
fn info_title(doc: &Document) -> Option<String> {
    let info = deref_dict(doc, doc.trailer.get(b"Info").ok()?)?;
    let Object::String(bytes, _) = info.get(b"Title").ok()? else {
        return None;
    };
    let text = match bytes.strip_prefix(b"\xFE\xFF") {
        Some(utf16) => {
            let units: Vec<u16> = utf16
                .chunks_exact(2)
                .filter_map(|p| match p {
                    [a, b] => Some(u16::from_be_bytes([*a, *b])),
                    _ => None,
                })
                .collect();
            String::from_utf16_lossy(&units)
        }
        None => bytes.iter().map(|b| char::from(*b)).collect(),
    };
    let title = super::clean(&text);
    (!title.is_empty()).then_some(title)
}
