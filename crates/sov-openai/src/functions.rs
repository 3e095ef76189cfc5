//! The function-calling and structured-output fields of a chat request (`tools`,
//! `tool_choice`, `parallel_tool_calls`, `response_format`), checked and turned into what the
//! kernel offers the model ([`sov_infer::functions`]); and the assistant's earlier calls and
//! the tools' results in the conversation, rendered in the generic format.

use std::collections::BTreeSet;

use serde::Deserialize;
use serde_json::Value;
use sov_infer::functions::{Choice, Format, Function, Functions, valid_name};

use crate::WireError;

/// The most functions one request may offer.
pub const MAX_FUNCTIONS: usize = 64;

/// One entry of `tools`: `{"type": "function", "function": {...}}`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ToolDef {
    /// Only `function`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The function.
    pub function: FunctionDef,
}

/// A function's definition.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FunctionDef {
    /// Its name.
    pub name: String,
    /// What it does.
    #[serde(default)]
    pub description: Option<String>,
    /// Its arguments' JSON schema.
    #[serde(default)]
    pub parameters: Option<Value>,
    /// Accepted; every schema is enforced while sampling, strict or not.
    #[serde(default)]
    pub strict: Option<bool>,
}

/// A call in an assistant message: `{"id", "type": "function", "function": {"name", "arguments"}}`.
#[derive(Debug, Clone, Deserialize)]
pub struct WireCall {
    /// The call's id, which the tool message answering it names.
    #[serde(default)]
    pub id: Option<String>,
    /// Only `function`.
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
    /// What was called.
    pub function: WireCallFunction,
}

/// The function and arguments of a call.
#[derive(Debug, Clone, Deserialize)]
pub struct WireCallFunction {
    /// The function's name.
    pub name: String,
    /// The arguments as JSON text.
    #[serde(default)]
    pub arguments: String,
}

/// The functions offered by `tools`, `tool_choice` and `parallel_tool_calls`; `None` without
/// tools.
pub fn functions(
    tools: Option<&Value>,
    tool_choice: Option<&Value>,
    parallel: Option<bool>,
) -> Result<Option<Functions>, WireError> {
    let tools = match tools {
        None | Some(Value::Null) => {
            if tool_choice.is_some_and(|c| !c.is_null()) {
                return Err(WireError::new(
                    "tool_choice is only allowed when tools are specified.",
                    "tool_choice",
                ));
            }
            return Ok(None);
        }
        Some(t) => t,
    };
    let defs: Vec<ToolDef> = serde_json::from_value(tools.clone())
        .map_err(|e| WireError::new(format!("tools: {e}"), "tools"))?;
    if defs.is_empty() {
        return Err(WireError::new("tools must not be empty.", "tools"));
    }
    if defs.len() > MAX_FUNCTIONS {
        return Err(WireError::new(
            format!("at most {MAX_FUNCTIONS} tools may be given."),
            "tools",
        ));
    }
    let mut seen = BTreeSet::new();
    let mut out = Vec::with_capacity(defs.len());
    for (i, d) in defs.into_iter().enumerate() {
        if d.kind != "function" {
            return Err(WireError::new(
                format!("tools[{i}].type must be \"function\"."),
                "tools",
            ));
        }
        let name = d.function.name;
        if !valid_name(&name) {
            return Err(WireError::new(
                format!("tools[{i}].function.name must be 1 to 64 of a-z, A-Z, 0-9, _ and -."),
                "tools",
            ));
        }
        if !seen.insert(name.clone()) {
            return Err(WireError::new(
                format!("tools[{i}]: the function `{name}` is given twice."),
                "tools",
            ));
        }
        let parameters = match d.function.parameters {
            None => serde_json::json!({"type": "object", "properties": {}}),
            Some(p @ Value::Object(_)) => p,
            Some(_) => {
                return Err(WireError::new(
                    format!("tools[{i}].function.parameters must be a JSON schema object."),
                    "tools",
                ));
            }
        };
        out.push(Function {
            name,
            description: d.function.description.unwrap_or_default(),
            parameters,
        });
    }
    let choice = match tool_choice {
        None | Some(Value::Null) => Choice::Auto,
        Some(Value::String(s)) => match s.as_str() {
            "none" => Choice::None,
            "auto" => Choice::Auto,
            "required" => Choice::Required,
            other => {
                return Err(WireError::new(
                    format!(
                        "tool_choice must be \"none\", \"auto\", \"required\" or a function, not {other:?}."
                    ),
                    "tool_choice",
                ));
            }
        },
        Some(v) => {
            let name = v
                .get("function")
                .and_then(|f| f.get("name"))
                .and_then(Value::as_str)
                .filter(|_| v.get("type").and_then(Value::as_str) == Some("function"))
                .ok_or_else(|| {
                    WireError::new(
                        "tool_choice must be {\"type\": \"function\", \"function\": {\"name\": ...}}.",
                        "tool_choice",
                    )
                })?;
            if !seen.contains(name) {
                return Err(WireError::new(
                    format!("tool_choice names `{name}`, which is not among the tools."),
                    "tool_choice",
                ));
            }
            Choice::Named(name.to_owned())
        }
    };
    Ok(Some(Functions {
        functions: out,
        choice,
        parallel: parallel.unwrap_or(true),
    }))
}

/// The answer's format from `response_format`.
pub fn format(response_format: Option<&Value>) -> Result<Format, WireError> {
    let bad = |m: &str| WireError::new(m.to_owned(), "response_format");
    let Some(v) = response_format.filter(|v| !v.is_null()) else {
        return Ok(Format::Text);
    };
    match v.get("type").and_then(Value::as_str) {
        Some("text") => Ok(Format::Text),
        Some("json_object") => Ok(Format::JsonObject),
        Some("json_schema") => {
            let js = v.get("json_schema").ok_or_else(|| {
                bad("response_format.json_schema is required for type json_schema.")
            })?;
            let name = js
                .get("name")
                .and_then(Value::as_str)
                .filter(|n| valid_name(n))
                .ok_or_else(|| {
                    bad("response_format.json_schema.name must be 1 to 64 of a-z, A-Z, 0-9, _ and -.")
                })?;
            let schema = match js.get("schema") {
                None => serde_json::json!({}),
                Some(s @ (Value::Object(_) | Value::Bool(true))) => s.clone(),
                Some(_) => {
                    return Err(bad(
                        "response_format.json_schema.schema must be a JSON schema object.",
                    ));
                }
            };
            Ok(Format::JsonSchema {
                name: name.to_owned(),
                schema,
            })
        }
        _ => Err(bad(
            "response_format.type must be \"text\", \"json_object\" or \"json_schema\".",
        )),
    }
}
