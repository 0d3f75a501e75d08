"""Module layering: the database layer stands below the migrations that use it."""

from __future__ import annotations

import subprocess
import sys


def test_importing_the_database_layer_imports_no_migration_module() -> None:
    code = (
        "import sys\n"
        "import timber_core.db\n"
        "print(sorted(m for m in sys.modules if m.startswith('timber_core.migrations')))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert (result.returncode, result.stderr, result.stdout) == (0, "", "[]\n")
