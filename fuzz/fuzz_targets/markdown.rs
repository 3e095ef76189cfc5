//! `sov_knowledge::ingest::markdown` (pulldown-cmark) never panics; what it gives is
//! normalised text that chunks within bounds (`check_parsed`).
#![no_main]

use libfuzzer_sys::fuzz_target;
use sov_knowledge::ingest::{MediaType, markdown, parse};

fuzz_target!(|data: &[u8]| {
    let _ = parse(MediaType::Markdown, data);
    if let Ok(text) = std::str::from_utf8(data) {
        sov_audit_fuzz::knowledge::check_parsed(&markdown(text));
    }
});
