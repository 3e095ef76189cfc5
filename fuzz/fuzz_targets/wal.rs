//! The WAL scan that every open runs (`sov_audit::verify_wal_bytes`, the same code as
//! `AuditLog::open` and `verify_wal` reading from memory) never panics; what it keeps is stable:
//! the valid prefix it reports scans again to the same entries and root, with nothing torn.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sov_audit::verify_wal_bytes;

fuzz_target!(|data: &[u8]| {
    let Ok(report) = verify_wal_bytes(data) else {
        return;
    };
    let valid = usize::try_from(report.valid_bytes).expect("within the input");
    assert_eq!(
        report.valid_bytes.saturating_add(report.torn_tail_bytes),
        data.len() as u64
    );
    let prefix = data
        .get(..valid)
        .expect("the valid prefix lies inside the input");
    let again = verify_wal_bytes(prefix).expect("the kept prefix scans again");
    assert_eq!(
        (
            again.entries,
            again.valid_bytes,
            again.torn_tail_bytes,
            again.root
        ),
        (report.entries, report.valid_bytes, 0, report.root),
        "the prefix recovery keeps does not scan to the same log"
    );
});
