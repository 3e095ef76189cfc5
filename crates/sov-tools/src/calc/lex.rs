//! The calculator's tokens: numbers, operators in symbols (`+ - * / ^ % ! ( )`, `×`, `÷`, `−`,
//! `√`, `²`, `³`) or in words (`plus`, `times`, `divided by`, `to the power of`, `percent of`,
//! `square root of`, ...), and, for [`super::recognise`], any other word.

use num_bigint::BigInt;
use num_rational::BigRational;
use num_traits::{One, Zero};

/// The longest number literal, in characters (the cost bound starts here).
pub const MAX_LITERAL: usize = 2_000;

/// One token of an expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Token {
    /// A number, exactly as written (`1.25` is 5/4).
    Num(BigRational),
    /// `+`, `plus`, `add`.
    Plus,
    /// `-`, `−`, `minus`.
    Minus,
    /// `*`, `×`, `·`, `times`, `multiplied by`, `x` between numbers.
    Times,
    /// `/`, `÷`, `divided by`, `over`.
    Divide,
    /// `mod`, `modulo`: the remainder of a division of integers.
    Mod,
    /// `^`, `**`, `to the power of`, `raised to`.
    Power,
    /// `%`, `percent`: divides by 100.
    Percent,
    /// `of` (after a percentage: `5% of 200`).
    Of,
    /// `!`, `factorial`.
    Factorial,
    /// `squared` (`²`).
    Squared,
    /// `cubed` (`³`).
    Cubed,
    /// `sqrt`, `√`, `square root of`.
    Sqrt,
    /// `cbrt`, `cube root of`.
    Cbrt,
    /// `(`.
    Open,
    /// `)`.
    Close,
    /// Any other word or sign (only [`super::recognise`] accepts these, around an expression).
    Word(String),
}

/// Why an expression could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LexError {
    /// A number longer than [`MAX_LITERAL`].
    #[error("a number of more than {MAX_LITERAL} digits")]
    TooLong,
    /// A malformed number.
    #[error("`{0}` is not a number")]
    BadNumber(String),
}

/// Phrases of several words, longest first (matched on lowercase words).
const PHRASES: &[(&[&str], Token)] = &[
    (&["raised", "to", "the", "power", "of"], Token::Power),
    (&["to", "the", "power", "of"], Token::Power),
    (&["square", "root", "of"], Token::Sqrt),
    (&["cube", "root", "of"], Token::Cbrt),
    (&["multiplied", "by"], Token::Times),
    (&["divided", "by"], Token::Divide),
    (&["raised", "to"], Token::Power),
    (&["square", "root"], Token::Sqrt),
    (&["cube", "root"], Token::Cbrt),
];

fn word_token(w: &str) -> Option<Token> {
    Some(match w {
        "plus" | "add" => Token::Plus,
        "minus" => Token::Minus,
        "times" => Token::Times,
        "over" => Token::Divide,
        "mod" | "modulo" => Token::Mod,
        "percent" | "pct" => Token::Percent,
        "of" => Token::Of,
        "factorial" => Token::Factorial,
        "squared" => Token::Squared,
        "cubed" => Token::Cubed,
        "sqrt" => Token::Sqrt,
        "cbrt" => Token::Cbrt,
        _ => return None,
    })
}

/// Splits `text` into tokens. Words the calculator does not know become [`Token::Word`].
pub fn lex(text: &str) -> Result<Vec<Token>, LexError> {
    let chars: Vec<char> = text.chars().collect();
    let mut raw: Vec<Token> = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        if c.is_ascii_digit() || (c == '.' && chars.get(i + 1).is_some_and(char::is_ascii_digit)) {
            let start = i;
            while i < chars.len() {
                let d = chars[i];
                let grouped = d == ','
                    && chars
                        .get(i + 1..i + 4)
                        .is_some_and(|g| g.iter().all(char::is_ascii_digit))
                    && !chars.get(i + 4).is_some_and(char::is_ascii_digit);
                if d.is_ascii_digit() || d == '.' || grouped || d == '_' {
                    i += 1;
                } else {
                    break;
                }
            }
            // A sentence's full stop after a number is not a decimal point: it is read next.
            if chars[i - 1] == '.' {
                i -= 1;
            }
            let literal: String = chars[start..i].iter().collect();
            raw.push(Token::Num(number(&literal)?));
            continue;
        }
        if c.is_alphabetic() {
            let start = i;
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '\'') {
                i += 1;
            }
            let w: String = chars[start..i].iter().collect::<String>().to_lowercase();
            raw.push(Token::Word(w));
            continue;
        }
        i += 1;
        raw.push(match c {
            '+' => Token::Plus,
            '-' | '−' | '–' => Token::Minus,
            '*' if chars.get(i) == Some(&'*') => {
                i += 1;
                Token::Power
            }
            '*' | '×' | '·' | '⋅' => Token::Times,
            '/' | '÷' | '∕' => Token::Divide,
            '^' => Token::Power,
            '%' => Token::Percent,
            '!' => Token::Factorial,
            '²' => Token::Squared,
            '³' => Token::Cubed,
            '√' => Token::Sqrt,
            '∛' => Token::Cbrt,
            '(' | '[' => Token::Open,
            ')' | ']' => Token::Close,
            other => Token::Word(other.to_string()),
        });
    }
    Ok(phrases(raw))
}

/// Joins words into the operators they spell.
fn phrases(raw: Vec<Token>) -> Vec<Token> {
    let mut out: Vec<Token> = Vec::with_capacity(raw.len());
    let mut i = 0;
    'next: while i < raw.len() {
        for (words, token) in PHRASES {
            let matches = words
                .iter()
                .enumerate()
                .all(|(k, w)| matches!(raw.get(i + k), Some(Token::Word(x)) if x == w));
            if matches {
                out.push(token.clone());
                i += words.len();
                continue 'next;
            }
        }
        let t = match &raw[i] {
            Token::Word(w) => match word_token(w) {
                Some(t) => t,
                // `x` between two numbers is a multiplication sign.
                None if w == "x"
                    && matches!(out.last(), Some(Token::Num(_) | Token::Close))
                    && matches!(raw.get(i + 1), Some(Token::Num(_) | Token::Open)) =>
                {
                    Token::Times
                }
                None => raw[i].clone(),
            },
            other => other.clone(),
        };
        out.push(t);
        i += 1;
    }
    out
}

/// A decimal literal (`1,234.5`, `1_000`, `.5`) as an exact rational.
fn number(literal: &str) -> Result<BigRational, LexError> {
    if literal.chars().count() > MAX_LITERAL {
        return Err(LexError::TooLong);
    }
    let digits: String = literal.chars().filter(|c| *c != ',' && *c != '_').collect();
    let bad = || LexError::BadNumber(literal.to_owned());
    let (int, frac) = match digits.split_once('.') {
        Some((i, f)) => (i, f),
        None => (digits.as_str(), ""),
    };
    if frac.contains('.') || (int.is_empty() && frac.is_empty()) {
        return Err(bad());
    }
    let all: String = format!("{int}{frac}");
    let n: BigInt = if all.is_empty() {
        BigInt::zero()
    } else {
        all.parse().map_err(|_| bad())?
    };
    let mut den = BigInt::one();
    for _ in 0..frac.len() {
        den *= 10;
    }
    Ok(BigRational::new(n, den))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]

    use super::*;

    fn int(n: i64) -> Token {
        Token::Num(BigRational::from_integer(n.into()))
    }

    #[test]
    fn words_and_symbols_spell_the_same_operators() {
        assert_eq!(
            lex("3 to the power of 50").unwrap(),
            vec![int(3), Token::Power, int(50)]
        );
        assert_eq!(lex("3^50").unwrap(), lex("3 ** 50").unwrap());
        assert_eq!(
            lex("22 divided by 7").unwrap(),
            vec![int(22), Token::Divide, int(7)]
        );
        assert_eq!(lex("6 x 7").unwrap(), vec![int(6), Token::Times, int(7)]);
        assert_eq!(
            lex("5% of 200").unwrap(),
            vec![int(5), Token::Percent, Token::Of, int(200)]
        );
        assert_eq!(
            lex("5 percent of 200").unwrap(),
            vec![int(5), Token::Percent, Token::Of, int(200)]
        );
    }

    #[test]
    fn numbers_are_exact_and_separators_are_read() {
        assert_eq!(lex("1,234,567").unwrap(), vec![int(1_234_567)]);
        assert_eq!(
            lex("1.25").unwrap(),
            vec![Token::Num(BigRational::new(5.into(), 4.into()))]
        );
        // a list's comma is not a thousands separator
        assert_eq!(lex("1,23").unwrap()[0], int(1));
        // a full stop ends a sentence
        assert_eq!(lex("2 + 2.").unwrap()[..3], [int(2), Token::Plus, int(2)]);
        assert!(matches!(lex("1.2.3"), Err(LexError::BadNumber(_))));
        assert_eq!(lex(&"9".repeat(MAX_LITERAL + 1)), Err(LexError::TooLong));
    }
}
