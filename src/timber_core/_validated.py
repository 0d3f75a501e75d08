"""Model-file sets that validated clean, so ``timber apps list`` need not validate them again.

Validating the model files takes PyYAML and the schema validator, about 20 ms of imports on
every ``timber apps list``, for files that rarely change. After a clean validation (no app
left out, no problem in the kernel's own models) the fingerprint of what was validated is kept
in ``$TIMBER_HOME/cache/validated-models``; a later run with the same fingerprint skips the
validation. The fingerprint covers timber-core's version and, for every loaded app, its name
and each model file's path, size and modification time in nanoseconds, so a changed, added or
removed file (or app) validates again. A set with problems is never kept: it is validated, and
reported, on every run.

It is only a cache: it is written only into an existing ``TIMBER_HOME`` (listing apps never
creates one), atomically (several processes may write it at once), and any error reading or
writing it is ignored. ``initialize_timber`` and ``timber check`` always validate.
"""

from __future__ import annotations

import os
import zlib
from collections.abc import Iterable

__all__ = ["fingerprint", "known", "remember"]

_FILE = os.path.join("cache", "validated-models")
#: Fingerprints kept: a few environments (virtualenvs, checkouts) may share one TIMBER_HOME.
_KEEP = 16


def fingerprint(version: str, apps: Iterable[tuple[str, Iterable[str]]]) -> str:
    """Return the fingerprint of ``apps`` (name, model directories) under timber-core ``version``."""
    parts = [version]
    for name, dirs in apps:
        parts.append(f"app\0{name}")
        for directory in dirs:
            try:
                entries = [e for e in os.scandir(directory) if e.name.endswith((".yaml", ".yml"))]
            except OSError:
                entries = []
            parts.append(f"dir\0{os.path.abspath(directory)}")
            for entry in sorted(entries, key=lambda e: e.name):
                try:
                    st = entry.stat()
                except OSError:
                    continue
                parts.append(f"{entry.name}\0{st.st_size}\0{st.st_mtime_ns}")
    # Two checksums of the whole text (zlib is built in; hashlib costs ~2 ms of import here).
    text = "\n".join(parts).encode()
    return f"{zlib.crc32(text):08x}{zlib.adler32(text):08x}{len(text):x}"


def _read(home: str) -> list[str]:
    try:
        with open(os.path.join(home, _FILE), encoding="ascii") as f:
            return f.read().split()
    except (OSError, ValueError):
        return []


def known(home: str, print_: str) -> bool:
    """Whether ``print_`` validated clean before (under TIMBER_HOME ``home``)."""
    return print_ in _read(home)


def remember(home: str, print_: str) -> None:
    """Record that ``print_`` validated clean; do nothing when ``home`` does not exist or cannot be written."""
    if not os.path.isdir(home):
        return
    kept = [p for p in _read(home) if p != print_][-(_KEEP - 1):] + [print_]
    path = os.path.join(home, _FILE)
    tmp = f"{path}.{os.getpid()}.tmp"
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(tmp, "w", encoding="ascii") as f:
            f.write("\n".join(kept) + "\n")
        os.replace(tmp, path)  # atomic: a reader sees the old list or the new one
    except OSError:
        try:
            os.unlink(tmp)
        except OSError:
            pass
