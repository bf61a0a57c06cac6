"""{{module}}: a pricing policy for grid-gateway (world ``pricing``).

price = ceil(cpu_core_per_second x duration x cores), one breakdown line "cpu".
Refused, in this order: a duration below min_duration_secs, more than the node has free,
a payment below the price.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from grid_policy import Amount, amount, answer, resources
from grid_policy.export import export_pricing
from grid_policy.wit import RefusalKind


@dataclass
class Settings:
    """The settings (fixtures/settings.json): absent keys keep their default, unknown keys
    are refused."""

    cpu_core_per_second: Amount = 5_555_555_555_556
    """One CPU core for one second, in the token's smallest unit."""
    min_duration_secs: int = 60
    """Shortest order sold, in seconds."""

    def validate(self) -> Optional[str]:
        if self.cpu_core_per_second == 0:
            return "cpu_core_per_second must be above 0"
        return None

    def quote(self, request, node, ctx):
        if request.duration_secs < self.min_duration_secs:
            reason = (
                f"duration {request.duration_secs}s is below the "
                f"{self.min_duration_secs}s this node sells at least"
            )
            return answer.refuse(0, [], RefusalKind.DURATION_OUT_OF_RANGE, reason)
        short = resources.first_shortfall(request.resources, node.free)
        if short is not None:
            reason = f"not enough free capacity: {short}"
            return answer.refuse(0, [], RefusalKind.INSUFFICIENT_CAPACITY, reason)
        try:
            price = amount.mul_div_ceil(
                amount.mul(self.cpu_core_per_second, request.duration_secs),
                request.resources.cpu_millis,
                1000,
            )
        except amount.AmountError:
            return answer.refuse(0, [], RefusalKind.OTHER, "the price does not fit in a u256")
        breakdown = [answer.line("cpu", price)]
        if amount.parse(request.payment) < price:
            reason = f"payment {request.payment} is below the price {price}"
            return answer.refuse(price, breakdown, RefusalKind.INSUFFICIENT_PAYMENT, reason)
        return answer.accept(price, breakdown)


WitWorld = export_pricing(Settings)
