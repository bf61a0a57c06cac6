"""pricing_linear: the reference pricing policy (policies/pricing-linear) in Python.

price = duration x (cpu cores x cpu rate + memory GiB x memory rate
                    + storage GiB x storage rate + gpus x gpu rate of the model)

Each part is rounded up to the token's smallest unit. The quote is refused, with the reason,
when the duration is outside the configured range, a GPU model has no price, the node lacks
free capacity, or the payment is below the price. Same settings, same answers as the Rust
original: both pass policies/pricing-linear/fixtures.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from grid_policy import Amount, amount, answer, resources
from grid_policy.export import export_pricing
from grid_policy.text import ascii_lower
from grid_policy.wit import RefusalKind

GIB = 1 << 30
ANY_GPU_MODEL = "*"
"""The key of ``gpu_per_second`` that prices GPUs of any model not listed by name."""


class Unpriced(Exception):
    """A request the policy cannot price; carries the refusal."""

    def __init__(self, kind: RefusalKind, reason: str):
        super().__init__(reason)
        self.kind = kind
        self.reason = reason


@dataclass
class LinearPricing:
    """Rates are per second in the token's smallest unit; the defaults assume an 18-decimal
    token and price a core-hour at 0.02, a GiB-hour of memory at 0.005, of storage at 0.0001
    and a GPU-hour at 1."""

    cpu_core_per_second: Amount = 5_555_555_555_556
    memory_gib_per_second: Amount = 1_388_888_888_889
    storage_gib_per_second: Amount = 27_777_777_778
    gpu_per_second: dict[str, Amount] = field(
        default_factory=lambda: {ANY_GPU_MODEL: 277_777_777_777_778}
    )
    min_duration_secs: int = 60
    max_duration_secs: int = 30 * 24 * 3600

    def validate(self) -> Optional[str]:
        if self.min_duration_secs > self.max_duration_secs:
            return (
                f"min_duration_secs ({self.min_duration_secs}) is above "
                f"max_duration_secs ({self.max_duration_secs})"
            )
        if self.max_duration_secs == 0:
            return "max_duration_secs must be above 0"
        for model in self.gpu_per_second:
            if model != ANY_GPU_MODEL and ascii_lower(model) != model:
                return f'gpu_per_second: model "{model}" must be lower case'
        return None

    def gpu_rate(self, model: Optional[str]):
        """(model name for the breakdown, rate), falling back to "*"; None when not sold."""
        named = None if model is None else ascii_lower(model)
        if named is not None and named in self.gpu_per_second:
            return named, self.gpu_per_second[named]
        if ANY_GPU_MODEL in self.gpu_per_second:
            return (named if named is not None else ANY_GPU_MODEL), self.gpu_per_second[ANY_GPU_MODEL]
        return None

    def price(self, res, duration_secs: int):
        """(price, breakdown), or raises :class:`Unpriced`.

        Each part is rate x duration (checked) x quantity / unit, rounded up; written out
        rather than looped over a list of parts, which costs a quote more than its arithmetic
        in a component's interpreter."""
        mul, mul_div_ceil, add, line = amount.mul, amount.mul_div_ceil, amount.add, answer.line
        try:
            cpu = mul_div_ceil(mul(self.cpu_core_per_second, duration_secs), res.cpu_millis, 1000)
            memory = mul_div_ceil(mul(self.memory_gib_per_second, duration_secs), res.memory_bytes, GIB)
            storage = mul_div_ceil(mul(self.storage_gib_per_second, duration_secs), res.storage_bytes, GIB)
            breakdown = [line("cpu", cpu), line("memory", memory), line("storage", storage)]
            if res.gpus > 0:
                rate = self.gpu_rate(res.gpu_model)
                if rate is None:
                    raise Unpriced(
                        RefusalKind.UNSUPPORTED_RESOURCE,
                        f"gpu model {res.gpu_model or '(any)'} is not sold here",
                    )
                model, per_second = rate
                gpu = mul_div_ceil(mul(per_second, duration_secs), res.gpus, 1)
                breakdown.append(line(f"gpu:{model}", gpu))
                total = add(add(add(cpu, memory), storage), gpu)
            else:
                total = add(add(cpu, memory), storage)
        except amount.AmountError:
            raise Unpriced(RefusalKind.OTHER, "the price does not fit in a u256") from None
        return total, breakdown

    def quote(self, request, node, ctx):
        d = request.duration_secs
        if d < self.min_duration_secs or d > self.max_duration_secs:
            return answer.refuse(
                0, [], RefusalKind.DURATION_OUT_OF_RANGE,
                f"duration {d}s is outside the {self.min_duration_secs}s..="
                f"{self.max_duration_secs}s this node sells",
            )
        try:
            price, breakdown = self.price(request.resources, d)
        except Unpriced as e:
            return answer.refuse(0, [], e.kind, e.reason)
        shortfall = resources.first_shortfall(request.resources, node.free)
        if shortfall is not None:
            return answer.refuse(
                price, breakdown, RefusalKind.INSUFFICIENT_CAPACITY,
                f"not enough free capacity: {shortfall}",
            )
        payment = amount.parse(request.payment)
        if payment < price:
            return answer.refuse(
                price, breakdown, RefusalKind.INSUFFICIENT_PAYMENT,
                f"payment {payment} is below the price {price}",
            )
        return answer.accept(price, breakdown)


WitWorld = export_pricing(LinearPricing)
