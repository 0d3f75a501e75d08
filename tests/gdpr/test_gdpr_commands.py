"""``timber gdpr export`` and ``timber gdpr erase``, in-process with click's CliRunner, on a SQLite file."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

import timber_core
from timber_core import app_context

from .conftest import Person, seed, start

Invoke = Callable[..., Result]


@pytest.fixture
def people(gdpr_env: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Person, Person]]:
    """Alice and Bob seeded in a SQLite file that DATABASE_URL names; no kernel left open."""
    url = f"sqlite:///{tmp_path / 'timber.db'}"
    monkeypatch.setenv("DATABASE_URL", url)
    kernel = start(url)
    pair = seed(kernel, "alice"), seed(kernel, "bob")
    timber_core.shutdown()
    yield pair
    timber_core.shutdown()


@pytest.fixture
def timber() -> Invoke:
    from timber_core import cli as cli_module

    def invoke(*args: str, input: str | None = None) -> Result:  # noqa: A002  (click's name)
        return CliRunner().invoke(cli_module.cli, list(args), input=input, catch_exceptions=False)

    return invoke


def _record(output: str) -> str:
    return re.sub(r"record [0-9a-f-]{36}", "record <id>", output)


def test_export_prints_the_users_document_as_json(people: tuple[Person, Person], timber: Invoke) -> None:
    alice, _bob = people
    result = timber("gdpr", "export", alice.id)
    document = json.loads(result.output)
    assert (result.exit_code, document["user"]["email"], sorted(document["apps"])) == (
        0, alice.email, ["canopy", "grove", "portfolio"])


def test_export_of_an_unknown_user_is_one_error_line(people: tuple[Person, Person], timber: Invoke) -> None:
    result = timber("gdpr", "export", "nobody")
    assert (result.exit_code, result.stderr) == (
        1, "Error: export_user(): no user 'nobody' (erased already, or a mistyped id)\n")


def test_erase_with_yes_prints_the_rows_per_app_and_the_points(people: tuple[Person, Person], timber: Invoke) -> None:
    alice, _bob = people
    result = timber("gdpr", "erase", alice.id, "--yes", "--requested-by", "dpo")
    assert (result.exit_code, _record(result.output).splitlines()) == (0, [
        f"erased user {alice.id} (mode delete); record <id>",
        "app        deleted  anonymized",
        "---------  -------  ----------",
        "canopy     7        0",
        "grove      3        0",
        "portfolio  2        0",
        "timber     2        0",
        "vector points deleted: 2",
    ])


def test_erase_asks_first_and_a_no_changes_nothing(people: tuple[Person, Person], timber: Invoke) -> None:
    alice, _bob = people
    result = timber("gdpr", "erase", alice.id, input="n\n")
    assert (result.exit_code, result.output.splitlines()[-1]) == (1, "Aborted!")
    assert json.loads(timber("gdpr", "export", alice.id).output)["user"]["id"] == alice.id


def test_erase_asks_first_and_a_yes_erases_in_the_mode_given(people: tuple[Person, Person], timber: Invoke) -> None:
    alice, _bob = people
    result = timber("gdpr", "erase", alice.id, "--mode", "anonymize", input="y\n")
    assert (result.exit_code, _record(result.output).splitlines()[:5]) == (0, [
        f"Erase user {alice.id} from every app (mode anonymize)? This cannot be undone [y/N]: y",
        f"erased user {alice.id} (mode anonymize); record <id>",
        "app        deleted  anonymized",
        "---------  -------  ----------",
        "canopy     6        1",
    ])


def test_erase_of_a_user_erased_before_says_no_rows_were_left(people: tuple[Person, Person], timber: Invoke) -> None:
    alice, _bob = people
    timber("gdpr", "erase", alice.id, "--yes")
    result = timber("gdpr", "erase", alice.id, "--yes")
    assert (result.exit_code, _record(result.output).splitlines()) == (0, [
        f"erased user {alice.id} (mode delete); record <id>",
        "no rows left in the database (erased before?)",
        "vector points deleted: 0",
    ])


def test_a_vetoed_erase_is_one_error_line_naming_the_app_and_reason(
        people: tuple[Person, Person], timber: Invoke) -> None:
    alice, _bob = people
    kernel = timber_core.initialize_timber(None)
    with app_context("canopy"):
        kernel.services["orders"].fill_order(alice.order_id, alice.id)
    timber_core.shutdown()
    result = timber("gdpr", "erase", alice.id, "--yes")
    assert (result.exit_code, result.stderr) == (1, (
        f"Error: app 'canopy' refuses to erase user {alice.id!r} (mode delete): 1 filled order must be retained "
        f"(legal retention of trade records); erase with mode anonymize, which keeps them without the user's data; "
        f"nothing was erased\n"))


def test_gdpr_commands_refuse_while_gdpr_is_disabled(
        people: tuple[Person, Person], timber: Invoke, monkeypatch: pytest.MonkeyPatch) -> None:
    from timber_core.config import TimberConfig

    monkeypatch.setenv("ENABLE_GDPR", "false")
    TimberConfig.clear_cache()
    result = timber("gdpr", "erase", people[0].id, "--yes")
    assert (result.exit_code, result.stderr) == (1, (
        "Error: erase_user(): GDPR tooling is disabled (ENABLE_GDPR=false); set ENABLE_GDPR=true in the "
        "environment of the process that exports or erases\n"))


def test_erase_refuses_an_unknown_mode_as_a_usage_error(people: tuple[Person, Person], timber: Invoke) -> None:
    result = timber("gdpr", "erase", people[0].id, "--mode", "shred", "--yes")
    assert (result.exit_code, result.stderr.splitlines()[-1]) == (
        2, "Error: Invalid value for '--mode': 'shred' is not one of 'delete', 'anonymize'.")


def test_the_erasure_record_names_the_login_when_no_requester_is_given(
        people: tuple[Person, Person], timber: Invoke) -> None:
    import getpass

    from sqlalchemy import text

    from timber_core import platform_context

    timber("gdpr", "erase", people[0].id, "--yes")
    kernel: Any = timber_core.initialize_timber(None)
    with platform_context(), kernel.db.connection() as conn:
        who = conn.execute(text("SELECT requested_by FROM timber_gdpr_audit")).scalar_one()
    assert who == f"cli:{getpass.getuser()}"
