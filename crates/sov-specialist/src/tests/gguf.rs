//! Writes tiny but valid GGUF files for tests: string and u32 metadata, F32 tensors. (The
//! approach of sov-models' own test builder, cut down to what specialists need.)

pub enum Value {
    U32(u32),
    Str(&'static str),
}

fn string(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u64).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

/// A GGUF v3 file with `kvs` and one F32 tensor per `(name, dims)`, its data a pattern.
pub fn build(kvs: &[(&str, Value)], tensors: &[(&str, &[u64])]) -> Vec<u8> {
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
        }
    }
    let mut offset = 0u64;
    let mut sizes = Vec::new();
    for (name, dims) in tensors {
        string(&mut out, name);
        out.extend_from_slice(&(dims.len() as u32).to_le_bytes());
        for d in *dims {
            out.extend_from_slice(&d.to_le_bytes());
        }
        out.extend_from_slice(&0u32.to_le_bytes()); // F32
        out.extend_from_slice(&offset.to_le_bytes());
        let bytes = dims.iter().product::<u64>() * 4;
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

/// A small model of architecture `arch` (`llama`, or `bert` for an embedding model); `seed`
/// changes its bytes.
pub fn model(arch: &'static str, seed: u32) -> Vec<u8> {
    build(
        &[
            ("general.architecture", Value::Str(arch)),
            ("general.type", Value::Str("model")),
            ("general.file_type", Value::U32(0)),
            ("general.seed", Value::U32(seed)),
        ],
        &[
            ("token_embd.weight", &[64, 8]),
            ("output_norm.weight", &[64]),
        ],
    )
}

/// A LoRA adapter as llama.cpp's `convert_lora_to_gguf.py` writes it, for `arch`.
pub fn lora(arch: &'static str, seed: u32) -> Vec<u8> {
    adapter(arch, Some("adapter"), Some("lora"), seed)
}

/// An adapter-like file with the given `general.type` and `adapter.type` (absent when `None`).
pub fn adapter(
    arch: &'static str,
    general: Option<&'static str>,
    kind: Option<&'static str>,
    seed: u32,
) -> Vec<u8> {
    let mut kvs = vec![("general.architecture", Value::Str(arch))];
    if let Some(g) = general {
        kvs.push(("general.type", Value::Str(g)));
    }
    if let Some(k) = kind {
        kvs.push(("adapter.type", Value::Str(k)));
    }
    kvs.push(("general.seed", Value::U32(seed)));
    build(
        &kvs,
        &[
            ("blk.0.attn_q.weight.lora_a", &[64, 4]),
            ("blk.0.attn_q.weight.lora_b", &[4, 64]),
        ],
    )
}
