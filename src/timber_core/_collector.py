"""The cyclic garbage collector around start-up: paused while the kernel is built, the result frozen.

Building a few hundred mapped classes allocates hundreds of thousands of long-lived container
objects; the collector's automatic full collections traverse all of them again and again (at
500 models about a third of start-up CPU), a full collection afterwards pauses for about half
a second, and the interpreter's final collections at exit cost seconds (docs/performance.md).
None of it frees much: about 2 % of what start-up allocates is garbage.

So start-up runs with the collector disabled (:func:`paused`) and, once the kernel is
published, the process's heap is moved to the permanent generation (:func:`freeze`), which
no later collection, nor the one at interpreter exit, traverses. The start-up's own cyclic
garbage (a few MB at 500 models) is frozen with it.

Only the first start-up of a process freezes. A process that initializes again (tests, a
re-initialization) replaces kernels whose objects must stay collectable: :func:`release`
(called by ``shutdown()``) unfreezes, and later start-ups only pause the collector.
``gc.unfreeze()`` has no scope: what the application itself froze before is unfrozen too.

A command-line process that never builds a kernel still pays the interpreter's final collection,
which traverses every module and object left (``timber apps list`` with 50 apps: about 15 ms of
its 120): :func:`skip_exit_collection` freezes the heap when the process exits.
"""

from __future__ import annotations

import atexit
import gc
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["paused", "freeze", "release", "skip_exit_collection"]

_froze_once = False
_exit_registered = False


@contextmanager
def paused() -> Iterator[None]:
    """Run the block with automatic collection disabled; enable it again after, also when the block raises.

    A caller that had disabled the collector keeps it disabled. The thresholds are not touched.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def freeze() -> None:
    """Move every object tracked so far to the permanent generation, on the process's first start-up only.

    Call it inside :func:`paused`: once the collector is enabled again, the next allocation
    would run a young collection over everything allocated while it was paused.
    """
    global _froze_once
    if _froze_once:
        return
    _froze_once = True
    gc.freeze()


def release() -> None:
    """Unfreeze what :func:`freeze` froze, so a replaced kernel's objects can be collected."""
    if _froze_once:
        gc.unfreeze()


def skip_exit_collection() -> None:
    """Freeze the heap at interpreter exit, before the final collection would traverse it (once per process).

    Only for a process that is a command: what is still alive at exit is freed by the operating
    system either way; objects in reference cycles then have no ``__del__`` run at exit, which
    Python never promised.
    """
    global _exit_registered
    if not _exit_registered:
        _exit_registered = True
        atexit.register(gc.freeze)
