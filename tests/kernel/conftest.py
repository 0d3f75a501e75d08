"""Fixtures for the kernel's tests: fixture plugins on sys.path, a clean environment, a clean kernel."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from timber_kernel_testing import APP_VARIABLES, PLUGIN_FIXTURES


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Start each test without app selection or database variables from the caller's shell."""
    for name in APP_VARIABLES:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def install_fixture(monkeypatch: pytest.MonkeyPatch) -> Callable[[str], Path]:
    """Put ``tests/fixtures/plugins/<case>`` on sys.path: its distributions now count as installed."""

    def install(case: str) -> Path:
        path = PLUGIN_FIXTURES / case
        assert path.is_dir(), path
        monkeypatch.syspath_prepend(str(path))
        return path

    return install


@pytest.fixture
def fresh_kernel() -> Iterator[None]:
    """Forget the process's kernel after the test, closing its connections."""
    yield
    import timber_core

    timber_core.shutdown()


@pytest.fixture
def read_only_dir(tmp_path: Path) -> Iterator[Path]:
    """A directory on a read-only tmpfs mount (chmod does not stop root, who runs these tests).

    Not root: skipped, saying why (failed under CI). Root but the mount fails: failed.
    """
    path = tmp_path / "read-only"
    path.mkdir()
    if os.geteuid() != 0:
        reason = "a read-only TIMBER_HOME needs a read-only mount, and mounting needs root"
        if os.environ.get("CI"):
            pytest.fail(f"{reason}: run the tests as root under CI")
        pytest.skip(reason)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=1M", "tmpfs", str(path)],
                             capture_output=True, text=True, timeout=30, check=False)
    if mounted.returncode != 0:
        pytest.fail(f"cannot mount a read-only tmpfs at {path}: {mounted.stderr.strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", str(path)], capture_output=True, timeout=30, check=True)
