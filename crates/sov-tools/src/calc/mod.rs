//! `calculator`: exact arithmetic on integers and fractions of any size.
//!
//! An expression is written with symbols (`98765432123 * 123456789`, `3^50`, `(1 + 2) / 7`,
//! `5% of 200`, `sqrt 2`, `20!`) or words (`3 to the power of 50`, `22 divided by 7`,
//! `square root of 144`), read with ordinary precedence ([`parse`]) and computed over big
//! rationals ([`eval`]): never a float, so `0.1 + 0.2` is `0.3` and
//! `98765432123 * 123456789` has all its twenty digits. A result is stated as an integer, a
//! terminating decimal, or a fraction in lowest terms; asked for `places`, it is rounded half
//! away from zero to exactly that many decimal places. Irrational roots are the one
//! approximation, computed ten places beyond those shown and reported as not exact.
//!
//! [`recognise`] finds a plain computation in a question ("What is 3 to the power of 50?"),
//! which the kernel sends straight to the calculator.

pub mod eval;
pub mod lex;
pub mod parse;
mod recognise;

pub use recognise::{Recognised, recognise};

use lex::Token;

/// The longest expression, in bytes.
pub const MAX_EXPRESSION: usize = 4_096;
/// Decimal places shown for an inexact (root) result when none are asked for.
pub const DEFAULT_PLACES: u32 = 20;
/// The most decimal places of a terminating decimal shown as a decimal, not a fraction.
const DECIMAL_UP_TO: u32 = 50;

/// A computed result.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Calculation {
    /// The expression as read, in symbols (`3 ^ 50`).
    pub expression: String,
    /// The result to state: an integer, a decimal, or a fraction; rounded when `places` is set.
    pub result: String,
    /// Whether the expression's value is exactly known (false after an irrational root).
    pub exact: bool,
    /// Whether `result` is rounded (it differs from the exact value).
    pub rounded: bool,
    /// The exact value as a fraction in lowest terms, when it is not an integer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fraction: Option<String>,
    /// The decimal places asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub places: Option<u32>,
}

/// Why an expression was not computed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CalcError {
    /// Longer than [`MAX_EXPRESSION`].
    #[error("the expression is longer than {MAX_EXPRESSION} bytes")]
    TooLong,
    /// More places than [`eval::MAX_PLACES`].
    #[error("at most {} decimal places can be asked for", eval::MAX_PLACES)]
    TooManyPlaces,
    /// Not a number.
    #[error(transparent)]
    Lex(#[from] lex::LexError),
    /// Not an expression.
    #[error(transparent)]
    Parse(#[from] parse::ParseError),
    /// Not computable within the bounds, or not defined.
    #[error(transparent)]
    Eval(#[from] eval::EvalError),
}

/// Computes `expression`, rounded to `places` decimal places when given.
pub fn calculate(expression: &str, places: Option<u32>) -> Result<Calculation, CalcError> {
    if expression.len() > MAX_EXPRESSION {
        return Err(CalcError::TooLong);
    }
    let tokens = lex::lex(expression)?;
    compute(&tokens, places)
}

fn compute(tokens: &[Token], places: Option<u32>) -> Result<Calculation, CalcError> {
    if places.is_some_and(|p| p > eval::MAX_PLACES) {
        return Err(CalcError::TooManyPlaces);
    }
    let (tree, _ops) = parse::parse(tokens)?;
    let shown = places.unwrap_or(DEFAULT_PLACES);
    let v = eval::eval(&tree, eval::Limits { places: shown })?;
    let q = &v.q;
    let result = match places {
        Some(p) => eval::to_places(q, p),
        None if !v.exact => eval::to_places(q, DEFAULT_PLACES),
        None if q.is_integer() => eval::fraction(q),
        None => match eval::terminating_places(q, DECIMAL_UP_TO) {
            Some(p) => eval::to_places(q, p),
            None => eval::fraction(q),
        },
    };
    // Whether `result` differs from the exact value.
    let rounded = match places {
        Some(p) => !v.exact || eval::terminating_places(q, p).is_none(),
        None => !v.exact,
    };
    Ok(Calculation {
        expression: render(tokens),
        result,
        exact: v.exact,
        rounded,
        fraction: (v.exact && !q.is_integer()).then(|| eval::fraction(q)),
        places,
    })
}

/// The tokens of an expression in symbols, one space apart.
fn render(tokens: &[Token]) -> String {
    let parts: Vec<String> = tokens
        .iter()
        .map(|t| match t {
            Token::Num(n) => match eval::terminating_places(n, u32::MAX) {
                Some(p) => eval::to_places(n, p),
                None => eval::fraction(n),
            },
            Token::Plus => "+".into(),
            Token::Minus => "-".into(),
            Token::Times => "*".into(),
            Token::Divide => "/".into(),
            Token::Mod => "mod".into(),
            Token::Power => "^".into(),
            Token::Percent => "%".into(),
            Token::Of => "of".into(),
            Token::Factorial => "!".into(),
            Token::Squared => "^ 2".into(),
            Token::Cubed => "^ 3".into(),
            Token::Sqrt => "sqrt".into(),
            Token::Cbrt => "cbrt".into(),
            Token::Open => "(".into(),
            Token::Close => ")".into(),
            Token::Word(w) => w.clone(),
        })
        .collect();
    parts.join(" ")
}

#[cfg(test)]
mod tests;

/// The longest expression the calculator's schema offers a model (a constrained small model
/// otherwise repeats a term until its token limit; the tool itself reads up to 4 KiB).
pub const MAX_ARGUMENT_CHARS: usize = 200;

/// The `calculator` tool: `{"expression": "...", "places": N}`.
#[derive(Debug)]
pub struct Calculator {
    spec: crate::ToolSpec,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Args {
    expression: String,
    #[serde(default)]
    places: Option<u32>,
}

impl Calculator {
    /// The tool.
    pub fn new() -> Self {
        Self {
            spec: crate::ToolSpec {
                name: "calculator".into(),
                description: "Exact arithmetic on integers and fractions of any size: + - * / ^ \
                    (or words: plus, minus, times, divided by, to the power of), parentheses, \
                    percentages (5% of 200), mod, factorial (!), sqrt and cbrt. Give `places` to \
                    round the result to that many decimal places."
                    .into(),
                parameters: serde_json::json!({
                    "type": "object",
                    "properties": {
                        "expression": {
                            "type": "string",
                            "maxLength": MAX_ARGUMENT_CHARS,
                            "description": "The expression, e.g. 98765432123 * 123456789 or 3^50"
                        },
                        "places": {
                            "type": "integer", "minimum": 0, "maximum": eval::MAX_PLACES,
                            "description": "Decimal places to round the result to"
                        }
                    },
                    "required": ["expression"],
                    "additionalProperties": false
                }),
            },
        }
    }
}

impl Default for Calculator {
    fn default() -> Self {
        Self::new()
    }
}

impl crate::Tool for Calculator {
    fn spec(&self) -> &crate::ToolSpec {
        &self.spec
    }
    fn version(&self) -> String {
        crate::builtin_version()
    }
    fn call(&self, args: &serde_json::Value) -> Result<serde_json::Value, crate::ToolError> {
        let a: Args = crate::json::args(args)?;
        let c = calculate(&a.expression, a.places).map_err(|e| match e {
            CalcError::TooManyPlaces => crate::ToolError::Arguments(e.to_string()),
            other => crate::ToolError::Failed(other.to_string()),
        })?;
        serde_json::to_value(c).map_err(|e| crate::ToolError::Failed(e.to_string()))
    }
}

/// The exact value of `text` (a number such as `12.5`, or an exact expression such as
/// `1609.344/3600`), for the tools that take numbers.
pub fn exact_value(text: &str) -> Result<num_rational::BigRational, CalcError> {
    if text.len() > MAX_EXPRESSION {
        return Err(CalcError::TooLong);
    }
    let (tree, _) = parse::parse(&lex::lex(text)?)?;
    let v = eval::eval(&tree, eval::Limits { places: 0 })?;
    if !v.exact {
        return Err(CalcError::Eval(eval::EvalError::Domain(format!(
            "`{text}` has no exact value"
        ))));
    }
    Ok(v.q)
}
