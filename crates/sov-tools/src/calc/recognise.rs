//! A plain computation in a question: "What is 98765432123 times 123456789?", "Compute 3 to
//! the power of 50.", "22 divided by 7 to 5 decimal places".
//!
//! The question is split into the calculator's tokens. A request for decimal places
//! (`to N decimal places`, `to N places`, `to N dp`, optionally `rounded` or `correct`
//! before it) is taken out. What is left must be one expression holding at least one
//! operation, with nothing around it but framing words ("what is", "calculate", "please",
//! "the value of", "?"). Anything else (a word the calculator does not know inside the
//! numbers, two expressions, a question about something else that happens to hold numbers)
//! is not a plain computation, and `None` is returned: the question goes to the model.

use super::lex::{Token, lex};
use num_traits::ToPrimitive;

use super::{CalcError, Calculation, MAX_EXPRESSION};

/// The longest question looked at, in bytes.
const MAX_QUESTION: usize = 1_000;
/// The most tokens looked at (the span search is cubic in them).
const MAX_TOKENS: usize = 120;

/// Words that may frame a computation.
const FRAMING: &[&str] = &[
    "what",
    "what's",
    "whats",
    "is",
    "are",
    "the",
    "calculate",
    "compute",
    "evaluate",
    "work",
    "out",
    "how",
    "much",
    "please",
    "tell",
    "me",
    "give",
    "result",
    "value",
    "answer",
    "exactly",
    "exact",
    "equal",
    "equals",
    "do",
    "does",
    "make",
    "makes",
    "find",
    "get",
    "i",
    "need",
    "can",
    "you",
    "could",
    "would",
    "a",
    "an",
    "number",
    "then",
    "and",
    "=",
    "?",
    ".",
    ",",
    ":",
    "!",
    "by",
    "us",
    "for",
    "solve",
];

/// A plain computation found in a question.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recognised {
    /// The expression, in symbols (the calculator's `expression` argument).
    pub expression: String,
    /// The decimal places asked for, if any.
    pub places: Option<u32>,
}

impl Recognised {
    /// Computes it.
    pub fn calculate(&self) -> Result<Calculation, CalcError> {
        super::calculate(&self.expression, self.places)
    }
}

/// The computation `question` asks for, if it asks for nothing else (see the module docs).
pub fn recognise(question: &str) -> Option<Recognised> {
    if question.len() > MAX_QUESTION {
        return None;
    }
    let mut tokens = lex(question).ok()?;
    let places = take_places(&mut tokens)?;
    // The longest span that is an expression with an operation; what is outside it frames it.
    let n = tokens.len();
    if n > MAX_TOKENS {
        return None;
    }
    for len in (1..=n).rev() {
        for start in 0..=n - len {
            let span = &tokens[start..start + len];
            let Ok((_, ops)) = super::parse::parse(span) else {
                continue;
            };
            if ops == 0 {
                continue;
            }
            let framing = tokens[..start].iter().chain(&tokens[start + len..]);
            if !framing.clone().all(is_framing) {
                return None;
            }
            // Computable, or the calculator's error is the answer (division by zero): both
            // are the calculator's to say. Only an expression too long to pass is dropped.
            let expression = super::render(span);
            if expression.len() > MAX_EXPRESSION {
                return None;
            }
            return Some(Recognised { expression, places });
        }
    }
    None
}

fn is_framing(t: &Token) -> bool {
    match t {
        Token::Word(w) => FRAMING.contains(&w.as_str()),
        Token::Of | Token::Factorial => true,
        _ => false,
    }
}

/// Takes `[rounded|correct] [,] to N (decimal places|places|dp|decimals)` out of `tokens`;
/// `None` when the places asked for are not a small whole number, `Some(None)` when there is
/// no such request.
fn take_places(tokens: &mut Vec<Token>) -> Option<Option<u32>> {
    let word = |t: Option<&Token>, w: &[&str]| matches!(t, Some(Token::Word(x)) if w.contains(&x.as_str()));
    for i in 0..tokens.len() {
        if !word(tokens.get(i), &["to"]) {
            continue;
        }
        let Some(Token::Num(n)) = tokens.get(i + 1) else {
            continue;
        };
        let unit = if word(tokens.get(i + 2), &["decimal"])
            && word(tokens.get(i + 3), &["places", "place", "digits"])
        {
            2
        } else if word(tokens.get(i + 2), &["places", "place", "dp", "decimals"]) {
            1
        } else {
            continue;
        };
        if !n.is_integer() {
            return None;
        }
        let places = n.to_integer().to_u32()?;
        let mut start = i;
        while start > 0 && word(tokens.get(start - 1), &["rounded", "correct", ","]) {
            start -= 1;
        }
        tokens.drain(start..i + 2 + unit);
        return Some(Some(places));
    }
    Some(None)
}
