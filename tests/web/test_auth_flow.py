"""One login across apps: register, log in, use the token on both apps; the error shapes."""

from __future__ import annotations

from typing import Any

from .conftest import PASSWORD, Apps, run


def test_register_answers_201_with_the_new_users_id(apps: Apps) -> None:
    response = run(apps.register("ann@example.com", "ann"))
    assert response.status_code == 201
    body = response.json()
    assert set(body) == {"id", "email", "username"} and len(body["id"]) == 36
    assert (body["email"], body["username"]) == ("ann@example.com", "ann")


def test_registering_a_taken_email_is_409(apps: Apps) -> None:
    run(apps.register("ann@example.com", "ann"))
    response = run(apps.register("ann@example.com", "ann2", app="grove"))
    assert response.status_code == 409
    assert response.json() == {"error": {"type": "ConflictError",
                                         "message": "create_user: email 'ann@example.com' is already taken"}}


def test_a_malformed_email_is_422(apps: Apps) -> None:
    response = run(apps.register("not-an-email", "ann"))
    assert response.status_code == 422
    assert response.json() == {"error": {"type": "ValidationError",
                                         "message": "create_user: email='not-an-email' is not an email address"}}


def test_a_missing_field_is_422_naming_it(apps: Apps) -> None:
    async def go() -> Any:
        async with apps.client("canopy") as c:
            return await c.post("/auth/register", json={"email": "ann@example.com", "password": PASSWORD})
    response = run(go())
    assert response.status_code == 422
    assert response.json() == {"error": {"type": "ValidationError", "message": "body.username: Field required"}}


def test_login_answers_a_bearer_token(apps: Apps) -> None:
    run(apps.register("ann@example.com", "ann"))
    response = run(apps.login("ann@example.com"))
    assert response.status_code == 200
    body = response.json()
    assert body["token_type"] == "bearer" and body["access_token"].count(".") == 2


def test_a_wrong_password_is_401(apps: Apps) -> None:
    run(apps.register("ann@example.com", "ann"))
    response = run(apps.login("ann@example.com", password="wrong password!"))
    assert response.status_code == 401
    assert response.json() == {"error": {"type": "AuthenticationError", "message": "wrong email or password"}}


def test_an_unknown_email_is_401_like_a_wrong_password(apps: Apps) -> None:
    response = run(apps.login("nobody@example.com"))
    assert response.status_code == 401
    assert response.json() == {"error": {"type": "AuthenticationError", "message": "wrong email or password"}}


def test_a_token_from_canopy_is_accepted_by_grove(apps: Apps) -> None:
    token = run(apps.token_for("ann@example.com", "ann"))

    async def go() -> Any:
        async with apps.client("grove", token) as c:
            return await c.get("/sessions")
    response = run(go())
    assert response.status_code == 200
    assert response.json() == {"sessions": []}


def test_sessions_without_a_token_is_401(apps: Apps) -> None:
    async def go() -> Any:
        async with apps.client("canopy") as c:
            return await c.get("/sessions")
    response = run(go())
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.json() == {"error": {"type": "AuthenticationError", "message": (
        "this endpoint needs a user: send 'Authorization: Bearer <access token>' (POST /auth/token)")}}


def test_a_garbage_token_is_401(apps: Apps) -> None:
    async def go() -> Any:
        async with apps.client("canopy", "not.a.token") as c:
            return await c.get("/sessions")
    response = run(go())
    assert response.status_code == 401
    assert response.json() == {"error": {"type": "AuthenticationError",
                                         "message": "malformed access token: log in again (POST /auth/token)"}}

