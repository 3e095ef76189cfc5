//! `sov_knowledge::ingest::pdf` never panics and never overflows its stack: lopdf and
//! pdf-extract run on the extraction thread, where a panic is caught and becomes an error;
//! what succeeds is normalised text that chunks within bounds (`check_parsed`).
//!
//! libFuzzer's panic hook aborts on every panic, caught or not; this target replaces it with
//! one that lets a panic on the extraction thread unwind (that is the behaviour under test)
//! and aborts on any other, so a panic in Sovereign's own code is still a crash.
#![no_main]

use std::sync::Once;

use libfuzzer_sys::fuzz_target;
use sov_knowledge::ingest::{PDF_EXTRACT_THREAD, pdf};

static HOOK: Once = Once::new();

fuzz_target!(|data: &[u8]| {
    HOOK.call_once(|| {
        let abort_on_others = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if std::thread::current().name() != Some(PDF_EXTRACT_THREAD) {
                abort_on_others(info);
            }
        }));
    });
    if let Ok(parsed) = pdf(data) {
        sov_audit_fuzz::knowledge::check_parsed(&parsed);
    }
});
