"""The SQLite wall and foreign keys between apps: one app's private table pointing at a shared table.

SQLite checks a foreign key by reading the child table when the parent is written, and runs ON
DELETE actions on it; the authorizer is told about those reads and writes like any other. An app
whose private table references ``sessions`` must not stop the other apps from writing their
sessions (it did: every session Canopy created was refused), while a statement that reads that
table on purpose stays refused.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

import pytest
from sqlalchemy import text

import timber_core
from timber_core import platform_context, user_context
from timber_core.errors import IsolationError
from timber_core.services.persistence import session_service, user_service

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"

REFUSED = ("SQLite wall: app 'canopy' may not read table 'yamlfix_session_links': it is private to app "
           "'yamlfix'. Reach app yamlfix's data through its services, or run cross-app work in "
           "timber_core.platform_context()")


@pytest.fixture
def kernel(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """Canopy on SQLite beside app ``yamlfix``, whose private table references ``sessions`` (ON DELETE CASCADE)."""
    monkeypatch.syspath_prepend(str(FIXTURES / "plugins" / "yaml_dir"))
    monkeypatch.setenv("TIMBER_FIXTURE_MODEL_DIR", str(FIXTURES / "yaml" / "fk_to_sessions"))
    k = timber_core.initialize_timber(app_name="canopy", database_url=f"sqlite:///{tmp_path}/timber.db")
    yield k
    k.close()


@pytest.fixture
def linked(kernel: Any) -> dict[str, str]:
    """Alice with a Canopy session that yamlfix's private table points at."""
    alice = user_service.create_user("alice@example.com", "alice")
    with user_context(alice):
        session = session_service.create_session(alice, "trading")
    with platform_context(), kernel.db.connection() as conn:
        conn.execute(text("INSERT INTO yamlfix_session_links (id, session_id, note) VALUES ('l1', :s, 'secret')"),
                     {"s": session})
    return {"alice": alice, "session": session}


def run(kernel: Any, sql: str, **params: Any) -> Any:
    with kernel.db.connection() as conn:
        result = conn.execute(text(sql), params)
        return result.all() if result.returns_rows else result.rowcount


def links(kernel: Any) -> list[Any]:
    with platform_context():
        return run(kernel, "SELECT id, session_id FROM yamlfix_session_links")


def test_another_app_creates_sessions_while_a_private_table_references_them(kernel: Any) -> None:
    alice = user_service.create_user("alice@example.com", "alice")
    with user_context(alice):
        session = session_service.create_session(alice, "trading")
    row = session_service.get_session(session)
    assert (row.id, row.session_type) == (session, "trading")


def test_deleting_an_own_session_cascades_into_the_referencing_table_as_on_postgresql(
    kernel: Any, linked: dict[str, str]
) -> None:
    assert run(kernel, "DELETE FROM sessions WHERE id = :s", s=linked["session"]) == 1
    assert links(kernel) == []


def test_a_delete_whose_condition_reads_the_referencing_table_is_refused(kernel: Any, linked: dict[str, str]) -> None:
    with pytest.raises(IsolationError) as err:
        run(kernel, "DELETE FROM sessions WHERE id IN (SELECT session_id FROM yamlfix_session_links)")
    assert str(err.value) == REFUSED
    assert links(kernel) == [("l1", linked["session"])]


def test_an_insert_whose_values_read_the_referencing_table_is_refused(kernel: Any, linked: dict[str, str]) -> None:
    with pytest.raises(IsolationError) as err:
        run(kernel, "INSERT INTO sessions (id, user_id, session_type, app_name, status, created_at, updated_at) "
                    "VALUES ((SELECT session_id || 'x' FROM yamlfix_session_links), :u, 'trading', 'canopy', 'active', "
                    "'2026-01-01', '2026-01-01')", u=linked["alice"])
    assert str(err.value) == REFUSED


def test_an_update_copying_from_the_referencing_table_is_refused(kernel: Any, linked: dict[str, str]) -> None:
    with pytest.raises(IsolationError) as err:
        run(kernel, "UPDATE sessions SET status = (SELECT group_concat(note) FROM yamlfix_session_links) WHERE id = :s",
            s=linked["session"])
    assert str(err.value) == REFUSED


def test_a_delete_returning_a_read_of_the_referencing_table_is_refused(kernel: Any, linked: dict[str, str]) -> None:
    with pytest.raises(IsolationError) as err:
        run(kernel, "DELETE FROM sessions WHERE id = :s RETURNING (SELECT group_concat(note) FROM yamlfix_session_links)",
            s=linked["session"])
    assert str(err.value) == REFUSED
    assert links(kernel) == [("l1", linked["session"])]


def test_an_app_cannot_delete_a_user_whose_cascade_reaches_every_app(kernel: Any, linked: dict[str, str]) -> None:
    """As on PostgreSQL (no DELETE on ``users`` for an app): the cascade would empty other apps' rows of that user."""
    with pytest.raises(IsolationError) as err:
        run(kernel, "DELETE FROM users WHERE id = :u", u=linked["alice"])
    assert str(err.value) == ("SQLite wall: app 'canopy' may not delete from table 'users': accounts are deleted only "
                              "in timber_core.platform_context(), as on PostgreSQL")
    with platform_context():
        assert run(kernel, "SELECT count(*) FROM users WHERE id = :u", u=linked["alice"]) == [(1,)]
