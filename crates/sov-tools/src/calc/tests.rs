#![allow(clippy::unwrap_used, clippy::panic)]

use super::*;

fn calc(e: &str) -> String {
    calculate(e, None).unwrap().result
}

#[test]
fn large_operands_are_exact() {
    assert_eq!(
        calc("98765432123 * 123456789"),
        (98_765_432_123u128 * 123_456_789u128).to_string()
    );
    assert_eq!(calc("3^50"), "717897987691852588770249");
    assert_eq!(calc("2^64 - 1"), u64::MAX.to_string());
    assert_eq!(calc("20!"), "2432902008176640000");
    assert_eq!(
        calc("123456789123456789 * 987654321987654321"),
        "121932631356500531347203169112635269"
    );
}

#[test]
fn fractions_and_decimals_are_exact() {
    assert_eq!(calc("0.1 + 0.2"), "0.3");
    assert_eq!(calc("22/7"), "22/7");
    assert_eq!(calculate("22/7", Some(5)).unwrap().result, "3.14286");
    assert_eq!(calculate("2/3", Some(2)).unwrap().result, "0.67");
    assert_eq!(calculate("-2/3", Some(2)).unwrap().result, "-0.67");
    assert_eq!(calculate("2", Some(2)).unwrap().result, "2.00");
    assert_eq!(calculate("0.125", Some(2)).unwrap().result, "0.13");
    assert_eq!(calculate("-0.001", Some(2)).unwrap().result, "0.00");
    assert_eq!(calc("1/8"), "0.125");
    let c = calculate("22/7", Some(5)).unwrap();
    assert!(c.exact && c.rounded);
    assert_eq!(c.fraction.as_deref(), Some("22/7"));
    assert!(!calculate("1/4", Some(2)).unwrap().rounded);
}

#[test]
fn precedence_is_as_written() {
    assert_eq!(calc("2 + 3 * 4"), "14");
    assert_eq!(calc("(2 + 3) * 4"), "20");
    assert_eq!(calc("-2^2"), "-4");
    assert_eq!(calc("2^3^2"), "512");
    assert_eq!(calc("2^-1"), "0.5");
    assert_eq!(calc("10 - 4 - 3"), "3");
    assert_eq!(calc("100 / 10 / 5"), "2");
    assert_eq!(calc("5% of 200"), "10");
    assert_eq!(calc("15 percent of 80"), "12");
    assert_eq!(calc("17 mod 5"), "2");
    assert_eq!(calc("-17 mod 5"), "3");
    assert_eq!(calc("3 squared + 4 squared"), "25");
}

#[test]
fn roots_are_exact_when_they_can_be() {
    assert_eq!(calc("sqrt 144"), "12");
    assert_eq!(calc("square root of 2.25"), "1.5");
    assert_eq!(calc("cbrt -27"), "-3");
    assert_eq!(calc("8^(2/3)"), "4");
    let r = calculate("sqrt 2", Some(10)).unwrap();
    assert_eq!(r.result, "1.4142135624");
    assert!(!r.exact && r.rounded);
    assert_eq!(calc("sqrt 2"), "1.41421356237309504880");
}

#[test]
fn bad_input_is_a_clear_error() {
    let err = |e: &str| calculate(e, None).unwrap_err().to_string();
    assert_eq!(err("1 / 0"), "division by zero");
    assert_eq!(err("5 mod 0"), "division by zero");
    assert_eq!(err("0 ^ -1"), "division by zero");
    assert!(err("10 ^ 100000").contains("more than 10000 digits"));
    assert!(err("9 ^ 9 ^ 9 ^ 9").contains("more than 10000 digits"));
    assert!(err("5000!").contains("more than 10000 digits"));
    assert!(err("sqrt -4").contains("not a real number"));
    assert!(err("2 ^ (1/100)").contains("at most 64"));
    assert!(err("2 +").contains("ends too early"));
    assert!(err("2 + apple").contains("`apple`"));
    assert!(err("").contains("empty"));
    assert!(err(&"(".repeat(100)).contains("nested"));
    assert!(
        err(&"1+".repeat(1_100)).contains("more than 1000 operations")
            || err(&"1+".repeat(1_100)).contains("longer")
    );
    assert!(calculate("1", Some(5_000)).is_err());
    // Squaring in a loop passes the bound at its step, not after.
    let e = format!("{}2{}", "(".repeat(17), ")^2".repeat(17));
    assert!(err(&e).contains("digits"), "{}", err(&e));
}

#[test]
fn plain_computations_are_recognised() {
    let r = |q: &str| recognise(q).map(|r| (r.expression, r.places));
    assert_eq!(
        r("What is 98765432123 times 123456789?"),
        Some(("98765432123 * 123456789".into(), None))
    );
    assert_eq!(
        r("Compute 3 to the power of 50."),
        Some(("3 ^ 50".into(), None))
    );
    assert_eq!(
        r("What is 22 divided by 7 to 5 decimal places?"),
        Some(("22 / 7".into(), Some(5)))
    );
    assert_eq!(
        r("22/7, rounded to 3 places"),
        Some(("22 / 7".into(), Some(3)))
    );
    assert_eq!(
        r("How much is 15% of 80?"),
        Some(("15 % of 80".into(), None))
    );
    assert_eq!(
        r("what's the square root of 144"),
        Some(("sqrt 144".into(), None))
    );
    assert_eq!(
        r("Please calculate (2 + 3) * 4 for me"),
        Some(("( 2 + 3 ) * 4".into(), None))
    );
    // Not plain computations: the model answers.
    assert_eq!(r("What is the fee for a 2 - 3 day transfer?"), None);
    assert_eq!(r("How many days are in 2 weeks?"), None);
    assert_eq!(r("What is 12?"), None);
    assert_eq!(r("Who wrote the 1984 novel?"), None);
    assert_eq!(r("What is 2 + 2 and 3 + 3?"), None);
    assert_eq!(r(""), None);
    let long = format!("what is {}", "1 + ".repeat(400));
    assert_eq!(r(&long), None);
    // A computation the calculator refuses is still the calculator's to refuse.
    assert_eq!(r("What is 1 divided by 0?"), Some(("1 / 0".into(), None)));
}

/// The eval's 40 questions (eval/tools/arithmetic.jsonl, answers computed by Python's own exact
/// arithmetic): each is recognised as a plain computation and computed exactly.
#[test]
fn the_evals_questions_are_recognised_and_computed_exactly() {
    let text = include_str!("../../../../eval/tools/arithmetic.jsonl");
    let mut n = 0;
    for line in text.lines() {
        let q: serde_json::Value = serde_json::from_str(line).unwrap();
        let question = q["question"].as_str().unwrap();
        let r = recognise(question).unwrap_or_else(|| panic!("not recognised: {question}"));
        let c = r.calculate().unwrap();
        assert_eq!(c.result, q["answer"].as_str().unwrap(), "{question}: {r:?}");
        n += 1;
    }
    assert_eq!(n, 40);
}
