//! Writes tiny but valid GGUF files for tests.

pub enum Value {
    U32(u32),
    Str(&'static str),
    StrArray(Vec<&'static str>),
    F32Array(Vec<f32>),
}

pub struct Tensor {
    pub name: &'static str,
    pub dims: Vec<u64>,
    pub ty: u32,
}

fn string(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u64).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

/// Builds a GGUF v3 file with the given metadata and tensors (F32 = 0, Q8_0 = 8, ...),
/// tensor data filled with a pattern.
pub fn build(kvs: &[(&str, Value)], tensors: &[Tensor]) -> Vec<u8> {
    let mut out = b"GGUF".to_vec();
    out.extend_from_slice(&3u32.to_le_bytes());
    out.extend_from_slice(&(tensors.len() as u64).to_le_bytes());
    out.extend_from_slice(&(kvs.len() as u64).to_le_bytes());
    for (key, value) in kvs {
        string(&mut out, key);
        match value {
            Value::U32(v) => {
                out.extend_from_slice(&4u32.to_le_bytes());
                out.extend_from_slice(&v.to_le_bytes());
            }
            Value::Str(s) => {
                out.extend_from_slice(&8u32.to_le_bytes());
                string(&mut out, s);
            }
            Value::StrArray(items) => {
                out.extend_from_slice(&9u32.to_le_bytes());
                out.extend_from_slice(&8u32.to_le_bytes());
                out.extend_from_slice(&(items.len() as u64).to_le_bytes());
                for s in items {
                    string(&mut out, s);
                }
            }
            Value::F32Array(items) => {
                out.extend_from_slice(&9u32.to_le_bytes());
                out.extend_from_slice(&6u32.to_le_bytes());
                out.extend_from_slice(&(items.len() as u64).to_le_bytes());
                for f in items {
                    out.extend_from_slice(&f.to_le_bytes());
                }
            }
        }
    }
    let mut offset = 0u64;
    let mut sizes = Vec::new();
    for t in tensors {
        string(&mut out, t.name);
        out.extend_from_slice(&(t.dims.len() as u32).to_le_bytes());
        for d in &t.dims {
            out.extend_from_slice(&d.to_le_bytes());
        }
        out.extend_from_slice(&t.ty.to_le_bytes());
        out.extend_from_slice(&offset.to_le_bytes());
        let (block, size, _) = crate::gguf::types::ggml_type(t.ty).unwrap();
        let bytes = t.dims.iter().product::<u64>() / block * size;
        sizes.push(bytes);
        offset = (offset + bytes).next_multiple_of(32);
    }
    out.resize(out.len().next_multiple_of(32), 0);
    for (i, bytes) in sizes.iter().enumerate() {
        let start = out.len();
        out.extend((0..*bytes).map(|j| (j as u8) ^ (i as u8)));
        out.resize(start + (*bytes as usize).next_multiple_of(32), 0);
    }
    out
}

/// A small llama-like model: a few KiB, two tensors.
pub fn tiny_model(name: &'static str) -> Vec<u8> {
    build(
        &[
            ("general.architecture", Value::Str("llama")),
            ("general.name", Value::Str(name)),
            ("general.file_type", Value::U32(7)),
            ("llama.context_length", Value::U32(2048)),
            ("llama.embedding_length", Value::U32(64)),
            (
                "tokenizer.ggml.tokens",
                Value::StrArray(vec!["<s>", "</s>", "hi"]),
            ),
            (
                "tokenizer.ggml.scores",
                Value::F32Array(vec![0.0, 0.5, 1.0]),
            ),
            ("tokenizer.chat_template", Value::Str("{{ messages }}")),
            ("general.license", Value::Str("apache-2.0")),
        ],
        &[
            Tensor {
                name: "tok_embd.weight",
                dims: vec![64, 32],
                ty: 8,
            },
            Tensor {
                name: "norm.weight",
                dims: vec![64],
                ty: 0,
            },
        ],
    )
}
