"""Property: random interleavings of create/read/update by random apps and users never show an app
a row it does not own, and never lose a write (SQLite always; PostgreSQL when configured)."""

from __future__ import annotations

import uuid
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from timber_core import app_context, platform_context
from timber_core.errors import IsolationError
from timber_core.services.persistence import session_service, user_service

OWNED = {"canopy": {"trading", "paper_trading"}, "grove": {"research", "analysis"}}
TYPES = sorted(OWNED["canopy"] | OWNED["grove"])
APPS = sorted(OWNED)

ops = st.lists(
    st.one_of(
        st.tuples(st.just("create"), st.sampled_from(APPS), st.integers(0, 2), st.sampled_from(TYPES)),
        st.tuples(st.just("read"), st.sampled_from(APPS), st.integers(0, 2), st.none()),
        st.tuples(st.just("update"), st.sampled_from(APPS), st.integers(0, 50), st.sampled_from(["paused", "done"])),
    ),
    min_size=1,
    max_size=25,
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=ops)
def test_random_interleavings_keep_apps_apart_and_lose_nothing(kernel: Any, steps: list[tuple[Any, ...]]) -> None:
    tag = uuid.uuid4().hex[:10]
    users = [user_service.create_user(f"{tag}-{i}@example.com", f"{tag}_{i}") for i in range(3)]
    model: dict[str, dict[str, str]] = {}  # session id -> {user, type, status}
    for op, app, n, arg in steps:
        with app_context(app):
            if op == "create":
                user = users[n]
                if arg in OWNED[app]:
                    sid = session_service.create_session(user, arg)
                    model[sid] = {"user": user, "type": arg, "status": "active"}
                else:
                    try:
                        session_service.create_session(user, arg)
                    except IsolationError:
                        pass
                    else:
                        raise AssertionError(f"{app} created a {arg} session")
            elif op == "read":
                user = users[n]
                seen = {s.id: (s.user_id, s.session_type, s.status) for s in session_service.get_user_sessions(user)}
                expected = {sid: (r["user"], r["type"], r["status"]) for sid, r in model.items()
                            if r["user"] == user and r["type"] in OWNED[app]}
                assert seen == expected
            else:
                if not model:
                    continue
                sid = sorted(model)[n % len(model)]
                changed = session_service.update_session(sid, status=arg, user_id=model[sid]["user"])
                assert changed == (model[sid]["type"] in OWNED[app])
                if changed:
                    model[sid]["status"] = arg
    with platform_context():
        everything = {s.id: (s.user_id, s.session_type, s.status)
                      for u in users for s in session_service.get_user_sessions(u)}
    assert everything == {sid: (r["user"], r["type"], r["status"]) for sid, r in model.items()}
