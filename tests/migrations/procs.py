"""Real ``timber`` processes for the migration race and crash tests, held at a known point.

The test-only app ``stall`` (tests/fixtures/plugins/stall) has one revision that,
when ``TIMBER_TEST_STALL_DIR`` is set, creates its first table, writes
``<dir>/reached`` (its pid) and waits for ``<dir>/release`` before its second
table. A test starts a migration, waits for ``reached`` (the process is then
inside the migration, between two DDL statements, holding the migration lock),
and races or kills it there: no timing guesses. Every wait here is bounded.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, inspect, text

ROOT = Path(__file__).resolve().parents[2]
STALL_APP = ROOT / "tests" / "fixtures" / "plugins" / "stall"
SOURCE_PATHS = [ROOT / "src", ROOT / "plugins" / "canopy" / "src", ROOT / "plugins" / "grove" / "src"]
CLI = "import sys; sys.argv[0] = 'timber'; from timber_core.cli import main; main()"
#: Bound of every wait for another process (generous: two shared cores, cold interpreters).
WAIT_S = 120.0


def child_env(tmp: Path, database_url: str | None, **extra: str) -> dict[str, str]:
    """The environment of a child process: the stall app installed, its stall directory ``tmp/stall``."""
    stall_dir = tmp / "stall"
    stall_dir.mkdir(exist_ok=True)
    env = {k: v for k, v in os.environ.items()
           if k not in ("TIMBER_APPS", "TIMBER_DISABLE_APPS", "DATABASE_URL", "TIMBER_MIGRATION_LOCK_TIMEOUT")}
    env.update(
        PYTHONPATH=os.pathsep.join(str(p) for p in [STALL_APP, *SOURCE_PATHS]),
        PYTHONDONTWRITEBYTECODE="1",
        TIMBER_HOME=str(tmp / ".timber"),
        TIMBER_APP="canopy",
        TIMBER_TEST_STALL_DIR=str(stall_dir),
    )
    if database_url is not None:
        env["DATABASE_URL"] = database_url
    env.update(extra)
    return env


class Proc:
    """A child process whose stdout and stderr go to files (readable while it runs)."""

    def __init__(self, tmp: Path, name: str, argv: list[str], env: dict[str, str]) -> None:
        self.name = name
        self.out_path, self.err_path = tmp / f"{name}.out", tmp / f"{name}.err"
        with open(self.out_path, "w") as out, open(self.err_path, "w") as err:
            self.popen = subprocess.Popen(argv, stdout=out, stderr=err, env=env, cwd=tmp)

    @property
    def pid(self) -> int:
        return self.popen.pid

    @property
    def out(self) -> str:
        return self.out_path.read_text()

    @property
    def err(self) -> str:
        return self.err_path.read_text()

    def finish(self) -> tuple[int, str, str]:
        """Wait (bounded) for the exit; return (exit code, stdout, stderr)."""
        return self.popen.wait(timeout=WAIT_S), self.out, self.err

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.kill()
            self.popen.wait(timeout=WAIT_S)

    def describe(self) -> str:
        return f"{self.name} (pid {self.pid}, exit {self.popen.poll()}): stdout {self.out!r} stderr {self.err!r}"


def timber(tmp: Path, name: str, *args: str, env: dict[str, str]) -> Proc:
    """Start ``timber ARGS``."""
    return Proc(tmp, name, [sys.executable, "-c", CLI, *args], env)


def python(tmp: Path, name: str, code: str, *args: str, env: dict[str, str]) -> Proc:
    """Start ``python -c CODE ARGS``."""
    return Proc(tmp, name, [sys.executable, "-c", code, *args], env)


def wait_until(what: str, done: Callable[[], bool], procs: list[Proc]) -> None:
    """Poll ``done`` until true; fail naming ``what`` and the processes' output after WAIT_S
    or as soon as every process has exited without it."""
    deadline = time.monotonic() + WAIT_S
    while not done():
        if all(p.popen.poll() is not None for p in procs) and not done():
            raise AssertionError(f"{what}: never happened; " + "; ".join(p.describe() for p in procs))
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {WAIT_S} s; " + "; ".join(p.describe() for p in procs))
        time.sleep(0.05)


def reached(tmp: Path) -> Path:
    return tmp / "stall" / "reached"


def release(tmp: Path) -> None:
    (tmp / "stall" / "release").touch()


def stalled_pid(tmp: Path) -> int:
    return int(reached(tmp).read_text())


def tables(url: str) -> list[str]:
    engine = create_engine(url)
    try:
        return sorted(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def versions(url: str) -> list[str]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return sorted(r[0] for r in conn.execute(text("SELECT version_num FROM alembic_version")))
    finally:
        engine.dispose()


def display(url: str) -> str:
    """The URL as Timber prints it (driver named, password hidden)."""
    from timber_core.db import normalize_url

    return normalize_url(url).render_as_string(hide_password=True)


def stop_all(procs: list[Any]) -> None:
    for p in procs:
        p.stop()
