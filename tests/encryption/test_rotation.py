"""Key rotation (``timber_core.encryption.rotate``) on SQLite and PostgreSQL (there under RLS, as timber_platform)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import select, text

import timber_core
from timber_core.encryption import RotationProgress, rotate
from timber_core.errors import ConfigurationError, EncryptionError

from .conftest import NEW_KEY, OLD_KEY

Start = Callable[..., Any]
ROWS = {f"card{i}": (f"p{i}@example.com", f"note {i}") for i in range(7)}


class _Interrupted(Exception):
    """The fault injected between two batches (a process killed halfway, as far as the database can tell)."""


def _fill(kernel: Any) -> None:
    Card = kernel.get_model("Card")
    with kernel.db.session_scope() as s:
        s.add_all([Card(label=label, email=email, notes=notes) for label, (email, notes) in ROWS.items()])


def _read_all(kernel: Any) -> dict[str, tuple[str, str]]:
    Card = kernel.get_model("Card")
    with kernel.db.session_scope() as s:
        return {c.label: (c.email, c.notes) for c in s.scalars(select(Card))}


def _tokens(kernel: Any) -> set[str]:
    with timber_core.platform_context(), kernel.db.connection() as conn:
        return {t for row in conn.execute(text("SELECT email, notes FROM vault_cards")) for t in row}


def test_rotation_interrupted_between_batches_then_resumed_leaves_every_row_readable_with_the_new_key_alone(
        start: Start) -> None:
    _fill(start())
    timber_core.shutdown()
    kernel = start(keys=f"{NEW_KEY},{OLD_KEY}")
    batches: list[int] = []

    def interrupt_after_two_batches(tally: RotationProgress) -> None:
        batches.append(tally.seen)
        if len(batches) == 2:
            raise _Interrupted

    with pytest.raises(_Interrupted):
        rotate(kernel, batch_size=3, progress=interrupt_after_two_batches)
    assert _read_all(kernel) == ROWS  # halfway: reads keep working, old and new keys both accepted
    rotate(kernel, batch_size=3)
    timber_core.shutdown()
    kernel = start(keys=NEW_KEY)
    assert _read_all(kernel) == ROWS
    assert batches == [3, 6]


def test_a_resumed_rotation_skips_the_values_already_under_the_newest_key(start: Start) -> None:
    _fill(start())
    timber_core.shutdown()
    kernel = start(keys=f"{NEW_KEY},{OLD_KEY}")

    def stop(_tally: RotationProgress) -> None:
        raise _Interrupted

    with pytest.raises(_Interrupted):
        rotate(kernel, batch_size=4, progress=stop)
    tallies = rotate(kernel, batch_size=4)
    assert [(str(t.column), t.total, t.rotated, t.current) for t in tallies] == [
        ("Card.email (app 'vault')", 7, 3, 4),
        ("Card.notes (app 'vault')", 7, 7, 0),
        ("Memo.body (app 'vault')", 0, 0, 0),
    ]


def test_rotation_writes_new_tokens_and_keeps_blind_index_lookups(start: Start) -> None:
    kernel = start()
    _fill(kernel)
    before = _tokens(kernel)
    timber_core.shutdown()
    kernel = start(keys=f"{NEW_KEY},{OLD_KEY}")
    rotate(kernel)
    Card = kernel.get_model("Card")
    with kernel.db.session_scope() as s:
        found = s.scalars(select(Card.label).where(Card.email == "p3@example.com")).all()
    assert (found, before & _tokens(kernel)) == (["card3"], set())


def test_rotation_reports_a_value_no_key_decrypts_naming_the_column_and_row(start: Start) -> None:
    kernel = start()
    Card = kernel.get_model("Card")
    with kernel.db.session_scope() as s:
        s.add(Card(id="lost-1", label="lost", notes="under the old key"))
    timber_core.shutdown()
    kernel = start(keys=NEW_KEY)
    with pytest.raises(EncryptionError) as info:
        rotate(kernel)
    assert str(info.value) == (
        "cannot rotate Card.notes (app 'vault'): no key in TIMBER_ENCRYPTION_KEYS decrypts the value of the row with "
        "id = 'lost-1': put its key back after the newest one and run `timber keys rotate` again")


@pytest.mark.parametrize("url", ["sqlite"], indirect=True)
def test_rotation_without_encrypted_columns_is_refused(url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TIMBER_DISABLE_APPS", "vault")
    kernel = timber_core.initialize_timber("grove", database_url=url)
    with pytest.raises(ConfigurationError) as info:
        rotate(kernel)
    assert str(info.value) == "no model declares an encrypted column: nothing to rotate"


def test_rotation_re_encrypts_every_users_rows_of_a_table_under_row_level_security(
        start: Start, make_user: Callable[..., str]) -> None:
    kernel = start()
    Memo = kernel.get_model("Memo")
    users = [make_user(), make_user()]
    for user in users:
        with timber_core.user_context(user), kernel.db.session_scope() as s:
            s.add(Memo(user_id=user, body=f"memo of {user}"))
    timber_core.shutdown()
    rotated = rotate(start(keys=f"{NEW_KEY},{OLD_KEY}"))[-1]
    timber_core.shutdown()
    kernel = start(keys=NEW_KEY)
    Memo = kernel.get_model("Memo")
    bodies = []
    for user in users:  # each user, in the app's context, reads their own memo with the new key alone
        with timber_core.user_context(user), kernel.db.session_scope() as s:
            bodies += s.scalars(select(Memo.body)).all()
    assert (str(rotated.column), rotated.rotated, bodies) == (
        "Memo.body (app 'vault')", 2, [f"memo of {users[0]}", f"memo of {users[1]}"])
