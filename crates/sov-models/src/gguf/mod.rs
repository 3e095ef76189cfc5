//! A bounds-checked reader for GGUF v2/v3 headers.
//!
//! GGUF files are untrusted input. The parser reads through a buffered reader
//! (never the whole file), checks every length and count against the bytes left
//! in the file before acting on it, never allocates from a count in the file
//! (only bounded strings are kept; everything else is skipped), and finally checks
//! that every tensor of a known type lies inside the file, so a truncated download
//! is rejected before it is imported.

#[cfg(any(test, feature = "fixtures"))]
pub mod lora_fixture;
mod reader;
pub(crate) mod types;
pub mod writer;

use std::fs::File;
use std::io::{BufReader, Read, Seek};
use std::path::Path;

use serde::{Deserialize, Serialize};

use reader::Reader;

/// GGUF magic: the bytes `GGUF`.
const MAGIC: [u8; 4] = *b"GGUF";
/// Longest metadata key accepted (the spec allows 65535).
const MAX_KEY: u64 = 65_535;
/// Longest string value we keep (chat templates are a few KiB).
const MAX_KEPT_STRING: u64 = 1024 * 1024;
/// Longest tensor name accepted (ggml uses 64).
const MAX_TENSOR_NAME: u64 = 4096;
/// ggml supports at most four dimensions.
const MAX_DIMS: u32 = 4;
/// Nested arrays deeper than this are rejected.
const MAX_ARRAY_DEPTH: u32 = 4;

/// Why a file is not an acceptable GGUF model.
#[derive(Debug, thiserror::Error)]
pub enum GgufError {
    /// The file does not start with `GGUF`.
    #[error("failed to parse GGUF: not a GGUF file (bad magic)")]
    NotGguf,
    /// Only versions 2 and 3 are supported.
    #[error("failed to parse GGUF: unsupported version {version} (only 2 and 3 are supported)")]
    UnsupportedVersion {
        /// The version found.
        version: u32,
    },
    /// The file ends before `what` (it is probably an incomplete download).
    #[error("failed to parse GGUF: file is truncated (in {what})")]
    Truncated {
        /// The part of the file being read.
        what: &'static str,
    },
    /// The header is structurally invalid.
    #[error("failed to parse GGUF: {reason}")]
    Malformed {
        /// What is wrong.
        reason: String,
    },
    /// Reading failed.
    #[error("failed to read GGUF file")]
    Io(#[source] std::io::Error),
}

/// What the store records about a model, taken from its GGUF header.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct GgufInfo {
    /// GGUF version (2 or 3).
    pub version: u32,
    /// `general.architecture`, e.g. `llama`.
    pub architecture: String,
    /// `general.name`.
    pub name: Option<String>,
    /// Sum of the element counts of all tensors.
    pub parameters: u64,
    /// `general.size_label`, e.g. `135M`.
    pub size_label: Option<String>,
    /// Named from `general.file_type` (llama.cpp `LLAMA_FTYPE`), else the dominant tensor type.
    pub quantization: String,
    /// `{architecture}.context_length`.
    pub context_length: Option<u64>,
    /// `{architecture}.embedding_length`.
    pub embedding_length: Option<u64>,
    /// `tokenizer.chat_template`.
    pub chat_template: Option<String>,
    /// `general.license`.
    pub license: Option<String>,
    /// Number of tensors.
    pub tensor_count: u64,
}

/// What a GGUF file says it is: `general.type` and, for an adapter, `adapter.type`.
///
/// Kept apart from [`GgufInfo`], which every model manifest stores and signs, so that the
/// manifest format does not change with it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GgufType {
    /// `general.type`: `model` or `adapter` in files written by llama.cpp's converters; absent
    /// in older files (which are models).
    pub general: Option<String>,
    /// `adapter.type`, e.g. `lora`; only adapters have it.
    pub adapter: Option<String>,
}

/// Parses the header of the GGUF file at `path` and checks that its tensor data fits.
pub fn read_info(path: &Path) -> Result<GgufInfo, GgufError> {
    read_typed(path).map(|(info, _)| info)
}

/// [`read_info`], and what the file says it is (a model, an adapter), from the same read.
pub fn read_typed(path: &Path) -> Result<(GgufInfo, GgufType), GgufError> {
    let file = File::open(path).map_err(GgufError::Io)?;
    let len = file.metadata().map_err(GgufError::Io)?.len();
    parse_typed(BufReader::with_capacity(256 * 1024, file), len)
}

/// Parses GGUF from any reader whose total length is `len`.
pub fn parse<R: Read + Seek>(inner: R, len: u64) -> Result<GgufInfo, GgufError> {
    parse_typed(inner, len).map(|(info, _)| info)
}

/// [`parse`], and what the file says it is.
pub fn parse_typed<R: Read + Seek>(inner: R, len: u64) -> Result<(GgufInfo, GgufType), GgufError> {
    let mut r = Reader::new(inner, len);
    if r.remaining() < 4 || r.array::<4>("magic")? != MAGIC {
        return Err(GgufError::NotGguf);
    }
    let version = r.u32("version")?;
    if !(2..=3).contains(&version) {
        return Err(GgufError::UnsupportedVersion { version });
    }
    let tensor_count = r.u64("tensor count")?;
    let kv_count = r.u64("metadata count")?;
    // Each key/value takes at least 8 (key length) + 4 (type) + 1 bytes.
    if kv_count > r.remaining() / 13 {
        return Err(GgufError::Truncated { what: "metadata" });
    }
    let mut meta = Metadata::default();
    let mut key = Vec::new();
    for _ in 0..kv_count {
        r.string_into(&mut key, MAX_KEY, "metadata key")?;
        let ty = r.u32("metadata value type")?;
        meta.read_value(&mut r, &key, ty)?;
    }
    // Each tensor info takes at least 8 (name) + 4 (n_dims) + 4 (type) + 8 (offset).
    if tensor_count > r.remaining() / 24 {
        return Err(GgufError::Truncated {
            what: "tensor infos",
        });
    }
    let tensors = read_tensor_infos(&mut r, tensor_count, meta.alignment)?;
    let data_start = r.pos().next_multiple_of(meta.alignment);
    let data_end = data_start
        .checked_add(tensors.max_end)
        .ok_or_else(overflow)?;
    if data_end > len {
        return Err(GgufError::Truncated {
            what: "tensor data",
        });
    }
    let ty = GgufType {
        general: meta.general_type.take(),
        adapter: meta.adapter_type.take(),
    };
    Ok((meta.into_info(version, tensor_count, &tensors)?, ty))
}

fn overflow() -> GgufError {
    GgufError::Malformed {
        reason: "tensor sizes overflow".into(),
    }
}

/// Aggregates over the tensor infos; nothing per tensor is kept.
struct TensorSummary {
    parameters: u64,
    /// End of the furthest tensor of a known type, relative to the data section.
    max_end: u64,
    /// Element counts per known ggml type id.
    elements_by_type: [u64; types::MAX_TYPE_ID],
}

fn read_tensor_infos<R: Read + Seek>(
    r: &mut Reader<R>,
    count: u64,
    alignment: u64,
) -> Result<TensorSummary, GgufError> {
    let mut sum = TensorSummary {
        parameters: 0,
        max_end: 0,
        elements_by_type: [0; types::MAX_TYPE_ID],
    };
    let mut name = Vec::new();
    for _ in 0..count {
        r.string_into(&mut name, MAX_TENSOR_NAME, "tensor name")?;
        let n_dims = r.u32("tensor dimensions")?;
        if n_dims == 0 || n_dims > MAX_DIMS {
            return Err(GgufError::Malformed {
                reason: format!("tensor has {n_dims} dimensions (1 to {MAX_DIMS} allowed)"),
            });
        }
        let mut elements: u64 = 1;
        let mut first_dim = 0;
        for i in 0..n_dims {
            let dim = r.u64("tensor dimensions")?;
            if i == 0 {
                first_dim = dim;
            }
            elements = elements.checked_mul(dim).ok_or_else(overflow)?;
        }
        let ty = r.u32("tensor type")?;
        let offset = r.u64("tensor offset")?;
        if offset % alignment != 0 {
            return Err(GgufError::Malformed {
                reason: format!("tensor offset {offset} is not aligned to {alignment}"),
            });
        }
        sum.parameters = sum.parameters.checked_add(elements).ok_or_else(overflow)?;
        if let Some((block, type_size, type_name)) = types::ggml_type(ty) {
            if first_dim % block != 0 {
                return Err(GgufError::Malformed {
                    reason: format!(
                        "tensor row of {first_dim} is not a multiple of the {type_name} block size {block}"
                    ),
                });
            }
            let bytes = (elements / block)
                .checked_mul(type_size)
                .ok_or_else(overflow)?;
            let end = offset.checked_add(bytes).ok_or_else(overflow)?;
            sum.max_end = sum.max_end.max(end);
            if let Some(slot) = usize::try_from(ty)
                .ok()
                .and_then(|i| sum.elements_by_type.get_mut(i))
            {
                *slot = slot.saturating_add(elements);
            }
        }
    }
    Ok(sum)
}

/// The few metadata values the store cares about.
struct Metadata {
    alignment: u64,
    architecture: Option<String>,
    name: Option<String>,
    size_label: Option<String>,
    license: Option<String>,
    chat_template: Option<String>,
    general_type: Option<String>,
    adapter_type: Option<String>,
    file_type: Option<u64>,
    /// `(key, value)` for keys ending in `.context_length` / `.embedding_length`
    /// (the architecture may come later); bounded in number.
    lengths: Vec<(String, u64)>,
}

impl Default for Metadata {
    fn default() -> Self {
        Self {
            alignment: 32,
            architecture: None,
            name: None,
            size_label: None,
            license: None,
            chat_template: None,
            general_type: None,
            adapter_type: None,
            file_type: None,
            lengths: Vec::new(),
        }
    }
}

mod value;
