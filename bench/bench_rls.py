"""Row-level security's cost on the services' session calls, PostgreSQL only.

    python bench/bench_rls.py [--url postgresql://postgres@127.0.0.1:5432/test] [--rounds 7] [--n 400]

Creates a scratch database, migrates it, seeds sessions, then times
``session_service.get_user_sessions(user)`` and ``session_service.create_session(user, "trading")``
through the real services in set-ups alternating round by round in the same run:

* **RLS on**: Timber's normal path. The login ``timber_bench_app`` (NOINHERIT, member of
  ``timber_canopy``); each call is one statement, sent in one message with the context
  (``RESET ALL; SELECT set_config(...); EXECUTE <prepared statement>``, on the pooled driver
  connection: ``DatabaseManager._run_kernel_statement()``): it runs as ``timber_canopy`` under
  the RESTRICTIVE type policy and Canopy's own-rows policy.
* **RLS on, 3 round trips**: the same, through ``DatabaseManager.connection()`` (the path of
  every call before one_statement existed): ``BEGIN; RESET ALL; SELECT set_config(...)``, the
  statement (prepared), ``COMMIT``.
* **context, RLS disabled** (to split the cost): the RLS-on path with row-level security
  disabled on ``sessions`` for the duration of that set-up: the context is paid, the policies are not.
* **RLS off**: the same services on an engine that skips the per-transaction context, logged
  in as ``timber_bench_owner`` (INHERIT member of ``timber_owner``, the table owner) while
  ``sessions`` is ``NO FORCE ROW LEVEL SECURITY``: the owner bypasses RLS, no context is sent.
  Each call is a plain transaction: ``BEGIN``, the statement (prepared), ``COMMIT``.
* **RLS off, same path**: the owner's login, no context, and the same driver-level path as
  "RLS on": ``EXECUTE <prepared statement>`` alone in autocommit (one round trip). The same
  statements without RLS and without the context: the comparator of issue 14's goal 3.

psycopg's automatic prepared statements stay on (``prepare_threshold`` 5, the default) in both.
Prints the median wall time per call (CPU beside it) and the ratio of throughputs
(on / off; 1.0 = free).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
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


def _time(fn: Callable[[], Any], n: int) -> tuple[float, float]:
    """Call ``fn`` ``n`` times; return (wall, CPU) seconds per call."""
    start, cpu = time.perf_counter(), time.process_time()
    for _ in range(n):
        fn()
    return (time.perf_counter() - start) / n, (time.process_time() - cpu) / n


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
    from timber_core.testing import scratch_database

    with scratch_database(args.url) as scratch:
        return _run(args, make_url(scratch))


def _run(args: argparse.Namespace, admin: URL) -> int:
    base, name = admin, admin.database
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
    db = kernel.db
    on_engine, on_one = db.engine, db._one_engine
    off_engine = create_engine(base.set(database=name, username="timber_bench_owner"),
                               pool_size=5).execution_options(**{NO_CONTEXT: True})
    with off_engine.connect() as conn:
        assert conn.execute(text("SELECT current_user")).scalar() == "timber_bench_owner"
    setups: dict[str, tuple[Any, Any]] = {  # (engine of connection(), engine of one_statement())
        "on": (on_engine, on_one), "on3": (on_engine, None), "ctx": (on_engine, on_one),
        "off": (off_engine, None), "off1": (off_engine, off_engine.execution_options(isolation_level="AUTOCOMMIT")),
    }

    def use(setup: str) -> None:
        db.engine = db._work_engine = setups[setup][0]
        db._one_engine = setups[setup][1]

    user = "u7"
    results: dict[tuple[str, str], list[tuple[float, float]]] = {}
    calls: dict[str, Callable[[], Any]] = {
        "get_user_sessions": lambda: session_service.get_user_sessions(user),
        "create_session": lambda: session_service.create_session("u8", "trading"),
    }
    with app_context("canopy"):
        for setup in setups:  # warm up: prepare statements
            use(setup)
            for fn in calls.values():
                _time(fn, 20)
        for _ in range(args.rounds):
            for setup in setups:
                if setup == "ctx":  # Timber's context, but RLS disabled on the table
                    with engine.begin() as conn:
                        conn.execute(text("ALTER TABLE sessions DISABLE ROW LEVEL SECURITY"))
                use(setup)
                for fn in calls.values():  # re-prepare after the DDL, untimed
                    _time(fn, 10)
                for call, fn in calls.items():
                    results.setdefault((call, setup), []).append(_time(fn, args.n))
                if setup == "ctx":
                    with engine.begin() as conn:
                        conn.execute(text("ALTER TABLE sessions ENABLE ROW LEVEL SECURITY"))
        use("on")
        seen = len(session_service.get_user_sessions(user))
    with engine.begin() as conn:
        conn.execute(text("ALTER TABLE sessions FORCE ROW LEVEL SECURITY"))
    engine.dispose()
    off_engine.dispose()
    kernel.close()
    print(f"PostgreSQL {base.host}:{base.port}, {args.users} users, {args.users * 20} sessions; "
          f"{args.rounds} rounds x {args.n} calls per set-up; prepared statements on (psycopg default)")
    names = {"on": "RLS on", "on3": "RLS on, 3 round trips", "ctx": "context, RLS disabled",
             "off": "RLS off", "off1": "RLS off, same path"}
    print("| call | set-up | wall µs/call | CPU µs/call | throughput vs RLS off | vs RLS off, same path |")
    print("|---|---|---:|---:|---:|---:|")
    for call in calls:
        med = {k: (statistics.median(w for w, _ in results[(call, k)]) * 1e6,
                   statistics.median(c for _, c in results[(call, k)]) * 1e6) for k in setups}
        for k in setups:
            print(f"| {call} | {names[k]} | {med[k][0]:.1f} | {med[k][1]:.1f} | "
                  f"{med['off'][0] / med[k][0]:.2f}x | {med['off1'][0] / med[k][0]:.2f}x |")
    print(f"(user {user} sees {seen} of their Canopy sessions under RLS)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
