"""The WSGI middleware under Flask: each request in its app's and user's context, errors as JSON."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from flask import Flask

import timber_core
from timber_core import auth
from timber_core.context import current_app
from timber_core.errors import IsolationError
from timber_core.services.persistence import session_service
from timber_core.web.wsgi import init_flask, require_user

USERS = 10


@pytest.fixture
def flask_app(tmp_path: Any) -> Iterator[tuple[Any, Flask]]:
    kernel = timber_core.initialize_timber(app_name=None, database_url=f"sqlite:///{tmp_path}/timber.db",
                                           create_tables=True)
    app = Flask("grove_web")

    @app.get("/me")
    def me() -> Any:
        user = require_user()
        return {"app": current_app(), "user": user,
                "sessions": [r.session_type for r in session_service.get_user_sessions(user)]}

    @app.get("/forbidden")
    def forbidden() -> Any:
        raise IsolationError("app 'grove' may not read Canopy's orders")

    init_flask(app, "grove")
    yield kernel, app
    timber_core.shutdown()


def _token(kernel: Any, n: int) -> tuple[str, str]:
    uid = auth.register(kernel, f"u{n}@example.com", f"u{n}", "correct horse battery")
    with timber_core.app_context("grove"), timber_core.user_context(uid):
        session_service.create_session(uid, "research", {"owner": f"u{n}"})
    return uid, auth.issue_token(auth.signing_keys(kernel), uid, 60)


def test_a_request_runs_as_the_app_and_the_tokens_user(flask_app: tuple[Any, Flask]) -> None:
    kernel, app = flask_app
    uid, token = _token(kernel, 0)
    response = app.test_client().get("/me", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200
    assert response.get_json() == {"app": "grove", "user": uid, "sessions": ["research"]}


def test_no_token_is_401_in_the_json_shape(flask_app: tuple[Any, Flask]) -> None:
    response = flask_app[1].test_client().get("/me")
    assert response.status_code == 401
    assert response.get_json() == {"error": {"type": "AuthenticationError", "message": (
        "this endpoint needs a user: send 'Authorization: Bearer <access token>' (POST /auth/token)")}}


def test_an_invalid_token_is_401_before_the_app_runs(flask_app: tuple[Any, Flask]) -> None:
    response = flask_app[1].test_client().get("/me", headers={"Authorization": "Bearer x.y.z"})
    assert response.status_code == 401
    assert response.get_json() == {"error": {"type": "AuthenticationError",
                                             "message": "malformed access token: log in again (POST /auth/token)"}}


def test_an_isolation_error_is_403(flask_app: tuple[Any, Flask]) -> None:
    response = flask_app[1].test_client().get("/forbidden")
    assert response.status_code == 403
    assert response.get_json() == {"error": {"type": "IsolationError",
                                             "message": "app 'grove' may not read Canopy's orders"}}


def test_an_unknown_path_is_404_in_the_json_shape(flask_app: tuple[Any, Flask]) -> None:
    response = flask_app[1].test_client().get("/nowhere")
    assert response.status_code == 404
    assert response.get_json()["error"]["type"] == "NotFoundError"


def test_threads_reused_across_requests_never_carry_another_users_context(flask_app: tuple[Any, Flask]) -> None:
    kernel, app = flask_app
    tokens = {f"u{n}": _token(kernel, n) for n in range(USERS)}

    def one(n: int) -> tuple[str, int, Any]:
        name = f"u{n % USERS}"
        headers = {"Authorization": f"Bearer {tokens[name][1]}"} if n % 3 else {}
        response = app.test_client().get("/me", headers=headers)
        return name if n % 3 else "", response.status_code, response.get_json()

    with ThreadPoolExecutor(max_workers=8) as pool:  # 8 threads, 120 requests: each thread serves many
        results = list(pool.map(one, range(120)))
    for name, status, body in results:
        if not name:
            assert status == 401  # no token: no user, whatever the thread served before
        else:
            assert (status, body["user"], body["sessions"]) == (200, tokens[name][0], ["research"])
