//! Tool calls: one place where a tool is authorised, run and receipted, whoever asked for it
//! (a specialist's tool step now, a model's function call and an MCP server's tools next).
//!
//! A call: decide `use-tool` on `Tool::"<name>"` for the caller (a `policy.decision` entry;
//! refused, the call ends there with a receipt saying so), find the tool in the node's
//! [`Toolbox`], run it off the async threads within [`TOOL_TIMEOUT`], and submit its receipt: a
//! `tool.call` entry naming the tool, its version, the decision (policy set and deciding
//! policies), the round, and salted commitments to the exact argument and result bytes. The
//! request's own entry waits until the receipt is durable. A tool's error (invalid arguments,
//! division by zero, a refused query) is a result like any other: the receipt's outcome is
//! `error`, its reason the error, and the caller gets the error to show or hand to the model.

use std::time::{Duration, Instant};

use serde_json::Value;
use sov_audit_core::entry::Outcome;
use sov_policy::{Action, Permit, Resource};
pub use sov_tools::{Tool, ToolError, ToolSpec, Toolbox};

use crate::exchange::{Exchange, Receipt};
use crate::{Kernel, KernelError};

/// The longest a tool call may take before its caller is answered with an error.
pub const TOOL_TIMEOUT: Duration = Duration::from_secs(10);

/// A tool call that ran: what was asked and what came back.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolStep {
    /// The tool.
    pub tool: String,
    /// Its version, as the receipt names it.
    pub version: String,
    /// The arguments it was given.
    pub arguments: Value,
    /// Its result, or its error in words.
    pub result: Result<Value, String>,
}

impl Kernel {
    /// The tools the node offers.
    pub fn tools(&self) -> &Toolbox {
        &self.inner.tools
    }

    /// The tools the caller may use (one recorded `use-tool` decision each), with their
    /// versions.
    pub fn visible_tools(&self, ex: &mut Exchange) -> Vec<(ToolSpec, String)> {
        let mut out = Vec::new();
        for (name, tool) in self.inner.tools.iter() {
            if self
                .authorize(ex, Action::UseTool, &Resource::Tool(name.clone()))
                .is_ok()
            {
                out.push((tool.spec().clone(), tool.version()));
            }
        }
        out
    }

    /// Calls the tool `name` with `arguments` for the exchange's caller, in round `round` of
    /// a tool loop (see the module docs). `Err` only when the call was not made: not allowed,
    /// not installed, or not recorded.
    pub async fn call_tool(
        &self,
        ex: &mut Exchange,
        name: &str,
        arguments: Value,
        round: u32,
    ) -> Result<ToolStep, KernelError> {
        let resource = Resource::Tool(name.to_owned());
        let verdict = self
            .inner
            .guard
            .decide(ex.caller(), Action::UseTool, &resource, None);
        ex.decided(&verdict);
        let mut attrs = vec![
            ("policy_set".to_owned(), verdict.policy_set().to_owned()),
            ("round".to_owned(), round.to_string()),
        ];
        if !verdict.decision().policies().is_empty() {
            attrs.push(("policies".to_owned(), verdict.decision().policy_ids()));
        }
        let args_bytes = serde_json::to_vec(&arguments)
            .map_err(|e| KernelError::Internal(format!("tool arguments: {e}")))?;
        // A call not made still has its receipt, saying why.
        let refused = |ex: &mut Exchange, reason: &str, attrs| {
            ex.tool_receipt(Receipt {
                tool: name,
                version: "",
                arguments: &args_bytes,
                result: None,
                outcome: Outcome::Denied,
                reason,
                attrs,
            });
        };
        let Ok(permit) = verdict.into_permit() else {
            refused(ex, "permission denied: use-tool", attrs);
            return Err(KernelError::Forbidden(Action::UseTool, resource));
        };
        let Some(tool) = self.inner.tools.get(name).cloned() else {
            refused(ex, "no such tool is installed", attrs);
            return Err(KernelError::NotFound(format!(
                "no tool named `{name}` is installed"
            )));
        };
        let version = tool.version();
        let started = Instant::now();
        let result = run(&permit, tool, arguments.clone()).await;
        attrs.push((
            "duration_ms".to_owned(),
            started.elapsed().as_millis().to_string(),
        ));
        let (outcome, reason, body) = match &result {
            Ok(v) => (Outcome::Ok, String::new(), v.clone()),
            Err(e) => (
                Outcome::Error,
                e.to_string(),
                serde_json::json!({"error": e.to_string()}),
            ),
        };
        let result_bytes = serde_json::to_vec(&body)
            .map_err(|e| KernelError::Internal(format!("tool result: {e}")))?;
        ex.tool_receipt(Receipt {
            tool: name,
            version: &version,
            arguments: &args_bytes,
            result: Some(&result_bytes),
            outcome,
            reason: &reason,
            attrs,
        });
        Ok(ToolStep {
            tool: name.to_owned(),
            version,
            arguments,
            result: result.map_err(|e| e.to_string()),
        })
    }
}

/// Runs a tool a permit to `use-tool` names, on a blocking thread, within [`TOOL_TIMEOUT`].
async fn run(
    permit: &Permit,
    tool: std::sync::Arc<dyn Tool>,
    arguments: Value,
) -> Result<Value, ToolError> {
    debug_assert_eq!(permit.action(), Action::UseTool);
    if permit.resource() != &Resource::Tool(tool.spec().name.clone()) {
        return Err(ToolError::Failed(format!(
            "a permit for {} is not a permit to use {}",
            permit.resource(),
            tool.spec().name
        )));
    }
    let work = tokio::task::spawn_blocking(move || tool.call(&arguments));
    match tokio::time::timeout(TOOL_TIMEOUT, work).await {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => Err(ToolError::Failed(format!("the tool stopped: {e}"))),
        Err(_) => Err(ToolError::TimedOut(TOOL_TIMEOUT.as_millis() as u64)),
    }
}
