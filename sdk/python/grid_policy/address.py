"""Ethereum addresses: 20 bytes written ``0x`` + 40 hex digits in any letter case.

WIT carries them as strings; two spellings of one address are the same account, so compare
them by value (:func:`same`, :func:`parse`), never as text.
"""

from __future__ import annotations

ZERO = "0x" + "0" * 40

_HEX = frozenset("0123456789abcdefABCDEF")


class AddressError(ValueError):
    """A string that is not an address."""


def parse(text: object) -> str:
    """The canonical (lower-case) spelling of an address, or :class:`AddressError`."""
    if (
        not isinstance(text, str)
        or len(text) != 42
        or text[:2] not in ("0x", "0X")
        or not _HEX.issuperset(text[2:])  # one set operation, not a generator over 40 characters
    ):
        raise AddressError(f"{text!r} is not an address: expected 0x followed by 40 hex digits")
    return "0x" + text[2:].lower()


def same(a: str, b: str) -> bool:
    """True when ``a`` and ``b`` name the same account (letter case ignored). A malformed
    address is never the same as anything."""
    try:
        return parse(a) == parse(b)
    except AddressError:
        return False


def contains(addresses, address: str) -> bool:
    """True when ``address`` is one of ``addresses`` (compared by value)."""
    # ``any(same(a, address) for a in addresses)``, with ``address`` parsed once.
    try:
        wanted = parse(address)
    except AddressError:
        return False
    for a in addresses:
        try:
            if parse(a) == wanted:
                return True
        except AddressError:
            continue
    return False
