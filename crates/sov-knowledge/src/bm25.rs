//! The BM25 list of a hybrid search at a cost bounded by the query's rare terms.
//!
//! SQLite's FTS5 evaluates `bm25()` for every row an `OR` query matches before it can sort
//! them, about 0.6 us a row (matching alone is about 0.07 us): a query holding a word found in
//! a third of 100,000 chunks scores 33,000 rows to keep 50. So when the full query would score
//! more than [`EXACT_ROWS`] rows, the terms are split by document frequency into rare and
//! common ones, and two queries, `(rare) AND (common)` and `(rare) NOT (common)`, return the
//! best chunks holding a rare term, each with the score the full query gives it (FTS5 computes
//! each phrase's IDF over the whole table whatever the expression, and a phrase absent from a
//! row adds nothing). Common terms then rank only the chunks that hold a rare term, as Lucene's
//! `CommonTermsQuery` and Elasticsearch's `cutoff_frequency` did; a chunk holding only common
//! terms, which the full query could place in the list, is left to the vector list. Below the
//! budget (every corpus under about 20,000 chunks) the full query runs and the list is exact.
//! The terms are placed in every expression in the same order, so a chunk's score is summed in
//! the same order in all of them.

use crate::search::match_expression;

/// A term is rare when it is in at most this fraction of the chunks (1 in 20).
const RARE_DIVISOR: i64 = 20;

/// The most rows (the sum of the terms' document frequencies) the full query may score: about
/// 12 ms of FTS5 scoring on one core.
pub(crate) const EXACT_ROWS: i64 = 20_000;

/// The terms of a query, split for the search above.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Terms {
    /// The rarest terms, rarest first (never empty).
    rare: Vec<String>,
    /// The others, rarest first.
    common: Vec<String>,
    /// How many rows the full query matches at most (the sum of document frequencies).
    rows: i64,
}

impl Terms {
    /// Splits `terms` (each with the number of chunks holding it) among `total` chunks.
    ///
    /// Terms no chunk holds are left out (they add nothing to any score), and so are terms in
    /// at least half of the chunks: FTS5 weighs them `1e-6`, while they would make nearly
    /// every chunk a row to score. When every term is that common they are all kept if the
    /// full query scores at most `exact_rows` rows (a small corpus, where such a word still
    /// tells chunks apart by frequency), else none is. `None` when no term is left (the search
    /// then has no BM25 list, only the vector one).
    pub(crate) fn split(terms: &[(String, i64)], total: i64, exact_rows: i64) -> Option<Self> {
        let present: Vec<&(String, i64)> = terms.iter().filter(|(_, df)| *df > 0).collect();
        let mut kept: Vec<&(String, i64)> = present
            .iter()
            .copied()
            .filter(|(_, df)| df.saturating_mul(2) < total)
            .collect();
        if kept.is_empty()
            && present
                .iter()
                .map(|(_, df)| *df)
                .fold(0i64, i64::saturating_add)
                <= exact_rows
        {
            kept = present;
        }
        // Rarest first; equal counts keep the query's order.
        kept.sort_by_key(|(_, df)| *df);
        let (first, rest) = kept.split_first()?;
        let limit = total / RARE_DIVISOR;
        let (rare, common): (Vec<_>, Vec<_>) = rest.iter().partition(|(_, df)| *df <= limit);
        let rows = kept
            .iter()
            .map(|(_, df)| *df)
            .fold(0i64, i64::saturating_add);
        Some(Terms {
            rare: std::iter::once(first)
                .chain(rare)
                .map(|(t, _)| t.clone())
                .collect(),
            common: common.into_iter().map(|(t, _)| t.clone()).collect(),
            rows,
        })
    }

    /// The best `depth` chunk keys for these terms, best first (ties by key), as FTS5's BM25
    /// over the whole `OR` query ranks them: among all chunks when that query scores at most
    /// `exact_rows` rows, else among the chunks holding a rare term.
    ///
    /// `run(expression, limit)` runs an FTS5 query and returns at most `limit` rows as
    /// `(key, bm25)`, ordered by FTS5's `bm25()` (lower is better) then key.
    pub(crate) fn top<E>(
        &self,
        depth: usize,
        exact_rows: i64,
        mut run: impl FnMut(&str, usize) -> Result<Vec<(i64, f64)>, E>,
    ) -> Result<Vec<i64>, E> {
        let all: Vec<String> = self.rare.iter().chain(&self.common).cloned().collect();
        let full = match_expression(&all).unwrap_or_default();
        if self.common.is_empty() || self.rows <= exact_rows {
            return Ok(run(&full, depth)?.into_iter().map(|r| r.0).collect());
        }
        let (rare, common) = (group(&self.rare), group(&self.common));
        let mut rows = run(&format!("{rare} AND {common}"), depth)?;
        rows.extend(run(&format!("{rare} NOT {common}"), depth)?);
        rows.sort_by(|a, b| a.1.total_cmp(&b.1).then(a.0.cmp(&b.0)));
        rows.truncate(depth);
        Ok(rows.into_iter().map(|r| r.0).collect())
    }
}

/// `("a" OR "b")`.
fn group(terms: &[String]) -> String {
    format!("({})", match_expression(terms).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::collections::HashSet;

    use rusqlite::{Connection, params};

    use super::*;

    fn run(conn: &Connection, expression: &str, limit: usize) -> rusqlite::Result<Vec<(i64, f64)>> {
        let mut stmt = conn.prepare(
            "SELECT rowid, bm25(t) FROM t WHERE t MATCH ?1 ORDER BY bm25(t), rowid LIMIT ?2",
        )?;
        stmt.query_map(params![expression, limit as i64], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })?
        .collect()
    }

    #[test]
    fn split_orders_and_drops() {
        let t = |s: &str, n| (s.to_owned(), n);
        let terms = Terms::split(
            &[t("a", 30), t("b", 2), t("c", 0), t("d", 60), t("e", 4)],
            100,
            0,
        )
        .unwrap();
        assert_eq!(terms.rare, ["b", "e"]);
        assert_eq!(terms.common, ["a"]);
        assert_eq!(terms.rows, 36);
        // Only common terms: the rarest leads.
        let terms = Terms::split(&[t("a", 30), t("b", 20)], 100, 0).unwrap();
        assert_eq!(
            (terms.rare, terms.common),
            (vec!["b".to_owned()], vec!["a".to_owned()])
        );
        // Terms in half the chunks or more: all kept within the budget, else none.
        let terms = Terms::split(&[t("a", 70), t("b", 50)], 100, 120).unwrap();
        assert_eq!(
            (terms.rare, terms.common),
            (vec!["b".to_owned()], vec!["a".to_owned()])
        );
        assert_eq!(Terms::split(&[t("a", 70), t("b", 50)], 100, 119), None);
        assert_eq!(Terms::split(&[t("a", 0)], 100, 100), None);
        assert_eq!(Terms::split(&[], 100, 100), None);
    }

    /// Under the budget the list is the full query's; over it, the full query's ranking of the
    /// chunks holding a rare term, on a corpus where common words fill most rows.
    #[test]
    fn the_full_querys_ranking() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch("CREATE VIRTUAL TABLE t USING fts5(body)")
            .unwrap();
        let mut state = 12345u64;
        let mut next = move || {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            state >> 33
        };
        let word = |r: u64| format!("w{}", (200f64.powf((r % 10_000) as f64 / 10_000.0)) as u64);
        let total = 3000i64;
        for _ in 0..total {
            let len = 5 + next() % 40;
            let body: Vec<String> = (0..len).map(|_| word(next())).collect();
            conn.execute("INSERT INTO t (body) VALUES (?1)", [body.join(" ")])
                .unwrap();
        }
        let mut differ = 0;
        for _ in 0..300 {
            let mut with_df: Vec<(String, i64)> = Vec::new();
            for _ in 0..1 + next() % 5 {
                let w = word(next());
                let df: i64 = conn
                    .query_row(
                        "SELECT count(*) FROM t WHERE t MATCH ?1",
                        [format!("\"{w}\"")],
                        |r| r.get(0),
                    )
                    .unwrap();
                if !with_df.iter().any(|(t, _)| *t == w) {
                    with_df.push((w, df));
                }
            }
            let Some(terms) = Terms::split(&with_df, total, i64::MAX) else {
                continue;
            };
            let all: Vec<String> = terms.rare.iter().chain(&terms.common).cloned().collect();
            let ranking: Vec<i64> = run(&conn, &match_expression(&all).unwrap(), usize::MAX >> 1)
                .unwrap()
                .into_iter()
                .map(|r| r.0)
                .collect();
            let holding_rare: HashSet<i64> = run(
                &conn,
                &match_expression(&terms.rare).unwrap(),
                usize::MAX >> 1,
            )
            .unwrap()
            .into_iter()
            .map(|r| r.0)
            .collect();
            for depth in [1, 10, 50] {
                let top = |budget| terms.top(depth, budget, |e, l| run(&conn, e, l)).unwrap();
                let exact: Vec<i64> = ranking.iter().copied().take(depth).collect();
                assert_eq!(top(i64::MAX), exact, "{with_df:?} at depth {depth}");
                let split: Vec<i64> = ranking
                    .iter()
                    .copied()
                    .filter(|k| holding_rare.contains(k))
                    .take(depth)
                    .collect();
                assert_eq!(top(0), split, "{with_df:?} at depth {depth}, split");
                differ += usize::from(split != exact);
            }
        }
        // The two lists do differ at times: the test tells them apart.
        assert!(differ > 20, "{differ}");
    }
}
