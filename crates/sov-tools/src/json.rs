//! Reading a tool's arguments: one typed struct per tool, unknown fields refused, and an
//! error that names the field.

use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::ToolError;

/// `args` as `T`, or an error naming what is wrong.
pub(crate) fn args<T: DeserializeOwned>(args: &Value) -> Result<T, ToolError> {
    if !args.is_object() {
        return Err(ToolError::Arguments(
            "the arguments must be a JSON object".into(),
        ));
    }
    T::deserialize(args).map_err(|e| ToolError::Arguments(e.to_string()))
}

/// A decimal number given as a JSON string (`"12.5"`) or number (`12.5`), kept exact: a
/// number is read from its shortest decimal text, not from its binary value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Decimal(pub String);

impl<'de> serde::Deserialize<'de> for Decimal {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match Value::deserialize(d)? {
            Value::String(s) => Ok(Self(s)),
            Value::Number(n) => Ok(Self(n.to_string())),
            other => Err(serde::de::Error::custom(format!(
                "expected a number or a decimal string, found {other}"
            ))),
        }
    }
}
