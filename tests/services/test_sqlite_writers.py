"""Several writer processes on one embedded SQLite database: no ``database is locked``.

Each process creates users, sessions, notifications and orders (whose notes go to the
vector outbox) while ``timber vectors worker`` reads and settles that outbox, all at once.
(This guard passes on the code before units of work began IMMEDIATE too: the errors showed
only under ``bench/bench_load.py``'s longer run, 1-5 per 1,200 operations; see
docs/performance.md.) In WAL mode a deferred transaction that read before another
process committed cannot become a writer: SQLite answers ``database is locked`` at once,
without waiting. Timber's units of work begin ``IMMEDIATE`` on SQLite, so they wait their
turn instead.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from sqlalchemy import create_engine, text

PROCESSES = 8
USERS = 40

WRITER = r"""
import sys
import timber_core
from timber_core.services.persistence import session_service, user_service

url, tag, n, app = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
kernel = timber_core.initialize_timber(app, database_url=url)
from timber_core.services.persistence import notification_service
for i in range(n):
    user = user_service.create_user(f"{tag}-{i}@example.com", f"{tag}-{i}")
    with timber_core.user_context(user):
        session_service.create_session(user, "trading" if app == "canopy" else "research", {"i": i})
        notification_service.create_notification(user, "load", f"note {i}")
        if app == "canopy":
            kernel.services["orders"].create_order(user, "AAPL", "limit", 1, 10.0, notes=f"order {i}")
        else:
            kernel.services["reports"].start_research(user, "AAPL", f"note {i}")
kernel.close()
print("ok")
"""

ROOT = Path(__file__).resolve().parents[2]


def test_several_writer_processes_all_succeed_on_one_sqlite_file(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/timber.db"
    env = dict(os.environ, TIMBER_VECTOR_DRAIN="off", PYTHONPATH=os.pathsep.join(
        str(ROOT / p) for p in ("src", "plugins/canopy/src", "plugins/grove/src")))
    ready = subprocess.run([sys.executable, "-c", "import sys, timber_core; "
                            "timber_core.initialize_timber('canopy', database_url=sys.argv[1]).close()", url],
                           env=env, capture_output=True, text=True, timeout=300, check=False)
    assert ready.returncode == 0, ready.stderr
    # Beside them, the vector worker reads and settles the outbox the orders fill.
    worker = subprocess.Popen([sys.executable, "-c", "import sys; sys.argv[0] = 'timber'; "
                               "from timber_core.cli import main; main()", "vectors", "worker", "--interval", "0.05"],
                              env=dict(env, DATABASE_URL=url, TIMBER_APP="canopy"), stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True)
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, url, f"p{i}", str(USERS), ("canopy", "grove")[i % 2]],
                              env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for i in range(PROCESSES)]
    try:
        outcomes = [(p.communicate(timeout=600), p.returncode) for p in procs]
    finally:
        worker.terminate()
        _out, worker_err = worker.communicate(timeout=120)
    assert worker_err.count("database is locked") == 0, worker_err
    assert [(rc, out.strip(), err.count("database is locked")) for (out, err), rc in outcomes] == \
        [(0, "ok", 0)] * PROCESSES
    engine = create_engine(url)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM users")).scalar_one() == PROCESSES * USERS
        # Grove's start_research opens a session of its own beside the one created directly.
        assert conn.execute(text("SELECT count(*) FROM sessions")).scalar_one() == PROCESSES * USERS * 3 // 2
    engine.dispose()
