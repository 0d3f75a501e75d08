"""Paths and the CLI runner for the kernel's tests (imported by name; conftest holds the fixtures)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures"
PLUGIN_FIXTURES = FIXTURES / "plugins"
BAD_YAML = FIXTURES / "yaml" / "bad"
GOOD_YAML = FIXTURES / "yaml" / "good"
KERNEL_MODELS = ROOT / "src" / "timber_core" / "models"
CANOPY_MODELS = ROOT / "plugins" / "canopy" / "src" / "canopy" / "models"
GROVE_MODELS = ROOT / "plugins" / "grove" / "src" / "grove" / "models"
SOURCE_PATHS = [ROOT / "src", ROOT / "plugins" / "canopy" / "src", ROOT / "plugins" / "grove" / "src"]

#: Variables of the caller's shell that would change what a test sees: removed in tests and children.
APP_VARIABLES = ("TIMBER_APPS", "TIMBER_DISABLE_APPS", "DATABASE_URL", "TIMBER_FIXTURE_MODEL_DIR", "TIMBER_DEBUG",
                 "TIMBER_CONNECT_TIMEOUT")


def run_timber(*args: str, fixtures: tuple[str, ...] = (), env: dict[str, str] | None = None,
               code: str | None = None, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run the ``timber`` CLI (or ``code``) in a fresh interpreter with fixture plugins on PYTHONPATH.

    A child still running after ``timeout`` seconds is killed and the test fails (TimeoutExpired).
    """
    paths = [str(PLUGIN_FIXTURES / f) for f in fixtures] + [str(p) for p in SOURCE_PATHS]
    full_env = {k: v for k, v in os.environ.items() if k not in APP_VARIABLES}
    full_env["PYTHONPATH"] = os.pathsep.join(paths)
    full_env.update(env or {})
    script = code or "import sys; sys.argv[0] = 'timber'; from timber_core.cli import main; main()"
    return subprocess.run([sys.executable, "-c", script, *args], capture_output=True, text=True,
                          env=full_env, timeout=timeout, check=False)
