"""The in-process backend on its own: bounded LRU, TTL, fills refused after an invalidation."""

from __future__ import annotations

import time
from pathlib import Path

from timber_core.cache._memory import MemoryBackend


def test_the_least_recently_used_key_goes_first_past_the_bound() -> None:
    backend = MemoryBackend(2)
    for key in ("a", "b"):
        backend.set(key, "", key.encode(), 60, backend.get(key, "")[1])
    backend.get("a", "")
    backend.set("c", "", b"c", 60, backend.get("c", "")[1])
    assert [backend.get(k, "")[0] for k in ("a", "b", "c")] == [b"a", None, b"c"]


def test_an_entry_past_its_ttl_is_gone() -> None:
    backend = MemoryBackend(10)
    backend.set("a", "", b"a", 0.01, backend.get("a", "")[1])
    time.sleep(0.05)
    assert backend.get("a", "")[0] is None


def test_a_fill_started_before_an_invalidation_is_not_stored() -> None:
    backend = MemoryBackend(10)
    _data, token, _may_load = backend.get("a", "")
    backend.delete(["a"])
    assert backend.set("a", "", b"stale", 60, token) is False
    assert backend.get("a", "")[0] is None


def test_another_processs_invalidation_empties_this_processs_entries(tmp_path: Path) -> None:
    stamp = str(tmp_path / "cache.stamp")
    here, there = MemoryBackend(10, stamp), MemoryBackend(10, stamp)
    here.set("a", "", b"a", 60, here.get("a", "")[1])
    there.delete(["b"])
    assert here.get("a", "")[0] is None


def test_this_processs_own_invalidation_keeps_its_other_entries(tmp_path: Path) -> None:
    stamp = str(tmp_path / "cache.stamp")
    here = MemoryBackend(10, stamp)
    here.delete(["x"])
    here.set("a", "", b"a", 60, here.get("a", "")[1])
    here.delete(["b"])
    assert here.get("a", "")[0] == b"a"


def test_the_stamp_directory_is_made_on_the_first_invalidation(tmp_path: Path) -> None:
    stamp = tmp_path / "home" / "cache.stamp"
    backend = MemoryBackend(10, str(stamp))
    assert not stamp.parent.exists()
    backend.delete(["a"])
    assert stamp.read_bytes() == b"."
