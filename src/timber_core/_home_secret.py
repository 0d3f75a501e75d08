"""Secrets the embedded default keeps in ``TIMBER_HOME`` (token keys, encryption keys)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def home_secret(path: Path, make: str) -> str:
    """Return the text of ``path``, creating it first with ``make`` (mode 0600, atomically) if missing.

    Several processes starting at once on one home all return the same text: the first
    link wins and the others read it.
    """
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")  # mkstemp creates it 0600
    try:
        with os.fdopen(fd, "w") as f:
            f.write(make + "\n")
        try:
            os.link(tmp, path)  # fails if another process made it first: theirs is the one kept
        except FileExistsError:
            pass
    finally:
        os.unlink(tmp)
    return path.read_text().strip()
