"""grid_policy: write grid-gateway policies (``grid:policy@0.1.0``) in Python.

- :mod:`grid_policy.amount` -- u256 token amounts as checked ints
- :mod:`grid_policy.quantity` -- Kubernetes quantities ("500m", "4Gi")
- :mod:`grid_policy.address` -- addresses compared by value
- :mod:`grid_policy.resources` -- ``fits_in``, ``first_shortfall``
- :mod:`grid_policy.settings` -- settings dataclasses, validated like the Rust SDK's
- :mod:`grid_policy.answer` -- quotes and decisions from ints and strings
- :mod:`grid_policy.fixture` -- the shared fixture format, run natively with pytest
- :mod:`grid_policy.export` -- the class componentize-py exports
- :mod:`grid_policy.text` -- ASCII-only case folding
- :mod:`grid_policy.wit` -- the WIT records (generated bindings)
"""

from . import address, amount, answer, fixture, quantity, resources, settings, text, wit
from .context import Context
from .settings import Address, Amount, SettingsError, parse_settings

__all__ = [
    "Address", "Amount", "Context", "SettingsError", "address", "amount", "answer", "fixture",
    "parse_settings", "quantity", "resources", "settings", "text", "wit",
]
__version__ = "0.1.0"
