//! TlogProof::parse never panics and round-trips; verifying (fixed keys) never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sov_audit_core::hash::leaf_hash;
use sov_audit_core::receipt::TlogProof;
use sov_audit_core::verify::verify_receipt;

fuzz_target!(|data: &[u8]| {
    let keys = sov_audit_fuzz::keys();
    if let Ok(p) = TlogProof::parse(data) {
        assert_eq!(p.to_bytes(), data, "tlog-proof does not round-trip");
        let leaf = leaf_hash(p.extra.as_deref().unwrap_or_default());
        let _ = p.verify(&leaf, keys);
    }
    let _ = verify_receipt(data, None, keys);
});
