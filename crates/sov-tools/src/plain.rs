//! Plain questions for a tool: a question that is only a computation, a conversion or a
//! calendar question is answered by the tool, without asking the model (a 135M model is a
//! weak tool caller: offered the tools, it called none of them when free to, and called the
//! wrong one with wrong arguments when made to). [`recognise`] finds such a question among
//! the tools a specialist has; [`statement`] is the answer, stated from the tool's result.
//!
//! - `calculator`: [`crate::calc::recognise`] (one expression, framing words around it).
//! - `units`: "convert 12.5 miles to km", "12.5 miles in kilometres", "how many pounds is
//!   70 kg".
//! - `dates` (ISO dates, `YYYY-MM-DD`): "what weekday is 2026-12-25", "how many days are
//!   there between 2026-01-01 and 2026-03-01" (the answer gives the business days too), "what
//!   date is 30 days after 2026-12-04" (days, weeks, months, years; after, from, before).
//!
//! Anything else goes to the model.

use serde_json::{Value, json};

use crate::calc;

/// A question one of the tools answers: the tool and its arguments.
#[derive(Debug, Clone, PartialEq)]
pub struct Plain {
    /// The tool's name.
    pub tool: &'static str,
    /// Its arguments.
    pub arguments: Value,
}

/// Words that may open or close a plain question.
const FRAMING: &[&str] = &[
    "what",
    "what's",
    "whats",
    "is",
    "are",
    "was",
    "will",
    "be",
    "the",
    "please",
    "can",
    "you",
    "could",
    "would",
    "tell",
    "me",
    "how",
    "much",
    "calculate",
    "compute",
    "give",
    "i",
    "need",
    "to",
    "know",
    "exactly",
    "a",
    "an",
    "that",
    "it",
    "there",
    "do",
    "does",
    "make",
];

/// The tool among `tools` that answers `question` on its own, and how it is called.
pub fn recognise(question: &str, tools: &[String]) -> Option<Plain> {
    let has = |t: &str| tools.iter().any(|x| x == t);
    if question.len() > 1_000 {
        return None;
    }
    if has("calculator")
        && let Some(r) = calc::recognise(question)
    {
        let mut arguments = json!({ "expression": r.expression });
        if let Some(p) = r.places {
            arguments["places"] = p.into();
        }
        return Some(Plain {
            tool: "calculator",
            arguments,
        });
    }
    let words = words(question);
    if has("units")
        && let Some(arguments) = units(&words)
    {
        return Some(Plain {
            tool: "units",
            arguments,
        });
    }
    if has("dates")
        && let Some(arguments) = dates(&low(&words))
    {
        return Some(Plain {
            tool: "dates",
            arguments,
        });
    }
    None
}

/// The question's words, without the punctuation that ends or separates them (a number's
/// decimal point and separators stay), as written and in lowercase (for matching).
fn words(question: &str) -> Vec<(String, String)> {
    question
        .split_whitespace()
        .map(|w| {
            w.trim_matches(|c: char| matches!(c, '?' | '!' | ',' | ';' | ':' | '"' | '(' | ')'))
                .trim_end_matches('.')
                .to_owned()
        })
        .filter(|w| !w.is_empty())
        .map(|w| (w.to_lowercase(), w))
        .collect()
}

/// The lowercase words.
fn low(w: &[(String, String)]) -> Vec<String> {
    w.iter().map(|(l, _)| l.clone()).collect()
}

/// The words as written, joined.
fn written(w: &[(String, String)]) -> String {
    w.iter()
        .map(|(_, o)| o.as_str())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Drops framing words from both ends.
fn trim<T: AsRef<str>>(mut w: &[T]) -> &[T] {
    let framing = |x: &T| FRAMING.contains(&x.as_ref());
    while let Some((first, rest)) = w.split_first() {
        if !framing(first) {
            break;
        }
        w = rest;
    }
    while let Some((last, rest)) = w.split_last() {
        if !framing(last) {
            break;
        }
        w = rest;
    }
    w
}

impl AsRef<str> for Word {
    fn as_ref(&self) -> &str {
        &self.0.0
    }
}

/// A word, lowercase and as written; compared by its lowercase form.
#[derive(Debug, Clone)]
struct Word((String, String));

fn is_number(w: &str) -> bool {
    w.starts_with(|c: char| c.is_ascii_digit() || c == '-' || c == '.')
        && calc::exact_value(w).is_ok()
}

fn is_unit(words: &[Word]) -> bool {
    let name = unit_name(words);
    !words.is_empty()
        && words.len() <= 3
        && crate::units::convert(
            &num_rational::BigRational::from_integer(1.into()),
            &name,
            &name,
        )
        .is_ok()
}

fn unit_name(words: &[Word]) -> String {
    written(&words.iter().map(|w| w.0.clone()).collect::<Vec<_>>())
}

fn is(w: Option<&Word>, x: &str) -> bool {
    w.is_some_and(|w| w.as_ref() == x)
}

/// "convert N FROM to|into TO", "N FROM in|to|into|as TO", "how many TO (is|are) (in) N FROM".
fn units(all: &[(String, String)]) -> Option<Value> {
    let all: Vec<Word> = all.iter().cloned().map(Word).collect();
    let conversion = |n: &Word, from: &[Word], to: &[Word]| {
        (is_number(n.as_ref()) && is_unit(from) && is_unit(to))
            .then(|| json!({"value": n.as_ref(), "from": unit_name(from), "to": unit_name(to)}))
    };
    // how many TO is|are [there] [in] N FROM
    if is(all.first(), "how") && is(all.get(1), "many") {
        let rest = &all[2..];
        let verb = rest
            .iter()
            .position(|x| matches!(x.as_ref(), "is" | "are" | "in"))?;
        let to = &rest[..verb];
        let mut after = &rest[verb + 1..];
        while is(after.first(), "in") || is(after.first(), "there") {
            after = &after[1..];
        }
        let (n, from) = trim(after).split_first()?;
        return conversion(n, from, to);
    }
    let w = trim(&all);
    let w = if is(w.first(), "convert") { &w[1..] } else { w };
    let (n, rest) = w.split_first()?;
    let sep = rest
        .iter()
        .position(|x| matches!(x.as_ref(), "to" | "into" | "in" | "as"))?;
    conversion(n, &rest[..sep], &rest[sep + 1..])
}

fn is_date(w: &str) -> bool {
    w.len() == 10 && w.as_bytes().get(4) == Some(&b'-') && w.as_bytes().get(7) == Some(&b'-')
}

/// Weekday, difference and addition questions on ISO dates.
fn dates(all: &[String]) -> Option<Value> {
    let w = trim(all);
    let dates: Vec<&String> = w.iter().filter(|x| is_date(x)).collect();
    let has = |x: &str| w.iter().any(|y| y == x);
    match dates.as_slice() {
        [d] if (has("weekday") || (has("day") && has("week"))) && w.len() <= 8 => {
            Some(json!({"op": "weekday", "date": d}))
        }
        [a, b] if has("days") && (has("between") || has("from")) => {
            let (first, second) = if w.iter().position(|x| x == *a) < w.iter().position(|x| x == *b)
            {
                (a, b)
            } else {
                (b, a)
            };
            Some(json!({"op": "difference", "from": first, "to": second}))
        }
        [d] => {
            // N days|weeks|months|years after|from|before DATE
            let at = w
                .iter()
                .position(|x| matches!(x.as_str(), "after" | "from" | "before"))?;
            let n = w.get(at.checked_sub(2)?)?;
            let unit = w.get(at - 1)?.trim_end_matches('s');
            let n: i64 = n.parse().ok()?;
            let n = if w[at] == "before" { -n } else { n };
            if w.get(at + 1) != Some(*d) || w.len() > at + 2 + 1 {
                return None;
            }
            let key = match unit {
                "day" => "days",
                "week" => "weeks",
                "month" => "months",
                "year" => "years",
                _ => return None,
            };
            let mut args = json!({"op": "add", "date": d});
            args[key] = n.into();
            Some(args)
        }
        _ => None,
    }
}

/// The answer a tool call gets from its result (or error): the built-in tools' own sentences,
/// any other tool's name, arguments and result as JSON.
pub fn statement(tool: &str, arguments: &Value, result: &Result<Value, String>) -> String {
    // Any other tool (a declared database, an MCP server's): its name, arguments and result.
    if !matches!(tool, "calculator" | "units" | "dates") {
        return match result {
            Ok(v) => format!("{tool} {arguments}: {v}"),
            Err(e) => format!("{tool} {arguments} failed: {e}"),
        };
    }
    let arg = |k: &str| arguments.get(k).and_then(Value::as_str).unwrap_or("");
    let out = |k: &str| match result {
        Ok(v) => v
            .get(k)
            .map(|x| x.as_str().map_or_else(|| x.to_string(), str::to_owned)),
        Err(_) => None,
    };
    let asked = match tool {
        "calculator" => arg("expression").to_owned(),
        "units" => format!("{} {} in {}", arg("value"), arg("from"), arg("to")),
        _ => match arg("op") {
            "weekday" => format!("the weekday of {}", arg("date")),
            "difference" => format!("from {} to {}", arg("from"), arg("to")),
            _ => format!("{} plus the time given", arg("date")),
        },
    };
    let Ok(v) = result else {
        let e = result.as_ref().err().map_or("", String::as_str);
        return format!("{asked} could not be computed: {e}");
    };
    match tool {
        "calculator" => {
            let rounded = v.get("rounded").and_then(Value::as_bool).unwrap_or(false);
            let note = match v.get("places").and_then(Value::as_u64) {
                Some(1) if rounded => " (rounded to 1 decimal place)".to_owned(),
                Some(p) if rounded => format!(" (rounded to {p} decimal places)"),
                None if rounded => " (rounded)".to_owned(),
                _ => String::new(),
            };
            let eq = if rounded { "≈" } else { "=" };
            format!("{asked} {eq} {}{note}", out("result").unwrap_or_default())
        }
        "units" => {
            let exact = v.get("exact").and_then(Value::as_bool).unwrap_or(true);
            let eq = if exact { "=" } else { "≈" };
            format!(
                "{} {} {eq} {} {}",
                arg("value"),
                arg("from"),
                out("result").unwrap_or_default(),
                arg("to")
            )
        }
        _ => match arg("op") {
            "weekday" => format!(
                "{} is a {}",
                arg("date"),
                out("weekday").unwrap_or_default()
            ),
            "difference" => format!(
                "from {} to {}: {} days, of which {} business days (Monday to Friday)",
                arg("from"),
                arg("to"),
                out("days").unwrap_or_default(),
                out("business_days").unwrap_or_default()
            ),
            _ => {
                let clamped = v.get("clamped_to_month_end").and_then(Value::as_bool) == Some(true);
                let note = if clamped {
                    " (the last day of that month)"
                } else {
                    ""
                };
                format!(
                    "{asked}: {}, a {}{note}",
                    out("date").unwrap_or_default(),
                    out("weekday").unwrap_or_default()
                )
            }
        },
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::Toolbox;

    fn all() -> Vec<String> {
        ["calculator", "units", "dates"].map(String::from).to_vec()
    }

    fn answer(q: &str) -> Option<String> {
        let p = recognise(q, &all())?;
        let result = Toolbox::builtins()
            .get(p.tool)
            .unwrap()
            .call(&p.arguments)
            .map_err(|e| e.to_string());
        Some(statement(p.tool, &p.arguments, &result))
    }

    #[test]
    fn any_other_tool_is_stated_by_name_arguments_and_result() {
        let args = serde_json::json!({"timezone": "UTC"});
        let ok = statement("time__now", &args, &Ok(serde_json::json!({"t": 1})));
        assert_eq!(ok, r#"time__now {"timezone":"UTC"}: {"t":1}"#);
        let failed = statement("ledger", &args, &Err("no such table".into()));
        assert_eq!(failed, r#"ledger {"timezone":"UTC"} failed: no such table"#);
    }

    #[test]
    fn conversions_and_dates_are_answered_by_their_tools() {
        assert_eq!(
            answer("Convert 12.5 miles to kilometres.").unwrap(),
            "12.5 miles = 20.1168 kilometres"
        );
        assert_eq!(answer("What is 100 C in F?").unwrap(), "100 C = 212 F");
        assert_eq!(
            answer("How many pounds is 1 kg?").unwrap(),
            "1 kg ≈ 2.20462262184877580723 pounds"
        );
        assert_eq!(
            answer("How many feet are in 3 miles?").unwrap(),
            "3 miles = 15840 feet"
        );
        assert_eq!(
            answer("What weekday is 2026-12-25?").unwrap(),
            "2026-12-25 is a Friday"
        );
        assert_eq!(
            answer("How many days are there between 2026-01-01 and 2026-03-01?").unwrap(),
            "from 2026-01-01 to 2026-03-01: 59 days, of which 42 business days (Monday to Friday)"
        );
        assert!(
            answer("How many working days are there from 2026-03-01 to 2026-01-01?")
                .unwrap()
                .starts_with("from 2026-03-01 to 2026-01-01: -59 days")
        );
        assert_eq!(
            answer("What date is 1 month after 2026-01-31?").unwrap(),
            "2026-01-31 plus the time given: 2026-02-28, a Saturday (the last day of that month)"
        );
        assert_eq!(
            answer("What is 22 divided by 7 to 2 decimal places?").unwrap(),
            "22 / 7 ≈ 3.14 (rounded to 2 decimal places)"
        );
        assert_eq!(answer("Convert 5 kg to km.").unwrap(), "5 kg to km could not be computed: invalid arguments: `kg` is a unit of mass and `km` of length: they do not convert".replace("5 kg to km", "5 kg in km"));
    }

    #[test]
    fn other_questions_go_to_the_model() {
        for q in [
            "What is the capital of France?",
            "How many days of annual leave do staff get?",
            "Convert this text to French.",
            "What happened on 2026-12-25?",
            "How many miles is it to Paris?",
        ] {
            assert_eq!(recognise(q, &all()), None, "{q}");
        }
        // Only the tools the specialist has.
        assert_eq!(
            recognise("Convert 1 mi to km", &["calculator".into()]),
            None
        );
    }
}
