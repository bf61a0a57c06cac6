"""{{module}}: a payee policy for grid-gateway (world ``payee``).

An order is accepted when its payee is the node's own wallet or one of ``payees``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from grid_policy import Address, address, answer
from grid_policy.export import export_payee


@dataclass
class Settings:
    """The settings (fixtures/settings.json): absent keys keep their default, unknown keys
    are refused."""

    payees: list[Address] = field(default_factory=list)
    """Payees accepted besides the node's own wallet."""

    def validate(self):
        return None

    def check(self, order, node, ctx):
        if address.same(order.payee, node.wallet) or address.contains(self.payees, order.payee):
            return answer.allow()
        return answer.deny(f"payee {order.payee} is not accepted by this node")


WitWorld = export_payee(Settings)
