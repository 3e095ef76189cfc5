//! Vkey::parse and parse_vkeys never panic; a parsed vkey re-encodes to the same string.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sov_audit_core::note::{Vkey, parse_vkeys};

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(k) = Vkey::parse(s) {
        assert_eq!(k.encode(), s, "vkey does not round-trip");
        assert_eq!(Vkey::parse(&k.encode()).map(|k2| k2 == k), Ok(true));
    }
    let _ = parse_vkeys(s);
});
