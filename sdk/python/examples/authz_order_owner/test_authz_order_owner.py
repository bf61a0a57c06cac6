import os

import pytest

from grid_policy import Context, SettingsError, fixture, parse_settings
from grid_policy.wit import DecisionDeny, Order, OrderStatus, Resources, SessionDenyDecision, SessionGrantDecision, SessionRequest
from authz_order_owner import OrderOwner, path_has_prefix

FIXTURES = os.path.join(os.path.dirname(__file__), "..", "..", "..", "..", "policies", "authz-order-owner", "fixtures")
USER = "0x" + "aa" * 20


def test_every_fixture_of_the_rust_original_gives_its_expected_answer():
    assert fixture.check_dir(FIXTURES, OrderOwner) >= 6


def active_order(user, start, duration):
    return Order("1", user, "0x" + "11" * 20, "0x" + "11" * 20, Resources(0, 0, 0, 0, None),
                 duration, "1", start, start, OrderStatus.ACTIVE)


def test_session_never_outlives_the_last_order():
    policy = OrderOwner()
    d = policy.authorize_session(SessionRequest(USER, [active_order(USER, 1000, 100), active_order(USER, 1000, 500)]), Context.at(1050))
    assert isinstance(d, SessionGrantDecision) and d.value.expires_at == 1500
    d = policy.authorize_session(SessionRequest(USER, [active_order(USER, 1000, 10)]), Context.at(1050))
    assert isinstance(d, SessionDenyDecision)


def test_orders_of_someone_else_do_not_grant_a_session():
    d = OrderOwner().authorize_session(SessionRequest(USER, [active_order("0x" + "bb" * 20, 1000, 1000)]), Context.at(1000))
    assert isinstance(d, SessionDenyDecision)


def test_deny_list_compares_addresses_by_value_not_spelling():
    policy = parse_settings(OrderOwner, '{"deny":["0xAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"]}')
    d = policy.authorize_session(SessionRequest(USER, [active_order(USER, 1000, 1000)]), Context.at(1000))
    assert isinstance(d, SessionDenyDecision) and "denied" in d.value


def test_path_prefixes_match_whole_segments():
    assert path_has_prefix("/admin", "/admin")
    assert path_has_prefix("/admin/users", "/admin/")
    assert not path_has_prefix("/administrator", "/admin")
    assert path_has_prefix("/anything", "/")


@pytest.mark.parametrize(
    "bad,needle",
    [
        ('{"session_lifetime_secs":0}', "above 0"),
        ('{"deny_path_prefixes":["admin"]}', "start with"),
        ('{"deny_methods":["GET /"]}', "not an HTTP method"),
        ('{"allow":["0xaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"],"deny":["0xAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"]}', "both"),
        ('{"deny":["0x12"]}', "not an address"),
    ],
)
def test_settings_are_validated(bad, needle):
    with pytest.raises(SettingsError, match=needle):
        parse_settings(OrderOwner, bad)
    parse_settings(OrderOwner, "")
