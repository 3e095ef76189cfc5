//! Exact evaluation over rationals of any size, within a bounded cost, and the decimal form of
//! a result.
//!
//! Every value is a fraction of two big integers; `+ - * / ^` (integer powers), `%`, `mod` and
//! `!` are exact. A root is exact when the operand is a perfect power; otherwise it is computed
//! to [`Limits::places`] + 10 decimal places and the result says it is not exact. Nothing is
//! ever a float.
//!
//! The cost is bounded before each step: no numerator or denominator may pass
//! [`MAX_DIGITS`] decimal digits (a power's size is estimated before it is computed), a
//! factorial's operand is at most [`MAX_FACTORIAL`].

use num_bigint::{BigInt, Sign};
use num_integer::Integer;
use num_rational::BigRational;
use num_traits::{One, Signed, ToPrimitive, Zero};

use super::parse::{Bin, Expr, Un};

/// The most decimal digits of any numerator or denominator along the way.
pub const MAX_DIGITS: u64 = 10_000;
/// The largest factorial.
pub const MAX_FACTORIAL: u64 = 3_000;
/// The most decimal places a result may be asked for.
pub const MAX_PLACES: u32 = 1_000;
/// The largest root degree a fractional power may take (`x^(1/q)`, q at most this).
pub const MAX_ROOT: u32 = 64;

/// `MAX_DIGITS` in bits, rounded up (log2 10 < 3.33).
const MAX_BITS: u64 = MAX_DIGITS * 333 / 100 + 1;

/// Why a value could not be computed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EvalError {
    /// Division (or `mod`) by zero, or zero to a negative power.
    #[error("division by zero")]
    DivisionByZero,
    /// A value that would pass the bound on digits.
    #[error("the result would have more than {MAX_DIGITS} digits")]
    TooLarge,
    /// An operation outside its domain.
    #[error("{0}")]
    Domain(String),
}

/// A value and whether it is exact (false once an irrational root was approximated).
#[derive(Debug, Clone, PartialEq)]
pub struct Value {
    /// The value.
    pub q: BigRational,
    /// Whether `q` is the exact value of the expression.
    pub exact: bool,
}

/// How precisely inexact steps are computed.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// The decimal places the result will be shown with.
    pub places: u32,
}

/// Evaluates `e`.
pub fn eval(e: &Expr, limits: Limits) -> Result<Value, EvalError> {
    match e {
        Expr::Num(n) => Ok(Value {
            q: n.clone(),
            exact: true,
        }),
        Expr::Un(op, a) => {
            let a = eval(a, limits)?;
            let exact = a.exact;
            let q = match op {
                Un::Neg => -a.q,
                Un::Percent => a.q / BigRational::from_integer(100.into()),
                Un::Factorial => factorial(&a.q)?,
                Un::Sqrt | Un::Cbrt => {
                    let degree = if *op == Un::Sqrt { 2 } else { 3 };
                    return root(&a, degree, limits);
                }
            };
            checked(q, exact)
        }
        Expr::Bin(op, l, r) => {
            let l = eval(l, limits)?;
            let r = eval(r, limits)?;
            let exact = l.exact && r.exact;
            let q = match op {
                Bin::Add => l.q + r.q,
                Bin::Sub => l.q - r.q,
                Bin::Mul => l.q * r.q,
                Bin::Div => {
                    if r.q.is_zero() {
                        return Err(EvalError::DivisionByZero);
                    }
                    l.q / r.q
                }
                Bin::Mod => {
                    if !l.q.is_integer() || !r.q.is_integer() {
                        return Err(EvalError::Domain("mod takes whole numbers".into()));
                    }
                    if r.q.is_zero() {
                        return Err(EvalError::DivisionByZero);
                    }
                    BigRational::from_integer(l.q.to_integer().mod_floor(&r.q.to_integer()))
                }
                Bin::Pow => return power(&l, &r, limits),
            };
            checked(q, exact)
        }
    }
}

fn bits(q: &BigRational) -> u64 {
    q.numer().bits().max(q.denom().bits())
}

fn checked(q: BigRational, exact: bool) -> Result<Value, EvalError> {
    if bits(&q) > MAX_BITS {
        return Err(EvalError::TooLarge);
    }
    Ok(Value { q, exact })
}

fn factorial(q: &BigRational) -> Result<BigRational, EvalError> {
    if !q.is_integer() || q.is_negative() {
        return Err(EvalError::Domain(
            "a factorial takes a whole number that is not negative".into(),
        ));
    }
    let n = q
        .to_integer()
        .to_u64()
        .filter(|n| *n <= MAX_FACTORIAL)
        .ok_or(EvalError::TooLarge)?;
    let mut f = BigInt::one();
    for k in 2..=n {
        f *= k;
    }
    Ok(BigRational::from_integer(f))
}

fn power(base: &Value, exp: &Value, limits: Limits) -> Result<Value, EvalError> {
    if !exp.exact {
        return Err(EvalError::Domain(
            "an exponent must be exact (not an approximated root)".into(),
        ));
    }
    let e = &exp.q;
    if !e.is_integer() {
        // x^(p/q): the q-th root, then the p-th power.
        let q = e
            .denom()
            .to_u32()
            .filter(|q| *q <= MAX_ROOT)
            .ok_or_else(|| {
                EvalError::Domain(format!(
                    "a fractional exponent's denominator must be at most {MAX_ROOT}"
                ))
            })?;
        let rooted = root(base, q, limits)?;
        let p = Value {
            q: BigRational::from_integer(e.numer().clone()),
            exact: true,
        };
        return power(&rooted, &p, limits);
    }
    let n = e.to_integer();
    let b = &base.q;
    if b.is_zero() {
        if n.is_negative() {
            return Err(EvalError::DivisionByZero);
        }
        let q = if n.is_zero() {
            BigRational::one()
        } else {
            BigRational::zero()
        };
        return checked(q, base.exact);
    }
    if b.abs().is_one() {
        let odd = n.is_odd();
        let q = if b.is_negative() && odd {
            -BigRational::one()
        } else {
            BigRational::one()
        };
        return checked(q, base.exact);
    }
    // The size of the result, estimated before it is computed: bits(b) * |n|.
    let magnitude = n.abs().to_u64().ok_or(EvalError::TooLarge)?;
    if bits(b).saturating_sub(1).saturating_mul(magnitude) > MAX_BITS {
        return Err(EvalError::TooLarge);
    }
    let k = usize::try_from(magnitude).map_err(|_| EvalError::TooLarge)?;
    let raised = BigRational::new(
        num_traits::pow(b.numer().clone(), k),
        num_traits::pow(b.denom().clone(), k),
    );
    let q = if n.is_negative() {
        raised.recip()
    } else {
        raised
    };
    checked(q, base.exact)
}

/// The `degree`-th root: exact when numerator and denominator are perfect powers, else
/// computed to `limits.places + 10` decimal places and marked inexact.
fn root(v: &Value, degree: u32, limits: Limits) -> Result<Value, EvalError> {
    let q = &v.q;
    let negative = q.is_negative();
    if negative && degree.is_multiple_of(2) {
        return Err(EvalError::Domain(
            "an even root of a negative number is not a real number".into(),
        ));
    }
    let a = q.abs();
    let (n, d) = (a.numer(), a.denom());
    let (rn, rd) = (n.nth_root(degree), d.nth_root(degree));
    let sign = |x: BigRational| if negative { -x } else { x };
    if num_traits::pow(rn.clone(), degree as usize) == *n
        && num_traits::pow(rd.clone(), degree as usize) == *d
    {
        return checked(sign(BigRational::new(rn, rd)), v.exact);
    }
    // floor(root(a * 10^(degree * p))) / 10^p, with p guard digits beyond those shown.
    let p = limits.places + 10;
    if u64::from(p) * u64::from(degree) > MAX_DIGITS {
        return Err(EvalError::TooLarge);
    }
    let scale = num_traits::pow(BigInt::from(10), (p * degree) as usize);
    let scaled = (n * scale) / d;
    let r = scaled.nth_root(degree);
    let q = BigRational::new(r, num_traits::pow(BigInt::from(10), p as usize));
    checked(sign(q), false)
}

/// `q` rounded to `places` decimal places, half away from zero, with exactly that many digits
/// after the point (`22/7`, 5: `3.14286`; `2`, 2: `2.00`).
pub fn to_places(q: &BigRational, places: u32) -> String {
    let scale = num_traits::pow(BigInt::from(10), places as usize);
    let scaled = q.abs() * BigRational::from_integer(scale);
    let floor = scaled.to_integer();
    let frac = &scaled - BigRational::from_integer(floor.clone());
    let half = BigRational::new(1.into(), 2.into());
    let rounded = if frac >= half { floor + 1 } else { floor };
    let digits = rounded.to_str_radix(10);
    let places = places as usize;
    let digits = if digits.len() <= places {
        format!("{}{digits}", "0".repeat(places + 1 - digits.len()))
    } else {
        digits
    };
    let (int, fraction) = digits.split_at(digits.len() - places);
    let negative = q.is_negative() && rounded_is_nonzero(&digits);
    let sign = if negative { "-" } else { "" };
    if places == 0 {
        format!("{sign}{int}")
    } else {
        format!("{sign}{int}.{fraction}")
    }
}

fn rounded_is_nonzero(digits: &str) -> bool {
    digits.bytes().any(|b| b != b'0')
}

/// A terminating decimal's digits after the point, if `q` has one of at most `max` places.
pub fn terminating_places(q: &BigRational, max: u32) -> Option<u32> {
    let mut d = q.denom().clone();
    let (two, five) = (BigInt::from(2), BigInt::from(5));
    let (mut twos, mut fives) = (0u32, 0u32);
    while d.is_even() {
        d /= &two;
        twos += 1;
    }
    while (&d % &five).is_zero() {
        d /= &five;
        fives += 1;
    }
    let places = twos.max(fives);
    (d.is_one() && places <= max).then_some(places)
}

/// `q` as an integer or a fraction in lowest terms (`22/7`, `-3`).
pub fn fraction(q: &BigRational) -> String {
    if q.is_integer() {
        return q.numer().to_str_radix(10);
    }
    let sign = if q.numer().sign() == Sign::Minus {
        "-"
    } else {
        ""
    };
    format!("{sign}{}/{}", q.numer().abs(), q.denom())
}
