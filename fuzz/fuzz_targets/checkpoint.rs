//! Checkpoint::parse_text and verify_checkpoint (fixed keys) never panic; a parsed checkpoint
//! text re-encodes to the same text.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sov_audit_core::checkpoint::{Checkpoint, require_all, verify_checkpoint};
use sov_audit_core::verify::verify_signed_checkpoint;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data)
        && let Ok(cp) = Checkpoint::parse_text(text)
    {
        assert_eq!(cp.to_text(), text, "checkpoint text does not round-trip");
    }
    let keys = sov_audit_fuzz::keys();
    if let Ok(v) = verify_checkpoint(data, keys) {
        let _ = require_all(&v, keys);
    }
    let _ = verify_signed_checkpoint("checkpoint", data, keys);
});
