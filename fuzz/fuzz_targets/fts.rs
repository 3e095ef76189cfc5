//! `sov_knowledge::search::fts_query` never panics, quotes every term (no `"` inside one), and
//! what it builds is accepted by SQLite's FTS5 as a MATCH expression, whatever was typed.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rusqlite::Connection;
use sov_knowledge::search::{MAX_TERMS, fts_query};

thread_local! {
    static DB: Connection = {
        let db = Connection::open_in_memory().expect("an in-memory database opens");
        db.execute_batch(
            "CREATE VIRTUAL TABLE t USING fts5(body, tokenize='porter unicode61 remove_diacritics 2');
             INSERT INTO t (body) VALUES ('the quick brown fox'), ('NEAR and OR and \"quotes\"');",
        )
        .expect("the FTS5 table is made");
        db
    };
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Some(query) = fts_query(text) else {
        return;
    };
    let terms: Vec<&str> = query.split(" OR ").collect();
    assert!(terms.len() <= MAX_TERMS, "{} terms", terms.len());
    for term in &terms {
        let inner = term
            .strip_prefix('"')
            .and_then(|t| t.strip_suffix('"'))
            .unwrap_or_else(|| panic!("term {term:?} is not quoted"));
        assert!(!inner.is_empty() && !inner.contains('"'), "term {term:?}");
    }
    DB.with(|db| {
        let counted: rusqlite::Result<i64> =
            db.query_row("SELECT count(*) FROM t WHERE t MATCH ?1", [&query], |r| {
                r.get(0)
            });
        if let Err(e) = counted {
            panic!("FTS5 refused {query:?} (from {text:?}): {e}");
        }
    });
});
