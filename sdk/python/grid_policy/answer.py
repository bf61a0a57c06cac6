"""Building a policy's answers: amounts as checked ints in, WIT records out."""

from __future__ import annotations

from typing import Optional, Sequence

from . import amount
from .wit import (
    DecisionAllow, DecisionDeny, PriceLine, Quote, Refusal, RefusalKind, SessionDenyDecision,
    SessionGrant, SessionGrantDecision,
)


def line(item: str, value: int) -> PriceLine:
    """One line of a price breakdown; ``value`` is a checked amount."""
    if type(value) is int and 0 <= value <= amount.MAX:  # amount.format's common case, inlined
        return PriceLine(item, str(value))
    return PriceLine(item, amount.format(value))


def accept(price: int, breakdown: Sequence[PriceLine] = ()) -> Quote:
    """The node takes the order at this payment."""
    return Quote(amount.format(price), breakdown if type(breakdown) is list else list(breakdown), None)


def refuse(price: int, breakdown: Sequence[PriceLine], kind: RefusalKind, reason: str) -> Quote:
    """A refused quote: its price where it could be computed (else 0), and why."""
    return Quote(
        price=amount.format(price),
        breakdown=list(breakdown),
        refusal=Refusal(kind=kind, reason=reason),
    )


def allow() -> DecisionAllow:
    """Allowed."""
    return DecisionAllow()


def deny(reason: str) -> DecisionDeny:
    """Denied; the reason is shown to the user."""
    return DecisionDeny(value=reason)


def grant(expires_at: int, scopes: Optional[Sequence[str]] = None) -> SessionGrantDecision:
    """A session until ``expires_at`` (unix seconds), scoped or not."""
    return SessionGrantDecision(
        value=SessionGrant(expires_at=expires_at, scopes=None if scopes is None else list(scopes))
    )


def deny_session(reason: str) -> SessionDenyDecision:
    """No session; the reason is shown to the user."""
    return SessionDenyDecision(value=reason)
