//! Entry::decode never panics, and accepts only canonical bytes: re-encoding gives them back.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sov_audit_core::entry::Entry;

fuzz_target!(|data: &[u8]| {
    if let Ok(entry) = Entry::decode(data) {
        let again = entry.encode().expect("a decoded entry encodes");
        assert_eq!(again, data, "decode accepted a non-canonical encoding");
        let _ = entry.to_json();
    }
});
