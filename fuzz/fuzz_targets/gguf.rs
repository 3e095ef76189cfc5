//! The GGUF header reader (`sov_models::gguf::parse`, what `sov model import` runs on a file)
//! never panics; what it accepts is the same read through a tiny buffer (the reader does not
//! depend on how the bytes arrive), and its `GgufInfo` round-trips through the JSON the store
//! keeps in a manifest.
#![no_main]

use std::io::{BufReader, Cursor};

use libfuzzer_sys::fuzz_target;
use sov_models::gguf::{GgufInfo, parse};

fuzz_target!(|data: &[u8]| {
    let len = data.len() as u64;
    let direct = parse(Cursor::new(data), len);
    let buffered = parse(BufReader::with_capacity(7, Cursor::new(data)), len);
    let Ok(info) = direct else {
        assert!(buffered.is_err(), "accepted only through a small buffer");
        return;
    };
    assert_eq!(
        buffered.ok().as_ref(),
        Some(&info),
        "differs through a small buffer"
    );
    let json = serde_json::to_string(&info).expect("a GgufInfo serializes");
    let back: GgufInfo = serde_json::from_str(&json).expect("its JSON reads back");
    assert_eq!(back, info, "GgufInfo does not round-trip through JSON");
});
