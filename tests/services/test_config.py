"""TimberConfig: typed, read once, per-app subclasses, malformed values named."""

from __future__ import annotations

import pytest

from timber_core.config import Setting, TimberConfig, boolean
from timber_core.errors import ConfigurationError


class CanopyLikeConfig(TimberConfig):
    ENABLE_PAPER_TRADING = Setting("ENABLE_PAPER_TRADING", boolean, True)


def test_defaults_apply_when_nothing_is_set() -> None:
    c = TimberConfig({})
    assert (c.DATABASE_URL, c.REDIS_URL, c.QDRANT_URL, c.ENABLE_VECTOR_SEARCH, c.DB_POOL_SIZE, c.DB_MAX_OVERFLOW) == (
        None, None, None, True, 10, 5)


def test_the_connect_timeout_is_ten_seconds_unless_set() -> None:
    assert (TimberConfig({}).CONNECT_TIMEOUT, TimberConfig({"TIMBER_CONNECT_TIMEOUT": "3"}).CONNECT_TIMEOUT) == (10, 3)


def test_values_are_parsed_to_their_types() -> None:
    c = TimberConfig({"DATABASE_URL": "postgresql://x@h/db", "ENABLE_GDPR": "YES", "DB_POOL_SIZE": "20", "DB_MAX_OVERFLOW": "0"})
    assert (c.DATABASE_URL, c.ENABLE_GDPR, c.DB_POOL_SIZE, c.DB_MAX_OVERFLOW) == ("postgresql://x@h/db", True, 20, 0)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"ENABLE_ENCRYPTION": "maybe"}, "environment variable ENABLE_ENCRYPTION='maybe' is malformed: expected true or false (also yes/no, on/off, 1/0)"),
        ({"DB_POOL_SIZE": "0"}, "environment variable DB_POOL_SIZE='0' is malformed: expected a whole number of at least 1"),
        ({"DB_MAX_OVERFLOW": "lots"}, "environment variable DB_MAX_OVERFLOW='lots' is malformed: expected a whole number of at least 0"),
        ({"TIMBER_CONNECT_TIMEOUT": "0"}, "environment variable TIMBER_CONNECT_TIMEOUT='0' is malformed: expected a whole number of at least 1"),
        ({"TIMBER_DEBUG": "loud"}, "environment variable TIMBER_DEBUG='loud' is malformed: expected true or false (also yes/no, on/off, 1/0)"),
    ],
)
def test_malformed_values_name_the_variable(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigurationError) as err:
        TimberConfig(env)
    assert str(err.value) == message


def test_app_subclass_adds_its_own_settings() -> None:
    c = CanopyLikeConfig({"ENABLE_PAPER_TRADING": "off", "REDIS_URL": "redis://127.0.0.1:6379/0"})
    assert (c.ENABLE_PAPER_TRADING, c.REDIS_URL) == (False, "redis://127.0.0.1:6379/0")
    assert "ENABLE_PAPER_TRADING" in CanopyLikeConfig.settings() and "ENABLE_PAPER_TRADING" not in TimberConfig.settings()


def test_load_reads_once_per_class(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DB_POOL_SIZE", "7")
    first = TimberConfig.load()
    monkeypatch.setenv("DB_POOL_SIZE", "8")
    assert TimberConfig.load() is first and first.DB_POOL_SIZE == 7
