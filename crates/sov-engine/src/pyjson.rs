//! The `tojson` filter as Hugging Face's template renderer defines it: Python's
//! `json.dumps(value, ensure_ascii=False, indent=indent, separators=separators,
//! sort_keys=sort_keys)`. Chat templates written for that renderer (the ones that offer tools
//! write each tool with `tool | tojson`) were trained on its output: `", "` and `": "` between
//! items, keys in their given order, `<` and `>` as they are. minijinja's own `tojson` writes
//! compact JSON with HTML characters escaped (`\u003c`), which is another text than the one
//! the model learned.
//!
//! Numbers are written as `serde_json` writes them, which is Python's text for integers and
//! for most floats (Python writes `1e-05` where this writes `1e-5`).

use minijinja::value::{Kwargs, Value};
use minijinja::{Error, ErrorKind};
use serde_json::Value as Json;

/// How deep a value may nest before `tojson` refuses it (a template renders what the request
/// gave it).
const MAX_DEPTH: usize = 128;

struct Style {
    indent: Option<String>,
    item: String,
    key: String,
    ascii: bool,
    sort: bool,
}

/// The filter: `value | tojson`, `tojson(indent=2)`, `tojson(separators=(",", ":"))`,
/// `tojson(sort_keys=true)`, `tojson(ensure_ascii=true)`.
pub(crate) fn tojson(value: &Value, indent: Option<Value>, kwargs: Kwargs) -> Result<Value, Error> {
    let indent = match indent {
        Some(v) => Some(v),
        None => kwargs.get::<Option<Value>>("indent")?,
    };
    let indent = match indent {
        None => None,
        Some(v) if v.is_none() => None,
        Some(v) => match v.as_str() {
            Some(s) => Some(s.to_owned()),
            None => Some(" ".repeat(usize::try_from(v)?)),
        },
    };
    let separators: Option<Vec<String>> = kwargs.get("separators")?;
    let (item, key) = match separators {
        Some(pair) => match <[String; 2]>::try_from(pair) {
            Ok([item, key]) => (item, key),
            Err(_) => {
                return Err(Error::new(
                    ErrorKind::InvalidOperation,
                    "tojson: separators must be a pair of strings",
                ));
            }
        },
        // Python's defaults: no space at a line's end when indenting.
        None if indent.is_some() => (",".to_owned(), ": ".to_owned()),
        None => (", ".to_owned(), ": ".to_owned()),
    };
    let style = Style {
        indent,
        item,
        key,
        ascii: kwargs.get::<Option<bool>>("ensure_ascii")?.unwrap_or(false),
        sort: kwargs.get::<Option<bool>>("sort_keys")?.unwrap_or(false),
    };
    kwargs.assert_all_used()?;
    let json = serde_json::to_value(value).map_err(|e| {
        Error::new(ErrorKind::InvalidOperation, "tojson: cannot serialize").with_source(e)
    })?;
    let mut out = String::new();
    write(&json, &style, 0, &mut out)?;
    Ok(Value::from_safe_string(out))
}

fn write(value: &Json, style: &Style, depth: usize, out: &mut String) -> Result<(), Error> {
    if depth > MAX_DEPTH {
        return Err(Error::new(
            ErrorKind::InvalidOperation,
            "tojson: the value nests too deeply",
        ));
    }
    match value {
        Json::Null => out.push_str("null"),
        Json::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Json::Number(n) => out.push_str(&n.to_string()),
        Json::String(s) => string(s, style.ascii, out),
        Json::Array(items) => {
            if items.is_empty() {
                out.push_str("[]");
                return Ok(());
            }
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                separate(i, style, depth + 1, out);
                write(item, style, depth + 1, out)?;
            }
            close(style, depth, out);
            out.push(']');
        }
        Json::Object(map) => {
            if map.is_empty() {
                out.push_str("{}");
                return Ok(());
            }
            let mut entries: Vec<(&String, &Json)> = map.iter().collect();
            if style.sort {
                entries.sort_by(|a, b| a.0.cmp(b.0));
            }
            out.push('{');
            for (i, (key, item)) in entries.into_iter().enumerate() {
                separate(i, style, depth + 1, out);
                string(key, style.ascii, out);
                out.push_str(&style.key);
                write(item, style, depth + 1, out)?;
            }
            close(style, depth, out);
            out.push('}');
        }
    }
    Ok(())
}

/// What comes before the `i`th item of a container at `depth`.
fn separate(i: usize, style: &Style, depth: usize, out: &mut String) {
    if i > 0 {
        out.push_str(&style.item);
    }
    if let Some(indent) = &style.indent {
        out.push('\n');
        out.push_str(&indent.repeat(depth));
    }
}

/// What comes before a container's closing bracket.
fn close(style: &Style, depth: usize, out: &mut String) {
    if let Some(indent) = &style.indent {
        out.push('\n');
        out.push_str(&indent.repeat(depth));
    }
}

/// A JSON string as Python writes it: `"` `\` and the C0 controls escaped (`\n`, `\r`, `\t`,
/// `\b`, `\f` by name, the rest as `\u00XX`), which is what `serde_json` writes too; with
/// `ascii`, everything above U+007F as `\uXXXX` (a surrogate pair above U+FFFF).
fn string(s: &str, ascii: bool, out: &mut String) {
    let escaped = Json::String(s.to_owned()).to_string();
    if !ascii {
        out.push_str(&escaped);
        return;
    }
    // The escapes are ASCII: every other character in the text is one of `s`'s own.
    for c in escaped.chars() {
        if c.is_ascii() {
            out.push(c);
        } else {
            let mut units = [0u16; 2];
            for unit in c.encode_utf16(&mut units) {
                out.push_str(&format!("\\u{unit:04x}"));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use minijinja::Environment;
    use serde_json::json;

    fn render(source: &str, value: serde_json::Value) -> String {
        let mut env = Environment::new();
        env.add_filter("tojson", super::tojson);
        env.render_str(source, minijinja::context! { v => value })
            .unwrap()
    }

    /// Each expectation is what CPython 3's `json.dumps` writes for the same value and
    /// arguments (checked with `python3 -c 'import json; print(json.dumps(...))'`).
    #[test]
    fn writes_what_python_writes() {
        let tool = json!({"type": "function", "function": {"name": "get_weather", "description": "Wetter <heute> & 'morgen'", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}});
        assert_eq!(
            render("{{ v | tojson }}", tool.clone()),
            r#"{"type": "function", "function": {"name": "get_weather", "description": "Wetter <heute> & 'morgen'", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}"#
        );
        assert_eq!(
            render("{{ v | tojson(indent=2) }}", json!({"a": [1, {}], "b": []})),
            "{\n  \"a\": [\n    1,\n    {}\n  ],\n  \"b\": []\n}"
        );
        assert_eq!(
            render("{{ v | tojson(indent=4) }}", json!({"k": "v"})),
            "{\n    \"k\": \"v\"\n}"
        );
        assert_eq!(
            render(
                "{{ v | tojson(separators=(',', ':'), sort_keys=true) }}",
                json!({"b": 1, "a": [true, null, 1.5]})
            ),
            r#"{"a":[true,null,1.5],"b":1}"#
        );
        assert_eq!(
            render("{{ v | tojson }}", json!("é\n\u{1}\"\\😀")),
            "\"é\\n\\u0001\\\"\\\\😀\""
        );
        assert_eq!(
            render("{{ v | tojson(ensure_ascii=true) }}", json!("é😀")),
            r#""\u00e9\ud83d\ude00""#
        );
    }

    #[test]
    fn refuses_what_it_cannot_write() {
        let mut env = Environment::new();
        env.add_filter("tojson", super::tojson);
        let bad = env.render_str(
            "{{ 1 | tojson(separators=(',',)) }}",
            minijinja::context! {},
        );
        assert!(bad.is_err());
        let bad = env.render_str("{{ 1 | tojson(colour=1) }}", minijinja::context! {});
        assert!(bad.is_err());
        let mut deep = json!(1);
        for _ in 0..200 {
            deep = json!([deep]);
        }
        let bad = env.render_str("{{ v | tojson }}", minijinja::context! { v => deep });
        assert!(bad.is_err());
    }
}
