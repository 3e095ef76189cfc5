//! GGUF metadata values: keep the few we need, bounds-check and skip the rest.

use std::io::{Read, Seek};

use super::reader::Reader;
use super::{
    GgufError, GgufInfo, MAX_ARRAY_DEPTH, MAX_KEPT_STRING, Metadata, TensorSummary, types,
};

const TYPE_STRING: u32 = 8;
const TYPE_ARRAY: u32 = 9;
/// At most this many `*.context_length` / `*.embedding_length` keys are remembered.
const MAX_LENGTH_KEYS: usize = 64;

/// Byte size of a fixed-size GGUF value type.
fn fixed_size(ty: u32) -> Option<u64> {
    Some(match ty {
        0 | 1 | 7 => 1,
        2 | 3 => 2,
        4..=6 => 4,
        10..=12 => 8,
        _ => return None,
    })
}

impl Metadata {
    pub(super) fn read_value<R: Read + Seek>(
        &mut self,
        r: &mut Reader<R>,
        key: &[u8],
        ty: u32,
    ) -> Result<(), GgufError> {
        let slot = match key {
            b"general.architecture" => Some(&mut self.architecture),
            b"general.name" => Some(&mut self.name),
            b"general.size_label" => Some(&mut self.size_label),
            b"general.license" => Some(&mut self.license),
            b"tokenizer.chat_template" => Some(&mut self.chat_template),
            b"general.type" => Some(&mut self.general_type),
            b"adapter.type" => Some(&mut self.adapter_type),
            _ => None,
        };
        if let Some(slot) = slot {
            if ty == TYPE_STRING {
                let mut buf = Vec::new();
                r.string_into(&mut buf, MAX_KEPT_STRING, "metadata string")?;
                let text = String::from_utf8(buf).map_err(|_| GgufError::Malformed {
                    reason: format!("metadata `{}` is not UTF-8", String::from_utf8_lossy(key)),
                })?;
                *slot = Some(text);
                return Ok(());
            }
            return skip_value(r, ty, 0);
        }
        if key == b"general.alignment" {
            let value = read_uint(r, ty)?;
            match value {
                Some(a) if a.is_power_of_two() && a <= 1 << 20 => self.alignment = a,
                _ => {
                    return Err(GgufError::Malformed {
                        reason: "general.alignment is not a power of two up to 1 MiB".into(),
                    });
                }
            }
            return Ok(());
        }
        if key == b"general.file_type" {
            self.file_type = read_uint(r, ty)?;
            return Ok(());
        }
        if key.ends_with(b".context_length") || key.ends_with(b".embedding_length") {
            let value = read_uint(r, ty)?;
            if let (Some(v), true) = (value, self.lengths.len() < MAX_LENGTH_KEYS) {
                self.lengths
                    .push((String::from_utf8_lossy(key).into_owned(), v));
            }
            return Ok(());
        }
        skip_value(r, ty, 0)
    }

    pub(super) fn into_info(
        self,
        version: u32,
        tensor_count: u64,
        tensors: &TensorSummary,
    ) -> Result<GgufInfo, GgufError> {
        let architecture = self.architecture.ok_or_else(|| GgufError::Malformed {
            reason: "general.architecture is missing".into(),
        })?;
        let length = |suffix: &str| {
            let wanted = format!("{architecture}.{suffix}");
            self.lengths
                .iter()
                .rev()
                .find(|(k, _)| *k == wanted)
                .map(|(_, v)| *v)
        };
        let quantization = match self.file_type.and_then(types::file_type_name) {
            Some(name) => name.to_owned(),
            None => dominant_type(tensors),
        };
        Ok(GgufInfo {
            version,
            context_length: length("context_length"),
            embedding_length: length("embedding_length"),
            architecture,
            name: self.name,
            parameters: tensors.parameters,
            size_label: self.size_label,
            quantization,
            chat_template: self.chat_template,
            license: self.license,
            tensor_count,
        })
    }
}

fn dominant_type(tensors: &TensorSummary) -> String {
    let best = tensors
        .elements_by_type
        .iter()
        .enumerate()
        .filter(|(_, n)| **n > 0)
        .max_by_key(|(_, n)| **n)
        .and_then(|(id, _)| u32::try_from(id).ok())
        .and_then(types::ggml_type);
    best.map_or_else(|| "unknown".to_owned(), |(_, _, name)| name.to_owned())
}

/// Reads an integer value as `u64`; `None` for negative values or non-integer types
/// (which are skipped).
fn read_uint<R: Read + Seek>(r: &mut Reader<R>, ty: u32) -> Result<Option<u64>, GgufError> {
    const WHAT: &str = "metadata integer";
    Ok(match ty {
        0 => Some(u64::from(r.array::<1>(WHAT)?[0])),
        1 => u64::try_from(i8::from_le_bytes(r.array(WHAT)?)).ok(),
        2 => Some(u64::from(u16::from_le_bytes(r.array(WHAT)?))),
        3 => u64::try_from(i16::from_le_bytes(r.array(WHAT)?)).ok(),
        4 => Some(u64::from(r.u32(WHAT)?)),
        5 => u64::try_from(i32::from_le_bytes(r.array(WHAT)?)).ok(),
        10 => Some(r.u64(WHAT)?),
        11 => u64::try_from(i64::from_le_bytes(r.array(WHAT)?)).ok(),
        _ => {
            skip_value(r, ty, 0)?;
            None
        }
    })
}

/// Skips one value of type `ty`, checking every length against the file first.
fn skip_value<R: Read + Seek>(r: &mut Reader<R>, ty: u32, depth: u32) -> Result<(), GgufError> {
    if let Some(size) = fixed_size(ty) {
        return r.skip(size, "metadata value");
    }
    match ty {
        TYPE_STRING => {
            let n = r.u64("metadata string")?;
            r.skip(n, "metadata string")
        }
        TYPE_ARRAY => {
            if depth >= MAX_ARRAY_DEPTH {
                return Err(GgufError::Malformed {
                    reason: "metadata arrays nested too deeply".into(),
                });
            }
            let elem = r.u32("metadata array type")?;
            let count = r.u64("metadata array length")?;
            if let Some(size) = fixed_size(elem) {
                let bytes = count.checked_mul(size).ok_or(GgufError::Truncated {
                    what: "metadata array",
                })?;
                return r.skip(bytes, "metadata array");
            }
            // Strings take at least 8 bytes, arrays at least 12: reject impossible counts
            // up front instead of looping over them.
            let min = if elem == TYPE_STRING { 8 } else { 12 };
            if count > r.remaining() / min {
                return Err(GgufError::Truncated {
                    what: "metadata array",
                });
            }
            for _ in 0..count {
                skip_value(r, elem, depth + 1)?;
            }
            Ok(())
        }
        _ => Err(GgufError::Malformed {
            reason: format!("unknown metadata value type {ty}"),
        }),
    }
}
