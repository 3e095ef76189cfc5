//! Staging a model's files: copied from a directory or a `.zip` into the work directory,
//! hashed and bounded on the way.
//!
//! An archive is untrusted input. Before anything is extracted every entry's name is checked
//! (an absolute name or a `..` component refuses the whole archive, so a crafted archive is
//! never half-used); only the four files the converter needs are read, each written under a
//! fixed name in the work directory (never under the entry's own name), and each copy stops
//! one byte past its limit, whatever the archive claims the size is: a zip bomb costs at most
//! the limits below in disk and time.

use std::collections::BTreeSet;
use std::fs::{self, File};
use std::io::{BufReader, Read, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::ConvertError;
use crate::manifest::{Conversion, SourceFile};

/// The files a model directory holds, as the converter reads them.
pub const MODEL_FILES: [&str; 4] = [
    "config.json",
    "tokenizer.json",
    "model.safetensors",
    "1_Pooling/config.json",
];
/// Largest JSON file accepted (tokenizers of large vocabularies are tens of MB).
const MAX_JSON: u64 = 64 * 1024 * 1024;
/// Largest weights file accepted.
const MAX_WEIGHTS: u64 = 16 * 1024 * 1024 * 1024;
/// Most entries an archive may hold.
const MAX_ENTRIES: usize = 10_000;

/// The staged files of one model.
#[derive(Debug)]
pub struct Staged {
    dir: PathBuf,
    files: Vec<SourceFile>,
    archive: Option<SourceFile>,
}

impl Staged {
    /// Where a staged file is.
    pub fn path(&self, file: &str) -> PathBuf {
        self.dir.join(file)
    }

    /// A staged JSON file's bytes (at most [`MAX_JSON`], as staging checked).
    pub fn read_small(&self, file: &str) -> Result<Vec<u8>, ConvertError> {
        let path = self.path(file);
        let mut bytes = Vec::new();
        File::open(&path)
            .and_then(|f| f.take(MAX_JSON).read_to_end(&mut bytes))
            .map_err(|source| ConvertError::Read { path, source })?;
        Ok(bytes)
    }

    /// What the manifest records of the sources.
    pub fn into_conversion(self) -> Conversion {
        Conversion {
            converter: super::CONVERTER.to_owned(),
            converter_version: super::CONVERTER_VERSION.to_owned(),
            archive: self.archive,
            files: self.files,
        }
    }
}

fn limit(file: &str) -> u64 {
    if file == "model.safetensors" {
        MAX_WEIGHTS
    } else {
        MAX_JSON
    }
}

/// Copies the model files of the directory or `.zip` at `src` into `work/src/`.
pub(crate) fn stage(src: &Path, work: &Path) -> Result<Staged, ConvertError> {
    let dir = work.join("src");
    fs::create_dir_all(dir.join("1_Pooling")).map_err(|source| ConvertError::Write {
        path: dir.clone(),
        source,
    })?;
    let mut staged = Staged {
        dir,
        files: Vec::new(),
        archive: None,
    };
    if src.is_dir() {
        for file in MODEL_FILES {
            let path = src.join(file);
            let mut reader = match File::open(&path) {
                Ok(f) => f,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    return Err(ConvertError::Missing {
                        dir: src.to_path_buf(),
                        file: file.to_owned(),
                    });
                }
                Err(source) => return Err(ConvertError::Read { path, source }),
            };
            let record = copy_limited(&mut reader, &path, &staged.path(file), file)?;
            staged.files.push(record);
        }
    } else {
        stage_zip(src, &mut staged)?;
    }
    Ok(staged)
}

fn stage_zip(src: &Path, staged: &mut Staged) -> Result<(), ConvertError> {
    let read = |source| ConvertError::Read {
        path: src.to_path_buf(),
        source,
    };
    let zip_err = |source| ConvertError::Zip {
        path: src.to_path_buf(),
        source,
    };
    let name = src
        .file_name()
        .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
    let (size, sha256) = hash_file(src).map_err(read)?;
    staged.archive = Some(SourceFile { name, size, sha256 });
    let file = File::open(src).map_err(read)?;
    let mut archive = zip::ZipArchive::new(BufReader::new(file)).map_err(zip_err)?;
    if archive.len() > MAX_ENTRIES {
        return Err(ConvertError::TooLarge {
            file: src.display().to_string(),
            reason: format!(
                "the archive holds {} entries, at most {MAX_ENTRIES} are accepted",
                archive.len()
            ),
        });
    }
    let mut names = BTreeSet::new();
    for i in 0..archive.len() {
        let entry = archive.by_index_raw(i).map_err(zip_err)?;
        let name = entry.name().map_err(zip_err)?.into_owned();
        if entry.enclosed_name().is_none() || unsafe_name(&name) {
            return Err(ConvertError::UnsafeEntry {
                path: src.to_path_buf(),
                entry: name.chars().take(200).collect(),
            });
        }
        names.insert(name);
    }
    let root = root_of(&names).ok_or_else(|| ConvertError::Missing {
        dir: src.to_path_buf(),
        file: "config.json".into(),
    })?;
    for file in MODEL_FILES {
        let inner = format!("{root}{file}");
        let mut entry = match archive.by_name(&inner) {
            Ok(entry) => entry,
            Err(zip::result::ZipError::FileNotFound) => {
                return Err(ConvertError::Missing {
                    dir: src.to_path_buf(),
                    file: file.to_owned(),
                });
            }
            Err(e) => return Err(zip_err(e)),
        };
        if !entry.is_file() || entry.is_symlink() {
            return Err(ConvertError::Invalid {
                file: file.to_owned(),
                reason: "in the archive it is not a plain file".into(),
            });
        }
        let record = copy_limited(&mut entry, src, &staged.path(file), file)?;
        staged.files.push(record);
    }
    Ok(())
}

/// An entry name that could point outside the directory it is extracted into.
fn unsafe_name(name: &str) -> bool {
    name.starts_with('/')
        || name.starts_with('\\')
        || name.contains('\0')
        || name
            .split(['/', '\\'])
            .any(|c| c == ".." || c.contains(':'))
}

/// The folder of the archive that holds the model: its root, or its one top-level folder.
fn root_of(names: &BTreeSet<String>) -> Option<String> {
    if names.contains("config.json") {
        return Some(String::new());
    }
    // Files at the root, but no config.json among them: the model is not in a folder either.
    if names.iter().any(|n| !n.contains('/')) {
        return None;
    }
    let tops: BTreeSet<&str> = names
        .iter()
        .filter_map(|n| n.split_once('/').map(|(t, _)| t))
        .collect();
    match tops.into_iter().collect::<Vec<_>>().as_slice() {
        [top] if names.contains(&format!("{top}/config.json")) => Some(format!("{top}/")),
        _ => None,
    }
}

/// Copies at most `limit(file)` bytes into `dst`, hashing them; one byte more is an error.
fn copy_limited(
    reader: &mut dyn Read,
    from: &Path,
    dst: &Path,
    file: &str,
) -> Result<SourceFile, ConvertError> {
    let max = limit(file);
    let write = |source| ConvertError::Write {
        path: dst.to_path_buf(),
        source,
    };
    let mut out = File::create_new(dst).map_err(write)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut size = 0u64;
    let mut limited = reader.take(max + 1);
    loop {
        let n = limited
            .read(&mut buf)
            .map_err(|source| ConvertError::Read {
                path: from.join(file),
                source,
            })?;
        if n == 0 {
            break;
        }
        let data = buf.get(..n).unwrap_or_default();
        size += n as u64;
        if size > max {
            return Err(ConvertError::TooLarge {
                file: file.to_owned(),
                reason: format!("it is larger than {max} bytes, the most accepted for it"),
            });
        }
        hasher.update(data);
        out.write_all(data).map_err(write)?;
    }
    out.sync_all().map_err(write)?;
    Ok(SourceFile {
        name: file.to_owned(),
        size,
        sha256: hex::encode(hasher.finalize()),
    })
}

fn hash_file(path: &Path) -> std::io::Result<(u64, String)> {
    let mut file = File::open(path)?;
    let mut hasher = Sha256::new();
    let size = std::io::copy(&mut file, &mut hasher)?;
    Ok((size, hex::encode(hasher.finalize())))
}
