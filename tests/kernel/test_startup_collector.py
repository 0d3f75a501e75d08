"""The garbage collector around start-up (issue 14): paused during the build, the first kernel frozen."""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import timber_core
from timber_core.errors import NotFoundError
from timber_core.kernel import Kernel

#: Run in a fresh interpreter: only a process's first start-up freezes, and this one has had others.
_FRESH = """
import gc, json, sys
import timber_core
url = sys.argv[1]
out = {"before": gc.get_freeze_count()}
collections = []
gc.collect()  # the counts start at zero: a collection due anyway does not fall into the call
gc.callbacks.append(lambda phase, info: phase == "start" and collections.append(info["generation"]))
timber_core.initialize_timber("grove", database_url=url)
gc.callbacks.clear()
out["collections"] = collections
out["after_first"] = gc.get_freeze_count()
out["enabled"] = gc.isenabled()
timber_core.shutdown()
out["after_shutdown"] = gc.get_freeze_count()
timber_core.initialize_timber("grove", database_url=url)
out["after_second"] = gc.get_freeze_count()
timber_core.shutdown()
print(json.dumps(out))
"""


def _fresh_process(tmp_path: Path) -> dict[str, Any]:
    env = {**os.environ, "TIMBER_HOME": str(tmp_path / "home")}
    result = subprocess.run([sys.executable, "-c", _FRESH, f"sqlite:///{tmp_path}/fresh.db"],
                            capture_output=True, text=True, env=env, check=False)
    assert (result.returncode, result.stderr) == (0, "")
    return json.loads(result.stdout)  # type: ignore[no-any-return]


def test_the_first_start_up_of_a_process_freezes_the_heap_and_enables_the_collector(tmp_path: Path) -> None:
    out = _fresh_process(tmp_path)
    assert (out["before"], out["after_first"] > 10_000, out["enabled"]) == (0, True, True)


def test_shutdown_unfreezes_and_a_later_start_up_freezes_nothing(tmp_path: Path) -> None:
    out = _fresh_process(tmp_path)
    assert (out["after_shutdown"], out["after_second"]) == (0, 0)


def test_no_collection_runs_during_the_first_start_up(tmp_path: Path) -> None:
    assert _fresh_process(tmp_path)["collections"] == []


def test_the_collector_is_enabled_again_when_start_up_raises(tmp_path: Path) -> None:
    assert gc.isenabled()
    with pytest.raises(NotFoundError):
        timber_core.initialize_timber("no-such-app", database_url=f"sqlite:///{tmp_path}/a.db")
    assert gc.isenabled()


def test_a_collector_disabled_by_the_caller_stays_disabled(timber_kernel_factory: Callable[..., Kernel]) -> None:
    gc.disable()
    try:
        timber_kernel_factory("grove")
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_start_up_leaves_the_thresholds_as_they_were(timber_kernel_factory: Callable[..., Kernel]) -> None:
    before = gc.get_threshold()
    timber_kernel_factory("grove")
    assert gc.get_threshold() == before


#: A command run in a fresh interpreter, then the exit handlers it registered, then what is frozen.
_COMMAND_THEN_EXIT = """
import atexit, gc, sys
from timber_core.cli import main
sys.argv = ["timber", "apps", "list"]
try:
    main()
except SystemExit:
    pass
before = gc.get_freeze_count()
atexit._run_exitfuncs()
print(before, gc.get_freeze_count() > 10_000, file=sys.stderr)
"""


def test_a_cli_command_freezes_the_heap_at_exit_only(tmp_path: Path) -> None:
    env = {**os.environ, "TIMBER_HOME": str(tmp_path / "home")}
    result = subprocess.run([sys.executable, "-c", _COMMAND_THEN_EXIT], capture_output=True, text=True, env=env,
                            check=False)
    assert (result.returncode, result.stderr.splitlines()[-1]) == (0, "0 True")
