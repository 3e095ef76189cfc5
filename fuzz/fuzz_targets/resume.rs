//! The resume-point parser that every `AuditLog::open` runs on the untrusted `resume` file
//! (`sov_audit::parse_resume_bytes`: the strict parser, then the Ed25519 check with a fixed key)
//! never panics; a file it accepts is exactly the canonical encoding of what it holds.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sov_audit::parse_resume_bytes;

/// The Ed25519 public key of the fixed test log (`sov_audit_fuzz::ED25519_VKEY`, without its
/// type byte): a valid point, so the signature check runs to the end.
const KEY: [u8; 32] = [
    0xd0, 0x4a, 0xb2, 0x32, 0x74, 0x2b, 0xb4, 0xab, 0x3a, 0x13, 0x68, 0xbd, 0x46, 0x15, 0xe4, 0xe6,
    0xd0, 0x22, 0x4a, 0xb7, 0x1a, 0x01, 0x6b, 0xaf, 0x85, 0x20, 0xa3, 0x32, 0xc9, 0x77, 0x87, 0x37,
];

fuzz_target!(|data: &[u8]| {
    if let Ok((again, _verified)) = parse_resume_bytes(data, &KEY) {
        assert_eq!(again, data, "an accepted resume file is not canonical");
    }
});
