//! The node's tools: the built-in ones (`calculator`, `units`, `dates`) and the SQL databases
//! the owner declares in `[[tools.sql]]`, each checked when the node loads them.

use std::sync::Arc;

use anyhow::{Result, bail};
use sov_kernel::Toolbox;
use sov_tools::sql::SqlTool;

use crate::home::{Config, Home};

/// The most a declared query limit may be.
const MAX_ROWS: usize = 10_000;
const MAX_TIMEOUT_MS: u64 = 60_000;

/// The tools `config` installs. A declared database must exist, and lie in the home or under
/// a `[seal] read_only` path (the sealed server could not read it otherwise).
pub(crate) fn toolbox(home: &Home, config: &Config) -> Result<Toolbox> {
    let mut tools = Toolbox::builtins();
    for db in &config.tools.sql {
        let name = &db.name;
        if !db.path.is_absolute() {
            bail!(
                "[[tools.sql]] `{name}`: path `{}` must be absolute",
                db.path.display()
            );
        }
        if !db.path.is_file() {
            bail!(
                "[[tools.sql]] `{name}`: no database file at {}",
                db.path.display()
            );
        }
        let readable = db.path.starts_with(home.root())
            || config.seal.read_only.iter().any(|p| db.path.starts_with(p));
        if !readable {
            bail!(
                "[[tools.sql]] `{name}`: {} is outside the home; add its folder to [seal] read_only so the sealed server may read it",
                db.path.display()
            );
        }
        if db.max_rows == 0 || db.max_rows > MAX_ROWS {
            bail!("[[tools.sql]] `{name}`: max_rows must be 1 to {MAX_ROWS}");
        }
        if db.timeout_ms == 0 || db.timeout_ms > MAX_TIMEOUT_MS {
            bail!("[[tools.sql]] `{name}`: timeout_ms must be 1 to {MAX_TIMEOUT_MS}");
        }
        let mut tool = SqlTool::new(name, db.path.clone(), &db.description);
        tool.max_rows = db.max_rows;
        tool.timeout = std::time::Duration::from_millis(db.timeout_ms);
        if let Err(e) = tools.add(Arc::new(tool)) {
            bail!("[[tools.sql]]: {e}");
        }
    }
    Ok(tools)
}
