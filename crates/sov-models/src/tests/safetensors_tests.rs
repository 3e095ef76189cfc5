//! The safetensors header reader against hand-made files, good and bad.

use crate::convert::fixture;
use crate::convert::safetensors::{Dtype, SafetensorsError, parse};

fn file(header: &str, data: usize) -> Vec<u8> {
    let mut out = (header.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(header.as_bytes());
    out.resize(out.len() + data, 0);
    out
}

#[test]
fn a_real_layout_parses_and_every_prefix_of_it_is_refused() {
    let bytes = fixture::safetensors(&fixture::weights());
    let header = parse(&bytes).unwrap();
    assert_eq!(
        header.metadata.get("format").map(String::as_str),
        Some("pt")
    );
    let emb = &header.tensors["embeddings.word_embeddings.weight"];
    assert_eq!(
        (emb.dtype, emb.shape.clone()),
        (Dtype::F32, vec![fixture::VOCAB.len() as u64, 8])
    );
    assert_eq!(header.tensors["embeddings.position_ids"].dtype, Dtype::I64);
    for cut in (0..bytes.len()).step_by(97) {
        assert!(
            parse(&bytes[..cut]).is_err(),
            "a prefix of {cut} bytes was accepted"
        );
    }
}

#[test]
fn malformed_headers_are_refused_with_a_reason() {
    let t = |h: &str, data: usize| parse(&file(h, data));
    let bad_tensor = |r: Result<_, SafetensorsError>, needle: &str| match r {
        Err(SafetensorsError::BadTensor { reason, .. }) => {
            assert!(reason.contains(needle), "{reason}")
        }
        other => panic!("{needle}: {other:?}"),
    };
    assert!(matches!(
        parse(b"short"),
        Err(SafetensorsError::Truncated { .. })
    ));
    assert!(matches!(
        parse(&u64::MAX.to_le_bytes()),
        Err(SafetensorsError::HeaderTooLarge { .. })
    ));
    let mut huge = 1000u64.to_le_bytes().to_vec();
    huge.extend_from_slice(b"{}");
    assert!(matches!(
        parse(&huge),
        Err(SafetensorsError::Truncated { what: "header" })
    ));
    assert!(matches!(
        t("[1, 2]", 0),
        Err(SafetensorsError::Malformed { .. })
    ));
    assert!(matches!(
        t("{\"a\": ", 0),
        Err(SafetensorsError::Malformed { .. })
    ));
    assert!(t("{}", 0).unwrap().tensors.is_empty());
    let one = |dtype: &str, shape: &str, offsets: &str| {
        format!(r#"{{"w": {{"dtype": "{dtype}", "shape": {shape}, "data_offsets": {offsets}}}}}"#)
    };
    assert!(t(&one("F32", "[2, 2]", "[0, 16]"), 16).is_ok());
    bad_tensor(t(&one("F32", "[2, 2]", "[0, 16]"), 15), "past the end");
    bad_tensor(t(&one("F32", "[2, 2]", "[0, 12]"), 16), "takes 16 bytes");
    bad_tensor(t(&one("F33", "[2, 2]", "[0, 16]"), 16), "unknown dtype");
    bad_tensor(
        t(&one("F32", "[2, -2]", "[0, 16]"), 16),
        "not a non-negative integer",
    );
    bad_tensor(t(&one("F32", "[2, 2]", "[16, 0]"), 16), "run backwards");
    bad_tensor(
        t(
            &one("F32", "[4294967296, 4294967296, 4294967296]", "[0, 16]"),
            16,
        ),
        "overflows",
    );
    bad_tensor(
        t(&one("F32", "[1,1,1,1,1,1,1,1,1]", "[0, 4]"), 16),
        "dimensions",
    );
    let two = r#"{"a": {"dtype": "U8", "shape": [8], "data_offsets": [0, 8]},
                  "b": {"dtype": "U8", "shape": [8], "data_offsets": [4, 12]}}"#;
    bad_tensor(t(two, 12), "overlaps");
    let extra = r#"{"a": {"dtype": "U8", "shape": [1], "data_offsets": [0, 1], "x": 1}}"#;
    bad_tensor(t(extra, 1), "unknown field");
    assert!(matches!(
        t(r#"{"__metadata__": {"k": 1}}"#, 0),
        Err(SafetensorsError::Malformed { .. })
    ));
}
