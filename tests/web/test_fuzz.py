"""Schemathesis fuzzes each server's OpenAPI schema (Canopy, Grove, the platform), in-process: no 5xx.

Every operation of ``/openapi.json`` (the kernel's endpoints and the app's own routes) is called
with generated input, valid (schemathesis' positive mode) and invalid (negative mode), and a
valid bearer token, on SQLite and on PostgreSQL, and checked with schemathesis'
``not_a_server_error``: malformed input must be a 4xx (422 from the request models or the
services), never a 500. Hypothesis drives each operation directly (schemathesis' pytest
loader does not run on pytest 9); the examples per operation are bounded (:data:`EXAMPLES`)
to keep each app's run well under a minute, and no example database is kept (nothing is
written into the working tree).
"""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error

from .conftest import Apps, run

EXAMPLES = 12


def _server_errors(operation: Any, headers: dict[str, str]) -> list[str]:
    """Call ``operation`` with generated cases; return each 5xx found, as ``"METHOD path: status body"``."""
    found: list[str] = []
    strategy = st.one_of(operation.as_strategy(GenerationMode.POSITIVE), operation.as_strategy(GenerationMode.NEGATIVE))

    @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    @given(case=strategy)
    def fuzz(case: Any) -> None:
        try:
            case.call_and_validate(headers=headers, checks=[not_a_server_error])
        except AssertionError as exc:  # schemathesis' failed check: keep it, go on to the next case
            found.append(f"{operation.method.upper()} {operation.path}: {str(exc)[:300]}")

    fuzz()
    return found


@pytest.mark.parametrize("server", ["canopy", "grove", "platform"])
def test_no_generated_input_makes_a_server_error(apps: Apps, server: str) -> None:
    token = run(apps.token_for("fuzz@example.com", "fuzz"))
    schema = schemathesis.openapi.from_asgi("/openapi.json", apps.asgi[server])
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 5, [o.path for o in operations]
    errors = [e for op in operations for e in _server_errors(op, {"Authorization": f"Bearer {token}"})]
    assert errors == []
