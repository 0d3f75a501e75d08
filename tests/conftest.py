"""Shared fixtures: fresh kernels on SQLite and, where configured, PostgreSQL."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]

# -- the working tree is unchanged after the tests -----------------------------------------------

# Written by Python and pytest themselves, not by the tests: bytecode caches and pytest's cache.
_NOT_THE_TESTS = ("__pycache__/", ".pytest_cache/")
_tree_before = pytest.StashKey[frozenset[str]]()
_hypothesis_home = pytest.StashKey[str]()


def _tree(root: Path) -> frozenset[str] | str:
    """The paths ``git status --porcelain --ignored`` lists (ignored ones too), or why it cannot run."""
    try:
        out = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--ignored", "--untracked-files=all"],
                             capture_output=True, text=True, timeout=120, check=False)
    except FileNotFoundError:
        return "git is not installed"
    if out.returncode != 0:
        return f"not a git checkout ({out.stderr.strip()})"
    paths = (line[3:] for line in out.stdout.splitlines())
    return frozenset(p for p in paths if not any(part in p + "/" for part in _NOT_THE_TESTS))


def pytest_configure(config: pytest.Config) -> None:
    # Hypothesis writes its example database and caches under ./.hypothesis: keep them in a
    # temporary directory, and replay no examples from earlier runs.
    from hypothesis import configuration, settings

    home = tempfile.mkdtemp(prefix="timber-hypothesis-")
    config.stash[_hypothesis_home] = home
    configuration.set_hypothesis_home_dir(home)
    settings.register_profile("timber-tests", database=None)
    settings.load_profile("timber-tests")


def pytest_unconfigure(config: pytest.Config) -> None:
    home = config.stash.get(_hypothesis_home, None)
    if home is not None:
        shutil.rmtree(home, ignore_errors=True)


def pytest_sessionstart(session: pytest.Session) -> None:
    before = _tree(ROOT)
    if isinstance(before, str):
        print(f"\nworking-tree check skipped: {before}")
        return
    session.config.stash[_tree_before] = before


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Fail the run when the tests left new files (ignored ones included) in the checkout."""
    before = session.config.stash.get(_tree_before, None)
    if before is None:
        return
    after = _tree(ROOT)
    new = sorted(after - before) if not isinstance(after, str) else []
    if new:
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        message = "the tests changed the working tree; new paths:\n" + "\n".join(f"  {p}" for p in new)
        if reporter is not None:
            reporter.write_line("")
            reporter.write_sep("=", "working tree changed", red=True)
            reporter.write_line(message)
        else:
            print(message)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def postgres_url_or_skip() -> str:
    """Return TIMBER_TEST_DATABASE_URL; skip with the reason locally, fail under CI."""
    url = os.environ.get("TIMBER_TEST_DATABASE_URL")
    if not url:
        if os.environ.get("CI"):
            pytest.fail("TIMBER_TEST_DATABASE_URL is not set under CI: the PostgreSQL tests must run there")
        pytest.skip("PostgreSQL tests need TIMBER_TEST_DATABASE_URL (e.g. postgresql://postgres@127.0.0.1:5432/test)")
    return url


@pytest.fixture
def scratch_postgres() -> Iterator[str]:
    """Create an empty PostgreSQL database for one test; yield its URL; drop it afterwards."""
    from timber_core.testing import ScratchDatabaseError, scratch_database

    try:
        with scratch_database(postgres_url_or_skip()) as url:
            yield url
    except ScratchDatabaseError as exc:  # unreachable server
        if os.environ.get("CI"):
            pytest.fail(str(exc))
        pytest.skip(str(exc))


@pytest.fixture(autouse=True)
def _isolated_home(monkeypatch: pytest.MonkeyPatch) -> None:
    """Start each test without database or app selection variables from the caller's shell.

    ``TIMBER_HOME`` (in the test's tmp_path) and ``HF_HUB_OFFLINE`` come from the
    ``timber_core.testing`` plugin, as for any app's tests.
    """
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.delenv("TIMBER_APPS", raising=False)
    monkeypatch.delenv("TIMBER_DISABLE_APPS", raising=False)
    monkeypatch.delenv("TIMBER_DEBUG", raising=False)  # errors and warnings as users see them
    from timber_core.config import TimberConfig

    TimberConfig.clear_cache()


@pytest.fixture
def alice(kernel: Any) -> str:
    """A user created through the shared service, on whatever ``kernel`` the test uses."""
    from timber_core.services.persistence import user_service

    return user_service.create_user("alice@example.com", "alice")


@pytest.fixture
def bob(kernel: Any) -> str:
    """A second user, like ``alice``."""
    from timber_core.services.persistence import user_service

    return user_service.create_user("bob@example.com", "bob")
