//! Note::parse never panics, and a parsed note re-encodes to the same bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sov_audit_core::note::Note;

fuzz_target!(|data: &[u8]| {
    if let Ok(note) = Note::parse(data) {
        assert_eq!(note.to_bytes(), data, "note does not round-trip");
    }
});
