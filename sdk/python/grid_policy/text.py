"""ASCII-only case folding, as the Rust SDK compares methods and GPU models: Python's
``str.lower`` folds non-ASCII letters too (the Kelvin sign "\u212a" becomes "k"), which would
let a spelling match a rule the Rust original would not."""

_UPPER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def ascii_lower(text: str) -> str:
    """``text`` with only A-Z lowered."""
    # For ASCII text str.lower lowers exactly A-Z, and is several times faster than translate.
    if text.isascii():
        return text.lower()
    return text.translate(_UPPER)


def eq_ignore_ascii_case(a: str, b: str) -> bool:
    """True when ``a`` and ``b`` are equal ignoring the case of ASCII letters only."""
    return a == b or ascii_lower(a) == ascii_lower(b)
