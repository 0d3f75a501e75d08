"""``timber keys generate`` and ``timber keys rotate``, in-process with click's CliRunner, on both databases."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import select

import timber_core
from timber_core.config import TimberConfig
from timber_core.encryption import FieldKeys

from .conftest import NEW_KEY, OLD_KEY

Start = Callable[..., Any]


def _timber(*args: str) -> Result:
    from timber_core.cli import cli

    timber_core.shutdown()
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def _three_cards(start: Start) -> None:
    kernel = start()
    Card = kernel.get_model("Card")
    with kernel.db.session_scope() as s:
        s.add_all([Card(label=f"c{i}", email=f"c{i}@example.com", notes=f"note {i}") for i in range(3)])
    timber_core.shutdown()


def test_keys_generate_prints_a_new_key_as_its_last_line() -> None:
    result = _timber("keys", "generate")
    key = result.output.splitlines()[-1]
    keys = FieldKeys([key], None, "test")
    assert (result.exit_code, len(key), keys.decrypt(keys.encrypt("x"))) == (0, 44, "x")
    assert result.output.splitlines()[0] == (
        "# New encryption key: put it first in TIMBER_ENCRYPTION_KEYS (newest first, keep the old ones after it), "
        "restart the apps, then run `timber keys rotate`.")


def test_keys_rotate_reports_each_batch_and_leaves_rows_readable_with_the_new_key_alone(
        start: Start, url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    _three_cards(start)
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setenv("TIMBER_ENCRYPTION_KEYS", f"{NEW_KEY},{OLD_KEY}")
    result = _timber("keys", "rotate", "--batch-size", "2")
    assert (result.exit_code, result.output) == (0, (
        "vault vault_cards.email: 2/3 rows (2 re-encrypted, 0 already current)\n"
        "vault vault_cards.email: 3/3 rows (3 re-encrypted, 0 already current)\n"
        "vault vault_cards.notes: 2/3 rows (2 re-encrypted, 0 already current)\n"
        "vault vault_cards.notes: 3/3 rows (3 re-encrypted, 0 already current)\n"
        "rotated 6 values in 3 encrypted columns (0 already under the newest key); the older keys can now be "
        "removed from TIMBER_ENCRYPTION_KEYS\n"))
    kernel = start(keys=NEW_KEY)
    with kernel.db.session_scope() as s:
        Card = kernel.get_model("Card")
        assert s.scalars(select(Card.notes).order_by(Card.label)).all() == ["note 0", "note 1", "note 2"]


@pytest.mark.parametrize("url", ["sqlite"], indirect=True)
def test_keys_rotate_run_again_finds_everything_current(start: Start, url: str,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    _three_cards(start)
    monkeypatch.setenv("DATABASE_URL", url)
    result = _timber("keys", "rotate")
    assert (result.exit_code, result.output.splitlines()[-1]) == (
        0, "rotated 0 values in 3 encrypted columns (6 already under the newest key); the older keys can now be "
           "removed from TIMBER_ENCRYPTION_KEYS")


@pytest.mark.parametrize("url", ["sqlite"], indirect=True)
def test_keys_rotate_with_a_value_no_key_decrypts_is_one_error_line(start: Start, url: str,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    kernel = start()
    with kernel.db.session_scope() as s:
        s.add(kernel.get_model("Card")(id="k1", label="k", notes="old"))
    timber_core.shutdown()
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setenv("TIMBER_ENCRYPTION_KEYS", NEW_KEY)
    result = _timber("keys", "rotate")
    assert (result.exit_code, result.output) == (1, (
        "Error: cannot rotate Card.notes (app 'vault'): no key in TIMBER_ENCRYPTION_KEYS decrypts the value of the "
        "row with id = 'k1': put its key back after the newest one and run `timber keys rotate` again\n"))


@pytest.mark.parametrize("url", ["sqlite"], indirect=True)
def test_keys_rotate_without_encrypted_columns_is_one_error_line(url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setenv("TIMBER_DISABLE_APPS", "vault")
    result = _timber("keys", "rotate")
    assert (result.exit_code, result.output) == (1, "Error: no model declares an encrypted column: nothing to rotate\n")


@pytest.mark.parametrize("url", ["sqlite"], indirect=True)
def test_keys_rotate_with_encryption_off_is_one_error_line(url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setenv("ENABLE_ENCRYPTION", "off")
    TimberConfig.clear_cache()
    result = _timber("keys", "rotate")
    assert (result.exit_code, result.output) == (1, (
        "Error: the models declare encrypted columns (Card.email (app 'vault'), Card.notes (app 'vault'), "
        "Memo.body (app 'vault')) but "
        "ENABLE_ENCRYPTION is off: set ENABLE_ENCRYPTION=true and the keys (docs/services.md, \"Field encryption\")\n"))


def test_keys_rotate_refuses_a_batch_size_of_zero() -> None:
    result = _timber("keys", "rotate", "--batch-size", "0")
    assert (result.exit_code, result.output.splitlines()[-1]) == (
        2, "Error: Invalid value for '--batch-size': 0 is not in the range 1<=x<=100000.")
