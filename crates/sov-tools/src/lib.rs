//! Exact built-in tools, and the [`Tool`] seam every tool (built-in or, later, an MCP
//! server's) sits behind.
//!
//! - [`calc`]: `calculator`, exact arithmetic on integers and fractions of any size.
//! - [`units`]: `units`, conversion between units by exact factors.
//! - [`dates`]: `dates`, calendar arithmetic: differences, additions, business days.
//! - [`sql`]: a read-only query tool over an SQLite database the owner declares.
//! - [`plain`]: a question one of these answers on its own, and the answer stated from it.
//!
//! A tool takes JSON arguments that match its [`ToolSpec::parameters`] schema and returns a
//! JSON result, or a [`ToolError`] that says what was wrong; it never panics on its input,
//! and its cost is bounded (digits, rows, time). This crate decides nothing and records
//! nothing: the kernel authorises each call (`use-tool` on `Tool::"<name>"`) and records its
//! receipt.

pub mod calc;
pub mod dates;
mod json;
pub mod plain;
pub mod sql;
pub mod units;

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::Value;

/// What a model (or a client) is told about a tool: OpenAI's function shape.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ToolSpec {
    /// The name calls use (`^[a-zA-Z0-9_-]{1,64}$`).
    pub name: String,
    /// What it does, for the model.
    pub description: String,
    /// Its arguments, as a JSON Schema object.
    pub parameters: Value,
}

/// Why a call did not return a result.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ToolError {
    /// The arguments do not match the tool's schema.
    #[error("invalid arguments: {0}")]
    Arguments(String),
    /// The tool could not compute a result from valid arguments (division by zero, a date
    /// out of range, a query the database refuses).
    #[error("{0}")]
    Failed(String),
    /// The call passed its time limit.
    #[error("the call took longer than {0} ms")]
    TimedOut(u64),
}

/// A tool the kernel may call.
pub trait Tool: Send + Sync + std::fmt::Debug {
    /// Its name, description and argument schema.
    fn spec(&self) -> &ToolSpec;
    /// What the receipt names as its version: `sov-tools/<version>` for a built-in, the
    /// SHA-256 of its executable and tool list for a server's.
    fn version(&self) -> String;
    /// Runs it. Blocking and bounded: the kernel calls it off the async threads.
    fn call(&self, args: &Value) -> Result<Value, ToolError>;
}

/// The version built-in tools report.
pub fn builtin_version() -> String {
    format!("sov-tools/{}", env!("CARGO_PKG_VERSION"))
}

/// The tools a node offers, by name.
#[derive(Debug, Clone, Default)]
pub struct Toolbox {
    tools: BTreeMap<String, Arc<dyn Tool>>,
}

impl Toolbox {
    /// The built-in tools every node has: `calculator`, `units`, `dates`.
    pub fn builtins() -> Self {
        let mut b = Self::default();
        for t in [
            Arc::new(calc::Calculator::new()) as Arc<dyn Tool>,
            Arc::new(units::Units::new()),
            Arc::new(dates::Dates::new()),
        ] {
            b.tools.insert(t.spec().name.clone(), t);
        }
        b
    }

    /// Adds `tool`; refused when its name is taken or not a valid tool name.
    pub fn add(&mut self, tool: Arc<dyn Tool>) -> Result<(), String> {
        let name = tool.spec().name.clone();
        if !valid_name(&name) {
            return Err(format!(
                "`{name}` is not a tool name (1 to 64 of a-z A-Z 0-9 _ -)"
            ));
        }
        if self.tools.contains_key(&name) {
            return Err(format!("a tool named `{name}` is already installed"));
        }
        self.tools.insert(name, tool);
        Ok(())
    }

    /// The tool `name`.
    pub fn get(&self, name: &str) -> Option<&Arc<dyn Tool>> {
        self.tools.get(name)
    }

    /// The installed tools' names, in order.
    pub fn names(&self) -> Vec<String> {
        self.tools.keys().cloned().collect()
    }

    /// Every tool, by name.
    pub fn iter(&self) -> impl Iterator<Item = (&String, &Arc<dyn Tool>)> {
        self.tools.iter()
    }
}

pub use sov_infer::functions::valid_name;
