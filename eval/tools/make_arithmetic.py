"""Writes arithmetic.jsonl: the project's own 40 arithmetic questions for a specialist with the
calculator, each with its exact answer computed here by Python's own exact arithmetic (int,
fractions.Fraction, decimal with ROUND_HALF_UP), an implementation independent of sov-tools.

Run: python3 eval/tools/make_arithmetic.py  (the file is committed; the test checks it matches)
"""
import json
import sys
from decimal import ROUND_HALF_UP, Decimal, getcontext
from fractions import Fraction
from math import isqrt
from pathlib import Path

getcontext().prec = 200


def places(q: Fraction, n: int) -> str:
    d = Decimal(q.numerator) / Decimal(q.denominator)
    return str(d.quantize(Decimal(1).scaleb(-n), rounding=ROUND_HALF_UP))


def exact(q: Fraction) -> str:
    if q.denominator == 1:
        return str(q.numerator)
    d = q.denominator
    while d % 2 == 0:
        d //= 2
    while d % 5 == 0:
        d //= 5
    if d == 1:
        return format(Decimal(q.numerator) / Decimal(q.denominator), "f")
    return f"{q.numerator}/{q.denominator}"


F = Fraction
QUESTIONS = [
    ("What is 98765432123 times 123456789?", exact(F(98765432123 * 123456789))),
    ("What is 3 to the power of 50?", exact(F(3**50))),
    ("What is 22 divided by 7 to 5 decimal places?", places(F(22, 7), 5)),
    ("Calculate 123456789 multiplied by 987654321.", exact(F(123456789 * 987654321))),
    ("What is 2 to the power of 100?", exact(F(2**100))),
    ("Compute 7 ^ 77.", exact(F(7**77))),
    ("What is 355 divided by 113 to 6 decimal places?", places(F(355, 113), 6)),
    ("How much is 15% of 8420?", exact(F(15, 100) * 8420)),
    ("What is 999999999999 plus 1?", exact(F(999999999999 + 1))),
    ("What is 1000000000000 minus 987654321?", exact(F(1000000000000 - 987654321))),
    ("What is 31415926535 * 27182818284?", exact(F(31415926535 * 27182818284))),
    ("What is 1 divided by 3 to 10 decimal places?", places(F(1, 3), 10)),
    ("Calculate 5 to the power of 40.", exact(F(5**40))),
    ("What is 12345678901234567890 divided by 5?", exact(F(12345678901234567890, 5))),
    ("What is 2/3 to 4 decimal places?", places(F(2, 3), 4)),
    ("What is 17.5% of 2400?", exact(F(175, 1000) * 2400)),
    ("What is (123 + 456) * 789?", exact(F((123 + 456) * 789))),
    ("What is 25!?", exact(F(__import__("math").factorial(25)))),
    ("What is the square root of 152399025?", exact(F(isqrt(152399025)))),
    ("What is 0.1 + 0.2?", exact(F(1, 10) + F(2, 10))),
    ("Compute 4444444444 times 5555555555.", exact(F(4444444444 * 5555555555))),
    ("What is 11 to the power of 30?", exact(F(11**30))),
    ("What is 100 divided by 7 to 3 decimal places?", places(F(100, 7), 3)),
    ("What is 86400 times 365?", exact(F(86400 * 365))),
    ("What is 987654321987654321 minus 123456789123456789?",
     exact(F(987654321987654321 - 123456789123456789))),
    ("What is 9 to the power of 25?", exact(F(9**25))),
    ("What is 1.075 to the power of 10 to 6 decimal places?", places(F(1075, 1000) ** 10, 6)),
    ("What is 3.5% of 125000?", exact(F(35, 1000) * 125000)),
    ("How much is 64 cubed?", exact(F(64**3))),
    ("What is 8 divided by 3 to 2 decimal places?", places(F(8, 3), 2)),
    ("What is 2^64 - 1?", exact(F(2**64 - 1))),
    ("What is 6 to the power of 6 to the power of 2?", exact(F(6 ** (6**2)))),
    ("Calculate 45 * 67 + 89 * 12.", exact(F(45 * 67 + 89 * 12))),
    ("What is 1 divided by 7 to 8 decimal places?", places(F(1, 7), 8)),
    ("What is 13 squared times 17 squared?", exact(F(13**2 * 17**2))),
    ("What is 72 percent of 650?", exact(F(72, 100) * 650)),
    ("What is 555555 times 555555?", exact(F(555555 * 555555))),
    ("What is 10 to the power of 30 divided by 4?", exact(F(10**30, 4))),
    ("What is 2 divided by 9 to 7 decimal places?", places(F(2, 9), 7)),
    ("Compute 299792458 multiplied by 299792458.", exact(F(299792458 * 299792458))),
]


def main() -> None:
    assert len(QUESTIONS) == 40
    out = Path(__file__).with_name("arithmetic.jsonl")
    lines = [json.dumps({"question": q, "answer": a}) for q, a in QUESTIONS]
    text = "\n".join(lines) + "\n"
    if "--check" in sys.argv:
        sys.exit(0 if out.read_text() == text else "arithmetic.jsonl is stale: run make_arithmetic.py")
    out.write_text(text)


main()
