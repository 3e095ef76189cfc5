//! A bounds-checked reader for safetensors headers.
//!
//! The format (huggingface/safetensors, `README.md`): an 8-byte little-endian length `N`, then
//! `N` bytes of JSON, then the tensor data. The JSON is an object whose keys are tensor names,
//! each `{"dtype": "F32", "shape": [d0, d1, ...], "data_offsets": [begin, end]}` with the offsets
//! relative to the start of the data, plus an optional `"__metadata__"` object of strings.
//!
//! Model files are untrusted input, so before a byte of tensor data is used this reader checks
//! that the header length fits the file (and at most [`MAX_HEADER`]), that every tensor's byte
//! range lies inside the data, holds exactly `product(shape) * size(dtype)` bytes, and does not
//! overlap another tensor's. Nothing is allocated from a count in the file beyond the header
//! itself, whose size is bounded.

use std::collections::BTreeMap;
use std::io::Read;

/// The largest header accepted: the format's own limit (100 MB).
pub const MAX_HEADER: u64 = 100_000_000;
/// Tensors have at most this many dimensions.
const MAX_DIMS: usize = 8;

/// Why a file is not a usable safetensors file.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SafetensorsError {
    /// The file is shorter than its header says.
    #[error("failed to read safetensors: the file is truncated ({what})")]
    Truncated {
        /// The part of the file being read.
        what: &'static str,
    },
    /// The header is over [`MAX_HEADER`].
    #[error(
        "failed to read safetensors: the header is {len} bytes, at most {MAX_HEADER} are allowed"
    )]
    HeaderTooLarge {
        /// The length the file gives.
        len: u64,
    },
    /// The header is not the JSON the format defines.
    #[error("failed to read safetensors: the header is malformed: {reason}")]
    Malformed {
        /// What is wrong.
        reason: String,
    },
    /// A tensor's entry is inconsistent or out of bounds.
    #[error("failed to read safetensors: tensor `{name}`: {reason}")]
    BadTensor {
        /// The tensor's name (cut to 128 characters).
        name: String,
        /// What is wrong.
        reason: String,
    },
    /// Reading failed.
    #[error("failed to read safetensors: {0}")]
    Io(String),
}

/// A tensor's element type, as the format names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dtype {
    /// `BOOL`
    Bool,
    /// `U8`
    U8,
    /// `I8`
    I8,
    /// `F8_E4M3`
    F8E4M3,
    /// `F8_E5M2`
    F8E5M2,
    /// `I16`
    I16,
    /// `U16`
    U16,
    /// `F16`
    F16,
    /// `BF16`
    Bf16,
    /// `I32`
    I32,
    /// `U32`
    U32,
    /// `F32`
    F32,
    /// `I64`
    I64,
    /// `U64`
    U64,
    /// `F64`
    F64,
}

impl Dtype {
    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "BOOL" => Self::Bool,
            "U8" => Self::U8,
            "I8" => Self::I8,
            "F8_E4M3" => Self::F8E4M3,
            "F8_E5M2" => Self::F8E5M2,
            "I16" => Self::I16,
            "U16" => Self::U16,
            "F16" => Self::F16,
            "BF16" => Self::Bf16,
            "I32" => Self::I32,
            "U32" => Self::U32,
            "F32" => Self::F32,
            "I64" => Self::I64,
            "U64" => Self::U64,
            "F64" => Self::F64,
            _ => return None,
        })
    }

    /// Bytes per element.
    pub fn size(self) -> u64 {
        match self {
            Self::Bool | Self::U8 | Self::I8 | Self::F8E4M3 | Self::F8E5M2 => 1,
            Self::I16 | Self::U16 | Self::F16 | Self::Bf16 => 2,
            Self::I32 | Self::U32 | Self::F32 => 4,
            Self::I64 | Self::U64 | Self::F64 => 8,
        }
    }
}

/// One tensor of a safetensors file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorInfo {
    /// Element type.
    pub dtype: Dtype,
    /// Shape, outermost dimension first (row-major, as PyTorch writes it).
    pub shape: Vec<u64>,
    /// Offset of the first byte in the file (not in the data section).
    pub start: u64,
    /// Length in bytes: `product(shape) * dtype.size()`.
    pub len: u64,
}

/// A checked safetensors header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// The tensors, by name.
    pub tensors: BTreeMap<String, TensorInfo>,
    /// `__metadata__`, if any.
    pub metadata: BTreeMap<String, String>,
}

/// Parses a whole safetensors file held in memory (for tests and fuzzing; the converter reads
/// only the header, with [`read_header`]).
pub fn parse(bytes: &[u8]) -> Result<Header, SafetensorsError> {
    let mut r = bytes;
    read_header(&mut r, bytes.len() as u64)
}

/// Reads and checks the header of a safetensors file of `file_len` bytes from its start.
pub fn read_header<R: Read>(r: &mut R, file_len: u64) -> Result<Header, SafetensorsError> {
    if file_len < 8 {
        return Err(SafetensorsError::Truncated {
            what: "header length",
        });
    }
    let mut len = [0u8; 8];
    r.read_exact(&mut len).map_err(io)?;
    let n = u64::from_le_bytes(len);
    if n > MAX_HEADER {
        return Err(SafetensorsError::HeaderTooLarge { len: n });
    }
    if n > file_len - 8 {
        return Err(SafetensorsError::Truncated { what: "header" });
    }
    // `n` is at most MAX_HEADER and at most the file's length: a bounded allocation.
    let mut json =
        vec![0u8; usize::try_from(n).map_err(|_| SafetensorsError::HeaderTooLarge { len: n })?];
    r.read_exact(&mut json).map_err(io)?;
    parse_json(&json, 8 + n, file_len)
}

fn io(e: std::io::Error) -> SafetensorsError {
    if e.kind() == std::io::ErrorKind::UnexpectedEof {
        SafetensorsError::Truncated { what: "header" }
    } else {
        SafetensorsError::Io(e.to_string())
    }
}

fn malformed(reason: impl Into<String>) -> SafetensorsError {
    SafetensorsError::Malformed {
        reason: reason.into(),
    }
}

fn parse_json(json: &[u8], data_start: u64, file_len: u64) -> Result<Header, SafetensorsError> {
    let value: serde_json::Value =
        serde_json::from_slice(json).map_err(|e| malformed(format!("not JSON ({e})")))?;
    let serde_json::Value::Object(entries) = value else {
        return Err(malformed("not a JSON object"));
    };
    let data_len = file_len - data_start;
    let mut header = Header {
        tensors: BTreeMap::new(),
        metadata: BTreeMap::new(),
    };
    for (name, entry) in entries {
        if name == "__metadata__" {
            let serde_json::Value::Object(meta) = entry else {
                return Err(malformed("__metadata__ is not an object"));
            };
            for (k, v) in meta {
                let serde_json::Value::String(v) = v else {
                    return Err(malformed(format!(
                        "__metadata__ value of `{k}` is not a string"
                    )));
                };
                header.metadata.insert(k, v);
            }
            continue;
        }
        let info = tensor(&name, &entry, data_start, data_len)?;
        header.tensors.insert(name, info);
    }
    check_no_overlap(&header.tensors)?;
    Ok(header)
}

fn tensor(
    name: &str,
    entry: &serde_json::Value,
    data_start: u64,
    data_len: u64,
) -> Result<TensorInfo, SafetensorsError> {
    let bad = |reason: String| SafetensorsError::BadTensor {
        name: name.chars().take(128).collect(),
        reason,
    };
    let serde_json::Value::Object(fields) = entry else {
        return Err(bad("its entry is not an object".into()));
    };
    if let Some(extra) = fields
        .keys()
        .find(|k| !["dtype", "shape", "data_offsets"].contains(&k.as_str()))
    {
        return Err(bad(format!(
            "unknown field `{}`",
            extra.chars().take(64).collect::<String>()
        )));
    }
    let dtype = fields
        .get("dtype")
        .and_then(serde_json::Value::as_str)
        .ok_or_else(|| bad("no dtype string".into()))?;
    let dtype = Dtype::parse(dtype).ok_or_else(|| {
        bad(format!(
            "unknown dtype `{}`",
            dtype.chars().take(32).collect::<String>()
        ))
    })?;
    let shape = fields
        .get("shape")
        .and_then(serde_json::Value::as_array)
        .ok_or_else(|| bad("no shape array".into()))?;
    if shape.len() > MAX_DIMS {
        return Err(bad(format!(
            "{} dimensions, at most {MAX_DIMS} are allowed",
            shape.len()
        )));
    }
    let shape: Vec<u64> = shape
        .iter()
        .map(serde_json::Value::as_u64)
        .collect::<Option<_>>()
        .ok_or_else(|| bad("a dimension is not a non-negative integer".into()))?;
    let offsets = fields
        .get("data_offsets")
        .and_then(serde_json::Value::as_array)
        .ok_or_else(|| bad("no data_offsets array".into()))?;
    let (begin, end) = match offsets.as_slice() {
        [b, e] => (
            b.as_u64()
                .ok_or_else(|| bad("an offset is not a non-negative integer".into()))?,
            e.as_u64()
                .ok_or_else(|| bad("an offset is not a non-negative integer".into()))?,
        ),
        _ => return Err(bad("data_offsets does not hold two offsets".into())),
    };
    if begin > end {
        return Err(bad(format!("data_offsets [{begin}, {end}] run backwards")));
    }
    if end > data_len {
        return Err(bad(format!(
            "its data ends at {end}, past the end of the data ({data_len} bytes): the file is truncated"
        )));
    }
    let len = shape
        .iter()
        .try_fold(dtype.size(), |acc, d| acc.checked_mul(*d))
        .ok_or_else(|| bad("its size overflows".into()))?;
    if len != end - begin {
        return Err(bad(format!(
            "shape {shape:?} of {dtype:?} takes {len} bytes, but data_offsets give {}",
            end - begin
        )));
    }
    Ok(TensorInfo {
        dtype,
        shape,
        start: data_start + begin,
        len,
    })
}

fn check_no_overlap(tensors: &BTreeMap<String, TensorInfo>) -> Result<(), SafetensorsError> {
    let mut ranges: Vec<(u64, u64, &str)> = tensors
        .iter()
        .filter(|(_, t)| t.len > 0)
        .map(|(n, t)| (t.start, t.start + t.len, n.as_str()))
        .collect();
    ranges.sort_unstable();
    for pair in ranges.windows(2) {
        if let [(_, end, first), (start, _, second)] = pair
            && start < end
        {
            return Err(SafetensorsError::BadTensor {
                name: second.chars().take(128).collect(),
                reason: format!(
                    "its data overlaps that of `{}`",
                    first.chars().take(128).collect::<String>()
                ),
            });
        }
    }
    Ok(())
}
