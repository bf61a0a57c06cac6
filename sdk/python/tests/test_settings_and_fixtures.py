import json
from dataclasses import dataclass, field
from typing import Optional

import pytest

from grid_policy import Address, Amount, SettingsError, answer, fixture, parse_settings
from grid_policy.export import export_pricing
from grid_policy.wit import Err, RefusalKind


@dataclass
class Example:
    rate: Amount = 10
    owners: list[Address] = field(default_factory=list)
    rates: dict[str, Amount] = field(default_factory=dict)
    note: Optional[str] = None
    limit: int = 5
    strict: bool = False

    def validate(self):
        return "limit must be above 0" if self.limit == 0 else None


def test_settings_convert_every_field_type():
    s = parse_settings(Example, json.dumps({
        "rate": "1000000000000000000000", "owners": ["0xAA" + "aa" * 19], "rates": {"x": 7},
        "note": None, "limit": 3, "strict": True}))
    assert s.rate == 10**21 and s.owners == ["0x" + "aa" * 20] and s.rates == {"x": 7}
    assert (s.note, s.limit, s.strict) == (None, 3, True)
    assert parse_settings(Example, "  null ") == Example()


@pytest.mark.parametrize("bad,needle", [
    ('{"rate": "1.5"}', "rate: .* is not an amount"),
    ('{"owners": ["nope"]}', "owners: .* is not an address"),
    ('{"owners": "0x"}', "owners: expected an array"),
    ('{"limit": true}', "limit: expected an integer"),
    ('{"limit": 1.5}', "limit: expected an integer"),
    ('{"strict": 1}', "strict: expected a boolean"),
    ('{"note": 1}', "note: expected a string"),
    ('{"limit": 0}', "limit must be above 0"),
    ('{"other": 1}', "unknown field `other`"),
    ("{", "not JSON"),
    ('"x"', "expected an object"),
])
def test_settings_refusals_name_the_field(bad, needle):
    with pytest.raises(SettingsError, match=needle):
        parse_settings(Example, bad)


@dataclass
class Fixed:
    """A pricing policy whose answer is fixed, to test the export glue and the runner."""

    price: Amount = 7

    def validate(self):
        return None

    def quote(self, request, node, ctx):
        ctx.log("info", f"quoting at {ctx.now()}")
        return answer.accept(self.price, [answer.line("cpu", self.price)])


def test_export_validate_settings_raises_err_with_the_message():
    world = export_pricing(Example)()
    world.validate_settings('{"limit": 1}')
    with pytest.raises(Err) as e:
        world.validate_settings('{"limit": 0}')
    assert e.value.value == "limit must be above 0"


QUOTE_CALL = {"quote": {
    "request": {"resources": {"cpu_millis": 1, "memory_bytes": 1}, "duration_secs": 60, "payment": 5},
    "node": {"wallet": "0x" + "11" * 20, "total": {"cpu_millis": 1, "memory_bytes": 1},
             "free": {"cpu_millis": 1, "memory_bytes": 1}}}}


def test_fixture_defaults_match_the_rust_format():
    f = fixture.from_json({"now": 5, "call": QUOTE_CALL})
    assert f.args["request"].resources.storage_bytes == 0
    assert f.args["request"].resources.gpu_model is None
    assert f.args["request"].payment == "5"
    assert f.args["node"].chain_id == 0
    outcome = fixture.run(f, Fixed())
    assert fixture.to_json(outcome) == {"price": "7", "breakdown": [{"item": "cpu", "amount": "7"}], "refusal": None}


@pytest.mark.parametrize("mutate,needle", [
    (lambda d: d.update(extra=1), "unknown field `extra`"),
    (lambda d: d["call"]["quote"]["request"].update(payment="-1"), "payment: .* is not an amount"),
    (lambda d: d["call"]["quote"]["node"].update(wallet="0x1"), "wallet: .* is not an address"),
    (lambda d: d["call"]["quote"]["request"]["resources"].pop("cpu_millis"), "missing field `cpu_millis`"),
    (lambda d: d["call"]["quote"]["request"]["resources"].update(gpus=1 << 32), "gpus: expected an integer"),
    (lambda d: d.update(call={"price": {}}), "unknown variant `price`"),
])
def test_fixture_reading_is_strict(mutate, needle):
    data = json.loads(json.dumps({"call": QUOTE_CALL}))
    mutate(data)
    with pytest.raises(fixture.FixtureError, match=needle):
        fixture.from_json(data)


def test_a_mismatch_shows_expected_and_got():
    f = fixture.from_json({"call": QUOTE_CALL, "expect": {"price": "8", "breakdown": [], "refusal": None}})
    with pytest.raises(fixture.FixtureError, match='expected .*"8".*\n.*got .*"7"'):
        fixture.check(f, fixture.run(f, Fixed()))


def test_an_answer_with_a_bad_amount_is_an_error_not_a_pass():
    from grid_policy.wit import Quote
    f = fixture.from_json({"call": QUOTE_CALL, "expect": {"price": "-1", "breakdown": [], "refusal": None}})
    with pytest.raises(fixture.FixtureError, match="not an amount"):
        fixture.check(f, Quote(price="-1", breakdown=[], refusal=None))


def test_refusal_kinds_serialize_snake_case():
    q = answer.refuse(0, [], RefusalKind.DURATION_OUT_OF_RANGE, "no")
    assert fixture.to_json(q)["refusal"] == {"kind": "duration_out_of_range", "reason": "no"}
    assert fixture.to_json(answer.grant(10)) == {"decision": "grant", "expires_at": 10, "scopes": None}
    assert fixture.to_json(answer.deny("x")) == {"decision": "deny", "reason": "x"}
    assert fixture.to_json(answer.allow()) == {"decision": "allow"}


def test_export_builds_the_policy_from_host_settings_once_and_asks_the_host_clock(monkeypatch):
    from wit_world.imports import host

    asked = []
    monkeypatch.setattr(host, "settings", lambda: asked.append("settings") or "")
    monkeypatch.setattr(host, "now", lambda: 42)
    logged = []
    monkeypatch.setattr(host, "log", lambda level, message: logged.append((level, message)))
    world_cls = export_pricing(Fixed)
    f = fixture.from_json({"call": QUOTE_CALL})
    for _ in range(3):
        quote = world_cls().quote(f.args["request"], f.args["node"])
    assert quote.price == "7"
    assert asked == ["settings"]
    assert logged == [(host.Level.INFO, "quoting at 42")] * 3
