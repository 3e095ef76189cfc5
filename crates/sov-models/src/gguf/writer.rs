//! A GGUF v3 writer: the header (metadata and tensor infos) in memory, the tensor data streamed
//! by the caller.
//!
//! The layout (ggml `docs/gguf.md`), all little-endian: `GGUF`, version `u32` 3, tensor count
//! `u64`, metadata count `u64`; each metadata entry as key (`u64` length + UTF-8), value type
//! `u32`, value; each tensor info as name, dimension count `u32`, dimensions `u64` (innermost
//! first), ggml type `u32`, offset `u64` from the start of the data; zero padding to the
//! alignment (32); then each tensor's bytes at its offset, padded to the alignment.
//!
//! Nothing in the output depends on anything but what is added, in the order it is added: the
//! same metadata and tensors always give the same bytes.

/// Alignment of the data section and of every tensor in it (GGUF's default).
pub const ALIGNMENT: u64 = 32;

/// A metadata value.
#[derive(Debug, Clone, PartialEq)]
pub enum MetaValue {
    /// `UINT32` (type 4).
    U32(u32),
    /// `FLOAT32` (type 6).
    F32(f32),
    /// `BOOL` (type 7).
    Bool(bool),
    /// `STRING` (type 8).
    Str(String),
    /// `ARRAY` of `INT32` (type 9 of 5).
    I32Array(Vec<i32>),
    /// `ARRAY` of `STRING` (type 9 of 8).
    StrArray(Vec<String>),
}

/// A tensor's entry: its data is `bytes` long and written by the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorEntry {
    /// The GGUF name, e.g. `blk.0.attn_q.weight`.
    pub name: String,
    /// Dimensions, innermost (contiguous) first, as ggml counts them.
    pub dims: Vec<u64>,
    /// ggml type id (0 = F32).
    pub ggml_type: u32,
    /// Bytes of data.
    pub bytes: u64,
}

/// A GGUF file being described.
#[derive(Debug, Default, Clone)]
pub struct GgufWriter {
    metadata: Vec<(String, MetaValue)>,
    tensors: Vec<TensorEntry>,
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u64).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

impl GgufWriter {
    /// An empty file.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a metadata entry (in order).
    pub fn meta(&mut self, key: &str, value: MetaValue) {
        self.metadata.push((key.to_owned(), value));
    }

    /// Adds a tensor (in order); its data must be written in the same order.
    pub fn tensor(&mut self, entry: TensorEntry) {
        self.tensors.push(entry);
    }

    /// The tensors, in order.
    pub fn tensors(&self) -> &[TensorEntry] {
        &self.tensors
    }

    /// The header: everything before the first tensor's data, padding included.
    pub fn header(&self) -> Vec<u8> {
        let mut out = b"GGUF".to_vec();
        out.extend_from_slice(&3u32.to_le_bytes());
        out.extend_from_slice(&(self.tensors.len() as u64).to_le_bytes());
        out.extend_from_slice(&(self.metadata.len() as u64).to_le_bytes());
        for (key, value) in &self.metadata {
            put_str(&mut out, key);
            match value {
                MetaValue::U32(v) => {
                    out.extend_from_slice(&4u32.to_le_bytes());
                    out.extend_from_slice(&v.to_le_bytes());
                }
                MetaValue::F32(v) => {
                    out.extend_from_slice(&6u32.to_le_bytes());
                    out.extend_from_slice(&v.to_le_bytes());
                }
                MetaValue::Bool(v) => {
                    out.extend_from_slice(&7u32.to_le_bytes());
                    out.push(u8::from(*v));
                }
                MetaValue::Str(s) => {
                    out.extend_from_slice(&8u32.to_le_bytes());
                    put_str(&mut out, s);
                }
                MetaValue::I32Array(items) => {
                    out.extend_from_slice(&9u32.to_le_bytes());
                    out.extend_from_slice(&5u32.to_le_bytes());
                    out.extend_from_slice(&(items.len() as u64).to_le_bytes());
                    for v in items {
                        out.extend_from_slice(&v.to_le_bytes());
                    }
                }
                MetaValue::StrArray(items) => {
                    out.extend_from_slice(&9u32.to_le_bytes());
                    out.extend_from_slice(&8u32.to_le_bytes());
                    out.extend_from_slice(&(items.len() as u64).to_le_bytes());
                    for s in items {
                        put_str(&mut out, s);
                    }
                }
            }
        }
        let mut offset = 0u64;
        for t in &self.tensors {
            put_str(&mut out, &t.name);
            out.extend_from_slice(&(t.dims.len() as u32).to_le_bytes());
            for d in &t.dims {
                out.extend_from_slice(&d.to_le_bytes());
            }
            out.extend_from_slice(&t.ggml_type.to_le_bytes());
            out.extend_from_slice(&offset.to_le_bytes());
            offset = offset.saturating_add(t.bytes).next_multiple_of(ALIGNMENT);
        }
        out.resize((out.len() as u64).next_multiple_of(ALIGNMENT) as usize, 0);
        out
    }

    /// Zero bytes to write after tensor `index`'s data.
    pub fn padding_after(&self, index: usize) -> usize {
        self.tensors.get(index).map_or(0, |t| {
            (t.bytes.next_multiple_of(ALIGNMENT) - t.bytes) as usize
        })
    }
}
