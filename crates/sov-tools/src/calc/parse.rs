//! The calculator's grammar, with the precedence of ordinary arithmetic as written:
//!
//! ```text
//! expr    := term (("+" | "-") term)*
//! term    := unary (("*" | "/" | "mod" | "of") unary)*
//! unary   := ("-" | "+") unary | power
//! power   := postfix ("^" unary)?                  right-associative: 2^3^2 = 2^9
//! postfix := primary ("!" | "%" | "squared" | "cubed")*
//! primary := number | "(" expr ")" | ("sqrt" | "cbrt") unary
//! ```
//!
//! So `-2^2` is -4, `2^-1` is 1/2, `5% of 200` is 10, and `2 + 3 * 4` is 14. The tree is
//! bounded before anything is computed: at most [`MAX_NODES`] operations, nested at most
//! [`MAX_DEPTH`] deep.

use num_rational::BigRational;

use super::lex::Token;

/// The most operations and numbers one expression may hold.
pub const MAX_NODES: usize = 1_000;
/// The deepest nesting of parentheses and operators.
pub const MAX_DEPTH: usize = 64;

/// A binary operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bin {
    /// `+`.
    Add,
    /// `-`.
    Sub,
    /// `*` (and `of`).
    Mul,
    /// `/`.
    Div,
    /// `mod`.
    Mod,
    /// `^`.
    Pow,
}

/// An operation on one operand.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Un {
    /// `-x`.
    Neg,
    /// `x%`.
    Percent,
    /// `x!`.
    Factorial,
    /// `sqrt x`.
    Sqrt,
    /// `cbrt x`.
    Cbrt,
}

/// An expression tree.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// A number.
    Num(BigRational),
    /// An operation on one operand.
    Un(Un, Box<Expr>),
    /// An operation on two.
    Bin(Bin, Box<Expr>, Box<Expr>),
}

/// Why tokens are not an expression.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// Nothing to compute.
    #[error("the expression is empty")]
    Empty,
    /// A token where it cannot be.
    #[error("unexpected {0} at token {1}")]
    Unexpected(String, usize),
    /// The tokens ended inside an expression.
    #[error("the expression ends too early")]
    Incomplete,
    /// More than [`MAX_NODES`] operations or numbers.
    #[error("more than {MAX_NODES} operations")]
    TooManyNodes,
    /// Nested deeper than [`MAX_DEPTH`].
    #[error("nested more than {MAX_DEPTH} deep")]
    TooDeep,
}

/// Parses all of `tokens` as one expression; the tree and how many operations it holds.
pub fn parse(tokens: &[Token]) -> Result<(Expr, usize), ParseError> {
    if tokens.is_empty() {
        return Err(ParseError::Empty);
    }
    let mut p = Parser {
        tokens,
        pos: 0,
        nodes: 0,
        ops: 0,
        depth: 0,
    };
    let e = p.expr()?;
    if let Some(t) = tokens.get(p.pos) {
        return Err(p.unexpected(t));
    }
    Ok((e, p.ops))
}

struct Parser<'a> {
    tokens: &'a [Token],
    pos: usize,
    nodes: usize,
    ops: usize,
    depth: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.pos)
    }

    fn unexpected(&self, t: &Token) -> ParseError {
        let what = match t {
            Token::Word(w) => format!("`{w}`"),
            Token::Num(_) => "a number".to_owned(),
            other => format!("{other:?}").to_lowercase(),
        };
        ParseError::Unexpected(what, self.pos)
    }

    fn node(&mut self, op: bool) -> Result<(), ParseError> {
        self.nodes += 1;
        if op {
            self.ops += 1;
        }
        if self.nodes > MAX_NODES {
            return Err(ParseError::TooManyNodes);
        }
        Ok(())
    }

    fn enter(&mut self) -> Result<(), ParseError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(ParseError::TooDeep);
        }
        Ok(())
    }

    fn bin(&mut self, op: Bin, l: Expr, r: Expr) -> Result<Expr, ParseError> {
        self.node(true)?;
        Ok(Expr::Bin(op, Box::new(l), Box::new(r)))
    }

    fn un(&mut self, op: Un, e: Expr) -> Result<Expr, ParseError> {
        self.node(true)?;
        Ok(Expr::Un(op, Box::new(e)))
    }

    fn expr(&mut self) -> Result<Expr, ParseError> {
        self.enter()?;
        let mut l = self.term()?;
        loop {
            let op = match self.peek() {
                Some(Token::Plus) => Bin::Add,
                Some(Token::Minus) => Bin::Sub,
                _ => break,
            };
            self.pos += 1;
            let r = self.term()?;
            l = self.bin(op, l, r)?;
        }
        self.depth -= 1;
        Ok(l)
    }

    fn term(&mut self) -> Result<Expr, ParseError> {
        let mut l = self.unary()?;
        loop {
            let op = match self.peek() {
                Some(Token::Times | Token::Of) => Bin::Mul,
                Some(Token::Divide) => Bin::Div,
                Some(Token::Mod) => Bin::Mod,
                _ => break,
            };
            self.pos += 1;
            let r = self.unary()?;
            l = self.bin(op, l, r)?;
        }
        Ok(l)
    }

    fn unary(&mut self) -> Result<Expr, ParseError> {
        self.enter()?;
        let e = match self.peek() {
            Some(Token::Minus) => {
                self.pos += 1;
                let e = self.unary()?;
                self.un(Un::Neg, e)?
            }
            Some(Token::Plus) => {
                self.pos += 1;
                self.unary()?
            }
            _ => self.power()?,
        };
        self.depth -= 1;
        Ok(e)
    }

    fn power(&mut self) -> Result<Expr, ParseError> {
        let base = self.postfix()?;
        if self.peek() == Some(&Token::Power) {
            self.pos += 1;
            let exp = self.unary()?;
            return self.bin(Bin::Pow, base, exp);
        }
        Ok(base)
    }

    fn postfix(&mut self) -> Result<Expr, ParseError> {
        let mut e = self.primary()?;
        loop {
            e = match self.peek() {
                Some(Token::Factorial) => {
                    self.pos += 1;
                    self.un(Un::Factorial, e)?
                }
                Some(Token::Percent) => {
                    self.pos += 1;
                    self.un(Un::Percent, e)?
                }
                Some(Token::Squared | Token::Cubed) => {
                    let n = if self.peek() == Some(&Token::Squared) {
                        2
                    } else {
                        3
                    };
                    self.pos += 1;
                    self.node(false)?;
                    let exp = Expr::Num(BigRational::from_integer(n.into()));
                    self.bin(Bin::Pow, e, exp)?
                }
                _ => return Ok(e),
            };
        }
    }

    fn primary(&mut self) -> Result<Expr, ParseError> {
        self.enter()?;
        let Some(t) = self.peek().cloned() else {
            return Err(ParseError::Incomplete);
        };
        self.pos += 1;
        let e = match t {
            Token::Num(n) => {
                self.node(false)?;
                Expr::Num(n)
            }
            Token::Open => {
                let e = self.expr()?;
                match self.peek() {
                    Some(Token::Close) => self.pos += 1,
                    Some(t) => return Err(self.unexpected(&t.clone())),
                    None => return Err(ParseError::Incomplete),
                }
                e
            }
            Token::Sqrt | Token::Cbrt => {
                let op = if t == Token::Sqrt { Un::Sqrt } else { Un::Cbrt };
                let e = self.unary()?;
                self.un(op, e)?
            }
            other => {
                self.pos -= 1;
                return Err(self.unexpected(&other));
            }
        };
        self.depth -= 1;
        Ok(e)
    }
}
