"""The SQLite wall's cost on the services' session calls.

    python bench/bench_sqlite_wall.py [--rounds 40] [--n 100] [--users 2000]

Makes a SQLite file in a temporary directory, seeds users and sessions of every app's types, then
times ``session_service.get_user_sessions(user)`` and ``session_service.create_session(user, "trading")``
through the real services, in Canopy's context, in two set-ups timed back to back for each call, their order alternating round by round
(a busy machine drifts; pairs close in time share its load):

* **wall on**: the kernel's own engine: the authorizer, the temporary view and triggers on
  ``sessions``, the statement hooks (target rewrite, ORM-wall table check);
* **wall off**: a second engine on the same file made by a bare ``DatabaseManager`` (foreign
  keys, WAL, busy timeout: what the kernel's engine had before the wall), swapped in the same way;
* **off again**: a third such engine, timed like the others: the A/A pair (off vs off again) shows
  how far two identical set-ups drift apart on this machine, the noise floor of the on/off ratio.

Prints the median time per call and the ratio of throughputs (on / off; 1.0 = free).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import text

import timber_core
from timber_core import app_context
from timber_core.db import DatabaseManager
from timber_core.services.persistence import session_service


def _time(fn: Callable[[], Any], n: int) -> float:
    start = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - start) / n


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--n", type=int, default=100, help="calls per round and set-up")
    parser.add_argument("--users", type=int, default=2000)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as home:
        url = f"sqlite:///{os.path.join(home, 'timber.db')}"
        kernel = timber_core.initialize_timber("canopy", database_url=url)
        now = dt.datetime(2026, 1, 1)
        with kernel.db.admin_connection() as conn:
            conn.execute(text("INSERT INTO users (id, email, username, created_at, updated_at) VALUES "
                              "(:i, :i, :i, :t, :t)"), [{"i": f"u{g}", "t": now} for g in range(1, args.users + 1)])
            types = ["trading", "paper_trading", "research", "analysis"]
            conn.execute(text("INSERT INTO sessions (id, user_id, session_type, app_name, status, created_at, "
                              "updated_at) VALUES (:i, :u, :t, 'x', 'active', :c, :c)"),
                         [{"i": f"s{g}", "u": f"u{g % args.users + 1}", "t": types[(g // args.users) % 4],
                           "c": now - dt.timedelta(seconds=g)} for g in range(1, args.users * 20 + 1)])
            conn.execute(text("ANALYZE"))
        on_engine = kernel.db.engine
        bare, bare2 = DatabaseManager(url), DatabaseManager(url)
        off_engine = bare.engine
        user = "u7"
        calls: dict[str, Callable[[], Any]] = {
            "get_user_sessions": lambda: session_service.get_user_sessions(user),
            "create_session": lambda: session_service.create_session("u8", "trading"),
        }
        results: dict[tuple[str, str], list[float]] = {}
        with app_context("canopy"):
            for eng in (on_engine, off_engine, bare2.engine):  # warm up: prepare statements, build the views
                kernel.db.engine = eng
                for fn in calls.values():
                    _time(fn, 50)
            setups = [("on", on_engine), ("off", off_engine), ("off2", bare2.engine)]
            for i in range(args.rounds):
                for call, fn in calls.items():  # the two set-ups back to back, in alternating order
                    for name, eng in setups if i % 2 else setups[::-1]:
                        kernel.db.engine = eng
                        results.setdefault((call, name), []).append(_time(fn, args.n))
            kernel.db.engine = on_engine
            seen = len(session_service.get_user_sessions(user))
        bare.dispose()
        bare2.dispose()
        kernel.close()
    print(f"SQLite {sys.version.split()[0]} sqlite3 {__import__('sqlite3').sqlite_version}, {args.users} users, "
          f"{args.users * 20} sessions; {args.rounds} rounds x {args.n} calls per set-up, interleaved")
    print(f"{'call':<20}{'wall on (us)':>14}{'wall off (us)':>15}{'on/off throughput':>19}"
          f"{'off again (us)':>16}{'A/A ratio':>11}")
    for call in calls:
        on, off, off2 = (statistics.median(results[(call, k)]) * 1e6 for k in ("on", "off", "off2"))
        print(f"{call:<20}{on:>14.1f}{off:>15.1f}{off / on:>19.2f}{off2:>16.1f}{off / off2:>11.2f}")
    print(f"(user {user} sees {seen} of their Canopy sessions through the wall)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
