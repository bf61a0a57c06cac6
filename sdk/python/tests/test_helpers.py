import json

import pytest

from grid_policy import address, amount, quantity, resources, text
from grid_policy.wit import Resources

MAX_TEXT = "115792089237316195423570985008687907853269984665640564039457584007913129639935"


def test_amount_parses_and_prints_the_full_range():
    assert amount.parse(MAX_TEXT) == amount.MAX
    assert amount.format(amount.MAX) == MAX_TEXT
    assert amount.parse("0") == 0
    assert amount.parse(5) == 5  # a JSON number, as hand-written fixtures use


@pytest.mark.parametrize("bad", ["", "-1", "+1", "1.5", "1e18", "0x10", " 1", "abc", "١", str(amount.MAX + 1), -1, 1 << 64, True, 1.0, None])
def test_amount_refuses_what_is_not_a_plain_decimal(bad):
    with pytest.raises(amount.AmountError):
        amount.parse(bad)


def test_amount_arithmetic_is_range_checked():
    with pytest.raises(amount.AmountError):
        amount.add(amount.MAX, 1)
    with pytest.raises(amount.AmountError):
        amount.sub(0, 1)
    with pytest.raises(amount.AmountError):
        amount.mul(amount.MAX, 2)
    with pytest.raises(amount.AmountError):
        amount.format(-1)
    assert amount.mul(7, 6) == 42
    assert amount.total([1, 2, 3]) == 6


def test_mul_div_rounds_up_and_survives_wide_products():
    assert amount.mul_div_ceil(10, 1, 3) == 4
    assert amount.mul_div_ceil(9, 1, 3) == 3
    assert amount.mul_div_ceil(amount.MAX, 2, 2) == amount.MAX
    with pytest.raises(amount.AmountError):
        amount.mul_div_ceil(amount.MAX, 3, 2)
    with pytest.raises(amount.AmountError):
        amount.mul_div_ceil(1, 1, 0)


def test_cpu_quantities():
    assert quantity.parse_cpu_millis("2") == 2000
    assert quantity.parse_cpu_millis("500m") == 500
    assert quantity.parse_cpu_millis("0.5") == 500
    assert quantity.parse_cpu_millis("1.0001") == 1001
    assert quantity.parse_cpu_millis("100u") == 1
    assert quantity.parse_cpu_millis("0") == 0
    assert quantity.parse_cpu_millis("2e3") == 2_000_000
    assert quantity.parse_cpu_millis("1." + "0" * 60) == 1000


def test_byte_quantities():
    assert quantity.parse_bytes("4Gi") == 4 << 30
    assert quantity.parse_bytes("1G") == 1_000_000_000
    assert quantity.parse_bytes("1.5Ki") == 1536
    assert quantity.parse_bytes("128974848") == 128_974_848
    assert quantity.parse_bytes("129e6") == 129_000_000
    assert quantity.parse_bytes("123Mi") == 123 << 20
    assert quantity.parse_bytes("1m") == 1  # a fraction of a byte rounds up


@pytest.mark.parametrize("bad", ["", "-1", "Gi", "1.2.3", "4GB", "1x", "1e", "1e99", ".", "99999999999Ei", "١"])
def test_quantities_refuse_nonsense(bad):
    with pytest.raises(quantity.QuantityError):
        quantity.parse_bytes(bad)


def test_quantities_format_like_kubernetes():
    assert quantity.format_cpu_millis(2000) == "2"
    assert quantity.format_cpu_millis(1500) == "1500m"
    assert quantity.format_bytes(4 << 30) == "4Gi"
    assert quantity.format_bytes(1536) == "1536"
    assert quantity.format_bytes(3 << 20) == "3Mi"
    assert quantity.format_bytes(0) == "0"


def test_addresses_compare_by_value_not_spelling():
    a = "0xAbCdEf0123456789aBcDeF0123456789AbCdEf01"
    b = "0xabcdef0123456789abcdef0123456789abcdef01"
    assert address.same(a, b)
    assert address.parse(a) == b
    assert address.contains([b], a)
    assert not address.same(a, "0x" + "00" * 20)


@pytest.mark.parametrize("bad", ["", "0x", "abcdef0123456789abcdef0123456789abcdef01", "0xabcdef0123456789abcdef0123456789abcdef0", "0xabcdef0123456789abcdef0123456789abcdef0g", None])
def test_addresses_refuse_malformed(bad):
    with pytest.raises(address.AddressError):
        address.parse(bad)
    assert not address.same(bad, bad)


def res(cpu, mem, gpus, model):
    return Resources(cpu, mem, 0, gpus, model)


def test_fits_checks_every_dimension_and_gpu_model():
    free = res(4000, 8 << 30, 2, "nvidia-a100")
    assert resources.fits_in(res(4000, 8 << 30, 2, None), free)
    assert resources.fits_in(res(1000, 1, 1, "NVIDIA-A100"), free)
    assert not resources.fits_in(res(4001, 1, 0, None), free)
    assert not resources.fits_in(res(1, 1, 3, None), free)
    assert not resources.fits_in(res(1, 1, 1, "nvidia-h100"), free)
    assert resources.first_shortfall(res(5000, 1, 0, None), free) == "cpu: asked 5, free 4"
    assert resources.first_shortfall(res(1, 1, 0, "nvidia-h100"), free) is None
    assert resources.first_shortfall(res(1, 1, 1, "nvidia-h100"), free) == "gpu model: asked nvidia-h100, offered nvidia-a100"


def test_case_folding_is_ascii_only():
    assert text.eq_ignore_ascii_case("TRACE", "trace")
    assert not text.eq_ignore_ascii_case("\u212a", "k")  # the Kelvin sign is not a K
