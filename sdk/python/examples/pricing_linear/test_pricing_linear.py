import os

import pytest

from grid_policy import Context, SettingsError, amount, fixture, parse_settings
from grid_policy.wit import NodeInfo, QuoteRequest, RefusalKind, Resources
from pricing_linear import LinearPricing

FIXTURES = os.path.join(os.path.dirname(__file__), "..", "..", "..", "..", "policies", "pricing-linear", "fixtures")


def test_every_fixture_of_the_rust_original_gives_its_expected_answer():
    ran = fixture.check_dir(FIXTURES, LinearPricing)
    assert ran >= 6


def node(free_gpus, model):
    res = Resources(8000, 32 << 30, 100 << 30, free_gpus, model)
    return NodeInfo(wallet="0x" + "0" * 40, chain_id=1, total=res, free=res)


def request(gpus, model, payment):
    return QuoteRequest(Resources(1000, 1 << 30, 0, gpus, model), 100, str(payment), None)


MAX = str(amount.MAX)


def test_gpu_model_without_a_price_is_unsupported():
    policy = parse_settings(LinearPricing, '{"gpu_per_second":{"nvidia-a100":"1"}}')
    q = policy.quote(request(1, "nvidia-h100", MAX), node(4, "nvidia-h100"), Context.at(0))
    assert q.refusal.kind == RefusalKind.UNSUPPORTED_RESOURCE
    assert "nvidia-h100" in q.refusal.reason
    q = policy.quote(request(1, None, MAX), node(4, None), Context.at(0))
    assert q.refusal.kind == RefusalKind.UNSUPPORTED_RESOURCE


def test_gpu_model_match_ignores_case_and_falls_back_to_star():
    policy = parse_settings(
        LinearPricing,
        '{"gpu_per_second":{"nvidia-a100":"7","*":"3"},"cpu_core_per_second":"0",'
        '"memory_gib_per_second":"0","storage_gib_per_second":"0"}',
    )
    q = policy.quote(request(1, "NVIDIA-A100", 10_000), node(1, "nvidia-a100"), Context.at(0))
    assert q.price == "700" and q.refusal is None
    q = policy.quote(request(2, "amd-mi300", 10_000), node(2, "amd-mi300"), Context.at(0))
    assert q.price == "600"
    assert q.breakdown[-1].item == "gpu:amd-mi300"


def test_prices_round_up_never_down():
    policy = parse_settings(
        LinearPricing,
        '{"cpu_core_per_second":"1","memory_gib_per_second":"0","storage_gib_per_second":"0","min_duration_secs":1}',
    )
    req = request(0, None, 1000)
    req.resources.cpu_millis = 1
    req.duration_secs = 1
    assert policy.quote(req, node(0, None), Context.at(0)).price == "1"


def test_overflowing_price_is_refused_not_wrapped():
    policy = parse_settings(LinearPricing, f'{{"cpu_core_per_second":"{amount.MAX}","max_duration_secs":1000000}}')
    q = policy.quote(request(0, None, MAX), node(0, None), Context.at(0))
    assert q.refusal.kind == RefusalKind.OTHER
    assert "u256" in q.refusal.reason


@pytest.mark.parametrize(
    "bad,needle",
    [
        ('{"min_duration_secs":10,"max_duration_secs":5}', "min_duration_secs"),
        ('{"gpu_per_second":{"NVIDIA":"1"}}', "lower case"),
        ('{"cpu_per_core":"1"}', "unknown field"),
        ('{"cpu_core_per_second":"-1"}', "not an amount"),
        ('{"min_duration_secs":-1}', "min_duration_secs: expected an integer"),
        ("[1]", "expected an object"),
    ],
)
def test_settings_are_validated(bad, needle):
    with pytest.raises(SettingsError, match=needle):
        parse_settings(LinearPricing, bad)


def test_no_settings_is_the_valid_default():
    assert parse_settings(LinearPricing, "").min_duration_secs == 60
