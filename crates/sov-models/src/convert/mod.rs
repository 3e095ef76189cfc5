//! Converting a model published in Hugging Face's layout to GGUF at import, in Rust.
//!
//! `sov model import DIR_OR_ZIP` takes a sentence-transformers BERT model (a directory or a
//! `.zip` of one holding `config.json`, `tokenizer.json`, `model.safetensors` and
//! `1_Pooling/config.json`) and writes the GGUF that llama.cpp's BERT path runs
//! ([`bert`], [`wordpiece`]). The steps:
//!
//! 1. **Stage** ([`stage`]): copy the four files into a private work directory inside the
//!    store's `tmp/`, hashing each (SHA-256) and bounding its size; from a `.zip`, only those
//!    entries are read, after every entry's name was checked (an absolute path or a `..`
//!    refuses the archive). What is converted is then exactly what was hashed.
//! 2. **Check** the inputs: the safetensors header ([`safetensors`]), the config, the
//!    tokenizer and the pooling mode; each tensor's presence, type and shape.
//! 3. **Write** the GGUF ([`crate::gguf::writer`]): the header, then each tensor's bytes copied
//!    from the staged safetensors file.
//!
//! The output depends only on the input files and [`CONVERTER_VERSION`] (no time, no path, no
//! map order), so converting the same files twice gives the same SHA-256, the model's address.
//! The manifest records the converter, its version and every source file ([`Conversion`]).

pub mod bert;
pub mod safetensors;
mod stage;
pub mod wordpiece;

#[cfg(any(test, feature = "fixtures"))]
pub mod fixture;

use std::fs::File;
use std::io::{BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use crate::manifest::Conversion;

pub use stage::{MODEL_FILES, Staged};

/// The converter's name, as manifests record it.
pub const CONVERTER: &str = "sov-models/bert-safetensors";
/// Its version: raised whenever the bytes written for the same input change.
pub const CONVERTER_VERSION: &str = "1";

/// Why a model could not be converted. Each names the file and says what is wrong.
#[derive(Debug, thiserror::Error)]
pub enum ConvertError {
    /// A file could not be read.
    #[error("failed to read `{}`", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The work directory could not be written.
    #[error("failed to write `{}`", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A file the converter needs is not there.
    #[error("failed to convert `{}`: `{file}` is missing (a model directory holds {})", dir.display(), MODEL_FILES.join(", "))]
    Missing {
        /// The directory or archive.
        dir: PathBuf,
        /// The file's path inside it.
        file: String,
    },
    /// The `.zip` could not be read.
    #[error("failed to read the archive `{}`", path.display())]
    Zip {
        /// The archive.
        path: PathBuf,
        /// The zip reader's reason.
        #[source]
        source: zip::result::ZipError,
    },
    /// The archive holds an entry whose name could write outside a directory.
    #[error("failed to convert `{}`: the archive holds an unsafe entry name `{entry}` (absolute, or with `..`); refusing the archive", path.display())]
    UnsafeEntry {
        /// The archive.
        path: PathBuf,
        /// The entry's name (cut to 200 characters).
        entry: String,
    },
    /// The archive has too many entries, or a file is over its size limit.
    #[error("failed to convert `{file}`: {reason}")]
    TooLarge {
        /// The file (or archive).
        file: String,
        /// Which limit.
        reason: String,
    },
    /// A file is not what the converter can use.
    #[error("failed to convert `{file}`: {reason}")]
    Invalid {
        /// The file's path inside the model directory.
        file: String,
        /// Why.
        reason: String,
    },
    /// One tensor is missing, of the wrong type or shape, or unknown.
    #[error("failed to convert `model.safetensors`: tensor `{tensor}`: {reason}")]
    Tensor {
        /// The tensor's name.
        tensor: String,
        /// Why.
        reason: String,
    },
}

/// A converted model: the GGUF file written in the work directory, and the record of how.
#[derive(Debug)]
pub struct Converted {
    /// The GGUF file.
    pub gguf: PathBuf,
    /// What the manifest records.
    pub conversion: Conversion,
}

/// Converts the model directory or `.zip` at `src`, working in `work` (an empty directory the
/// caller owns and removes).
pub fn convert(src: &Path, work: &Path) -> Result<Converted, ConvertError> {
    let staged = stage::stage(src, work)?;
    let config =
        bert::parse_config(&staged.read_small("config.json")?).map_err(invalid("config.json"))?;
    let vocab = wordpiece::parse_tokenizer(&staged.read_small("tokenizer.json")?)
        .map_err(invalid("tokenizer.json"))?;
    let pooling = bert::parse_pooling(&staged.read_small("1_Pooling/config.json")?)
        .map_err(invalid("1_Pooling/config.json"))?;
    let weights = staged.path("model.safetensors");
    let read = |source| ConvertError::Read {
        path: weights.clone(),
        source,
    };
    let mut file = File::open(&weights).map_err(read)?;
    let len = file.metadata().map_err(read)?.len();
    let header =
        safetensors::read_header(&mut std::io::BufReader::new(&file), len).map_err(|e| {
            ConvertError::Invalid {
                file: "model.safetensors".into(),
                reason: e.to_string(),
            }
        })?;
    let plan = bert::plan(&config, &vocab, pooling, &header)
        .map_err(|(tensor, reason)| ConvertError::Tensor { tensor, reason })?;

    let gguf = work.join("model.gguf");
    let write = |source| ConvertError::Write {
        path: gguf.clone(),
        source,
    };
    let mut out = BufWriter::with_capacity(1 << 20, File::create_new(&gguf).map_err(write)?);
    out.write_all(&plan.writer.header()).map_err(write)?;
    for (i, source) in plan.sources.iter().enumerate() {
        file.seek(SeekFrom::Start(source.start)).map_err(read)?;
        let copied = std::io::copy(&mut (&mut file).take(source.len), &mut out).map_err(write)?;
        if copied != source.len {
            return Err(ConvertError::Invalid {
                file: "model.safetensors".into(),
                reason: "the file shrank while it was converted".into(),
            });
        }
        out.write_all(&vec![0u8; plan.writer.padding_after(i)])
            .map_err(write)?;
    }
    out.into_inner()
        .map_err(|e| write(e.into_error()))?
        .sync_all()
        .map_err(write)?;
    Ok(Converted {
        gguf,
        conversion: staged.into_conversion(),
    })
}

fn invalid(file: &'static str) -> impl Fn(String) -> ConvertError {
    move |reason| ConvertError::Invalid {
        file: file.to_owned(),
        reason,
    }
}

/// Whether `src` is given as a model to convert (a directory or a `.zip`) rather than a GGUF.
pub fn is_convertible(src: &Path) -> bool {
    src.is_dir()
        || src
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("zip"))
}
