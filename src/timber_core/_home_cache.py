"""Cache files in ``$TIMBER_HOME/cache``: written whole or not at all, never where there is no home.

Several processes share one TIMBER_HOME and may write the same file at once: each writes a
private temporary file and renames it over the target, so a reader sees the old file or the
new one, never a part. A cache is never worth failing for: every error is swallowed.
"""

from __future__ import annotations

import os

__all__ = ["path", "write"]


def path(home: str, name: str) -> str:
    """The path of cache file ``name`` under TIMBER_HOME ``home``."""
    return os.path.join(home, "cache", name)


def write(home: str, name: str, data: bytes) -> bool:
    """Write ``data`` as cache file ``name`` (mode 0600); return whether it was written.

    Nothing is written when ``home`` does not exist (a cache never creates a TIMBER_HOME).
    """
    if not os.path.isdir(home):
        return False
    target = path(home, name)
    tmp = f"{target}.{os.getpid()}.tmp"
    try:
        os.makedirs(os.path.dirname(target), exist_ok=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, target)  # atomic: a reader sees the old file or the new one
        return True
    except OSError:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        return False
