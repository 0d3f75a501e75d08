"""A fresh database of either kind, for fixtures parametrized over ``sqlite`` and ``postgresql``."""

from __future__ import annotations

from pathlib import Path

import pytest


def database_url(kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh database of ``kind``: a ``sqlite`` file under ``tmp_path``, or a scratch ``postgresql``
    database (the ``scratch_postgres`` fixture: dropped after the test; a failure under CI, else a skip,
    when the server does not answer)."""
    if kind == "sqlite":
        return f"sqlite:///{tmp_path}/timber.db"
    return str(request.getfixturevalue("scratch_postgres"))
