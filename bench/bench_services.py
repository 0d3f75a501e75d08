"""Per-operation cost of the shared session service beside the same work hand-written in SQLAlchemy Core.

    python bench/bench_services.py                      # SQLite (a temp file)
    python bench/bench_services.py --postgres URL       # and PostgreSQL (a scratch database is created)

Both sides run in Canopy's context for the same user, so on PostgreSQL both pay the same
per-transaction context and row-level security. Prints throughput ratios (service / hand-written Core; 1.0 = as fast) from one
run, each a median over interleaved rounds on the same database and engine.
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from typing import Any

from sqlalchemy import create_engine, insert, select, text

import timber_core
from timber_core import user_context
from timber_core.services.persistence import session_service, user_service


def _rounds(fn_a: Callable[[], None], fn_b: Callable[[], None], rounds: int) -> tuple[float, float]:
    a, b = [], []
    for _ in range(rounds):
        t = time.perf_counter(); fn_a(); a.append(time.perf_counter() - t)
        t = time.perf_counter(); fn_b(); b.append(time.perf_counter() - t)
    return statistics.median(a), statistics.median(b)


def run(url: str, label: str, n_single: int, rounds: int) -> list[tuple[str, str, float, float, float]]:
    kernel = timber_core.initialize_timber("canopy", database_url=url, create_tables=True)
    table = kernel.models["Session"].__table__
    engine = kernel.db.engine
    user = user_service.create_user(f"{uuid.uuid4().hex[:8]}@bench.example", uuid.uuid4().hex[:12])
    reader = user_service.create_user(f"{uuid.uuid4().hex[:8]}@bench.example", uuid.uuid4().hex[:12])
    session_service.create_sessions([{"user_id": reader, "session_type": "trading"}] * 100)

    def core_row() -> dict[str, Any]:
        now = dt.datetime.now(dt.timezone.utc)
        return {"id": str(uuid.uuid4()), "user_id": user, "session_type": "trading", "app_name": "canopy",
                "status": "active", "metadata_": {"app": "canopy", "created_by_app": "canopy"},
                "created_at": now, "updated_at": now}

    def svc_create() -> None:
        for _ in range(n_single):
            session_service.create_session(user, "trading")

    def core_create() -> None:
        for _ in range(n_single):
            with user_context(user), engine.begin() as conn:
                conn.execute(insert(table), core_row())

    stmt = (select(table).where(table.c.user_id == reader, table.c.session_type.in_(["paper_trading", "trading"]))
            .order_by(table.c.created_at.desc(), table.c.id))

    def svc_read() -> None:
        for _ in range(n_single):
            assert len(session_service.get_user_sessions(reader)) == 100

    def core_read() -> None:
        for _ in range(n_single):
            with user_context(reader), engine.begin() as conn:
                assert len(list(conn.execute(stmt))) == 100

    bulk = 10_000

    def svc_bulk() -> None:
        session_service.create_sessions([{"user_id": user, "session_type": "trading"}] * bulk)

    def core_bulk() -> None:
        with user_context(user), engine.begin() as conn:
            conn.execute(insert(table), [core_row() for _ in range(bulk)])

    results = []
    for name, svc, core, n in [("create_session", svc_create, core_create, n_single),
                               ("get_user_sessions (100 rows)", svc_read, core_read, n_single),
                               ("create_sessions (10,000 rows)", svc_bulk, core_bulk, 1)]:
        svc(); core()  # warm caches and prepared statements
        s, c = _rounds(svc, core, rounds if n > 1 else max(3, rounds // 2))
        results.append((label, name, s / n * 1e3, c / n * 1e3, c / s))
    kernel.close()
    return results


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--postgres", help="PostgreSQL URL; a scratch database is created there and dropped")
    p.add_argument("--ops", type=int, default=200, help="operations per round for the single-row calls")
    p.add_argument("--rounds", type=int, default=7)
    args = p.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as d:
        rows += run(f"sqlite:///{d}/bench.db", "SQLite", args.ops, args.rounds)
    if args.postgres:
        from sqlalchemy.engine import make_url

        base = make_url(args.postgres).set(drivername="postgresql+psycopg")
        name = f"timber_bench_{uuid.uuid4().hex[:8]}"
        admin = create_engine(base, isolation_level="AUTOCOMMIT")
        with admin.connect() as c:
            c.execute(text(f'CREATE DATABASE "{name}"'))
        try:
            rows += run(base.set(database=name).render_as_string(hide_password=False), "PostgreSQL", args.ops, args.rounds)
        finally:
            timber_core.get_kernel().close()
            with admin.connect() as c:
                c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    print("| database | operation | service ms/op | hand-written Core ms/op | throughput ratio (service / Core) |")
    print("|---|---|---|---|---|")
    for label, name, s, c, ratio in rows:
        print(f"| {label} | {name} | {s:.3f} | {c:.3f} | {ratio:.2f}x |")


if __name__ == "__main__":
    main()
