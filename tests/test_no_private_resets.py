"""No test resets the kernel through its private names: ``timber_core.shutdown()`` is the one way.

A test reaching into ``kernel._kernel`` or ``TimberConfig._cache`` breaks when the kernel's
internals change, and teaches app authors a reset that is not the API (docs/testing.md).
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# The kernel's process-level state, by the private names that hold or reset it.
PRIVATE_STATE = re.compile(
    r"\._kernel\b|\b_cache\.clear\(|TimberConfig\._cache\b|\b_set_default\b|\b_default_app\b"
    r"|\b_discovered\b|\b_reset_discovery\b|\bcontext\._validator\b"
    r"""|setattr\(.*["'](?:_kernel|_cache|_default_app|_validator|_discovered)["']"""
)


def test_no_test_resets_the_kernel_through_a_private_name() -> None:
    files = sorted([*(ROOT / "tests").rglob("*.py"), *ROOT.glob("plugins/*/tests/**/*.py")])
    assert len(files) > 50  # the globs found the suites
    found = [
        f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
        for path in files
        if path != Path(__file__).resolve()
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if PRIVATE_STATE.search(line)
    ]
    assert found == [], "use timber_core.shutdown() (docs/testing.md) instead of:\n" + "\n".join(found)
