"""A full disk under the embedded vector store: the write commits, the index work waits, nothing crashes.

The disk is real: a small tmpfs mounted for the test (root only; CI runs as root and
must not skip), filled with a file, then emptied again.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

import timber_core
from timber_core.services.persistence import user_service

from .conftest import start

APPLE = "Apple's quarterly results beat analyst estimates on strong iPhone and services revenue"
GARDEN = "Planted tomatoes and basil in the back garden this weekend"


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 2 MB tmpfs mounted at a fresh directory; unmounted afterwards."""
    mount = tmp_path / "small"
    mount.mkdir()
    if os.geteuid() != 0:
        if os.environ.get("CI"):
            pytest.fail("the full-disk tests mount a tmpfs and need root, which CI has")
        pytest.skip("the full-disk tests mount a tmpfs: run them as root")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)], capture_output=True,
                          text=True, check=False)
    if done.returncode != 0:
        if os.environ.get("CI"):
            pytest.fail(f"cannot mount a tmpfs for the full-disk test: {done.stderr.strip()}")
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(directory: Path) -> Path:
    """Write a file until the filesystem of ``directory`` has no room left; return it."""
    filler = directory / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        for size in (65536, 4096, 1):  # big writes, then the last bytes
            try:
                while True:
                    os.write(fd, b"\0" * size)
            except OSError:
                pass
    finally:
        os.close(fd)
    return filler


def outbox(kernel: object) -> list[tuple[str, str, int, str | None]]:
    with timber_core.platform_context(), kernel.db.connection() as conn:  # type: ignore[attr-defined]
        return [(r[0], r[1], int(r[2]), r[3]) for r in conn.execute(text(
            "SELECT row_id, op, attempts, last_error FROM timber_vector_outbox ORDER BY created_at"))]


def wait_until_due(kernel: object) -> None:
    """Sleep until every outbox entry's backoff has passed (the retry then runs by itself)."""
    with timber_core.platform_context(), kernel.db.connection() as conn:  # type: ignore[attr-defined]
        due = conn.execute(text("SELECT max(next_attempt_at) FROM timber_vector_outbox")).scalar_one()
    if due is None:
        return
    if isinstance(due, str):
        due = dt.datetime.fromisoformat(due)
    if due.tzinfo is None:
        due = due.replace(tzinfo=dt.timezone.utc)
    time.sleep(max(0.0, (due - dt.datetime.now(dt.timezone.utc)).total_seconds()) + 0.1)


def test_a_full_disk_keeps_the_write_and_its_index_work_and_recovers_when_space_is_back(
    model_env: str, small_disk: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setenv("TIMBER_HOME", str(small_disk / "home"))
    k = start(f"sqlite:///{tmp_path}/timber.db")  # the database has room; the vector store does not
    try:
        alice = user_service.create_user("alice@example.com", "alice")
        filler = fill(small_disk)
        with caplog.at_level("WARNING", logger="timber.vectors"):
            row = str(k.services["reports"].start_research(alice, "AAPL", APPLE))
        [(row_id, op, attempts, error)] = outbox(k)
        assert (row_id, op, attempts) == (row, "upsert", 1)
        store = small_disk / "home" / "vectors" / "index.sqlite3"
        free = shutil.disk_usage(small_disk).free
        assert error == (
            f"VectorSearchError: the embedded vector store {store} cannot open: the disk is full ({free:,} bytes"
            " free); free space there (queued index work is kept and applied once there is room)")
        assert [r.getMessage().count("\n") for r in caplog.records] == [0]  # one line, no traceback
        with timber_core.platform_context(), k.db.connection() as conn:
            assert conn.execute(text("SELECT notes FROM research_sessions WHERE id = :i"), {"i": row}).scalar() == APPLE

        filler.unlink()  # space is back: the next drain after the backoff applies the waiting work
        wait_until_due(k)
        second = str(k.services["reports"].start_research(alice, "GRDN", GARDEN))
        assert outbox(k) == []
        points = dict(k.vectors.store.scan("research_sessions"))
        assert {i: p["content"] for i, p in points.items()} == {row: APPLE, second: GARDEN}
    finally:
        k.close()
