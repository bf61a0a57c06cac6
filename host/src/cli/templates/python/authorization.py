"""{{module}}: an authorization policy for grid-gateway (world ``authorization``).

A session for an address that has an active order, until that order ends or
session_lifetime_secs pass, whichever comes first; a request under one of
deny_path_prefixes is denied.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from grid_policy import address, answer
from grid_policy.wit import OrderStatus
from grid_policy.export import export_authorization


@dataclass
class Settings:
    """The settings (fixtures/settings.json): absent keys keep their default, unknown keys
    are refused."""

    session_lifetime_secs: int = 3600
    """Longest session granted, in seconds."""
    deny_path_prefixes: list[str] = field(default_factory=list)
    """Path prefixes refused on every request, e.g. ["/admin"]."""

    def validate(self) -> Optional[str]:
        if self.session_lifetime_secs == 0:
            return "session_lifetime_secs must be above 0"
        for prefix in self.deny_path_prefixes:
            if not prefix.startswith("/"):
                return f"deny_path_prefixes: \"{prefix}\" must start with '/'"
        return None

    def authorize_session(self, request, ctx):
        now = ctx.now()
        ends = [
            (o.start_time if o.start_time is not None else now) + o.duration_secs
            for o in request.orders
            if o.status == OrderStatus.ACTIVE and address.same(o.user, request.address)
        ]
        ends = [end for end in ends if end > now]
        if not ends:
            return answer.deny_session(f"{request.address} has no active order on this node")
        return answer.grant(min(max(ends), now + self.session_lifetime_secs))

    def authorize_request(self, request, ctx):
        # Whole segments: "/admin" covers "/admin" and "/admin/x", not "/administrator".
        for prefix in self.deny_path_prefixes:
            p = prefix.rstrip("/")
            if request.path == p or request.path.startswith(p + "/"):
                return answer.deny(f"path {request.path} is not allowed on this node ({prefix})")
        return answer.allow()


WitWorld = export_authorization(Settings)
