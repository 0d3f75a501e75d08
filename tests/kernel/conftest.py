"""Shared helpers for the kernel's tests: fixture plugins, the CLI in a subprocess, a clean kernel."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures"
PLUGIN_FIXTURES = FIXTURES / "plugins"
BAD_YAML = FIXTURES / "yaml" / "bad"
GOOD_YAML = FIXTURES / "yaml" / "good"
KERNEL_MODELS = ROOT / "src" / "timber_core" / "models"
CANOPY_MODELS = ROOT / "plugins" / "canopy" / "src" / "canopy" / "models"
GROVE_MODELS = ROOT / "plugins" / "grove" / "src" / "grove" / "models"
SOURCE_PATHS = [ROOT / "src", ROOT / "plugins" / "canopy" / "src", ROOT / "plugins" / "grove" / "src"]

_APP_VARIABLES = ("TIMBER_APPS", "TIMBER_DISABLE_APPS", "DATABASE_URL", "TIMBER_FIXTURE_MODEL_DIR")


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Start each test without app selection or database variables from the caller's shell."""
    for name in _APP_VARIABLES:
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


def run_timber(*args: str, fixtures: tuple[str, ...] = (), env: dict[str, str] | None = None,
               code: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run the ``timber`` CLI (or ``code``) in a fresh interpreter with fixture plugins on PYTHONPATH."""
    paths = [str(PLUGIN_FIXTURES / f) for f in fixtures] + [str(p) for p in SOURCE_PATHS]
    full_env = {k: v for k, v in os.environ.items() if k not in _APP_VARIABLES}
    full_env["PYTHONPATH"] = os.pathsep.join(paths)
    full_env.update(env or {})
    script = code or "import sys; sys.argv[0] = 'timber'; from timber_core.cli import main; main()"
    return subprocess.run([sys.executable, "-c", script, *args], capture_output=True, text=True,
                          env=full_env, timeout=120, check=False)


@pytest.fixture
def fresh_kernel() -> Iterator[None]:
    """Forget the process's kernel after the test, closing its connections."""
    yield
    from timber_core import context, kernel

    if kernel._kernel is not None:
        kernel._kernel.close()
    kernel._kernel = None
    context._set_default(None, None)
