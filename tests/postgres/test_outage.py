"""A PostgreSQL outage: one warning line per failure, no traceback (unless TIMBER_DEBUG), then recovery.

The outage is real: an admin connection terminates every backend of the test database
(``pg_terminate_backend``) while the kernel's pool holds connections to it.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy.exc
from sqlalchemy import create_engine, text
from sqlalchemy.engine import URL

import timber_core
from timber_core.context import platform_context

from .conftest import admin_url

LOST = ("timber: lost the connection to the database {url}: {reason}; "
        "the pool's connections are discarded and reopened on next use")


@pytest.fixture
def kernel(migrated: URL) -> Iterator[Any]:
    from timber_core.config import TimberConfig

    TimberConfig.clear_cache()
    kernel = timber_core.initialize_timber("grove", database_url=migrated)
    try:
        yield kernel
    finally:
        kernel.close()


def terminate_backends(database: str) -> None:
    """Terminate every backend connected to ``database``, waiting until each has exited."""
    admin = create_engine(admin_url(), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            ended = conn.execute(text(
                "SELECT pg_terminate_backend(pid, 10000) FROM pg_stat_activity "
                "WHERE datname = :db AND pid <> pg_backend_pid()"), {"db": database}).scalars().all()
        assert ended and all(ended), ended
    finally:
        admin.dispose()


def backends(database: str) -> set[int]:
    """The process ids of the backends connected to ``database``."""
    admin = create_engine(admin_url(), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            return set(conn.execute(text("SELECT pid FROM pg_stat_activity WHERE datname = :db"),
                                    {"db": database}).scalars())
    finally:
        admin.dispose()


def wait_for(condition: Any, what: str, limit: float = 60.0) -> Any:
    """Poll ``condition()`` until it is truthy; fail naming ``what`` after ``limit`` seconds."""
    deadline = time.monotonic() + limit
    while not (value := condition()):
        if time.monotonic() > deadline:
            pytest.fail(f"gave up waiting for {what}")
        time.sleep(0.05)
    return value


def _records(caplog: pytest.LogCaptureFixture) -> list[tuple[str, str, str, bool]]:
    return [(r.name, r.levelname, r.getMessage(), r.exc_info is not None) for r in caplog.records]


def test_a_drain_on_terminated_pooled_connections_logs_one_warning_and_no_traceback(
    kernel: Any, caplog: pytest.LogCaptureFixture
) -> None:
    with platform_context():
        kernel.vectors.drain()  # leaves its connections idle in the pool
        terminate_backends(kernel.db.url.database)
        caplog.clear()
        with caplog.at_level(logging.WARNING), pytest.raises(sqlalchemy.exc.OperationalError):
            kernel.vectors.drain()
    assert _records(caplog) == [("timber.db", "WARNING", LOST.format(
        url=kernel.db.display_url, reason="server closed the connection unexpectedly"), False)]


def test_a_connection_terminated_mid_transaction_logs_one_warning_and_no_traceback(
    kernel: Any, caplog: pytest.LogCaptureFixture
) -> None:
    with platform_context(), caplog.at_level(logging.WARNING), pytest.raises(sqlalchemy.exc.OperationalError):
        with kernel.db.connection() as conn:
            terminate_backends(kernel.db.url.database)
            caplog.clear()
            conn.execute(text("SELECT 1"))
    assert _records(caplog) == [("timber.db", "WARNING", LOST.format(
        url=kernel.db.display_url, reason="terminating connection due to administrator command"), False)]


def test_the_drain_after_an_outage_reconnects_every_pooled_connection(kernel: Any) -> None:
    with platform_context():
        kernel.vectors.drain()
        terminate_backends(kernel.db.url.database)
        with pytest.raises(sqlalchemy.exc.OperationalError):
            kernel.vectors.drain()
        assert (kernel.vectors.drain().applied, kernel.vectors.drain().failed) == (0, 0)


def test_timber_debug_adds_the_traceback_to_the_outage_warning(
    kernel: Any, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TIMBER_DEBUG", "1")
    with platform_context():
        kernel.vectors.drain()
        terminate_backends(kernel.db.url.database)
        caplog.clear()
        with caplog.at_level(logging.WARNING), pytest.raises(sqlalchemy.exc.OperationalError):
            kernel.vectors.drain()
    assert _records(caplog) == [("timber.db", "WARNING", LOST.format(
        url=kernel.db.display_url, reason="server closed the connection unexpectedly"), True)]


def test_the_worker_prints_one_line_for_an_outage_and_carries_on(migrated: URL, tmp_path: Path) -> None:
    root = Path(__file__).resolve().parents[2]
    env = {k: v for k, v in os.environ.items() if k not in ("TIMBER_APPS", "TIMBER_DISABLE_APPS", "TIMBER_DEBUG")}
    env.update(PYTHONPATH=os.pathsep.join(str(root / p) for p in ("src", "plugins/canopy/src", "plugins/grove/src")),
               DATABASE_URL=migrated.render_as_string(hide_password=False), TIMBER_APP="grove",
               TIMBER_HOME=str(tmp_path / "home"))
    proc = subprocess.Popen(
        [sys.executable, "-c", "import sys; sys.argv[0] = 'timber'; from timber_core.cli import main; main()",
         "vectors", "worker", "--interval", "0.1"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        # Start-up uses one connection at a time; a drain holds two (the lock's and its session's).
        def drained() -> set[int] | None:
            found = backends(migrated.database)
            return found if len(found) >= 2 else None

        before = wait_for(drained, "the worker's first drain")
        terminate_backends(migrated.database)
        wait_for(lambda: backends(migrated.database) - before, "the worker to reconnect")
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=60)
    url = migrated.set(drivername="postgresql+psycopg").render_as_string(hide_password=True)
    assert (proc.returncode, out) == (0, "worker stopped: applied 0, failed 0\n"), err
    # The backends die between two drains or during one: the driver words the two differently.
    lines = [line for line in err.splitlines() if not line.startswith("timber doctor: ")]
    assert lines in ([LOST.format(url=url, reason="server closed the connection unexpectedly")],
                     [LOST.format(url=url, reason="terminating connection due to administrator command")]), err
