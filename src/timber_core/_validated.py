"""Model-file sets that validated clean, so ``timber apps list`` need not validate them again.

Validating the model files takes PyYAML and the schema validator, about 20 ms of imports on
every ``timber apps list``, for files that rarely change. After a clean validation (no app
left out, no problem in the kernel's own models) the fingerprint of what was validated is kept
in ``$TIMBER_HOME/cache/validated-models``; a later run with the same fingerprint skips the
validation. The fingerprint covers timber-core's version and, for every loaded app, its name
and each model file's path, size and modification time in nanoseconds, so a changed, added or
removed file (or app) validates again. A set with problems is never kept: it is validated, and
reported, on every run.

Each record keeps, beside the fingerprint, the model names of every app it covers (in file
order), so an unchanged set is listed without reading its model files at all.

It is only a cache: it is written only into an existing ``TIMBER_HOME`` (listing apps never
creates one), atomically (several processes may write it at once), and any error reading or
writing it is ignored. ``initialize_timber`` and ``timber check`` always validate.
"""

from __future__ import annotations

import os
import re
import zlib

from . import _home_cache
from collections.abc import Iterable

__all__ = ["fingerprint", "known", "remember"]

_FILE = "validated-models"
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


def _read(home: str) -> dict[str, str]:
    """The records of ``home``: fingerprint -> its model names, as written (``<fingerprint> <names>`` a line)."""
    try:
        with open(_home_cache.path(home, _FILE), encoding="utf-8") as f:
            lines = f.read().splitlines()
    except (OSError, ValueError):
        return {}
    records = {}
    for line in lines:
        print_, _, names = line.partition(" ")
        if names:  # a line without names (written before they were kept) is not a record
            records[print_] = names
    return records


#: A record's names: ``app=Model,Model;app=`` (app and model names are identifiers; not JSON, whose
#: import would cost ``timber apps list`` about 3 ms).
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_NAMES = re.compile(r"[A-Za-z_][A-Za-z0-9_]*=(?:[A-Za-z_][A-Za-z0-9_]*(?:,[A-Za-z_][A-Za-z0-9_]*)*)?")


def known(home: str, print_: str) -> dict[str, list[str]] | None:
    """The model names by app recorded with ``print_`` (under TIMBER_HOME ``home``), None when it is unknown."""
    text = _read(home).get(print_)
    if text is None:
        return None
    found: dict[str, list[str]] = {}
    for part in text.split(";"):
        if not _NAMES.fullmatch(part):
            return None  # not a record this code wrote: validate again
        app, _, names = part.partition("=")
        found[app] = names.split(",") if names else []
    return found


def remember(home: str, print_: str, names: dict[str, list[str]]) -> None:
    """Record that ``print_`` validated clean, with each app's model ``names``.

    Do nothing when ``home`` does not exist or cannot be written.
    """
    if not all(_NAME.fullmatch(n) for app, models in names.items() for n in (app, *models)):
        return  # a name this record cannot hold: such a set is simply validated every time
    text = ";".join(f"{app}={','.join(models)}" for app, models in names.items())
    records = _read(home)
    records.pop(print_, None)
    kept = list(records.items())[-(_KEEP - 1):] + [(print_, text)]
    _home_cache.write(home, _FILE, "".join(f"{p} {n}\n" for p, n in kept).encode())
