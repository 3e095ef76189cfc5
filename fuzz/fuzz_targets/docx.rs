//! `sov_knowledge::ingest::docx` (zip + quick-xml) never panics; what it gives is normalised
//! text that chunks within bounds (`check_parsed`).
#![no_main]

use libfuzzer_sys::fuzz_target;
use sov_knowledge::ingest::docx;

fuzz_target!(|data: &[u8]| {
    if let Ok(parsed) = docx(data) {
        sov_audit_fuzz::knowledge::check_parsed(&parsed);
    }
});
