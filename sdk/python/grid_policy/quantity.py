"""Kubernetes resource quantities ("500m", "2", "4Gi", "1.5G", "1e9") turned into the integers
WIT carries: cpu in millicores, memory and storage in bytes. A port of the Rust SDK's
``quantity`` module with the same rounding (always up) and the same refusals."""

from __future__ import annotations

U64_MAX = (1 << 64) - 1

_DECIMAL = {"": 0, "n": -9, "u": -6, "m": -3, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18}
_BINARY = {"Ki": 1 << 10, "Mi": 1 << 20, "Gi": 1 << 30, "Ti": 1 << 40, "Pi": 1 << 50, "Ei": 1 << 60}


class QuantityError(ValueError):
    """A string that is not a quantity, or does not fit the unit asked for."""

    def __init__(self, text: str, reason: str):
        super().__init__(f"{text!r} is not a valid quantity: {reason}")
        self.input = text
        self.reason = reason


def parse_cpu_millis(text: str) -> int:
    """A cpu quantity in millicores, a finer value rounded up to 1m as Kubernetes does
    ("100m" -> 100, "2" -> 2000, "0.5" -> 500, "1.0001" -> 1001)."""
    return _parse_scaled(text, 1000)


def parse_bytes(text: str) -> int:
    """A memory or storage quantity in bytes, a fraction of a byte rounded up
    ("4Gi" -> 4294967296, "1G" -> 1000000000, "1.5Ki" -> 1536, "129e6")."""
    return _parse_scaled(text, 1)


def format_cpu_millis(millis: int) -> str:
    """Millicores as Kubernetes prints them: whole cores without a suffix, else ``m``."""
    return str(millis // 1000) if millis % 1000 == 0 else f"{millis}m"


def format_bytes(n: int) -> str:
    """Bytes with the largest binary suffix that divides them exactly ("4Gi", "1536", "3Mi")."""
    for suffix, unit in sorted(_BINARY.items(), key=lambda kv: -kv[1]):
        if n != 0 and n % unit == 0:
            return f"{n // unit}{suffix}"
    return str(n)


def _parse_scaled(text: str, factor: int) -> int:
    if not isinstance(text, str):
        raise QuantityError(repr(text), "not a string")
    s = text.strip()
    if not s:
        raise QuantityError(text, "empty")
    if len(s) > 64:
        raise QuantityError(text, "too long")
    end = 0
    while end < len(s) and (s[end].isascii() and (s[end].isdigit() or s[end] == ".")):
        end += 1
    number, suffix = s[:end], s[end:]
    if not number or number == ".":
        raise QuantityError(text, "expected a number first")
    int_part, _, frac_part = number.partition(".")
    frac_part = frac_part.rstrip("0")
    if "." in frac_part:
        raise QuantityError(text, "more than one decimal point")
    mantissa = int((int_part + frac_part) or "0")
    if mantissa >= 1 << 128:
        raise QuantityError(text, "too large")
    exp10 = -len(frac_part)
    binary = 1
    if suffix in _DECIMAL:
        exp10 += _DECIMAL[suffix]
    elif suffix in _BINARY:
        binary = _BINARY[suffix]
    else:
        if suffix[:1] not in ("e", "E"):
            raise QuantityError(text, "unknown suffix")
        exponent = suffix[1:]
        digits = exponent[1:] if exponent[:1] in ("+", "-") else exponent
        if not digits or not digits.isascii() or not digits.isdigit():
            raise QuantityError(text, "bad exponent")
        e = int(exponent)
        if not -30 <= e <= 30:
            raise QuantityError(text, "exponent out of range")
        exp10 += e
    value = mantissa * binary * factor
    if exp10 >= 0:
        value *= 10**exp10
    else:
        value = -((-value) // 10 ** (-exp10))
    if value > U64_MAX:
        raise QuantityError(text, "too large")
    return value
