"""authz_order_owner: the reference authorization policy (policies/authz-order-owner) in
Python. Sessions only for addresses that own an active order on this node; per-request rules
from settings. Same settings, same answers as the Rust original: both pass
policies/authz-order-owner/fixtures."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from grid_policy import Address, address, answer
from grid_policy.text import eq_ignore_ascii_case
from grid_policy.export import export_authorization
from grid_policy.wit import OrderStatus


@dataclass
class OrderOwner:
    session_lifetime_secs: int = 3600
    """Longest session granted; a session also never outlives the caller's last active order."""
    allow: list[Address] = field(default_factory=list)
    """If not empty, only these addresses get sessions."""
    deny: list[Address] = field(default_factory=list)
    """These addresses never get a session, and their sessions' requests are denied."""
    deny_methods: list[str] = field(default_factory=list)
    """HTTP methods refused on every request (compared case-insensitively)."""
    deny_path_prefixes: list[str] = field(default_factory=list)
    """Path prefixes refused on every request, as whole segments."""
    scopes: Optional[list[str]] = None
    """Scopes put on every granted session; None leaves sessions unscoped."""

    def validate(self) -> Optional[str]:
        if self.session_lifetime_secs == 0:
            return "session_lifetime_secs must be above 0"
        for a in self.allow:
            if address.contains(self.deny, a):
                return f"{a} is in both allow and deny"
        for p in self.deny_path_prefixes:
            if not p.startswith("/"):
                return f'deny_path_prefixes: "{p}" must start with \'/\''
        for m in self.deny_methods:
            if not m or not (m.isascii() and m.isalpha()):
                return f'deny_methods: "{m}" is not an HTTP method'
        return None

    def refused_address(self, who: str) -> Optional[str]:
        if address.contains(self.deny, who):
            return f"{address.parse(who)} is denied by the node's policy"
        if self.allow and not address.contains(self.allow, who):
            return f"{address.parse(who)} is not on the node's allow list"
        return None

    def authorize_session(self, request, ctx):
        reason = self.refused_address(request.address)
        if reason is not None:
            return answer.deny_session(reason)
        now = ctx.now()
        ends = [
            (o.start_time if o.start_time is not None else now) + o.duration_secs
            for o in request.orders
            if o.status == OrderStatus.ACTIVE and address.same(o.user, request.address)
        ]
        ends = [end for end in ends if end > now]
        if not ends:
            return answer.deny_session(f"{address.parse(request.address)} has no active order on this node")
        return answer.grant(min(max(ends), now + self.session_lifetime_secs), self.scopes)

    def authorize_request(self, request, ctx):
        if request.caller is not None:
            reason = self.refused_address(request.caller)
            if reason is not None:
                return answer.deny(reason)
        if any(eq_ignore_ascii_case(m, request.method) for m in self.deny_methods):
            return answer.deny(f"method {request.method} is not allowed on this node")
        for prefix in self.deny_path_prefixes:
            if path_has_prefix(request.path, prefix):
                return answer.deny(f"path {request.path} is not allowed on this node ({prefix})")
        return answer.allow()


def path_has_prefix(path: str, prefix: str) -> bool:
    """True when ``path`` is ``prefix`` or lies under it as whole segments ("/admin" covers
    "/admin" and "/admin/x", not "/administrator")."""
    prefix = prefix.rstrip("/")
    if not prefix:
        return True
    return path == prefix or (path.startswith(prefix) and path[len(prefix):].startswith("/"))


WitWorld = export_authorization(OrderOwner)
