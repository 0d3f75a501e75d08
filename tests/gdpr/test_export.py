"""``export_user``: one JSON-able document of everything of one user, each part under its app."""

from __future__ import annotations

import json
from typing import Any

import pytest

from timber_core import app_context, initialize_timber, platform_context
from timber_core.config import TimberConfig
from timber_core.errors import PluginError, ConfigurationError, IsolationError, NotFoundError
from timber_core.gdpr import export_user

from .conftest import Person


def _shape(document: dict[str, Any]) -> dict[str, Any]:
    """Per app: each model's number of rows, the collections of its points, its hook answer."""
    return {app: {"models": {m: len(rows) for m, rows in part["models"].items()},
                  "vectors": sorted(p["collection"] for p in part["vectors"]),
                  "extra": part.get("extra")}
            for app, part in document["apps"].items()}


def test_export_lists_the_users_rows_of_every_app_their_points_and_the_hook_answers(
        kernel: Any, alice_and_bob: tuple[Person, Person]) -> None:
    alice, _bob = alice_and_bob
    with platform_context():
        document = export_user(alice.id)
    assert _shape(document) == {
        "canopy": {"models": {"Event": 2, "Notification": 1, "Order": 1, "Session": 2, "TradingSession": 1},
                   "vectors": ["orders"], "extra": None},
        "grove": {"models": {"Event": 1, "ResearchSession": 1, "Session": 1}, "vectors": ["research_sessions"],
                  "extra": None},
        "portfolio": {"models": {"Holding": 1, "Portfolio": 1}, "vectors": [],
                      "extra": {"mailing_list": f"statements for {alice.id} are mailed monthly"}},
    }


def test_export_holds_only_the_users_own_data(kernel: Any, alice_and_bob: tuple[Person, Person]) -> None:
    alice, bob = alice_and_bob
    with platform_context():
        text = json.dumps(export_user(alice.id))
    assert [n for n in bob.needles if n in text] == []
    assert all(n in text for n in alice.needles)


def test_export_gives_the_account_without_the_password_hash(kernel: Any, alice_and_bob: tuple[Person, Person]) -> None:
    alice, _bob = alice_and_bob
    with platform_context():
        user = export_user(alice.id)["user"]
    assert (sorted(user), user["email"], user["has_password"]) == (
        ["created_at", "email", "has_password", "id", "updated_at", "username"], alice.email, True)


def test_export_of_a_holding_finds_it_through_its_portfolio(kernel: Any, alice_and_bob: tuple[Person, Person]) -> None:
    alice, _bob = alice_and_bob
    with platform_context():
        part = export_user(alice.id)["apps"]["portfolio"]["models"]
    assert [h["symbol"] for h in part["Holding"]] == ["ALICEH"]
    assert part["Holding"][0]["portfolio_id"] == part["Portfolio"][0]["id"]


def test_export_in_an_app_context_is_refused(kernel: Any, alice_and_bob: tuple[Person, Person]) -> None:
    with app_context("canopy"), pytest.raises(IsolationError) as err:
        export_user(alice_and_bob[0].id)
    assert str(err.value) == ("export_user() reads and changes every app's rows: run it in "
                              "timber_core.platform_context(), not as app 'canopy'")


def test_export_of_an_unknown_user_says_so(kernel: Any) -> None:
    with platform_context(), pytest.raises(NotFoundError) as err:
        export_user("no-such-user")
    assert str(err.value) == "export_user(): no user 'no-such-user' (erased already, or a mistyped id)"


def test_export_is_refused_while_gdpr_is_disabled(gdpr_env: None, database: str) -> None:
    initialize_timber(None, database_url=database, create_tables=True, config=TimberConfig({"ENABLE_GDPR": "false"}))
    with platform_context(), pytest.raises(ConfigurationError) as err:
        export_user("anyone")
    assert str(err.value) == ("export_user(): GDPR tooling is disabled (ENABLE_GDPR=false); set ENABLE_GDPR=true "
                              "in the environment of the process that exports or erases")


def test_an_app_whose_export_hook_raises_stops_the_export_naming_it(
        gdpr_env: None, database: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from .conftest import FIXTURES, seed, start

    monkeypatch.syspath_prepend(str(FIXTURES / "gdpr_raises"))
    kernel = start(database)
    alice = seed(kernel, "alice")
    with platform_context(), pytest.raises(PluginError) as err:
        export_user(alice.id)
    assert str(err.value) == ("app 'gdprraises' (timber-gdpr-raises): timber_gdpr_export() raised RuntimeError: the "
                              "mail archive is offline; nothing was changed")
