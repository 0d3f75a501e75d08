"""The in-process backend: a bounded LRU of bytes, thread-safe, invalidated across processes by a file.

Each process keeps its own entries. So that a write in one process is not hidden by another
process's entries, every invalidation also appends one byte to a stamp file (under
``TIMBER_HOME``); a process that sees the file's size or inode change drops all its entries.
That is coarse (any invalidation anywhere empties every other process's cache) but costs
one ``stat`` per read and keeps several processes on one machine correct, which Timber's
embedded defaults must be.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import OrderedDict
from typing import Any

__all__ = ["MemoryBackend"]

log = logging.getLogger("timber.cache")

#: Deletions remembered so that a fill started before one does not store what it read.
_REMEMBERED = 4096
#: The stamp file is started again past this size (one byte per invalidation).
_STAMP_LIMIT = 1 << 20


class MemoryBackend:
    """Entries ``key -> {field: bytes}`` with a deadline each, at most ``max_entries`` keys (LRU)."""

    name = "memory"

    def __init__(self, max_entries: int, stamp_path: str | None = None) -> None:
        self.max_entries = max_entries
        self._lock = threading.Lock()
        self._data: OrderedDict[str, tuple[float, dict[str, bytes]]] = OrderedDict()
        self._epoch = 0
        self._deleted: OrderedDict[str, int] = OrderedDict()
        #: Fills whose token is older than this are refused (deletions forgotten, or everything dropped).
        self._floor = 0
        self._stamp_path = stamp_path
        self._seen: tuple[int, int] | None = self._stamp() if stamp_path else None

    # -- the stamp file shared by the processes of one TIMBER_HOME
    def _stamp(self) -> tuple[int, int] | None:
        try:
            st = os.stat(self._stamp_path)  # type: ignore[arg-type]
        except FileNotFoundError:
            return None
        except OSError:
            return None
        return (st.st_ino, st.st_size)

    def _bump(self) -> None:
        """Tell the other processes to drop their entries; adopt the new stamp ourselves."""
        if self._stamp_path is None:
            return
        try:
            try:
                fd = os.open(self._stamp_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            except FileNotFoundError:  # TIMBER_HOME not made yet (e.g. on PostgreSQL)
                os.makedirs(os.path.dirname(self._stamp_path) or ".", exist_ok=True)
                fd = os.open(self._stamp_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(fd, b".")
                st = os.fstat(fd)
            finally:
                os.close(fd)
            if st.st_size > _STAMP_LIMIT:
                tmp = f"{self._stamp_path}.{os.getpid()}.tmp"
                with open(tmp, "wb") as f:
                    f.write(b".")
                os.replace(tmp, self._stamp_path)
                st = os.stat(self._stamp_path)
        except OSError as exc:
            log.warning("timber: cache stamp %s cannot be written (%s); other processes may serve "
                        "entries older than this write until their TTL", self._stamp_path, exc)
            return
        # Ours is the newest write only if nobody else appended since we last looked.
        with self._lock:
            before = None if st.st_size == 1 else (st.st_ino, st.st_size - 1)
            if before == self._seen:
                self._seen = (st.st_ino, st.st_size)

    def _check_stamp(self) -> tuple[int, int] | None:
        """Drop every entry if another process invalidated since we last looked (lock held)."""
        if self._stamp_path is None:
            return None
        stamp = self._stamp()
        if stamp != self._seen:
            self._seen = stamp
            self._data.clear()
            self._deleted.clear()
            self._epoch += 1
            self._floor = self._epoch
        return stamp

    # -- the backend API
    def get(self, key: str, field: str, namespace: str = "", lock_seconds: float = 0) -> tuple[bytes | None, Any, bool]:
        """Return (the bytes stored under ``key``/``field`` or None, a token for :meth:`set`, True).

        The last item says the caller may load: always, in one process (the service's flights
        make concurrent misses wait for one load).
        """
        with self._lock:
            stamp = self._check_stamp()
            token = (self._epoch, stamp)
            entry = self._data.get(key)
            if entry is None:
                return None, token, True
            if entry[0] <= time.monotonic():
                del self._data[key]
                return None, token, True
            self._data.move_to_end(key)
            return entry[1].get(field), token, True

    def set(self, key: str, field: str, data: bytes, ttl: float, token: Any, namespace: str = "",
            user_mark: str = "") -> bool:
        """Store unless ``key`` was invalidated since ``token`` was given; return whether stored."""
        epoch, stamp = token
        with self._lock:
            if self._check_stamp() != stamp or epoch < self._floor or self._deleted.get(key, -1) >= epoch:
                return False
            entry = self._data.get(key)
            if entry is None or entry[0] <= time.monotonic():
                entry = (time.monotonic() + ttl, {})
                self._data[key] = entry
            entry[1][field] = data
            self._data.move_to_end(key)
            while len(self._data) > self.max_entries:
                self._data.popitem(last=False)
            return True

    def delete(self, keys: list[str]) -> None:
        """Drop ``keys`` here and (through the stamp) in every other process."""
        with self._lock:
            # Tokens given before this point carry an epoch <= the one recorded: their fills are refused.
            for key in keys:
                self._data.pop(key, None)
                self._deleted[key] = self._epoch
                self._deleted.move_to_end(key)
            self._epoch += 1
            while len(self._deleted) > _REMEMBERED:
                _key, epoch = self._deleted.popitem(last=False)
                self._floor = max(self._floor, epoch + 1)
        self._bump()

    def delete_prefix(self, prefix: str) -> None:
        """Drop every key starting with ``prefix``; refuse every fill started before."""
        with self._lock:
            for key in [k for k in self._data if k.startswith(prefix)]:
                del self._data[key]
            self._epoch += 1
            self._floor = self._epoch
        self._bump()

    def release(self, key: str, field: str, token: Any) -> None:
        """Nothing to give back (see :meth:`get`)."""

    def available(self) -> bool:
        """Always: the process's own memory."""
        return True

    def size(self) -> int:
        """Return the number of keys held."""
        return len(self._data)

    def close(self) -> None:
        """Forget every entry."""
        with self._lock:
            self._data.clear()
