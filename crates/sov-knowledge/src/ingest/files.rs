//! Which files an add takes, under which document ids, and reading them within a limit.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use super::MediaType;
use crate::{IngestError, KnowledgeError, Skipped};

/// One file to add.
#[derive(Debug, Clone)]
pub(crate) struct Source {
    /// Where it is read from.
    pub(crate) path: PathBuf,
    /// Its document id.
    pub(crate) id: String,
    /// Its media type, from the extension.
    pub(crate) media: MediaType,
}

fn ingest(path: &Path, source: IngestError) -> KnowledgeError {
    KnowledgeError::Ingest {
        path: path.to_path_buf(),
        source,
    }
}

/// The files named by `paths`: a file is taken as itself (id: its file name); a folder is
/// walked (ids: paths relative to it, `/`-separated), skipping hidden entries and files of
/// types Sovereign does not read (both reported in `skipped`). Symbolic links are refused when
/// named, and inside a folder followed only to files within it. Sorted by id.
pub(crate) fn collect(
    paths: &[PathBuf],
    skipped: &mut Vec<Skipped>,
) -> Result<Vec<Source>, KnowledgeError> {
    let mut out: Vec<Source> = Vec::new();
    for path in paths {
        let meta = fs::symlink_metadata(path).map_err(|e| ingest(path, IngestError::Read(e)))?;
        if meta.file_type().is_symlink() {
            return Err(ingest(path, IngestError::Symlink));
        }
        if meta.is_dir() {
            walk(path, &mut out, skipped)?;
        } else if meta.is_file() {
            let name = path
                .file_name()
                .and_then(|n| n.to_str())
                .ok_or_else(|| ingest(path, IngestError::Name))?;
            let media = MediaType::from_path(path).ok_or_else(|| {
                ingest(
                    path,
                    IngestError::Unsupported {
                        ext: extension(path),
                    },
                )
            })?;
            out.push(Source {
                path: path.clone(),
                id: name.to_owned(),
                media,
            });
        } else {
            return Err(ingest(path, IngestError::NotAFile));
        }
    }
    out.sort_by(|a, b| a.id.cmp(&b.id));
    if let Some(pair) = out.windows(2).find(|w| matches!(w, [a, b] if a.id == b.id))
        && let [a, b] = pair
    {
        return Err(KnowledgeError::DuplicateId {
            id: a.id.clone(),
            first: a.path.clone(),
            second: b.path.clone(),
        });
    }
    Ok(out)
}

fn extension(path: &Path) -> String {
    path.extension().map_or_else(
        || "extension-less".to_owned(),
        |e| format!(".{}", e.to_string_lossy()),
    )
}

/// Walks `folder` without recursion.
fn walk(
    folder: &Path,
    out: &mut Vec<Source>,
    skipped: &mut Vec<Skipped>,
) -> Result<(), KnowledgeError> {
    let root = fs::canonicalize(folder).map_err(|e| ingest(folder, IngestError::Read(e)))?;
    let mut pending: Vec<(PathBuf, String)> = vec![(folder.to_path_buf(), String::new())];
    while let Some((dir, prefix)) = pending.pop() {
        let mut entries = Vec::new();
        for entry in fs::read_dir(&dir).map_err(|e| ingest(&dir, IngestError::Read(e)))? {
            let entry = entry.map_err(|e| ingest(&dir, IngestError::Read(e)))?;
            entries.push(entry.path());
        }
        entries.sort();
        for path in entries {
            let Some(name) = path.file_name().and_then(|n| n.to_str()).map(str::to_owned) else {
                return Err(ingest(&path, IngestError::Name));
            };
            if name.starts_with('.') {
                skipped.push(Skipped {
                    path,
                    reason: "hidden".into(),
                });
                continue;
            }
            let id = format!("{prefix}{name}");
            let meta =
                fs::symlink_metadata(&path).map_err(|e| ingest(&path, IngestError::Read(e)))?;
            let is_file = if meta.file_type().is_symlink() {
                let target =
                    fs::canonicalize(&path).map_err(|e| ingest(&path, IngestError::Read(e)))?;
                if !target.starts_with(&root) {
                    return Err(ingest(
                        &path,
                        IngestError::Outside {
                            target,
                            folder: root.clone(),
                        },
                    ));
                }
                let target_meta =
                    fs::metadata(&target).map_err(|e| ingest(&path, IngestError::Read(e)))?;
                if target_meta.is_dir() {
                    return Err(ingest(&path, IngestError::LinkedFolder));
                }
                target_meta.is_file()
            } else if meta.is_dir() {
                pending.push((path, format!("{id}/")));
                continue;
            } else {
                meta.is_file()
            };
            if !is_file {
                return Err(ingest(&path, IngestError::NotAFile));
            }
            match MediaType::from_path(&path) {
                Some(media) => out.push(Source { path, id, media }),
                None => {
                    let reason = format!("{} files are not read", extension(&path));
                    skipped.push(Skipped { path, reason });
                }
            }
        }
    }
    Ok(())
}

/// Reads `path` whole, refusing an empty file and one over `max` bytes.
pub(crate) fn read_limited(path: &Path, max: u64) -> Result<Vec<u8>, KnowledgeError> {
    let err = |e| ingest(path, e);
    let file = fs::File::open(path).map_err(|e| err(IngestError::Read(e)))?;
    let size = file
        .metadata()
        .map_err(|e| err(IngestError::Read(e)))?
        .len();
    if size > max {
        return Err(err(IngestError::TooLarge { size, max }));
    }
    let mut bytes = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
    file.take(max.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(|e| err(IngestError::Read(e)))?;
    if bytes.len() as u64 > max {
        return Err(err(IngestError::TooLarge {
            size: bytes.len() as u64,
            max,
        }));
    }
    if bytes.is_empty() {
        return Err(err(IngestError::Empty));
    }
    Ok(bytes)
}
