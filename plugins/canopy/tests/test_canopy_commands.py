"""Canopy's ``timber canopy-orders`` command, run with click's CliRunner on a real database (SQLite, PostgreSQL)."""

from __future__ import annotations

import click
import pytest
from click.testing import CliRunner

import timber_core


@pytest.fixture
def database(timber_database_url: str, timber_kernel_factory: object, monkeypatch: pytest.MonkeyPatch) -> str:
    """The test's database (``timber_core.testing``), named by DATABASE_URL as the ``timber`` command reads it.

    ``timber_kernel_factory`` is requested for its teardown: ``timber_core.shutdown()``.
    """
    for name in ("TIMBER_APPS", "TIMBER_DISABLE_APPS", "TIMBER_APP"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DATABASE_URL", timber_database_url)
    return timber_database_url


@pytest.fixture
def timber_group() -> click.Group:
    """A ``timber``-like group holding Canopy's commands, registered through its hook."""
    from canopy.plugin import timber_register_commands

    group = click.Group("timber")
    timber_register_commands(group)
    return group


def _orders(url: str) -> tuple[str, str, str]:
    """Ada with a pending AAPL order and a filled TSLA order (in that order), Bob with one; return the ids."""
    from timber_core.services.persistence import user_service

    kernel = timber_core.initialize_timber("canopy", database_url=url, create_tables=True)
    ada = user_service.create_user("ada@example.com", "ada")
    bob = user_service.create_user("bob@example.com", "bob")
    orders = kernel.services["orders"]
    aapl = orders.create_order(ada, "AAPL", "limit", 10, 150.25)
    tsla = orders.create_order(ada, "TSLA", "market", 2, None)
    orders.fill_order(tsla, ada)
    orders.create_order(bob, "NVDA", "market", 3, None)
    kernel.close()
    return ada, aapl, tsla


def test_canopy_orders_lists_the_users_orders_newest_first(database: str, timber_group: click.Group) -> None:
    _ada, aapl, tsla = _orders(database)
    result = CliRunner().invoke(timber_group, ["canopy-orders", "ada@example.com"])
    assert (result.exit_code, result.output.splitlines()) == (0, [
        f"{tsla}  TSLA   market          2 @ market     filled",
        f"{aapl}  AAPL   limit          10 @ 150.25     pending",
        "2 order(s) of ada@example.com",
    ])


def test_canopy_orders_status_option_keeps_orders_of_that_status(database: str, timber_group: click.Group) -> None:
    _ada, aapl, _tsla = _orders(database)
    result = CliRunner().invoke(timber_group, ["canopy-orders", "ada@example.com", "--status", "pending"])
    assert (result.exit_code, result.output.splitlines()) == (0, [
        f"{aapl}  AAPL   limit          10 @ 150.25     pending",
        "1 order(s) of ada@example.com",
    ])


def test_canopy_orders_of_an_unknown_email_fails_naming_it(database: str, timber_group: click.Group) -> None:
    _orders(database)
    result = CliRunner().invoke(timber_group, ["canopy-orders", "nobody@example.com"])
    assert (result.exit_code, result.output) == (1, "Error: no user with email 'nobody@example.com'\n")


def test_canopy_orders_runs_as_canopy_whatever_timber_app_says(
    database: str, timber_group: click.Group, monkeypatch: pytest.MonkeyPatch
) -> None:
    _orders(database)
    monkeypatch.setenv("TIMBER_APP", "grove")
    result = CliRunner().invoke(timber_group, ["canopy-orders", "ada@example.com"])
    assert result.exit_code == 0, result.output
    assert timber_core.get_kernel().app_name == "canopy"


def test_timber_registers_canopy_orders_from_the_installed_plugin() -> None:
    from timber_core.plugins import discover, register_app_commands

    apps, pm = discover()
    group = click.Group("timber")
    assert register_app_commands(apps, pm, group) == []
    assert "canopy-orders" in group.commands
