//! Function calling and structured output: what a request offers the model (functions, a
//! tool choice, a response format), how that reaches a model whose chat template knows no
//! tools (the **generic format**), the grammar that constrains sampling to it, and reading
//! the calls back out of the answer.
//!
//! The generic format, documented so that a client or a fine-tune can rely on it:
//!
//! - the offered functions are described in a system message ([`Functions::instructions`]);
//! - a call is `<tool_call>{"name": "NAME", "arguments": {...}}</tool_call>`, one per call,
//!   on lines of their own ([`render_call`]); earlier calls in the conversation are rendered
//!   the same way in the assistant's turn, and their results as a user turn
//!   `Result of NAME (call ID): CONTENT` ([`render_result`]);
//! - sampling is constrained by a grammar ([`Functions::grammar`], llguidance's Lark syntax
//!   with inline JSON schemas): `required` or a named function allows only calls; `auto`
//!   allows either text that does not start with `<` or calls; `none` offers nothing. So a
//!   call the answer holds always parses and matches its function's schema, unless the
//!   answer was cut by `max_tokens` inside its first call (then it is returned as text,
//!   `finish_reason: length`); cut after whole calls, those calls are its calls. A named
//!   function is called once; otherwise `parallel_tool_calls` allows up to [`MAX_CALLS`], and
//!   a call repeated with the same arguments counts once.
//!
//! A model whose chat template offers tools itself (the Hermes format: the template reads
//! `tools` and writes `<tool_call>`; `sov_engine::ChatTemplate::takes_tools`) is given the
//! functions there instead ([`Functions::tools`], OpenAI's shape), with the same grammar except
//! that the call's JSON may stand on a line of its own between the tags
//! ([`Functions::template_grammar`]). Earlier calls and results in the conversation stay in
//! the generic format's words for every model.
//!
//! A `json_object` or `json_schema` response format is a grammar of one JSON value
//! ([`Format::grammar`]), with the schema also stated to the model. In every schema the
//! grammar enforces, an object that does not say `additionalProperties` is closed
//! ([`close_objects`]), `strict` or not.

use serde_json::{Value, json};

/// What opens a call in the generic format.
pub const OPEN: &str = "<tool_call>";
/// What closes it.
pub const CLOSE: &str = "</tool_call>";
/// The most calls one answer may make.
pub const MAX_CALLS: usize = 8;

/// A function the model may call.
#[derive(Debug, Clone, PartialEq)]
pub struct Function {
    /// Its name (`^[a-zA-Z0-9_-]{1,64}$`).
    pub name: String,
    /// What it does.
    pub description: String,
    /// Its arguments' JSON schema (an object schema).
    pub parameters: Value,
}

/// Which calls the model may or must make.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Choice {
    /// No call: the functions are not offered.
    None,
    /// Text or calls, as the model chooses.
    Auto,
    /// At least one call.
    Required,
    /// A call of this function.
    Named(String),
}

/// The functions a request offers.
#[derive(Debug, Clone, PartialEq)]
pub struct Functions {
    /// The functions, in the request's order.
    pub functions: Vec<Function>,
    /// Which calls.
    pub choice: Choice,
    /// Whether several calls may be made at once.
    pub parallel: bool,
}

/// The shape the answer must take.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Format {
    /// Any text.
    #[default]
    Text,
    /// One JSON object.
    JsonObject,
    /// One JSON value matching `schema`.
    JsonSchema {
        /// The schema's name.
        name: String,
        /// The schema.
        schema: Value,
    },
}

/// Whether `name` is a function name OpenAI accepts: 1 to 64 of `a-z A-Z 0-9 _ -` (for the
/// functions a request offers and the tools a node installs alike).
pub fn valid_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// A call read out of an answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    /// The function.
    pub name: String,
    /// Its arguments, as JSON text.
    pub arguments: String,
}

/// JSON the grammar asks for: `": "` and `", "` between items, no other whitespace (a small
/// model otherwise fills the answer with blank lines), and every object closed
/// ([`close_objects`]).
fn compact(mut schema: Value) -> Value {
    close_objects(&mut schema, 0);
    if let Value::Object(map) = &mut schema {
        map.insert(
            "x-guidance".into(),
            json!({"whitespace_flexible": false, "key_separator": ": ", "item_separator": ", "}),
        );
    }
    schema
}

/// How deep [`close_objects`] looks into a schema.
const MAX_SCHEMA_DEPTH: usize = 64;

/// Gives every object schema that names its `properties` but does not say
/// `additionalProperties` the value `false`, as OpenAI's strict mode does: the answer may hold
/// only the properties the schema names (a 135M model given an open object copies the
/// schema's own keywords into it until `max_tokens`); and every integer without bounds the
/// bounds of I-JSON (±(2^53 - 1)). Restrictions only: what matches the tightened schema
/// matches the one given.
pub fn close_objects(schema: &mut Value, depth: usize) {
    let Value::Object(map) = schema else { return };
    if depth > MAX_SCHEMA_DEPTH {
        return;
    }
    // An object with named properties; `{"type": "object"}` alone stays any object.
    if map.contains_key("properties") && !map.contains_key("additionalProperties") {
        map.insert("additionalProperties".into(), Value::Bool(false));
    }
    // An integer within I-JSON's range (RFC 7493: ±(2^53 - 1)), so that a digit the model
    // repeats cannot run to `max_tokens`.
    if map.get("type").is_some_and(|t| t == "integer") {
        const SAFE: i64 = (1 << 53) - 1;
        map.entry("maximum").or_insert(json!(SAFE));
        map.entry("minimum").or_insert(json!(-SAFE));
    }
    for (key, value) in map.iter_mut() {
        match key.as_str() {
            "properties" | "$defs" | "definitions" | "patternProperties" => {
                if let Value::Object(children) = value {
                    for child in children.values_mut() {
                        close_objects(child, depth + 1);
                    }
                }
            }
            "items" | "additionalProperties" | "not" | "if" | "then" | "else" => {
                close_objects(value, depth + 1);
            }
            "anyOf" | "oneOf" | "allOf" | "prefixItems" => {
                if let Value::Array(children) = value {
                    for child in children {
                        close_objects(child, depth + 1);
                    }
                }
            }
            _ => {}
        }
    }
}

impl Functions {
    /// Whether any function is offered (a choice other than `none`, and functions to offer).
    pub fn offered(&self) -> bool {
        self.choice != Choice::None && !self.functions.is_empty()
    }

    /// The functions a call may name (all, or the named one).
    fn callable(&self) -> Vec<&Function> {
        match &self.choice {
            Choice::Named(n) => self.functions.iter().filter(|f| &f.name == n).collect(),
            _ => self.functions.iter().collect(),
        }
    }

    /// The schema of one call: `{"name": <one of the functions>, "arguments": <its schema>}`.
    fn call_schema(&self) -> Value {
        let calls: Vec<Value> = self
            .callable()
            .into_iter()
            .map(|f| {
                json!({
                    "type": "object",
                    "properties": {"name": {"const": f.name}, "arguments": f.parameters},
                    "required": ["name", "arguments"],
                    "additionalProperties": false
                })
            })
            .collect();
        compact(json!({ "anyOf": calls }))
    }

    /// The system message that offers the functions, or `None` when none are offered.
    pub fn instructions(&self) -> Option<String> {
        if !self.offered() {
            return None;
        }
        let mut text = String::from(
            "You can call functions. To call one, answer with only\n\
             <tool_call>{\"name\": \"FUNCTION\", \"arguments\": {ARGUMENTS}}</tool_call>\n",
        );
        text.push_str(match &self.choice {
            Choice::Auto => "Call a function when it helps answer; otherwise answer in words.\n",
            _ => "You must call a function.\n",
        });
        text.push_str("The functions:\n");
        for f in self.callable() {
            let spec =
                json!({"name": f.name, "description": f.description, "parameters": f.parameters});
            text.push_str(&spec.to_string());
            text.push('\n');
        }
        Some(text)
    }

    /// The functions in OpenAI's shape (`{"type": "function", "function": {"name",
    /// "description", "parameters"}}`), for a chat template that offers tools itself; `None`
    /// when none are offered. Only the named one under a named choice.
    pub fn tools(&self) -> Option<Vec<Value>> {
        if !self.offered() {
            return None;
        }
        Some(
            self.callable()
                .into_iter()
                .map(|f| {
                    json!({"type": "function", "function": {
                        "name": f.name, "description": f.description, "parameters": f.parameters
                    }})
                })
                .collect(),
        )
    }

    /// The grammar for the answer, or `None` when no function is offered.
    pub fn grammar(&self) -> Option<String> {
        self.grammar_of(&format!("call: \"{OPEN}\" fn \"{CLOSE}\""))
    }

    /// [`Functions::grammar`] for a model offered its functions by its own template: the
    /// call's JSON may also stand on a line of its own between the tags, as such templates
    /// show it (`<tool_call>\n{...}\n</tool_call>`).
    pub fn template_grammar(&self) -> Option<String> {
        self.grammar_of(&format!(
            "call: \"{OPEN}\" \"\\n\"? fn \"\\n\"? \"{CLOSE}\""
        ))
    }

    fn grammar_of(&self, call: &str) -> Option<String> {
        if !self.offered() {
            return None;
        }
        // A named function is called once; otherwise, with `parallel`, up to MAX_CALLS.
        let more = if self.parallel && !matches!(self.choice, Choice::Named(_)) {
            format!("(\"\\n\" call){{0,{}}}", MAX_CALLS - 1)
        } else {
            String::new()
        };
        let calls = format!("call {more}");
        let start = match self.choice {
            Choice::Auto => format!("start: TEXT | {calls}\nTEXT: /[^<](.|\\n)*/\n"),
            _ => format!("start: {calls}\n"),
        };
        Some(format!(
            "%llguidance {{}}\n{start}{call}\nfn: %json {}\n",
            self.call_schema()
        ))
    }
}

impl Format {
    /// The grammar for the answer, or `None` for text.
    pub fn grammar(&self) -> Option<String> {
        let schema = match self {
            Format::Text => return None,
            Format::JsonObject => json!({"type": "object"}),
            Format::JsonSchema { schema, .. } => schema.clone(),
        };
        Some(format!(
            "%llguidance {{}}\nstart: value\nvalue: %json {}\n",
            compact(schema)
        ))
    }

    /// What the model is told about the shape of its answer, or `None` for text.
    pub fn instructions(&self) -> Option<String> {
        match self {
            Format::Text => None,
            Format::JsonObject => Some("Answer with only a JSON object.".into()),
            Format::JsonSchema { schema, .. } => Some(format!(
                "Answer with only a JSON value that matches this JSON schema:\n{schema}"
            )),
        }
    }

    /// `text`, `json_object` or `json_schema:NAME`, for the record.
    pub fn describe(&self) -> String {
        match self {
            Format::Text => "text".into(),
            Format::JsonObject => "json_object".into(),
            Format::JsonSchema { name, .. } => format!("json_schema:{name}"),
        }
    }
}

impl Choice {
    /// `none`, `auto`, `required` or the function's name, for the record.
    pub fn describe(&self) -> String {
        match self {
            Choice::None => "none".into(),
            Choice::Auto => "auto".into(),
            Choice::Required => "required".into(),
            Choice::Named(n) => format!("function:{n}"),
        }
    }
}

/// A call as the generic format writes it in the assistant's turn: the name first, as the
/// instructions show it (built by hand: `serde_json`'s key order depends on its features).
pub fn render_call(name: &str, arguments: &Value) -> String {
    format!(
        "{OPEN}{{\"name\": {}, \"arguments\": {arguments}}}{CLOSE}",
        Value::String(name.to_owned())
    )
}

/// A function's result as the generic format gives it back to the model (a user turn).
pub fn render_result(name: &str, call_id: &str, content: &str) -> String {
    format!("Result of {name} (call {call_id}): {content}")
}

/// The calls an answer makes, when it is nothing but calls (whitespace between them); `None`
/// when it is text, or a call that does not parse. With `cut` (the answer reached
/// `max_tokens`), the whole calls before an unfinished last one are the answer's calls (a
/// small model offered parallel calls often repeats its call until the limit); an answer cut
/// inside its first call has none.
pub fn parse_calls(answer: &str, cut: bool) -> Option<Vec<Call>> {
    let mut rest = answer.trim_start();
    if !rest.starts_with(OPEN) {
        return None;
    }
    let mut calls = Vec::new();
    while let Some(after) = rest.strip_prefix(OPEN) {
        let Some((call, tail)) = one_call(after) else {
            // Unfinished: the calls so far, if the answer was cut here.
            return (cut && !calls.is_empty()).then_some(calls);
        };
        // The same function with the same arguments twice is one call (a small model offered
        // parallel calls repeats its call until it may make no more).
        if !calls.contains(&call) {
            calls.push(call);
        }
        rest = tail.trim_start();
        if calls.len() > MAX_CALLS {
            return None;
        }
    }
    let unfinished_open = cut && !rest.is_empty() && OPEN.starts_with(rest);
    ((rest.is_empty() || unfinished_open) && !calls.is_empty()).then_some(calls)
}

/// One call's JSON and `</tool_call>`, and what follows it.
fn one_call(after: &str) -> Option<(Call, &str)> {
    let mut values = serde_json::Deserializer::from_str(after).into_iter::<Value>();
    let value = values.next()?.ok()?;
    let used = values.byte_offset();
    let tail = after.get(used..)?.trim_start().strip_prefix(CLOSE)?;
    let name = value.get("name")?.as_str()?.to_owned();
    let arguments = value.get("arguments")?.to_string();
    Some((Call { name, arguments }, tail))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn weather() -> Functions {
        Functions {
            functions: vec![Function {
                name: "get_weather".into(),
                description: "The weather in a city".into(),
                parameters: json!({"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}),
            }],
            choice: Choice::Required,
            parallel: false,
        }
    }

    #[test]
    fn calls_parse_back_as_written() {
        let one = render_call("get_weather", &json!({"city": "Paris"}));
        assert_eq!(
            parse_calls(&one, false),
            Some(vec![Call {
                name: "get_weather".into(),
                arguments: r#"{"city":"Paris"}"#.into()
            }])
        );
        let two = format!("{one}\n{}", render_call("x", &json!({"a": "</tool_call>"})));
        let calls = parse_calls(&two, false).unwrap();
        assert_eq!(calls.len(), 2);
        assert_eq!(calls[1].arguments, r#"{"a":"</tool_call>"}"#);
        assert_eq!(parse_calls("The weather is fine.", false), None);
        let cut_first = r#"<tool_call>{"name": "get_weather", "argu"#;
        assert_eq!(parse_calls(cut_first, false), None);
        assert_eq!(parse_calls(cut_first, true), None);
        assert_eq!(parse_calls(&format!("{one} and more"), false), None);
        assert_eq!(
            parse_calls(r#"<tool_call>{"arguments": {}}</tool_call>"#, false),
            None
        );
        // Cut by max_tokens after whole calls: those calls, and only when cut.
        let cut_second = format!("{one}\n{cut_first}");
        assert_eq!(parse_calls(&cut_second, false), None);
        assert_eq!(parse_calls(&cut_second, true).unwrap().len(), 1);
        assert_eq!(
            parse_calls(&format!("{one}\n<tool_"), true).unwrap().len(),
            1
        );
        assert_eq!(parse_calls(&format!("{one}\nhello"), true), None);
        // A repeated call is one call.
        assert_eq!(
            parse_calls(&format!("{one}\n{one}\n{one}"), false)
                .unwrap()
                .len(),
            1
        );
    }

    #[test]
    fn the_grammar_follows_the_choice() {
        let mut f = weather();
        let g = f.grammar().unwrap();
        assert!(g.starts_with("%llguidance {}\nstart: call \n"), "{g}");
        assert!(g.contains(r#""const":"get_weather""#), "{g}");
        f.choice = Choice::Auto;
        f.parallel = true;
        let g = f.grammar().unwrap();
        assert!(g.contains("start: TEXT | call (\"\\n\" call){0,7}"), "{g}");
        f.choice = Choice::Named("get_weather".into());
        assert!(
            f.grammar().unwrap().contains("start: call \n"),
            "one call of a named function"
        );
        f.choice = Choice::None;
        assert_eq!(f.grammar(), None);
        assert_eq!(f.instructions(), None);
        assert_eq!(Format::Text.grammar(), None);
        assert!(
            Format::JsonObject
                .grammar()
                .unwrap()
                .contains(r#"%json {"type":"object""#)
        );
    }

    #[test]
    fn a_template_is_offered_the_callable_functions_in_openai_s_shape() {
        let mut f = weather();
        assert_eq!(
            f.tools().unwrap(),
            vec![
                json!({"type": "function", "function": {"name": "get_weather",
                "description": "The weather in a city", "parameters": f.functions[0].parameters}})
            ]
        );
        let g = f.template_grammar().unwrap();
        assert!(
            g.contains("call: \"<tool_call>\" \"\\n\"? fn \"\\n\"? \"</tool_call>\"\n"),
            "{g}"
        );
        // The call parses back laid out on lines of its own, as such templates show it.
        let laid_out = "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Oslo\"}}\n</tool_call>";
        assert_eq!(parse_calls(laid_out, false).unwrap()[0].name, "get_weather");
        f.choice = Choice::None;
        assert_eq!(f.tools(), None);
        assert_eq!(f.template_grammar(), None);
    }

    #[test]
    fn objects_are_closed_unless_they_say_otherwise() {
        let mut s = json!({"type": "object", "properties": {
            "a": {"type": "object", "properties": {"b": {"type": "string"}}},
            "c": {"type": "object", "additionalProperties": {"type": "integer"}},
            "d": {"type": "array", "items": {"properties": {"e": {}}}},
            "f": {"anyOf": [{"type": ["object", "null"], "properties": {}}, {"type": "string"}]}
        }, "$defs": {"g": {"properties": {"h": {"type": "object"}}}}});
        close_objects(&mut s, 0);
        assert_eq!(s["additionalProperties"], false);
        assert_eq!(s["properties"]["a"]["additionalProperties"], false);
        assert_eq!(
            s["properties"]["c"]["additionalProperties"]["type"],
            "integer"
        );
        assert_eq!(s["properties"]["d"]["items"]["additionalProperties"], false);
        assert_eq!(
            s["properties"]["f"]["anyOf"][0]["additionalProperties"],
            false
        );
        assert!(
            s["properties"]["f"]["anyOf"][1]
                .get("additionalProperties")
                .is_none()
        );
        assert_eq!(s["$defs"]["g"]["additionalProperties"], false);
        assert_eq!(
            s["properties"]["c"]["additionalProperties"]["maximum"],
            (1i64 << 53) - 1
        );
        // Any object stays any object.
        assert!(
            s["$defs"]["g"]["properties"]["h"]
                .get("additionalProperties")
                .is_none()
        );
    }
}
