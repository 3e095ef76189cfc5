//! A read-only SQL tool over an SQLite database the owner declares (`[[tools.sql]]` in
//! `sov.toml`). One `SELECT` (or `WITH ... SELECT`) per call, with `?` parameters.
//!
//! Read-only in four layers, each enough alone for writes: the file is opened read-only,
//! `PRAGMA query_only` is on, an authoriser allows only reading (no `ATTACH`, no `PRAGMA`, no
//! change of any kind, no transaction), and attaching is limited to zero databases. The
//! cost is bounded: the query's length, [`SqlTool::max_rows`] rows (the result says when it
//! was cut), a time limit checked every 1,000 virtual-machine steps, and the bytes returned.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use rusqlite::hooks::{AuthAction, AuthContext, Authorization};
use rusqlite::limits::Limit;
use rusqlite::types::ValueRef;
use rusqlite::{Connection, OpenFlags};
use serde_json::{Value, json};

use crate::json::args;
use crate::{Tool, ToolError, ToolSpec};

/// The longest query, in bytes.
pub const MAX_QUERY: usize = 16 * 1024;
/// The most bytes of text or blob returned from one cell.
pub const MAX_CELL: usize = 4 * 1024;
/// The most bytes of cells one result holds.
pub const MAX_RESULT: usize = 1024 * 1024;

/// A declared database and its limits.
#[derive(Debug)]
pub struct SqlTool {
    spec: ToolSpec,
    path: PathBuf,
    /// The most rows a result holds.
    pub max_rows: usize,
    /// The longest a query may run.
    pub timeout: Duration,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Args {
    query: String,
    #[serde(default)]
    params: Vec<Value>,
}

impl SqlTool {
    /// A tool named `name` reading the SQLite database at `path`, described to the model as
    /// `description`.
    pub fn new(name: &str, path: PathBuf, description: &str) -> Self {
        Self {
            spec: ToolSpec {
                name: name.to_owned(),
                description: format!(
                    "Read-only SQL (SQLite) over the `{name}` database: one SELECT per call, \
                     with ? parameters. {description}"
                ),
                parameters: json!({
                    "type": "object",
                    "properties": {
                        "query": {"type": "string", "description": "One SELECT statement"},
                        "params": {"type": "array", "items": {"type": ["string", "number", "null"]}}
                    },
                    "required": ["query"],
                    "additionalProperties": false
                }),
            },
            path,
            max_rows: 200,
            timeout: Duration::from_secs(2),
        }
    }

    /// The connection, and a flag the authoriser sets when it refuses something.
    fn open(&self) -> Result<(Connection, Arc<AtomicBool>), ToolError> {
        let failed = |e: rusqlite::Error| ToolError::Failed(format!("the database: {e}"));
        let mut conn = Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(failed)?;
        conn.pragma_update(None, "query_only", true)
            .map_err(failed)?;
        conn.set_limit(Limit::SQLITE_LIMIT_ATTACHED, 0)
            .map_err(failed)?;
        let denied = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&denied);
        conn.authorizer(Some(move |ctx: AuthContext<'_>| match ctx.action {
            AuthAction::Select | AuthAction::Read { .. } | AuthAction::Recursive => {
                Authorization::Allow
            }
            AuthAction::Function { function_name } if allowed_function(function_name) => {
                Authorization::Allow
            }
            _ => {
                flag.store(true, Ordering::Relaxed);
                Authorization::Deny
            }
        }))
        .map_err(failed)?;
        let deadline = Instant::now() + self.timeout;
        conn.progress_handler(1_000, Some(move || Instant::now() > deadline))
            .map_err(failed)?;
        Ok((conn, denied))
    }

    fn query(&self, a: Args) -> Result<Value, ToolError> {
        if a.query.len() > MAX_QUERY {
            return Err(ToolError::Arguments(format!(
                "query: longer than {MAX_QUERY} bytes"
            )));
        }
        let started = Instant::now();
        let (conn, denied) = self.open()?;
        let refused = |e: rusqlite::Error| {
            if denied.load(Ordering::Relaxed) {
                ToolError::Failed("the query was refused: only reading is allowed".into())
            } else if started.elapsed() >= self.timeout {
                ToolError::TimedOut(self.timeout.as_millis() as u64)
            } else {
                ToolError::Failed(format!("the query was refused: {e}"))
            }
        };
        let mut stmt = conn.prepare(&a.query).map_err(refused)?;
        if !stmt.readonly() {
            return Err(ToolError::Failed(
                "the query was refused: only reading is allowed".into(),
            ));
        }
        let columns: Vec<String> = stmt.column_names().map(str::to_owned).collect();
        let params: Vec<rusqlite::types::Value> = a
            .params
            .iter()
            .map(|p| match p {
                Value::Null => Ok(rusqlite::types::Value::Null),
                Value::String(s) => Ok(rusqlite::types::Value::Text(s.clone())),
                Value::Number(n) => Ok(match (n.as_i64(), n.as_f64()) {
                    (Some(i), _) => rusqlite::types::Value::Integer(i),
                    (None, Some(f)) => rusqlite::types::Value::Real(f),
                    _ => rusqlite::types::Value::Null,
                }),
                other => Err(ToolError::Arguments(format!(
                    "params: {other} is not a string, number or null"
                ))),
            })
            .collect::<Result<_, _>>()?;
        let mut rows = stmt
            .query(rusqlite::params_from_iter(params))
            .map_err(refused)?;
        let mut out = Vec::new();
        let mut size = 0usize;
        let mut truncated = false;
        while let Some(row) = rows.next().map_err(refused)? {
            if out.len() == self.max_rows || size > MAX_RESULT {
                truncated = true;
                break;
            }
            let mut cells = Vec::with_capacity(columns.len());
            for i in 0..columns.len() {
                let cell = match row.get_ref(i).map_err(refused)? {
                    ValueRef::Null => Value::Null,
                    ValueRef::Integer(n) => json!(n),
                    ValueRef::Real(f) => json!(f),
                    ValueRef::Text(t) => {
                        let t = String::from_utf8_lossy(&t[..t.len().min(MAX_CELL)]).into_owned();
                        size += t.len();
                        Value::String(t)
                    }
                    ValueRef::Blob(b) => {
                        size += b.len().min(MAX_CELL) * 2;
                        json!({"blob_hex": hex(&b[..b.len().min(MAX_CELL)]), "bytes": b.len()})
                    }
                };
                cells.push(cell);
            }
            out.push(Value::Array(cells));
        }
        Ok(json!({"columns": columns, "rows": out, "truncated": truncated}))
    }
}

/// Functions a read-only query may call: SQLite's core scalar and aggregate functions, not
/// those that reach outside the query (`load_extension`, `readfile`, ...).
fn allowed_function(name: &str) -> bool {
    const ALLOWED: &[&str] = &[
        "abs",
        "avg",
        "coalesce",
        "count",
        "date",
        "datetime",
        "group_concat",
        "ifnull",
        "instr",
        "julianday",
        "length",
        "like",
        "lower",
        "ltrim",
        "max",
        "min",
        "nullif",
        "printf",
        "format",
        "replace",
        "round",
        "rtrim",
        "strftime",
        "substr",
        "substring",
        "sum",
        "time",
        "total",
        "trim",
        "typeof",
        "upper",
        "iif",
        "glob",
        "hex",
        "unixepoch",
        "string_agg",
        "concat",
        "concat_ws",
        "sign",
        "char",
        "unicode",
        "quote",
    ];
    ALLOWED.contains(&name.to_ascii_lowercase().as_str())
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

impl Tool for SqlTool {
    fn spec(&self) -> &ToolSpec {
        &self.spec
    }
    fn version(&self) -> String {
        crate::builtin_version()
    }
    fn call(&self, a: &Value) -> Result<Value, ToolError> {
        self.query(args(a)?)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]

    use super::*;

    fn db() -> (tempfile::TempDir, SqlTool) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ledger.db");
        let c = Connection::open(&path).unwrap();
        c.execute_batch(
            "CREATE TABLE accounts(id INTEGER PRIMARY KEY, name TEXT, balance INTEGER);
             INSERT INTO accounts(name, balance) VALUES ('alice', 100), ('bob', 250);
             WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 500)
             INSERT INTO accounts(name, balance) SELECT 'user' || i, i FROM n;",
        )
        .unwrap();
        drop(c);
        (dir, SqlTool::new("ledger", path, "Accounts and balances."))
    }

    fn q(t: &SqlTool, query: &str) -> Result<Value, ToolError> {
        t.call(&json!({"query": query}))
    }

    #[test]
    fn reads_with_parameters_and_a_row_limit() {
        let (_d, t) = db();
        let r = t
            .call(&json!({"query": "SELECT name, balance FROM accounts WHERE name = ?", "params": ["bob"]}))
            .unwrap();
        assert_eq!(r["columns"], json!(["name", "balance"]));
        assert_eq!(r["rows"], json!([["bob", 250]]));
        assert_eq!(r["truncated"], false);
        let r = q(
            &t,
            "SELECT upper(name), sum(balance) FROM accounts GROUP BY 1 ORDER BY 2 DESC LIMIT 1",
        )
        .unwrap();
        assert_eq!(r["rows"][0][0], "USER500");
        let all = q(&t, "SELECT * FROM accounts").unwrap();
        assert_eq!(all["rows"].as_array().unwrap().len(), 200);
        assert_eq!(all["truncated"], true);
    }

    #[test]
    fn nothing_but_reading_is_allowed() {
        let (d, t) = db();
        for bad in [
            "INSERT INTO accounts(name, balance) VALUES ('eve', 1)",
            "UPDATE accounts SET balance = 0",
            "DELETE FROM accounts",
            "DROP TABLE accounts",
            "CREATE TABLE x(y)",
            "ATTACH DATABASE 'other.db' AS other",
            "PRAGMA query_only = 0",
            "PRAGMA writable_schema = 1",
            "BEGIN",
            "VACUUM INTO 'copy.db'",
            "SELECT load_extension('x')",
            "SELECT 1; DELETE FROM accounts",
            "WITH x AS (SELECT 1) INSERT INTO accounts(name) SELECT 'z' FROM x",
        ] {
            let e = q(&t, bad).unwrap_err();
            assert!(matches!(e, ToolError::Failed(_)), "{bad}: {e}");
            let multiple = bad.contains("; ");
            assert!(
                multiple || e.to_string().contains("only reading is allowed"),
                "{bad}: {e}"
            );
        }
        // Nothing changed, and no file was made.
        let n = q(&t, "SELECT count(*) FROM accounts").unwrap();
        assert_eq!(n["rows"][0][0], 502);
        assert!(!d.path().join("copy.db").exists() && !d.path().join("other.db").exists());
    }

    #[test]
    fn a_runaway_query_is_stopped() {
        let (_d, mut t) = db();
        t.timeout = Duration::from_millis(200);
        let e = q(
            &t,
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n) SELECT count(*) FROM n",
        )
        .unwrap_err();
        assert_eq!(e, ToolError::TimedOut(200));
        let e = t
            .call(&json!({"query": "SELECT 1", "params": [[1]]}))
            .unwrap_err();
        assert!(matches!(e, ToolError::Arguments(_)), "{e}");
        let e = q(&t, &"x".repeat(MAX_QUERY + 1)).unwrap_err();
        assert!(matches!(e, ToolError::Arguments(_)), "{e}");
    }
}
