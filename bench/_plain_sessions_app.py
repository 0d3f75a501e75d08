"""The baseline of bench_web.py: the same ``GET /sessions`` with no Timber middleware.

A FastAPI app that verifies the same bearer token (PyJWT, HS256, the first key of
``TIMBER_SECRET_KEYS``) and reads the user's Canopy sessions with one plain SQLAlchemy Core
query on ``DATABASE_URL``: no app or user context, no isolation, no services. It answers the
same fields as Timber's ``GET /sessions``.
"""

from __future__ import annotations

import os
from typing import Any

import jwt
from fastapi import FastAPI, Header, HTTPException
from sqlalchemy import MetaData, Table, create_engine, select

_KEY = os.environ["TIMBER_SECRET_KEYS"].split(",")[0].strip()
_engine = create_engine(os.environ["DATABASE_URL"])
_sessions = Table("sessions", MetaData(), autoload_with=_engine)
app = FastAPI()


@app.get("/sessions")
def list_sessions(authorization: str = Header(default="")) -> dict[str, Any]:
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise HTTPException(401, "no token")
    try:
        user_id = jwt.decode(token, _KEY, algorithms=["HS256"], options={"require": ["sub", "exp"]})["sub"]
    except jwt.InvalidTokenError:
        raise HTTPException(401, "bad token") from None
    stmt = (select(_sessions).where(_sessions.c.user_id == user_id, _sessions.c.app_name == "canopy")
            .order_by(_sessions.c.created_at.desc()))
    with _engine.connect() as conn:
        rows = conn.execute(stmt).all()
    # The same answer as the kernel's GET /sessions (timber_core.web.routes), so both servers do
    # the same encoding work and the ratio is Timber's overhead alone.
    return {"sessions": [{"id": r.id, "session_type": r.session_type, "app_name": r.app_name, "status": r.status,
                          "metadata": r._mapping["metadata"],
                          "created_at": r.created_at.isoformat() if r.created_at else None,
                          "ended_at": r.ended_at.isoformat() if r.ended_at else None} for r in rows]}
