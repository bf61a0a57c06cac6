"""The shared fixture format (``guest-sdk/src/fixture.rs``), run natively.

One JSON file is one evaluation and the answer expected::

    {"now": 1700000000,
     "call": {"quote": {"request": {...}, "node": {...}}},
     "expect": {"price": "...", "breakdown": [...], "refusal": null}}

``call`` is one of ``quote`` (pricing), ``check`` (payee), ``authorize_session`` and
``authorize_request`` (authorization). The same files drive ``grid-gateway policy run`` on the
built component, so what passes here passes there. Reading is as strict as the Rust SDK's:
unknown fields, missing required fields and malformed amounts or addresses are errors, and
optional fields take the same defaults.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from typing import Any, Optional

from . import address as _address
from . import amount as _amount
from .context import Context
from .settings import parse_settings
from .wit import (
    DecisionAllow, DecisionDeny, NodeInfo, Order, OrderStatus, Quote, QuoteRequest, RequestMeta,
    Resources, SessionDenyDecision, SessionGrantDecision, SessionRequest,
)

SETTINGS_FILE = "settings.json"
"""The settings file beside a policy's fixtures; it is not a fixture."""

WORLDS = {"quote": "pricing", "check": "payee",
          "authorize_session": "authorization", "authorize_request": "authorization"}


class FixtureError(ValueError):
    """A fixture that is not valid in the fixture format, or that does not fit the policy."""


@dataclass
class Fixture:
    """One recorded evaluation."""

    now: Optional[int]
    call: str
    args: dict
    expect: Any = None
    has_expect: bool = False

    @property
    def world(self) -> str:
        return WORLDS[self.call]

    def context(self) -> Context:
        """The fixture's clock (or the real one when it has none)."""
        return Context.at(self.now if self.now is not None else int(time.time()))


def _object(value: Any, where: str, required: tuple, optional: tuple) -> dict:
    if not isinstance(value, dict):
        raise FixtureError(f"{where}: expected an object")
    for key in value:
        if key not in required and key not in optional:
            raise FixtureError(f"{where}: unknown field `{key}`")
    for key in required:
        if key not in value:
            raise FixtureError(f"{where}: missing field `{key}`")
    return value


def _uint(value: Any, where: str, bits: int = 64) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < (1 << bits):
        raise FixtureError(f"{where}: expected an integer between 0 and 2^{bits}-1")
    return value


def _str(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise FixtureError(f"{where}: expected a string")
    return value


def _opt(value: Any, convert, where: str):
    return None if value is None else convert(value, where)


def _amount_text(value: Any, where: str) -> str:
    try:
        return _amount.format(_amount.parse(value))
    except _amount.AmountError as e:
        raise FixtureError(f"{where}: {e}") from None


def _addr(value: Any, where: str) -> str:
    try:
        return _address.parse(value)
    except _address.AddressError as e:
        raise FixtureError(f"{where}: {e}") from None


def _str_list(value: Any, where: str) -> list:
    if not isinstance(value, list):
        raise FixtureError(f"{where}: expected an array")
    return [_str(v, f"{where}[{i}]") for i, v in enumerate(value)]


def resources(v: Any, where: str = "resources") -> Resources:
    v = _object(v, where, ("cpu_millis", "memory_bytes"), ("storage_bytes", "gpus", "gpu_model"))
    return Resources(
        cpu_millis=_uint(v["cpu_millis"], f"{where}.cpu_millis"),
        memory_bytes=_uint(v["memory_bytes"], f"{where}.memory_bytes"),
        storage_bytes=_uint(v.get("storage_bytes", 0), f"{where}.storage_bytes"),
        gpus=_uint(v.get("gpus", 0), f"{where}.gpus", 32),
        gpu_model=_opt(v.get("gpu_model"), _str, f"{where}.gpu_model"),
    )


_STATUSES = {s.name.lower(): s for s in OrderStatus}


def order(v: Any, where: str = "order") -> Order:
    v = _object(v, where, ("id", "user", "provider", "payee", "resources", "duration_secs",
                           "payment", "created_at", "status"), ("start_time",))
    status = _str(v["status"], f"{where}.status")
    status_value = _STATUSES.get(status)
    if status_value is None:
        raise FixtureError(f"{where}.status: unknown status {status!r}")
    return Order(
        id=_str(v["id"], f"{where}.id"),
        user=_addr(v["user"], f"{where}.user"),
        provider=_addr(v["provider"], f"{where}.provider"),
        payee=_addr(v["payee"], f"{where}.payee"),
        resources=resources(v["resources"], f"{where}.resources"),
        duration_secs=_uint(v["duration_secs"], f"{where}.duration_secs"),
        payment=_amount_text(v["payment"], f"{where}.payment"),
        start_time=_opt(v.get("start_time"), _uint, f"{where}.start_time"),
        created_at=_uint(v["created_at"], f"{where}.created_at"),
        status=status_value,
    )


def node_info(v: Any, where: str = "node") -> NodeInfo:
    v = _object(v, where, ("wallet", "total", "free"), ("chain_id",))
    return NodeInfo(
        wallet=_addr(v["wallet"], f"{where}.wallet"),
        chain_id=_uint(v.get("chain_id", 0), f"{where}.chain_id"),
        total=resources(v["total"], f"{where}.total"),
        free=resources(v["free"], f"{where}.free"),
    )


def quote_request(v: Any, where: str = "request") -> QuoteRequest:
    v = _object(v, where, ("resources", "duration_secs", "payment"), ("order",))
    return QuoteRequest(
        resources=resources(v["resources"], f"{where}.resources"),
        duration_secs=_uint(v["duration_secs"], f"{where}.duration_secs"),
        payment=_amount_text(v["payment"], f"{where}.payment"),
        order=_opt(v.get("order"), order, f"{where}.order"),
    )


def session_request(v: Any, where: str = "request") -> SessionRequest:
    v = _object(v, where, ("address",), ("orders",))
    orders = v.get("orders", [])
    if not isinstance(orders, list):
        raise FixtureError(f"{where}.orders: expected an array")
    return SessionRequest(
        address=_addr(v["address"], f"{where}.address"),
        orders=[order(o, f"{where}.orders[{i}]") for i, o in enumerate(orders)],
    )


def request_meta(v: Any, where: str = "request") -> RequestMeta:
    v = _object(v, where, ("method", "path"),
                ("host", "headers", "caller", "order_id", "scopes"))
    headers = v.get("headers", [])
    if not isinstance(headers, list) or not all(
        isinstance(h, list) and len(h) == 2 and all(isinstance(x, str) for x in h) for h in headers
    ):
        raise FixtureError(f"{where}.headers: expected an array of [name, value] pairs")
    return RequestMeta(
        method=_str(v["method"], f"{where}.method"),
        path=_str(v["path"], f"{where}.path"),
        host=_opt(v.get("host"), _str, f"{where}.host"),
        headers=[(h[0], h[1]) for h in headers],
        caller=_opt(v.get("caller"), _addr, f"{where}.caller"),
        order_id=_opt(v.get("order_id"), _str, f"{where}.order_id"),
        scopes=_str_list(v.get("scopes", []), f"{where}.scopes"),
    )


def from_json(data: Any) -> Fixture:
    """A fixture from its parsed JSON."""
    data = _object(data, "fixture", ("call",), ("now", "expect"))
    call = data["call"]
    if not isinstance(call, dict) or len(call) != 1:
        raise FixtureError("call: expected an object with one of " + ", ".join(WORLDS))
    ((name, body),) = call.items()
    if name in ("quote", "check"):
        body = _object(body, f"call.{name}", ("request", "node") if name == "quote" else ("order", "node"), ())
    elif name in WORLDS:
        body = _object(body, f"call.{name}", ("request",), ())
    else:
        raise FixtureError(f"call: unknown variant `{name}`, expected one of " + ", ".join(WORLDS))
    if name == "quote":
        args = {"request": quote_request(body["request"]), "node": node_info(body["node"])}
    elif name == "check":
        args = {"order": order(body["order"]), "node": node_info(body["node"])}
    elif name == "authorize_session":
        args = {"request": session_request(body["request"])}
    else:
        args = {"request": request_meta(body["request"])}
    now = data.get("now")
    return Fixture(
        now=_opt(now, _uint, "now"),
        call=name,
        args=args,
        expect=data.get("expect"),
        has_expect="expect" in data and data["expect"] is not None,
    )


def read_file(path: str) -> Fixture:
    """Reads and parses one fixture file; errors name the file."""
    try:
        with open(path, encoding="utf-8") as f:
            return from_json(json.load(f))
    except (OSError, ValueError) as e:
        raise FixtureError(f"{path}: {e}") from None


def files_in(directory: str) -> list:
    """The fixture files in ``directory``: every ``*.json`` but ``settings.json``, sorted."""
    return sorted(
        os.path.join(directory, name)
        for name in os.listdir(directory)
        if name.endswith(".json") and name != SETTINGS_FILE
    )


def run(fixture: Fixture, policy) -> Any:
    """Evaluates ``fixture`` natively on ``policy`` (a settings-built policy object)."""
    method = getattr(policy, fixture.call, None)
    if method is None:
        raise FixtureError(
            f"the fixture calls the {fixture.world} world's `{fixture.call}` "
            f"but {type(policy).__name__} has no such method"
        )
    return method(**fixture.args, ctx=fixture.context())


def to_json(outcome: Any) -> Any:
    """An answer in the serde form the fixtures' ``expect`` uses (as ``policy run`` prints it).
    Amounts are checked: an answer the gateway would refuse is an error here too."""
    if isinstance(outcome, Quote):
        return {
            "price": _amount_text(outcome.price, "price"),
            "breakdown": [
                {"item": line.item, "amount": _amount_text(line.amount, f"breakdown[{i}].amount")}
                for i, line in enumerate(outcome.breakdown)
            ],
            "refusal": None if outcome.refusal is None else {
                "kind": outcome.refusal.kind.name.lower(),
                "reason": outcome.refusal.reason,
            },
        }
    if isinstance(outcome, DecisionAllow):
        return {"decision": "allow"}
    if isinstance(outcome, (DecisionDeny, SessionDenyDecision)):
        return {"decision": "deny", "reason": outcome.value}
    if isinstance(outcome, SessionGrantDecision):
        return {"decision": "grant", "expires_at": outcome.value.expires_at,
                "scopes": outcome.value.scopes}
    raise FixtureError(f"{type(outcome).__name__} is not an answer of any world")


def check(fixture: Fixture, outcome: Any) -> None:
    """Compares an answer with ``expect``; raises :class:`FixtureError` showing both."""
    if not fixture.has_expect:
        return
    got = to_json(outcome)
    if got != fixture.expect:
        raise FixtureError(f"expected {json.dumps(fixture.expect)}\n     got {json.dumps(got)}")


def load_dir(directory: str):
    """The settings text beside the fixtures ("" when none) and the fixtures, by file name."""
    try:
        with open(os.path.join(directory, SETTINGS_FILE), encoding="utf-8") as f:
            settings = f.read()
    except FileNotFoundError:
        settings = ""
    return settings, [(os.path.basename(p), read_file(p)) for p in files_in(directory)]


def check_dir(directory: str, policy_cls: type) -> int:
    """Runs every fixture in ``directory`` on ``policy_cls`` configured by the settings file
    beside them and checks each answer; returns how many ran. The error names the fixture."""
    settings, fixtures = load_dir(directory)
    policy = parse_settings(policy_cls, settings)
    for name, fixture in fixtures:
        try:
            check(fixture, run(fixture, policy))
        except FixtureError as e:
            raise FixtureError(f"{name}: {e}") from None
    return len(fixtures)
