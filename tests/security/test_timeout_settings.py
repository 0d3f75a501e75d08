"""The lock and statement timeouts Timber sets in every PostgreSQL transaction come from the environment."""

from __future__ import annotations

import pytest

from timber_core.config import TimberConfig
from timber_core.errors import ConfigurationError


def test_the_timeouts_default_to_five_and_thirty_seconds() -> None:
    config = TimberConfig({})
    assert (config.LOCK_TIMEOUT_MS, config.STATEMENT_TIMEOUT_MS) == (5000, 30000)


def test_the_timeouts_are_read_from_the_environment_and_zero_turns_them_off() -> None:
    config = TimberConfig({"TIMBER_LOCK_TIMEOUT_MS": "250", "TIMBER_STATEMENT_TIMEOUT_MS": "0"})
    assert (config.LOCK_TIMEOUT_MS, config.STATEMENT_TIMEOUT_MS) == (250, 0)


def test_a_negative_timeout_is_refused_naming_the_variable() -> None:
    with pytest.raises(ConfigurationError) as err:
        TimberConfig({"TIMBER_LOCK_TIMEOUT_MS": "-1"})
    assert str(err.value) == (
        "environment variable TIMBER_LOCK_TIMEOUT_MS='-1' is malformed: expected a whole number of at least 0"
    )
