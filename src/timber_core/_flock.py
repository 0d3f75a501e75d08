"""Exclusive OS file locks across processes (``fcntl.flock``), released when the holder dies.

One mechanism for every lock Timber keeps beside its files: the migration lock, the
vector drain's lock beside a SQLite database and the Edge store's owner lock. POSIX only.
"""

from __future__ import annotations

import fcntl
import os
import time
from typing import Final

__all__ = ["open_lock_file", "acquire"]

#: How often a waiter tries the lock again.
POLL_S: Final = 0.02


def open_lock_file(path: str | os.PathLike[str]) -> int:
    """Open (creating) the lock file ``path``; return its descriptor. Closing it releases the lock."""
    return os.open(path, os.O_RDWR | os.O_CREAT, 0o644)


def acquire(fd: int, deadline: float | None) -> bool:
    """Take the exclusive lock on ``fd``; True once held.

    ``deadline`` (``time.monotonic()`` value): poll until then and return False if the
    lock is still held elsewhere; a deadline already past makes one attempt. None: block.
    """
    if deadline is None:
        fcntl.flock(fd, fcntl.LOCK_EX)
        return True
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            if time.monotonic() >= deadline:
                return False
        time.sleep(POLL_S)
