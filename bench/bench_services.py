"""Per-operation cost of the shared session service beside the same work hand-written in SQLAlchemy Core and raw psycopg 3.

    python bench/bench_services.py                      # SQLite (a temp file)
    python bench/bench_services.py --postgres URL       # and PostgreSQL (a scratch database is created)

Every side runs in Canopy's context for the same user, so on PostgreSQL each pays the same
per-transaction context and row-level security. On PostgreSQL a third comparator does the same
work in raw psycopg 3 on its own connection (same login): one transaction per call, the context
statement (:data:`timber_core.db.CONTEXT_SQL`) and the service's statement both prepared
(``prepare=True``). Prints throughput ratios (service / comparator; 1.0 = as fast) from one run,
each a median over interleaved rounds, wall and CPU time.
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

from sqlalchemy import insert, select

import timber_core
from timber_core import user_context
from timber_core.services.persistence import session_service, user_service


def _rounds(fns: list[Callable[[], None]], rounds: int) -> list[tuple[float, float]]:
    """Run ``fns`` in turn, ``rounds`` times; return each one's median (wall, CPU) seconds per round."""
    wall: list[list[float]] = [[] for _ in fns]
    cpu: list[list[float]] = [[] for _ in fns]
    for _ in range(rounds):
        for i, fn in enumerate(fns):
            t, c = time.perf_counter(), time.process_time()
            fn()
            wall[i].append(time.perf_counter() - t)
            cpu[i].append(time.process_time() - c)
    return [(statistics.median(w), statistics.median(c)) for w, c in zip(wall, cpu)]


def _raw_psycopg(url: str, table: Any, dialect: Any, user: str, reader: str, n: int) -> dict[str, Callable[[], None]]:
    """The same calls in raw psycopg 3: the context and the statement prepared, one transaction per call."""
    import psycopg
    from psycopg.types.json import Jsonb

    from timber_core.db import CONTEXT_SQL

    conn = psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://"))
    ins = str(insert(table).compile(dialect=dialect))
    sel = select(table).where(table.c.user_id == reader, table.c.session_type.in_(["paper_trading", "trading"])) \
        .order_by(table.c.created_at.desc(), table.c.id)
    compiled = sel.compile(dialect=dialect, compile_kwargs={"render_postcompile": True})
    sel_sql, sel_params = str(compiled), compiled.params

    def context(u: str) -> tuple[str, ...]:
        return ("timber_canopy", "canopy", u, "5000", "30000")

    def create() -> None:
        for _ in range(n):
            now = dt.datetime.now(dt.timezone.utc)
            with conn.transaction(), conn.cursor() as cur:
                cur.execute(CONTEXT_SQL, context(user), prepare=True)
                cur.execute(ins, {"id": str(uuid.uuid4()), "user_id": user, "session_type": "trading",
                                  "app_name": "canopy", "status": "active", "ended_at": None,
                                  "metadata_": Jsonb({"app": "canopy", "created_by_app": "canopy"}),
                                  "created_at": now, "updated_at": now}, prepare=True)

    def read() -> None:
        for _ in range(n):
            with conn.transaction(), conn.cursor() as cur:
                cur.execute(CONTEXT_SQL, context(reader), prepare=True)
                cur.execute(sel_sql, sel_params, prepare=True)
                assert len(cur.fetchall()) == 100

    return {"create_session": create, "get_user_sessions (100 rows)": read, "close": conn.close}


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

    raw = _raw_psycopg(url, table, engine.dialect, user, reader, n_single) if label == "PostgreSQL" else {}
    results = []
    for name, svc, core, n in [("create_session", svc_create, core_create, n_single),
                               ("get_user_sessions (100 rows)", svc_read, core_read, n_single),
                               ("create_sessions (10,000 rows)", svc_bulk, core_bulk, 1)]:
        fns = [svc, core] + ([raw[name]] if name in raw else [])
        for fn in fns:
            fn()  # warm caches and prepared statements
        timed = _rounds(fns, rounds if n > 1 else max(3, rounds // 2))
        (s, s_cpu), (c, c_cpu) = timed[0], timed[1]
        r, r_cpu = timed[2] if len(timed) > 2 else (None, None)
        results.append((label, name, s / n * 1e3, s_cpu / n * 1e3, c / n * 1e3, c / s,
                        None if r is None else r / n * 1e3, None if r is None else r / s,
                        None if r_cpu is None else r_cpu / s_cpu))
    if raw:
        raw["close"]()
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
        from timber_core.testing import scratch_database

        with scratch_database(args.postgres) as url:
            rows += run(url, "PostgreSQL", args.ops, args.rounds)
    print("| database | operation | service ms/op (CPU) | Core ms/op | service / Core | raw psycopg ms/op "
          "| service / raw psycopg (wall) | (CPU) |")
    print("|---|---|---|---|---|---|---|---|")
    for label, name, s, s_cpu, c, ratio, r, raw_ratio, raw_cpu in rows:
        raw_cols = "– | – | –" if r is None else f"{r:.3f} | {raw_ratio:.2f}x | {raw_cpu:.2f}x"
        print(f"| {label} | {name} | {s:.3f} ({s_cpu:.3f}) | {c:.3f} | {ratio:.2f}x | {raw_cols} |")


if __name__ == "__main__":
    main()
