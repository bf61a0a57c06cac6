"""Token amounts: a u256 in the token's smallest unit, a Python ``int`` in policy code and a
decimal string wherever it crosses a boundary (WIT, JSON, the chain's ``uint256``).

Python integers do not overflow, so the range is what must be checked: every helper here
returns an int in ``0 ..= MAX`` or raises :class:`AmountError`, so a policy cannot hand the
gateway a price that wrapped, went negative or does not fit the chain.
"""

from __future__ import annotations

MAX = (1 << 256) - 1
"""The largest amount a u256 holds."""

ZERO = 0


class AmountError(ValueError):
    """A value that is not an amount, or arithmetic whose result does not fit a u256."""


def parse(text: object) -> int:
    """Parses a plain decimal integer string (or, as the Rust SDK accepts in hand-written
    fixtures and settings, a JSON integer that fits in u64). Signs, spaces, ``0x``,
    exponents and fractions are refused: an amount that means something other than what it
    looks like is worse than an error."""
    # The common case first: a string of ASCII digits (str.isdigit alone would take other
    # scripts' digits and superscripts, which int() reads or refuses differently).
    if type(text) is str and 0 < len(text) <= 78 and text.isascii() and text.isdigit():
        value = int(text)
        if value <= MAX:
            return value
        raise AmountError(f"{text!r} is not an amount: expected a decimal integer between 0 and 2^256-1")
    if isinstance(text, bool):
        raise AmountError(f"{text!r} is not an amount: expected a decimal integer between 0 and 2^256-1")
    if isinstance(text, int):
        if 0 <= text < (1 << 64):
            return text
        raise AmountError(f"{text!r} is not an amount: a JSON number must fit in u64; write larger amounts as strings")
    if (
        not isinstance(text, str)
        or not text
        or len(text) > 78
        or not all("0" <= c <= "9" for c in text)
    ):
        raise AmountError(f"{text!r} is not an amount: expected a decimal integer between 0 and 2^256-1")
    value = int(text)
    if value > MAX:
        raise AmountError(f"{text!r} is not an amount: expected a decimal integer between 0 and 2^256-1")
    return value


def check(value: int) -> int:
    """``value`` itself when it is an int in ``0 ..= MAX``, else :class:`AmountError`."""
    # The common case first, in one test: this runs several times per helper call.
    if type(value) is int and 0 <= value <= MAX:
        return value
    if isinstance(value, bool) or not isinstance(value, int):
        raise AmountError(f"{value!r} is not an integer amount")
    if value < 0:
        raise AmountError(f"{value} is below zero")
    if value > MAX:
        raise AmountError(f"{value} does not fit in a u256")
    return int(value)


def format(value: int) -> str:  # noqa: A001 - mirrors Display of the Rust Amount
    """The decimal string of a checked amount, as WIT and the fixtures carry it."""
    if type(value) is int and 0 <= value <= MAX:
        return str(value)
    return str(check(value))


def _ok(value) -> bool:
    return type(value) is int and 0 <= value <= MAX


def add(a: int, b: int) -> int:
    """``a + b``, checked."""
    # _ok inlined: these run several times per quote, and a call costs more than the test.
    if type(a) is int and type(b) is int and 0 <= a <= MAX and 0 <= b <= MAX:
        result = a + b
        if result <= MAX:
            return result
    return check(check(a) + check(b))


def sub(a: int, b: int) -> int:
    """``a - b``, checked (raises when ``b`` is larger)."""
    return check(check(a) - check(b))


def mul(a: int, b: int) -> int:
    """``a * b``, checked."""
    if type(a) is int and type(b) is int and 0 <= a <= MAX and 0 <= b <= MAX:
        result = a * b
        if result <= MAX:
            return result
    return check(check(a) * check(b))


def mul_div_ceil(a: int, numerator: int, denominator: int) -> int:
    """``a * numerator / denominator`` rounded up (never in the buyer's favour); the product
    may exceed a u256 in the middle, only the result is checked. Raises on a zero
    denominator."""
    if (
        type(a) is int and type(numerator) is int and type(denominator) is int
        and 0 <= a <= MAX and 0 <= numerator <= MAX and 0 < denominator <= MAX
    ):
        result = -((-a * numerator) // denominator)
        if result <= MAX:
            return result
        raise AmountError(f"{result} does not fit in a u256")
    check(a)
    check(numerator)
    check(denominator)
    if denominator == 0:
        raise AmountError("division by zero")
    return check(-((-a * numerator) // denominator))


def total(values) -> int:
    """The checked sum of an iterable of amounts."""
    result = 0
    for value in values:
        result = add(result, value)
    return result
