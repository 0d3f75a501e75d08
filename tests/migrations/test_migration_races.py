"""Migrations run by several processes at once, or killed halfway, on SQLite and PostgreSQL.

A lock serializes them (a file lock next to the SQLite file, an advisory lock on
PostgreSQL) and one transaction makes each atomic. Every test drives real
``timber`` processes against a real database, held at a known point by the
test-only app ``stall`` (see :mod:`tests.migrations.procs`).
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests._databases import database_url

from .procs import (
    Proc, child_env, display, python, reached, release, stalled_pid, stop_all, tables, timber, versions, wait_until,
)

ALL_TABLES = [
    "alembic_version", "events", "notifications", "orders", "research_reports", "research_sessions",
    "sessions", "stall_first", "stall_second", "timber_gdpr_audit", "timber_revisions", "timber_vector_outbox",
    "trading_sessions", "user_credentials", "users",
]
#: stall_0001 depends on timber_0004, which the kernel's head timber_0005 is beyond: both are recorded.
HEADS = ["canopy_0002", "grove_0002", "stall_0001", "timber_0005"]
PG_LOCK_KEY = 8388356050548255079  # b"timbrmig"


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty database: a SQLite file under tmp_path, or a scratch PostgreSQL database."""
    return database_url(request.param, request, tmp_path)


@pytest.fixture
def procs() -> Iterator[list[Proc]]:
    """Processes a test starts; any still running at the end are killed."""
    started: list[Proc] = []
    yield started
    stop_all(started)


def lock_name(url: str, holder: int) -> str:
    """How a waiting process names the lock and its holder."""
    if url.startswith("sqlite"):
        return f"lock {url.removeprefix('sqlite:///')}.migrate.lock, held by pid {holder}"
    return f"PostgreSQL advisory lock {PG_LOCK_KEY}"


def waiting_line(url: str, holder: int, timeout: int = 300) -> str:
    return (f"waiting for another migration of {display(url)} to finish ({lock_name(url, holder)}); "
            f"giving up after {timeout} s")


def start_stalled_migrate(tmp_path: Path, database: str, procs: list[Proc]) -> Proc:
    """Start `timber migrate` and return once it stands inside the migration, between two DDL statements."""
    first = timber(tmp_path, "first", "migrate", env=child_env(tmp_path, database))
    procs.append(first)
    wait_until("the first migrate reaches the stall", reached(tmp_path).exists, [first])
    return first


def test_two_migrate_commands_at_once_both_succeed(tmp_path: Path, database: str, procs: list[Proc]) -> None:
    first = start_stalled_migrate(tmp_path, database, procs)
    second = timber(tmp_path, "second", "migrate", env=child_env(tmp_path, database))
    procs.append(second)
    wait_until("the second migrate says it waits", lambda: "waiting for" in second.err, [second])
    release(tmp_path)
    assert first.finish() == (0, f"migrated {display(database)} to every head\n", "")
    assert second.finish() == (0, f"migrated {display(database)} to every head\n",
                               waiting_line(database, first.pid) + "\n")
    assert (tables(database), versions(database)) == (ALL_TABLES, HEADS)


def test_a_waiting_migrate_gives_up_after_the_lock_timeout(tmp_path: Path, database: str, procs: list[Proc]) -> None:
    first = start_stalled_migrate(tmp_path, database, procs)
    second = timber(tmp_path, "second", "migrate",
                    env=child_env(tmp_path, database, TIMBER_MIGRATION_LOCK_TIMEOUT="1"))
    procs.append(second)
    code, out, err = second.finish()
    release(tmp_path)
    assert (code, out, err) == (1, "", (
        f"{waiting_line(database, first.pid, timeout=1)}\n"
        f"Error: MigrationLockTimeout: gave up after 1 s waiting for another migration of {display(database)} "
        f"({lock_name(database, first.pid)}): let it finish and run this again, or raise "
        f"TIMBER_MIGRATION_LOCK_TIMEOUT (seconds)\n"
    ))
    assert first.finish()[0] == 0


def kill_halfway(tmp_path: Path, database: str, procs: list[Proc]) -> None:
    """SIGKILL a `timber migrate` of an empty database between two of its DDL statements."""
    first = start_stalled_migrate(tmp_path, database, procs)
    os.kill(first.pid, signal.SIGKILL)
    assert first.popen.wait(timeout=120) == -signal.SIGKILL


def test_a_migrate_killed_halfway_leaves_no_table_behind(tmp_path: Path, database: str, procs: list[Proc]) -> None:
    kill_halfway(tmp_path, database, procs)
    assert tables(database) == []


def test_migrate_succeeds_after_one_was_killed_halfway(tmp_path: Path, database: str, procs: list[Proc]) -> None:
    kill_halfway(tmp_path, database, procs)
    release(tmp_path)
    rerun = timber(tmp_path, "rerun", "migrate", env=child_env(tmp_path, database))
    procs.append(rerun)
    assert rerun.finish()[:2] == (0, f"migrated {display(database)} to every head\n")
    assert (tables(database), versions(database)) == (ALL_TABLES, HEADS)


START = """
import logging, os, sys, time
logging.basicConfig(level=logging.WARNING, format="%(name)s: %(message)s")
import timber_core
open(sys.argv[1] + ".ready", "w").close()
deadline = time.monotonic() + 120
while not os.path.exists(sys.argv[2]):
    assert time.monotonic() < deadline, "no go"
    time.sleep(0.01)
timber_core.initialize_timber("canopy").close()
print("started")
"""


def test_four_processes_starting_on_an_empty_home_all_get_the_schema(tmp_path: Path, procs: list[Proc]) -> None:
    go = tmp_path / "go"
    env = child_env(tmp_path, None)  # no DATABASE_URL: the embedded database under TIMBER_HOME
    for i in range(4):
        procs.append(python(tmp_path, f"start{i}", START, str(tmp_path / f"start{i}"), str(go), env=env))
    wait_until("all four are ready", lambda: all((tmp_path / f"start{i}.ready").exists() for i in range(4)), procs)
    go.touch()
    # One creates the schema and stalls inside it; the three others must wait for it, not fail.
    wait_until("three wait for the one migrating",
               lambda: reached(tmp_path).exists() and sum("waiting for" in p.err for p in procs) == 3, procs)
    release(tmp_path)
    url = f"sqlite:///{tmp_path}/.timber/timber.db"
    waited = f"timber.migrations: {waiting_line(url, stalled_pid(tmp_path))}\n"
    assert sorted(p.finish() for p in procs) == [(0, "started\n", "")] + [(0, "started\n", waited)] * 3
    assert (tables(url), versions(url)) == (ALL_TABLES, HEADS)


def test_starting_on_a_migrated_database_does_not_wait_for_a_writer(tmp_path: Path) -> None:
    import sqlite3

    import timber_core

    url = f"sqlite:///{tmp_path}/timber.db"
    timber_core.initialize_timber("canopy", database_url=url).close()
    writer = sqlite3.connect(tmp_path / "timber.db", isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")  # another process's long write transaction
    writer.execute("INSERT INTO users (id, email, username, created_at, updated_at) "
                   "VALUES ('u1', 'a@x', 'a', '2026-01-01', '2026-01-01')")
    try:
        kernel = timber_core.initialize_timber("grove", database_url=url)
        assert kernel.app_name == "grove"
        kernel.close()
    finally:
        writer.execute("ROLLBACK")
        writer.close()
