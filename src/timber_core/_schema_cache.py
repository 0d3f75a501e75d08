"""The validated models of an unchanged set of model files, kept so a start-up need not read the YAML again.

Reading and validating the model files is a per-installed-app cost of every start-up (about
4 ms per app of 10 models; docs/performance.md, issue 14 goal 1). After a clean load (no
problem, no app left out) ``initialize_timber`` pickles the loaded :class:`Schema` into
``$TIMBER_HOME/cache/schema-<fingerprint>.pickle``; a later start-up with the same fingerprint
unpickles it instead. The fingerprint is :func:`timber_core._validated.fingerprint` (every
loaded app's name and each model file's path, size and modification time in nanoseconds)
under timber-core's version, the Python version and the size and modification time of the
schema package's own source files, so a changed, added or removed model file, app or
validator loads the YAML again.

It is only a cache, safe for several processes on one TIMBER_HOME: written only into an
existing TIMBER_HOME, atomically (write a private temporary file, then ``os.replace``), mode
0600; any error reading, unpickling or writing it is ignored (the YAML is read then). A
TIMBER_HOME is trusted as the home secret and the embedded database in it are: whoever can
write it can already read every app's data. ``timber check`` never uses it.
"""

from __future__ import annotations

import glob
import os
import pickle
import sys
from collections.abc import Iterable
from typing import Any

from . import __version__, _home_cache, _validated

__all__ = ["key", "load", "store"]

_PREFIX = "schema-"
#: Pickles kept: a few environments (virtualenvs, checkouts) may share one TIMBER_HOME.
_KEEP = 8


def _code_stamp() -> str:
    """The size and modification time of the schema package's sources (the specs' classes and validator)."""
    here = os.path.join(os.path.dirname(os.path.abspath(__file__)), "schema")
    parts = []
    for path in sorted(glob.glob(os.path.join(here, "*.py"))):
        try:
            st = os.stat(path)
        except OSError:
            continue
        parts.append(f"{os.path.basename(path)}:{st.st_size}:{st.st_mtime_ns}")
    return ",".join(parts)


def key(apps: Iterable[tuple[str, Iterable[str]]]) -> str:
    """Return the cache key of ``apps`` (name, model directories), as loaded by this code."""
    version = f"{__version__}\0{sys.version_info[:3]}\0{pickle.HIGHEST_PROTOCOL}\0{_code_stamp()}"
    return _validated.fingerprint(version, apps)


def _name(key_: str) -> str:
    return f"{_PREFIX}{key_}.pickle"


def load(home: str, key_: str) -> Any:
    """Return the Schema kept under ``key_``, or None (none kept, or unreadable)."""
    try:
        with open(_home_cache.path(home, _name(key_)), "rb") as f:
            return pickle.load(f)  # noqa: S301  (TIMBER_HOME is trusted: module docstring)
    except Exception:  # noqa: BLE001  (only a cache: any failure means reading the YAML)
        return None


def store(home: str, key_: str, schema: Any) -> None:
    """Keep ``schema`` under ``key_``; do nothing when ``home`` does not exist or cannot be written."""
    try:
        data = pickle.dumps(schema, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception:  # noqa: BLE001  (only a cache)
        return
    if not _home_cache.write(home, _name(key_), data):
        return
    try:
        kept = sorted(glob.glob(_home_cache.path(home, f"{_PREFIX}*.pickle")), key=os.path.getmtime)
        for old in kept[:-_KEEP]:
            os.unlink(old)
    except OSError:  # another process pruned it first
        pass
