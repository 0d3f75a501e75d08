"""Several processes of several apps on one ``TIMBER_HOME``: the embedded vector store loses nothing.

The design document's deployment runs several instances per app. Each round starts N
writer processes (Canopy orders and Grove research notes, each with text to index) on
one embedded home, with the default inline drain or with drains off and one
``timber vectors worker``, while ``timber vectors status`` opens the store beside them.
Both on the embedded SQLite database and on PostgreSQL (where the drains' lock is an
advisory lock). Afterwards the index must equal the database exactly: same ids, same content, and an
empty outbox. Rounds repeat on the same home, so a later round also sees the earlier
rounds' points survive other processes' opens and closes.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from typing import Any

import pytest
from sqlalchemy import text

import timber_core

from .conftest import run_timber, start, subprocess_env

WRITERS = 3
WRITES = 12
ROUNDS = 3

#: One writer: as APP, creates a user and WRITES rows whose text must be indexed.
WRITER = r"""
import sys
import timber_core
from timber_core.services.persistence import user_service

app, tag, writes = sys.argv[1], sys.argv[2], int(sys.argv[3])
kernel = timber_core.initialize_timber(app)
user = user_service.create_user(f"{tag}@example.com", tag)
for i in range(writes):
    note = f"{tag} note {i}: quarterly results and guidance for the portfolio"
    if app == "grove":
        kernel.services["reports"].start_research(user, "AAPL", note)
    else:
        kernel.services["orders"].create_order(user, "AAPL", "limit", 1 + i, 10.0, notes=note)
kernel.close()
print("done", tag)
"""

COLLECTIONS = {"research_sessions": "SELECT id, notes FROM research_sessions",
               "orders": "SELECT id, notes FROM orders"}


def database_rows(kernel: Any) -> dict[str, dict[str, str]]:
    """Every row with text of each vector-enabled table, by id: what the index must hold."""
    with timber_core.platform_context(), kernel.db.connection() as conn:
        return {c: {str(r[0]): r[1] for r in conn.execute(text(sql)) if r[1] and r[1].strip()}
                for c, sql in COLLECTIONS.items()}


def index_points(kernel: Any) -> dict[str, dict[str, str]]:
    """Every point of each collection, by id, with the content it was embedded from."""
    store = kernel.vectors.store
    found: dict[str, dict[str, str]] = {}
    for collection in COLLECTIONS:
        found[collection] = {}
        if collection not in store.collections():
            continue
        total = store.count(collection)
        vector = kernel.vectors.embedder("BAAI/bge-small-en-v1.5").embed_query("anything")
        hits = store.search(collection, vector, limit=max(total, 1))
        assert len(hits) == total
        found[collection] = {h.id: h.payload["content"] for h in hits}
    return found


def pending(kernel: Any) -> int:
    with timber_core.platform_context(), kernel.db.connection() as conn:
        return int(conn.execute(text("SELECT count(*) FROM timber_vector_outbox")).scalar_one())


def run_writers(env: dict[str, str], round_no: int) -> None:
    procs = [
        subprocess.Popen([sys.executable, "-c", WRITER, "grove" if i % 2 == 0 else "canopy", f"w{round_no}x{i}",
                          str(WRITES)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for i in range(WRITERS)
    ]
    # Beside the writers, status opens the store as an operator would.
    status = run_timber("vectors", "status", env=env)
    assert status.returncode == 0, status.stderr
    for p in procs:
        out, err = p.communicate(timeout=600)
        assert p.returncode == 0, err
        assert out.strip().startswith("done")


@pytest.fixture(params=["sqlite", "postgresql"])
def home_env(request: pytest.FixtureRequest, model_env: str) -> dict[str, str]:
    """A home (embedded vector store) on a database migrated once; the environment of its processes."""
    env = subprocess_env(TIMBER_HOME=os.environ["TIMBER_HOME"])  # this test's own home (autouse fixture)
    os.makedirs(os.environ["TIMBER_HOME"], exist_ok=True)
    env["DATABASE_URL"] = (f"sqlite:///{os.environ['TIMBER_HOME']}/timber.db" if request.param == "sqlite"
                           else request.getfixturevalue("scratch_postgres"))
    env.pop("QDRANT_URL", None)
    migrated = run_timber("migrate", env=env)
    assert migrated.returncode == 0, migrated.stderr
    return env


def check_index_equals_database(env: dict[str, str]) -> None:
    kernel = start(env["DATABASE_URL"])
    try:
        assert pending(kernel) == 0
        assert index_points(kernel) == database_rows(kernel)
    finally:
        kernel.close()


def test_inline_drains_of_several_processes_lose_no_point(home_env: dict[str, str]) -> None:
    for round_no in range(ROUNDS):
        run_writers(home_env, round_no)
        check_index_equals_database(home_env)
    kernel = start(home_env["DATABASE_URL"])
    try:
        assert sum(len(v) for v in database_rows(kernel).values()) == ROUNDS * WRITERS * WRITES
    finally:
        kernel.close()


def test_writers_with_drain_off_and_one_worker_lose_no_point(home_env: dict[str, str]) -> None:
    env = dict(home_env, TIMBER_VECTOR_DRAIN="off")
    for round_no in range(ROUNDS):
        worker = subprocess.Popen([sys.executable, "-c", "import sys; sys.argv[0] = 'timber'; "
                                   "from timber_core.cli import main; main()", "vectors", "worker",
                                   "--interval", "0.2"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  text=True)
        try:
            run_writers(env, round_no)
            deadline = time.monotonic() + 300
            while True:  # the worker drains what the writers left; status reads beside it
                status = run_timber("vectors", "status", "--json", env=env)
                assert status.returncode == 0, status.stderr
                if '"pending": 0' in status.stdout or time.monotonic() > deadline:
                    break
                time.sleep(0.5)
        finally:
            worker.terminate()
            _out, err = worker.communicate(timeout=120)
        assert worker.returncode == 0, err
        check_index_equals_database(env)
