"""Settings validation: a policy's settings are a dataclass whose fields say what each key
holds; :func:`parse_settings` turns the settings file's JSON text into it, refusing what the
Rust SDK's serde settings refuse (unknown keys, wrong types, amounts or addresses that are
not one) and then running the policy's own ``validate()``.

    @dataclass
    class MySettings:
        rate: Amount = 10
        allow: list[Address] = field(default_factory=list)

        def validate(self) -> str | None:   # an error message, or None when valid
            ...

Field types: ``int`` (a u64), ``bool``, ``str``, :data:`Amount`, :data:`Address`,
``list[T]``, ``dict[str, T]`` and ``Optional[T]`` of those.
"""

from __future__ import annotations

import dataclasses
import json
import typing
from typing import Annotated, Any

from . import address as _address
from . import amount as _amount

Amount = Annotated[int, "grid_policy.amount"]
"""A settings field holding a u256 amount: a decimal string (or a u64 JSON number); an int."""

Address = Annotated[str, "grid_policy.address"]
"""A settings field holding an address; stored in its canonical lower-case spelling."""

U64_MAX = (1 << 64) - 1


class SettingsError(ValueError):
    """Settings the policy refuses; the message is shown to the operator."""


def parse_settings(cls: type, text: str):
    """The settings dataclass ``cls`` read from ``text`` ("" or "null" means every default),
    validated. Raises :class:`SettingsError` with a message naming the problem."""
    trimmed = text.strip()
    if trimmed in ("", "null"):
        data: Any = {}
    else:
        try:
            data = json.loads(trimmed)
        except (ValueError, RecursionError) as e:
            raise SettingsError(f"settings: not JSON: {e}") from None
        if not isinstance(data, dict):
            raise SettingsError(f"settings: expected an object, got {_kind(data)}")
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    for key in data:
        if key not in fields:
            expected = ", ".join(f"`{name}`" for name in fields)
            raise SettingsError(f"settings: unknown field `{key}`, expected one of {expected}")
    hints = typing.get_type_hints(cls, include_extras=True)
    values = {}
    for name, value in data.items():
        try:
            values[name] = _convert(hints[name], value)
        except (SettingsError, _amount.AmountError, _address.AddressError) as e:
            raise SettingsError(f"settings: {name}: {e}") from None
    settings = cls(**values)
    validate = getattr(settings, "validate", None)
    if validate is not None:
        problem = validate()
        if problem:
            raise SettingsError(str(problem))
    return settings


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    return {bool: "a boolean", int: "a number", float: "a number", str: "a string",
            list: "an array", dict: "an object"}.get(type(value), type(value).__name__)


def _convert(hint: Any, value: Any) -> Any:
    origin = typing.get_origin(hint)
    if origin is Annotated:
        base, *marks = typing.get_args(hint)
        if "grid_policy.amount" in marks:
            return _amount.parse(value)
        if "grid_policy.address" in marks:
            return _address.parse(value)
        return _convert(base, value)
    if origin is typing.Union:
        args = typing.get_args(hint)
        if value is None and type(None) in args:
            return None
        rest = [a for a in args if a is not type(None)]
        if len(rest) == 1:
            return _convert(rest[0], value)
        raise SettingsError(f"unsupported settings type {hint}")
    if origin is list:
        (item,) = typing.get_args(hint)
        if not isinstance(value, list):
            raise SettingsError(f"expected an array, got {_kind(value)}")
        return [_convert(item, v) for v in value]
    if origin is dict:
        key, item = typing.get_args(hint)
        if key is not str:
            raise SettingsError(f"unsupported settings type {hint}")
        if not isinstance(value, dict):
            raise SettingsError(f"expected an object, got {_kind(value)}")
        return {k: _convert(item, v) for k, v in value.items()}
    if hint is bool:
        if not isinstance(value, bool):
            raise SettingsError(f"expected a boolean, got {_kind(value)}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= U64_MAX:
            raise SettingsError(f"expected an integer between 0 and 2^64-1, got {json.dumps(value)}")
        return value
    if hint is str:
        if not isinstance(value, str):
            raise SettingsError(f"expected a string, got {_kind(value)}")
        return value
    raise SettingsError(f"unsupported settings type {hint}")
