"""``erase_user``: one transaction for every app's rows, then the points and the cache; vetoes; re-runs."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import text

import timber_core
from timber_core import app_context, platform_context
from timber_core.errors import PluginError, ErasureVetoedError, IsolationError, ValidationError
from timber_core.gdpr import erase_user
from timber_core.vectors.factory import open_store
from timber_core.vectors.store import VectorStore

from .conftest import Person, all_points, all_rows, found, of, seed, start

ROWS_OF_ALICE = {"canopy": {"deleted": 7, "anonymized": 0}, "grove": {"deleted": 3, "anonymized": 0},
                 "portfolio": {"deleted": 2, "anonymized": 0}, "timber": {"deleted": 2, "anonymized": 0}}


def _audit(kernel: Any) -> list[tuple[Any, ...]]:
    with platform_context(), kernel.db.connection() as conn:
        return [tuple(r) for r in conn.execute(text(
            "SELECT requested_by, mode, rows, vector_points, completed_at FROM timber_gdpr_audit "
            "ORDER BY requested_at"))]


def _rows(value: Any) -> Any:
    import json

    return json.loads(value) if isinstance(value, str) else value


def test_erase_leaves_nothing_of_the_user_in_any_table_or_vector_collection(
        kernel: Any, alice_and_bob: tuple[Person, Person]) -> None:
    alice, _bob = alice_and_bob
    assert len(found(kernel, alice)) > 10  # the scan does find her data while it is there
    with platform_context():
        done = erase_user(alice.id)
    assert (done.mode, done.rows, done.vector_points) == ("delete", ROWS_OF_ALICE, 2)
    assert found(kernel, alice) == []


def test_erase_leaves_every_row_and_point_of_another_user_exactly_as_it_was(
        kernel: Any, alice_and_bob: tuple[Person, Person]) -> None:
    alice, bob = alice_and_bob
    rows_before, points_before = of(bob, all_rows(kernel)), all_points(kernel)
    with platform_context():
        erase_user(alice.id)
    assert of(bob, all_rows(kernel)) == rows_before
    assert {c: [p for p in ps if bob.id in p[1]] for c, ps in all_points(kernel).items()} == {
        c: [p for p in ps if bob.id in p[1]] for c, ps in points_before.items()}


def test_erase_records_who_asked_and_the_counts_and_nothing_of_the_user(
        kernel: Any, alice_and_bob: tuple[Person, Person]) -> None:
    alice, _bob = alice_and_bob
    with platform_context():
        erase_user(alice.id, requested_by="dpo@example.org ticket 42")
    [(who, mode, rows, points, completed)] = _audit(kernel)
    assert (who, mode, _rows(rows), points, completed is not None) == ("dpo@example.org ticket 42", "delete", ROWS_OF_ALICE, 2,
                                                           True)


def test_anonymize_keeps_the_orders_without_the_user_and_deletes_the_rest(
        kernel: Any, alice_and_bob: tuple[Person, Person]) -> None:
    alice, _bob = alice_and_bob
    with platform_context():
        done = erase_user(alice.id, "anonymize")
    assert done.rows == {**ROWS_OF_ALICE, "canopy": {"deleted": 6, "anonymized": 1}}
    assert found(kernel, alice) == []
    with platform_context(), kernel.db.connection() as conn:
        order = conn.execute(text("SELECT o.symbol, o.quantity, o.notes, o.session_id, u.username FROM orders o "
                                  "JOIN users u ON u.id = o.user_id WHERE o.id = :i"), {"i": alice.order_id}).one()
    assert order[:4] == ("AAPL", 10, None, None)
    assert order[4].startswith("erased-")


def test_canopy_vetoes_deleting_a_user_with_filled_orders_and_nothing_changes(
        kernel: Any, alice_and_bob: tuple[Person, Person]) -> None:
    alice, _bob = alice_and_bob
    with app_context("canopy"):
        assert kernel.services["orders"].fill_order(alice.order_id, alice.id)
    rows_before, points_before = all_rows(kernel), all_points(kernel)
    with platform_context(), pytest.raises(ErasureVetoedError) as err:
        erase_user(alice.id)
    assert (err.value.app, str(err.value)) == ("canopy", (
        f"app 'canopy' refuses to erase user {alice.id!r} (mode delete): 1 filled order must be retained (legal "
        f"retention of trade records); erase with mode anonymize, which keeps them without the user's data; "
        f"nothing was erased"))
    assert (all_rows(kernel), all_points(kernel)) == (rows_before, points_before)


def test_canopy_lets_a_user_with_filled_orders_be_anonymized(kernel: Any, alice_and_bob: tuple[Person, Person]) -> None:
    alice, _bob = alice_and_bob
    with app_context("canopy"):
        kernel.services["orders"].fill_order(alice.order_id, alice.id)
    with platform_context():
        done = erase_user(alice.id, "anonymize")
    assert (done.rows["canopy"], found(kernel, alice)) == ({"deleted": 7, "anonymized": 1}, [])


class _DeleteFails(VectorStore):
    """The real store, whose ``delete`` fails once: the process dying after the commit, before the points."""

    def __init__(self, store: VectorStore) -> None:
        self.store, self.failed = store, False

    def delete(self, name: str, ids: Any) -> None:
        if not self.failed:
            self.failed = True
            raise RuntimeError("killed between the commit and the vector deletion")
        self.store.delete(name, ids)

    def ensure_collection(self, *a: Any) -> None: self.store.ensure_collection(*a)  # noqa: E704
    def upsert(self, *a: Any) -> None: self.store.upsert(*a)  # noqa: E704
    def search(self, *a: Any, **k: Any) -> Any: return self.store.search(*a, **k)  # noqa: E704
    def count(self, *a: Any) -> int: return self.store.count(*a)  # noqa: E704
    def retrieve(self, *a: Any) -> Any: return self.store.retrieve(*a)  # noqa: E704
    def scan(self, name: str) -> Any: return self.store.scan(name)  # noqa: E704
    def collections(self) -> list[str]: return self.store.collections()  # noqa: E704
    def drop_collection(self, name: str) -> None: self.store.drop_collection(name)  # noqa: E704
    def close(self) -> None: self.store.close()  # noqa: E704


def test_an_erase_that_crashed_after_the_commit_is_finished_by_running_it_again(
        kernel: Any, alice_and_bob: tuple[Person, Person]) -> None:
    alice, _bob = alice_and_bob
    # The fault cannot be caused for real (a crash mid-call): the kernel's store, reopened, fails once.
    kernel.vectors.use_store(_DeleteFails(open_store(None, os.path.join(kernel.config.TIMBER_HOME, "vectors"),
                                                     kernel.config.VECTOR_STORE)))
    with platform_context(), pytest.raises(RuntimeError):
        erase_user(alice.id)
    assert found(kernel, alice) == sorted([f"vectors:orders: {alice.id}", f"vectors:orders: {alice.marker}",
                                           f"vectors:research_sessions: {alice.id}",
                                           f"vectors:research_sessions: {alice.marker}"])
    with platform_context():
        done = erase_user(alice.id)
    assert (done.rows, done.vector_points, found(kernel, alice)) == ({}, 2, [])
    assert [(_rows(r[2]), r[3], r[4] is not None) for r in _audit(kernel)] == [
        (ROWS_OF_ALICE, None, False), ({}, 2, True)]


def test_erasing_again_changes_nothing_and_says_so(kernel: Any, alice_and_bob: tuple[Person, Person]) -> None:
    alice, _bob = alice_and_bob
    with platform_context():
        erase_user(alice.id)
    rows_before = {t: r for t, r in all_rows(kernel).items() if t != "timber_gdpr_audit"}
    with platform_context():
        again = erase_user(alice.id)
    assert (again.rows, again.vector_points) == ({}, 0)
    assert {t: r for t, r in all_rows(kernel).items() if t != "timber_gdpr_audit"} == rows_before


@pytest.fixture
def redis_kernel(gdpr_env: None, database: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Any, str]]:
    """A kernel whose cache is the machine's Redis, under a key prefix of this test only."""
    from tests.cache.conftest import REDIS_URL, _drop_prefix, require_redis

    require_redis()
    prefix = f"timber_gdpr_{uuid.uuid4().hex[:12]}"
    monkeypatch.setenv("REDIS_URL", REDIS_URL)
    monkeypatch.setenv("TIMBER_CACHE_PREFIX", prefix)
    try:
        yield start(database), prefix
    finally:
        timber_core.shutdown()
        _drop_prefix(REDIS_URL, prefix)


def _cached_texts(prefix: str) -> list[bytes]:
    """Every key under ``prefix`` in the test Redis, and every value it holds (strings and hash fields)."""
    import redis

    from tests.cache.conftest import REDIS_URL

    client = redis.Redis.from_url(REDIS_URL)
    try:
        out: list[bytes] = []
        for key in client.scan_iter(match=f"{prefix}:*", count=1000):
            out.append(key)
            kind = client.type(key)
            if kind == b"string":
                out.append(client.get(key) or b"")
            elif kind == b"hash":
                out.extend(part for pair in client.hgetall(key).items() for part in pair)
        return out
    finally:
        client.close()


def test_erase_leaves_no_cache_entry_of_the_user_and_keeps_the_other_users(
        redis_kernel: tuple[Any, str]) -> None:
    from timber_core.services.persistence import notification_service, session_service, user_service

    kernel, prefix = redis_kernel
    alice, bob = seed(kernel, "alice"), seed(kernel, "bob")
    for person in (alice, bob):  # every cached read of the user, from both apps
        for app in ("canopy", "grove"):
            with app_context(app):
                user_service.get_user(person.id)
                session_service.get_user_sessions(person.id)
                notification_service.get_user_notifications(person.id)
                notification_service.unread_count(person.id)
    texts = _cached_texts(prefix)
    assert [n for n in alice.needles if any(n.encode() in t for t in texts)] == list(alice.needles)
    with platform_context():
        erase_user(alice.id)
    texts = _cached_texts(prefix)
    assert [n for n in alice.needles if any(n.encode() in t for t in texts)] == []
    assert [n for n in (bob.id, bob.marker) if any(n.encode() in t for t in texts)] == [bob.id, bob.marker]


def test_erase_in_an_app_context_is_refused(kernel: Any, alice_and_bob: tuple[Person, Person]) -> None:
    with app_context("grove"), pytest.raises(IsolationError) as err:
        erase_user(alice_and_bob[0].id)
    assert str(err.value) == ("erase_user() reads and changes every app's rows: run it in "
                              "timber_core.platform_context(), not as app 'grove'")


def test_erase_refuses_an_unknown_mode(kernel: Any) -> None:
    with platform_context(), pytest.raises(ValidationError) as err:
        erase_user("someone", "shred")
    assert str(err.value) == "erase_user(): mode must be one of delete, anonymize, not 'shred'"


def test_no_app_may_read_the_erasure_records(kernel: Any, alice_and_bob: tuple[Person, Person]) -> None:
    with platform_context():
        erase_user(alice_and_bob[0].id)
    for app in ("canopy", "grove", "portfolio"):
        with app_context(app), pytest.raises(Exception) as err:
            with kernel.db.connection() as conn:
                conn.execute(text("SELECT * FROM timber_gdpr_audit")).all()
        message = str(getattr(err.value, "orig", err.value)).splitlines()[0]
        assert message in ("permission denied for table timber_gdpr_audit",
                           f"SQLite wall: app {app!r} may not read table 'timber_gdpr_audit': GDPR erasure records "
                           f"are the platform's (timber_core.gdpr), read in platform_context()")


def test_an_app_whose_veto_hook_raises_stops_the_erasure_naming_it(
        gdpr_env: None, database: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from .conftest import FIXTURES, seed, start

    monkeypatch.syspath_prepend(str(FIXTURES / "gdpr_raises"))
    kernel = start(database)
    alice = seed(kernel, "alice")
    before = all_rows(kernel)
    with platform_context(), pytest.raises(PluginError) as err:
        erase_user(alice.id)
    assert str(err.value) == ("app 'gdprraises' (timber-gdpr-raises): timber_gdpr_veto() raised RuntimeError: the "
                              "retention service is offline; nothing was changed")
    assert all_rows(kernel) == before
