"""{{module}}'s native tests (pytest): every fixture, and settings validation."""

import os

import pytest

from grid_policy import SettingsError, fixture, parse_settings
from {{module}} import Settings

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures")


def test_every_fixture_gives_its_expected_answer():
    assert fixture.check_dir(FIXTURES, Settings) >= 3


def test_settings_the_policy_cannot_work_with_are_refused():
    with pytest.raises(SettingsError):
        parse_settings(Settings, '{{bad_settings}}')
    with pytest.raises(SettingsError):
        parse_settings(Settings, '{"no_such_key": 1}')
    parse_settings(Settings, "")
