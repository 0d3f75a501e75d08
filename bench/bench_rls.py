"""Row-level security's cost on the services' session calls, PostgreSQL only.

    python bench/bench_rls.py [--url postgresql://postgres@127.0.0.1:5432/test] [--rounds 7] [--n 400]

Creates a scratch database, migrates it, seeds sessions, then times
``session_service.get_user_sessions(user)`` and ``session_service.create_session(user, "trading")``
through the real services in two set-ups, alternating round by round in the same run:

* **RLS on**: Timber's normal path. The login ``timber_bench_app`` (NOINHERIT, member of
  ``timber_canopy``) opens each transaction with the one ``set_config`` statement, so it runs
  as ``timber_canopy`` under the RESTRICTIVE type policy and Canopy's own-rows policy.
* **context, RLS disabled** (to split the cost): Timber's normal path, with row-level security
  disabled on ``sessions`` for the duration of that set-up: the per-transaction ``set_config``
  is paid, the policies are not.
* **RLS off**: the same services on an engine that skips the per-transaction context, logged
  in as ``timber_bench_owner`` (INHERIT member of ``timber_owner``, the table owner) while
  ``sessions`` is ``NO FORCE ROW LEVEL SECURITY``: the owner bypasses RLS, and no
  ``set_config`` statement is sent.

psycopg's automatic prepared statements stay on (``prepare_threshold`` 5, the default) in both.
Prints the median time per call and the ratio of throughputs (on / off; 1.0 = free).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import uuid
from collections.abc import Callable
from typing import Any

from sqlalchemy import create_engine, text
from sqlalchemy.engine import URL, make_url

import timber_core
from timber_core import app_context
from timber_core.db import NO_CONTEXT
from timber_core.services.persistence import session_service


def _login(conn: Any, name: str, member_of: str, inherit: bool) -> None:
    conn.execute(text(f"""DO $$ BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{name}') THEN
    BEGIN CREATE ROLE {name} LOGIN {'INHERIT' if inherit else 'NOINHERIT'} NOSUPERUSER NOBYPASSRLS;
    EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END;
  END IF;
  IF NOT pg_has_role('{name}', '{member_of}', 'MEMBER') THEN
    BEGIN GRANT {member_of} TO {name}; EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END;
  END IF;
END $$"""))


def _time(fn: Callable[[], Any], n: int) -> float:
    start = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - start) / n


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default=os.environ.get("TIMBER_TEST_DATABASE_URL"))
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--n", type=int, default=400, help="calls per round and set-up")
    parser.add_argument("--users", type=int, default=2000)
    args = parser.parse_args(argv)
    if not args.url:
        print("set TIMBER_TEST_DATABASE_URL or pass --url (a superuser, e.g. postgresql://postgres@127.0.0.1:5432/test)")
        return 2
    base: URL = make_url(args.url).set(drivername="postgresql+psycopg")
    name = f"timber_bench_{uuid.uuid4().hex[:8]}"
    server = create_engine(base, isolation_level="AUTOCOMMIT")
    with server.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin = base.set(database=name)
    try:
        timber_core.initialize_timber("canopy", database_url=admin, create_tables=True).close()
        engine = create_engine(admin)
        with engine.begin() as conn:
            _login(conn, "timber_bench_app", "timber_canopy", inherit=False)
            _login(conn, "timber_bench_owner", "timber_owner", inherit=True)
            conn.execute(text(
                "INSERT INTO users (id, email, username, created_at, updated_at) SELECT 'u' || g, 'u' || g, "
                "'u' || g, now(), now() FROM generate_series(1, :n) g"), {"n": args.users})
            conn.execute(text(
                "INSERT INTO sessions (id, user_id, session_type, app_name, status, created_at, updated_at) "
                "SELECT 's' || g, 'u' || (g % :n + 1), (ARRAY['trading','paper_trading','research','analysis'])"
                "[(g / :n) % 4 + 1], 'x', 'active', now() - g * interval '1 second', now() FROM generate_series(1, :n * 20) g"
            ), {"n": args.users})
            conn.execute(text("ANALYZE"))
        kernel = timber_core.initialize_timber("canopy", database_url=base.set(database=name, username="timber_bench_app"))
        with engine.begin() as conn:  # after the startup check, which would rightly refuse this
            conn.execute(text("ALTER TABLE sessions NO FORCE ROW LEVEL SECURITY"))
        on_engine = kernel.db.engine
        off_engine = create_engine(base.set(database=name, username="timber_bench_owner"),
                                   pool_size=5).execution_options(**{NO_CONTEXT: True})
        with off_engine.connect() as conn:
            assert conn.execute(text("SELECT current_user")).scalar() == "timber_bench_owner"
        user = "u7"
        results: dict[tuple[str, str], list[float]] = {}
        calls: dict[str, Callable[[], Any]] = {
            "get_user_sessions": lambda: session_service.get_user_sessions(user),
            "create_session": lambda: session_service.create_session("u8", "trading"),
        }
        with app_context("canopy"):
            for engine_name, eng in (("on", on_engine), ("off", off_engine)):  # warm up: prepare statements
                kernel.db.engine = eng
                for fn in calls.values():
                    _time(fn, 20)
            for _ in range(args.rounds):
                for engine_name, eng in (("on", on_engine), ("off", off_engine), ("ctx", on_engine)):
                    if engine_name == "ctx":  # Timber's context statement, but RLS disabled on the table
                        with engine.begin() as conn:
                            conn.execute(text("ALTER TABLE sessions DISABLE ROW LEVEL SECURITY"))
                    kernel.db.engine = eng
                    for fn in calls.values():  # re-prepare after the DDL, untimed
                        _time(fn, 10)
                    for call, fn in calls.items():
                        results.setdefault((call, engine_name), []).append(_time(fn, args.n))
                    if engine_name == "ctx":
                        with engine.begin() as conn:
                            conn.execute(text("ALTER TABLE sessions ENABLE ROW LEVEL SECURITY"))
            kernel.db.engine = on_engine
            seen = len(session_service.get_user_sessions(user))
        with engine.begin() as conn:
            conn.execute(text("ALTER TABLE sessions FORCE ROW LEVEL SECURITY"))
        engine.dispose()
        off_engine.dispose()
        kernel.close()
        print(f"PostgreSQL {base.host}:{base.port}, {args.users} users, {args.users * 20} sessions; "
              f"{args.rounds} rounds x {args.n} calls per set-up; prepared statements on (psycopg default)")
        print(f"{'call':<20}{'RLS on (us)':>13}{'RLS off (us)':>14}{'on/off':>8}"
              f"{'context, RLS disabled (us)':>28}{'ctx/off':>9}")
        for call in calls:
            on, off, ctx = (statistics.median(results[(call, k)]) * 1e6 for k in ("on", "off", "ctx"))
            print(f"{call:<20}{on:>13.1f}{off:>14.1f}{off / on:>8.2f}{ctx:>28.1f}{off / ctx:>9.2f}")
        print(f"(user {user} sees {seen} of their Canopy sessions under RLS)")
    finally:
        with server.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        server.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
