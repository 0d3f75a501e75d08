"""The outbox keeps the index consistent with the database: same-transaction recording,
outages, crashes, and the ``timber vectors`` commands that drain, report and rebuild.

Every test runs on SQLite and on PostgreSQL (where the outbox is insert-only for apps).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

import timber_core
from timber_core.errors import VectorSearchError
from timber_core.services.persistence import user_service
from timber_core.services.vector import vector_service

from .conftest import database_url, run_timber, start, subprocess_env

APPLE = "Apple's quarterly results beat analyst estimates on strong iPhone and services revenue"
GARDEN = "Planted tomatoes and basil in the back garden this weekend"
SOUP = "Slow-cooked lentil soup with cumin and smoked paprika"
QUERY = "AAPL earnings beat expectations"
DATABASES = ["sqlite", "postgresql"]
#: A cluster-wide test login for `timber vectors` on PostgreSQL (created if missing, never dropped).
WORKER_LOGIN = "timber_test_vector_worker"


@pytest.fixture(params=DATABASES)
def url(request: pytest.FixtureRequest, model_env: str, tmp_path: Path) -> str:
    return database_url(request.param, request, tmp_path)


def outbox(kernel: Any) -> list[tuple[Any, ...]]:
    """The outbox as (app, model, row_id, op, user_id, attempts), oldest first (read as the platform)."""
    with timber_core.platform_context(), kernel.db.connection() as conn:
        return [tuple(r) for r in conn.execute(text(
            "SELECT app, model, row_id, op, user_id, attempts FROM timber_vector_outbox ORDER BY created_at, id"))]


def errors(kernel: Any) -> list[str]:
    with timber_core.platform_context(), kernel.db.connection() as conn:
        return [r[0] for r in conn.execute(text("SELECT last_error FROM timber_vector_outbox ORDER BY created_at"))]


def db_notes(kernel: Any) -> dict[str, str]:
    """Every research note with text, by row id: what the index must hold."""
    with timber_core.platform_context(), kernel.db.connection() as conn:
        return {r[0]: r[1] for r in conn.execute(text("SELECT id, notes FROM research_sessions"))
                if r[1] and r[1].strip()}


def indexed_notes(kernel: Any) -> dict[str, str]:
    """Every point of ``research_sessions``, by row id (all of them: the limit exceeds the count)."""
    store = kernel.vectors.store
    if "research_sessions" not in store.collections():
        return {}
    vector = kernel.vectors.embedder("BAAI/bge-small-en-v1.5").embed_query("anything")
    hits = store.search("research_sessions", vector, limit=1000)
    assert len(hits) == store.count("research_sessions")
    return {h.id: h.payload["content"] for h in hits}


def research(kernel: Any, user: str, notes: str | None, symbol: str = "AAPL") -> str:
    return str(kernel.services["reports"].start_research(user, symbol, notes))


def test_work_is_recorded_in_the_writing_transaction_and_collapsed(url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TIMBER_VECTOR_DRAIN", "off")
    k = start(url)
    alice = user_service.create_user("alice@example.com", "alice")
    row = research(k, alice, APPLE)
    assert outbox(k) == [("grove", "ResearchSession", row, "upsert", alice, 0)]
    Research = k.models["ResearchSession"]
    with k.db.session_scope() as s:  # two flushes of the same change: one entry
        s.get(Research, row).notes = GARDEN
        s.flush()
        s.get(Research, row).notes = SOUP
        s.flush()
        s.get(Research, row).symbol = "MSFT"  # not the content nor the user: nothing to index
    with pytest.raises(RuntimeError), k.db.session_scope() as s:
        s.get(Research, row).notes = "rolled back"
        s.flush()
        raise RuntimeError("the app's transaction fails")
    with k.db.session_scope() as s:
        s.delete(s.get(Research, row))
    assert outbox(k) == [
        ("grove", "ResearchSession", row, "upsert", alice, 0),
        ("grove", "ResearchSession", row, "upsert", alice, 0),
        ("grove", "ResearchSession", row, "delete", alice, 0),
    ]
    with timber_core.app_context("canopy"):
        order = k.services["orders"].create_order(alice, "AAPL", "market", 1, None, notes="Apple into earnings")
        k.services["orders"].create_order(alice, "AAPL", "market", 1, None)  # no notes: nothing to index
    assert outbox(k)[-1] == ("canopy", "Order", order, "upsert", alice, 0)
    assert len(outbox(k)) == 4
    result = k.vectors.drain()
    assert (result.applied, result.failed, result.upserted, result.deleted) == (4, 0, 1, 1)
    assert outbox(k) == []
    assert indexed_notes(k) == {}
    k.close()


def test_on_postgresql_an_app_may_only_add_its_own_outbox_rows(model_env: str, scratch_postgres: str) -> None:
    import psycopg

    k = start(scratch_postgres)
    try:
        with timber_core.app_context("canopy"):
            for sql in ("SELECT count(*) FROM timber_vector_outbox", "DELETE FROM timber_vector_outbox",
                        "UPDATE timber_vector_outbox SET attempts = 0"):
                with pytest.raises(Exception) as err, k.db.connection() as conn:
                    conn.execute(text(sql))
                assert isinstance(err.value.orig, psycopg.errors.InsufficientPrivilege)  # type: ignore[attr-defined]
                assert "permission denied for table timber_vector_outbox" in str(err.value.orig)  # type: ignore[attr-defined]
            insert = ("INSERT INTO timber_vector_outbox (id, app, model, row_id, op, attempts, created_at, updated_at) "
                      "VALUES (:id, :app, 'Order', 'o1', 'upsert', 0, now(), now())")
            with k.db.connection() as conn:
                conn.execute(text(insert), {"id": "e1", "app": "canopy"})
            with pytest.raises(Exception) as err, k.db.connection() as conn:
                conn.execute(text(insert), {"id": "e2", "app": "grove"})
            assert isinstance(err.value.orig, psycopg.errors.InsufficientPrivilege)  # type: ignore[attr-defined]
            assert 'new row violates row-level security policy for table "timber_vector_outbox"' in str(err.value.orig)  # type: ignore[attr-defined]
        assert outbox(k) == [("canopy", "Order", "o1", "upsert", None, 0)]
    finally:
        k.close()


def test_an_inline_drain_applies_only_the_models_its_commit_wrote(url: str) -> None:
    k = start(url)
    alice = user_service.create_user("alice@example.com", "alice")
    k.vectors.inline = False  # as if Canopy's process had written it and not drained yet
    with timber_core.app_context("canopy"):
        order = k.services["orders"].create_order(alice, "AAPL", "market", 1, None, notes="Apple into earnings")
    k.vectors.inline = True
    apple = research(k, alice, APPLE)
    assert outbox(k) == [("canopy", "Order", order, "upsert", alice, 0)]
    assert indexed_notes(k) == {apple: APPLE}
    assert k.vectors.drain().applied == 1
    assert outbox(k) == []
    k.close()


def test_an_inline_drain_behind_a_long_drain_leaves_the_work_queued_and_retries_when_it_ends(
    url: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import logging

    from sqlalchemy import create_engine

    from timber_core.vectors import runtime as runtime_module

    monkeypatch.setattr(runtime_module, "INLINE_LOCK_WAIT_S", 0.2)
    k = start(url)
    alice = user_service.create_user("alice@example.com", "alice")
    if k.db.dialect == "postgresql":  # another process's drain: the advisory lock on another session
        other = create_engine(url).connect()
        other.execute(text("SELECT pg_advisory_lock(:k)"), {"k": runtime_module.ADVISORY_LOCK_KEY})
        release = lambda: (other.execute(text("SELECT pg_advisory_unlock_all()")), other.close())  # noqa: E731
    else:  # another thread's drain in this process
        k.vectors._drain_lock.acquire()
        release = k.vectors._drain_lock.release
    try:
        with caplog.at_level(logging.INFO, logger="timber.vectors"):
            apple = research(k, alice, APPLE)
        assert [(r[2], r[5]) for r in outbox(k)] == [(apple, 0)]  # queued while the other drain runs
    finally:
        release()
    assert [r.getMessage() for r in caplog.records if r.name == "timber.vectors"] == [
        "timber: another vector index drain is running; this process retries when it ends"]
    assert k.vectors.flush(60) is True  # the background retry ran once the lock was free
    assert outbox(k) == []
    assert indexed_notes(k) == {apple: APPLE}
    k.close()


def test_with_the_store_closed_writes_commit_and_the_outbox_keeps_the_work(url: str) -> None:
    from qdrant_client import QdrantClient

    from timber_core.vectors.server import QdrantServerStore

    k = start(url)
    alice = user_service.create_user("alice@example.com", "alice")
    k.vectors.use_store(QdrantServerStore(client=QdrantClient(":memory:")))
    kept = research(k, alice, GARDEN)
    gone = research(k, alice, SOUP)
    assert indexed_notes(k) == {kept: GARDEN, gone: SOUP}
    k.vectors.store.close()  # the client goes away

    apple = research(k, alice, APPLE)
    Research = k.models["ResearchSession"]
    with k.db.session_scope() as s:
        s.get(Research, kept).notes = "Apple posted record earnings"
        s.delete(s.get(Research, gone))
    assert db_notes(k) == {apple: APPLE, kept: "Apple posted record earnings"}
    assert [(r[2], r[3], r[5]) for r in outbox(k)] == [(apple, "upsert", 1), (kept, "upsert", 1), (gone, "delete", 1)]
    assert set(errors(k)) == {
        "VectorSearchError: the given Qdrant client is closed; cannot upsert into collection 'research_sessions'"}
    with pytest.raises(VectorSearchError):
        vector_service.search(QUERY, "research_sessions")
    assert k.vectors.drain().applied == 0  # inside their backoff: not retried yet
    assert [r[5] for r in outbox(k)] == [1, 1, 1]

    fresh = QdrantServerStore(client=QdrantClient(":memory:"))  # recovery (a new, empty server)
    k.vectors.use_store(fresh)
    result = k.vectors.drain(due_only=False)
    assert (result.applied, result.failed) == (3, 0)
    assert outbox(k) == []
    assert indexed_notes(k) == db_notes(k) == {apple: APPLE, kept: "Apple posted record earnings"}
    assert vector_service.search(QUERY, "research_sessions")[0]["id"] == apple
    k.close()


def test_a_qdrant_outage_then_timber_vectors_sync_brings_the_index_to_the_database(
    url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Before: the embedded store holds two notes.
    k = start(url)
    alice = user_service.create_user("alice@example.com", "alice")
    kept, gone = research(k, alice, GARDEN), research(k, alice, SOUP)
    assert indexed_notes(k) == {kept: GARDEN, gone: SOUP}
    k.close()

    # During: the store is a server nobody listens on. Every write still commits.
    monkeypatch.setenv("QDRANT_URL", "http://127.0.0.1:9")
    k = start(url)
    apple = research(k, alice, APPLE)
    Research = k.models["ResearchSession"]
    with k.db.session_scope() as s:
        s.get(Research, kept).notes = "Apple posted record earnings"
        s.delete(s.get(Research, gone))
    assert [(r[2], r[3], r[5]) for r in outbox(k)] == [(apple, "upsert", 1), (kept, "upsert", 1), (gone, "delete", 1)]
    assert all(e.startswith("VectorSearchError: cannot reach the Qdrant server at http://127.0.0.1:9") for e in errors(k))
    k.close()
    env = subprocess_env(DATABASE_URL=url, TIMBER_APP="grove", QDRANT_URL="http://127.0.0.1:9")
    status = run_timber("vectors", "status", "--json", env=env)
    assert status.returncode == 0, status.stderr
    report = json.loads(status.stdout)
    assert (report["pending"], report["failed"], [e["row_id"] for e in report["errors"]].count(apple)) == (3, 3, 1)
    assert report["store_error"].startswith("VectorSearchError: cannot reach the Qdrant server at http://127.0.0.1:9")

    # After: the store is back (the embedded one); one sync brings it to exactly the database's state.
    monkeypatch.delenv("QDRANT_URL")
    env.pop("QDRANT_URL")
    synced = run_timber("vectors", "sync", env=env)
    assert (synced.returncode, synced.stdout) == (0, "applied 3, failed 0 (points upserted 2, deleted 1)\n"), synced.stderr
    k = start(url)
    assert outbox(k) == []
    assert indexed_notes(k) == db_notes(k) == {apple: APPLE, kept: "Apple posted record earnings"}
    assert [h["id"] for h in vector_service.search(QUERY, "research_sessions")] == [apple, kept]
    k.close()


def test_a_crash_between_commit_and_drain_loses_nothing(url: str, tmp_path: Path) -> None:
    child = (
        "import os, timber_core\n"
        "from timber_core.services.persistence import user_service\n"
        f"k = timber_core.initialize_timber('grove', database_url={url!r}, create_tables=True)\n"
        "u = user_service.create_user('alice@example.com', 'alice')\n"
        f"print(k.services['reports'].start_research(u, 'AAPL', {APPLE!r}), flush=True)\n"
        f"print(k.services['reports'].start_research(u, 'GRDN', {GARDEN!r}), flush=True)\n"
        "os._exit(0)  # dies after the commits, before anything drains\n"
    )
    env = subprocess_env(TIMBER_VECTOR_DRAIN="off")
    crashed = run_timber(env=env, code=child)
    assert crashed.returncode == 0, crashed.stderr
    apple, garden = crashed.stdout.split()
    k = start(url)
    assert [(r[2], r[3]) for r in outbox(k)] == [(apple, "upsert"), (garden, "upsert")]
    k.close()
    worker = run_timber("vectors", "worker", "--once", env=subprocess_env(DATABASE_URL=url, TIMBER_APP="grove"))
    assert (worker.returncode, worker.stdout) == (0, "applied 2, failed 0 (points upserted 2, deleted 0)\n"), worker.stderr
    k = start(url)
    assert outbox(k) == []
    assert indexed_notes(k) == {apple: APPLE, garden: GARDEN}
    k.close()


def test_the_worker_drains_until_sigterm(url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TIMBER_VECTOR_DRAIN", "off")
    k = start(url)
    alice = user_service.create_user("alice@example.com", "alice")
    apple = research(k, alice, APPLE)
    k.close()
    proc = subprocess.Popen(
        [sys.executable, "-c", "import sys; sys.argv[0] = 'timber'; from timber_core.cli import main; main()",
         "vectors", "worker", "--interval", "0.2"],
        env=subprocess_env(DATABASE_URL=url, TIMBER_APP="grove"), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True,
    )
    try:
        first = proc.stdout.readline()  # type: ignore[union-attr]
        assert first == "applied 1, failed 0 (points upserted 1, deleted 0)\n"
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert (proc.returncode, out) == (0, "worker stopped: applied 1, failed 0\n"), err
    k = start(url)
    assert indexed_notes(k) == {apple: APPLE}
    k.close()


def test_reindex_rebuilds_a_collection_from_the_database_and_status_reports_it(
    url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TIMBER_VECTOR_DRAIN", "off")
    k = start(url)
    alice = user_service.create_user("alice@example.com", "alice")
    apple, garden = research(k, alice, APPLE), research(k, alice, GARDEN)
    research(k, alice, None)
    with timber_core.app_context("canopy"):
        k.services["orders"].create_order(alice, "AAPL", "market", 1, None, notes="Apple into earnings")
    k.close()
    env = subprocess_env(DATABASE_URL=url, TIMBER_APP="grove")
    rebuilt = run_timber("vectors", "reindex", "--model", "ResearchSession", env=env)
    assert (rebuilt.returncode, rebuilt.stdout) == (0, "reindexed research_sessions: 2 points\n"), rebuilt.stderr
    status = run_timber("vectors", "status", "--json", env=env)
    report = json.loads(status.stdout)
    assert [(c["collection"], c["app"], c["model"], c["rows"], c["points"], c["pending"], c["failed"], c["differs"])
            for c in report["collections"]] == [
        ("orders", "canopy", "Order", 1, 0, 1, 0, True),
        ("research_reports", "grove", "ResearchReport", 0, 0, 0, 0, False),
        ("research_sessions", "grove", "ResearchSession", 2, 2, 0, 0, False)]
    assert (report["pending"], report["failed"], report["errors"]) == (1, 0, [])
    text_status = run_timber("vectors", "status", env=env)
    assert text_status.stdout.splitlines()[-2:] == [
        "outbox: 1 pending, 0 failed",
        "index differs from the database in orders (pending work may close the gap: `timber vectors sync`); compare"
        " ids and content with `timber vectors verify`, fix with `timber vectors verify --repair`"]
    assert text_status.stdout.splitlines()[:5] == [
        "collection         app     model            rows  points  pending  failed  index",
        "-----------------  ------  ---------------  ----  ------  -------  ------  -------",
        "orders             canopy  Order            1     0       1        0       DIFFERS",
        "research_reports   grove   ResearchReport   0     0       0        0       ok",
        "research_sessions  grove   ResearchSession  2     2       0        0       ok"]
    unknown = run_timber("vectors", "reindex", "--model", "Trade", env=env)
    assert (unknown.returncode, unknown.stderr.splitlines()[-1] + "\n") == (
        1, "Error: NotFoundError: model 'Trade' has no vector search; models with vector search: Order, "
           "ResearchReport, ResearchSession\n")
    k = start(url)
    assert indexed_notes(k) == {apple: APPLE, garden: GARDEN}
    k.close()


HEAVY = ("fastembed", "onnxruntime", "numpy", "qdrant_client", "qdrant_edge")


def test_nothing_heavy_is_imported_until_something_is_drained_or_searched(tmp_path: Path) -> None:
    loaded = f"sorted(m for m in sys.modules if m.split('.')[0] in {HEAVY!r})"
    writes = run_timber(env=subprocess_env(TIMBER_VECTOR_DRAIN="off"), code=(
        "import sys, timber_core\n"
        "from timber_core.services.persistence import user_service\n"
        f"k = timber_core.initialize_timber('grove', database_url='sqlite:///{tmp_path}/t.db')\n"
        "u = user_service.create_user('a@example.com', 'a')\n"
        "k.services['reports'].start_research(u, 'AAPL', 'a note')\n"
        f"print({loaded})\n"))
    assert (writes.returncode, writes.stdout) == (0, "[]\n"), writes.stderr
    listing = run_timber(env=subprocess_env(), code=(
        "import sys; sys.argv[1:] = ['apps', 'list']\n"
        "from timber_core.cli import main\n"
        "main()\n"
        f"print(sorted(m for m in sys.modules if m.split('.')[0] in {HEAVY + ('sqlalchemy',)!r}))\n"))
    assert (listing.returncode, listing.stdout.splitlines()[-1]) == (0, "[]"), listing.stderr
    assert "vectors" in run_timber("--help", env=subprocess_env()).stdout


def test_the_edge_store_is_one_process_s_and_another_process_leaves_the_work_queued(
    model_env: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TIMBER_VECTOR_DRAIN", "off")
    monkeypatch.setenv("TIMBER_VECTOR_STORE", "edge")
    url = f"sqlite:///{tmp_path}/timber.db"
    k = start(url)
    alice = user_service.create_user("alice@example.com", "alice")
    research(k, alice, APPLE)
    assert vector_service.search(QUERY, "research_sessions") == []  # opens this process's store
    env = subprocess_env(DATABASE_URL=url, TIMBER_APP="grove")
    try:
        locked = run_timber("vectors", "sync", env=env)
    finally:
        k.close()  # closes the store too: another process may open it now
    where = Path(os.environ["TIMBER_HOME"]) / "vectors"
    assert (locked.returncode, locked.stdout) == (1, (
        "applied 0, failed 1 (points upserted 0, deleted 0)\n"
        f"  Error: ResearchSession: VectorSearchError: the embedded vector store {where} is already open (owned by "
        f"process {os.getpid()}, in this or another process). The Edge store (TIMBER_VECTOR_STORE=edge) belongs to"
        " one process and one EdgeStore; to share vectors between several processes (app servers, workers), use the"
        " default embedded store (TIMBER_VECTOR_STORE=sqlite) or run a Qdrant server and set QDRANT_URL\n")), \
        locked.stderr
    synced = run_timber("vectors", "sync", env=env)
    assert (synced.returncode, synced.stdout) == (0, "applied 1, failed 0 (points upserted 1, deleted 0)\n")


def test_the_default_embedded_store_is_shared_by_processes_while_one_holds_it_open(
    model_env: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TIMBER_VECTOR_DRAIN", "off")
    url = f"sqlite:///{tmp_path}/timber.db"
    k = start(url)
    try:
        alice = user_service.create_user("alice@example.com", "alice")
        research(k, alice, APPLE)
        assert vector_service.search(QUERY, "research_sessions") == []  # this process opens the store
        synced = run_timber("vectors", "sync", env=subprocess_env(DATABASE_URL=url, TIMBER_APP="grove"))
        assert (synced.returncode, synced.stdout) == (0, "applied 1, failed 0 (points upserted 1, deleted 0)\n")
        hits = vector_service.search(QUERY, "research_sessions", {"user_id": alice})
        assert [h["payload"]["content"] for h in hits] == [APPLE]  # the other process's point, seen at once
    finally:
        k.close()


def test_on_postgresql_an_app_login_without_the_platform_role_commits_and_a_worker_login_indexes(
    model_env: str, scratch_postgres: str, caplog: pytest.LogCaptureFixture
) -> None:
    """The deployment of docs/vectors.md: the app's login has only its app role, so its inline
    drain cannot act as the platform; the write commits anyway and a platform login drains it."""
    import logging

    from sqlalchemy import create_engine
    from sqlalchemy.engine import make_url

    from tests.postgres.conftest import LOGINS, _ensure_login

    admin = make_url(scratch_postgres)
    start(scratch_postgres).close()  # migrate as the admin
    engine = create_engine(admin)
    with engine.begin() as conn:
        _ensure_login(conn, LOGINS["grove"], "timber_grove")
        # A worker reads the outbox as the platform and each row as its app: it needs both roles.
        for role in ("timber_platform", "timber_grove", "timber_canopy"):
            _ensure_login(conn, WORKER_LOGIN, role)
        conn.execute(text("INSERT INTO users (id, email, username, created_at, updated_at) "
                          "VALUES ('alice', 'alice@example.com', 'alice', now(), now())"))
    engine.dispose()
    grove_url = admin.set(username=LOGINS["grove"], password=None).render_as_string(hide_password=False)
    k = start(grove_url)
    with caplog.at_level(logging.WARNING, logger="timber.vectors"), timber_core.user_context("alice"):
        row = research(k, "alice", APPLE)
    assert [r.getMessage() for r in caplog.records if r.name == "timber.vectors"] == [
        "timber: the vector index drain after commit failed; the work stays in the outbox for the next drain or "
        "`timber vectors sync`: ConfigurationError: app context 'platform': the database login "
        "'timber_test_grove' cannot act as role 'timber_platform' (permission denied to set role "
        "\"timber_platform\"). Run the migrations (timber migrate) so the role exists, then, as an "
        "administrator: GRANT timber_platform TO timber_test_grove;"]
    k.close()
    platform_url = admin.set(username=WORKER_LOGIN, password=None).render_as_string(hide_password=False)
    synced = run_timber("vectors", "sync", env=subprocess_env(DATABASE_URL=platform_url, TIMBER_APP="grove"))
    assert (synced.returncode, synced.stdout) == (0, "applied 1, failed 0 (points upserted 1, deleted 0)\n"), synced.stderr
    k = start(scratch_postgres)
    assert outbox(k) == []
    assert indexed_notes(k) == {row: APPLE}
    k.close()


def test_verify_names_missing_orphan_and_stale_points_and_repair_makes_the_index_equal(url: str) -> None:
    k = start(url)
    alice = user_service.create_user("alice@example.com", "alice")
    kept, changed, dropped = research(k, alice, APPLE), research(k, alice, GARDEN), research(k, alice, SOUP)
    assert indexed_notes(k) == db_notes(k)
    with timber_core.platform_context(), k.db.connection() as conn:  # Core statements: the ORM records nothing
        conn.execute(text("UPDATE research_sessions SET notes = 'Apple raised its dividend' WHERE id = :i"),
                     {"i": changed})
        conn.execute(text("DELETE FROM research_sessions WHERE id = :i"), {"i": dropped})
        conn.execute(text("INSERT INTO research_sessions (id, user_id, session_type, symbol, notes, created_at, "
                          "updated_at) VALUES ('r-core', :u, 'research', 'AAPL', 'Inserted behind the ORM', "
                          "CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"),
                     {"u": alice})
        conn.commit()
    k.close()
    env = subprocess_env(DATABASE_URL=url, TIMBER_APP="grove")
    found = run_timber("vectors", "verify", "--model", "ResearchSession", env=env)
    assert (found.returncode, found.stdout, found.stderr.splitlines()[-1]) == (
        1, "collection         rows  points  state\n"
           "-----------------  ----  ------  -------------------------------\n"
           "research_sessions  3     3       1 missing, 1 orphan(s), 1 stale\n",
        "run `timber vectors verify --repair` to make the index equal the database")
    detail = json.loads(run_timber("vectors", "verify", "--json", "--model", "ResearchSession", env=env).stdout)
    assert (detail[0]["missing"], detail[0]["orphans"], detail[0]["stale"]) == (["r-core"], [dropped], [changed])
    repaired = run_timber("vectors", "verify", "--repair", "--model", "ResearchSession", env=env)
    assert (repaired.returncode, repaired.stdout.splitlines()[-1]) == (0, "repaired research_sessions"), \
        repaired.stderr
    again = run_timber("vectors", "verify", env=env)
    assert (again.returncode, again.stdout) == (
        0, "collection         rows  points  state\n"
           "-----------------  ----  ------  -----\n"
           "orders             0     0       ok\n"
           "research_reports   0     0       ok\n"
           "research_sessions  3     3       ok\n")
    k = start(url)
    assert indexed_notes(k) == db_notes(k) == {kept: APPLE, changed: "Apple raised its dividend",
                                               "r-core": "Inserted behind the ORM"}
    k.close()


def test_verify_repair_removes_the_points_of_rows_dropped_by_a_downgrade(model_env: str, tmp_path: Path) -> None:
    from timber_core.vectors.verify import compare, repair

    env = subprocess_env(TIMBER_HOME=os.environ["TIMBER_HOME"], TIMBER_APP="grove")
    url = f"sqlite:///{os.environ['TIMBER_HOME']}/timber.db"
    assert run_timber("migrate", env=env).returncode == 0
    k = start(url)
    alice = user_service.create_user("alice@example.com", "alice")
    first, second = research(k, alice, APPLE), research(k, alice, GARDEN)
    k.close()
    down = run_timber("downgrade", "--app", "grove", "base", env=env)
    assert down.returncode == 0, down.stderr
    k = timber_core.initialize_timber("grove", database_url=url, create_tables=False)  # leave the table dropped
    try:
        with timber_core.platform_context():
            model = k.vectors.model("ResearchSession")
            drift = compare(k.vectors, model)
            assert (drift.table_exists, drift.rows, drift.points, drift.missing, drift.orphans, drift.stale) == (
                False, 0, 2, [], sorted([first, second]), [])
            repair(k.vectors, drift)
            after = compare(k.vectors, model)
            assert (after.clean, after.points) == (True, 0)
    finally:
        k.close()
