"""Insert and read of a model with two encrypted fields beside the same model without, in one run.

    python bench/bench_encryption.py                      # SQLite (a temp file)
    python bench/bench_encryption.py --postgres URL       # and PostgreSQL (a scratch database is created)

Two models in one app, identical but for ``encrypted: true`` on ``email`` and ``notes``:
``Plain`` and ``Sealed`` (and ``Indexed``: ``Sealed`` plus ``blind_index: true`` on email).
Each round inserts ROWS rows through the ORM in one transaction, then reads them all back,
for every model in turn (interleaved); the figures are medians over the rounds of the
throughput ratio against ``Plain`` (1.0 = as fast), wall clock and process CPU side by side.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from typing import Any

from cryptography.fernet import Fernet
from sqlalchemy import delete, select

_YAML = """models:
{models}"""
_MODEL = """  - name: {name}
    table_name: bench_{table}
    columns:
      - name: id
        type: Integer
        primary_key: true
      - name: label
        type: String(40)
        nullable: false
      - name: email
        type: String(254)
{email}
      - name: notes
        type: Text
{notes}
"""


def _models_dir() -> str:
    folder = tempfile.mkdtemp(prefix="timber-bench-encryption-")
    enc = "        encrypted: true"
    models = [_MODEL.format(name="Plain", table="plain", email="", notes=""),
              _MODEL.format(name="Sealed", table="sealed", email=enc, notes=enc),
              _MODEL.format(name="Indexed", table="indexed", email=enc + "\n        blind_index: true", notes=enc)]
    with open(os.path.join(folder, "bench_models.yaml"), "w") as f:
        f.write(_YAML.format(models="".join(models)).replace("\n\n", "\n"))
    return folder


def _timed(fn: Callable[[], None]) -> tuple[float, float]:
    w, c = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - w, time.process_time() - c


def run(url: str, label: str, rows: int, rounds: int) -> list[tuple[str, str, str, float, float]]:
    import timber_core

    from timber_core.migrations.doctor import skip_startup_check

    # A bench app has no migrations; on PostgreSQL its tables get the role and grants a
    # migration would give (docs/isolation.md), so the rows go through the same app context.
    with skip_startup_check():
        kernel = timber_core.initialize_timber("benchcrypt", model_config_dirs=[_models_dir()], database_url=url,
                                               session_types=["bench_crypt"], create_tables=True)
    names = ("Plain", "Sealed", "Indexed")
    if kernel.db.dialect == "postgresql":
        with kernel.db.admin_connection() as conn:
            conn.exec_driver_sql("DO $$ BEGIN CREATE ROLE timber_benchcrypt NOLOGIN; "
                                 "EXCEPTION WHEN duplicate_object THEN NULL; END $$")
            conn.exec_driver_sql("GRANT ALL ON bench_plain, bench_sealed, bench_indexed TO timber_benchcrypt")
    models = {n: kernel.get_model(n) for n in names}
    text = "lorem ipsum dolor sit amet, " * 8  # 224 characters of notes per row

    def insert(model: Any) -> Callable[[], None]:
        def go() -> None:
            with kernel.db.session_scope() as s:
                s.execute(delete(model))
            with kernel.db.session_scope() as s:
                s.add_all([model(id=i, label=f"row {i}", email=f"user{i}@example.com", notes=text)
                           for i in range(rows)])
        return go

    def read(model: Any) -> Callable[[], None]:
        def go() -> None:
            with kernel.db.session_scope() as s:
                got = s.scalars(select(model)).all()
                assert len(got) == rows and got[-1].notes == text
        return go

    times: dict[tuple[str, str], list[tuple[float, float]]] = {}
    for _ in range(rounds):
        for op, make in (("insert", insert), ("read", read)):
            for n in names:
                times.setdefault((op, n), []).append(_timed(make(models[n])))
    for n in names:  # the cycle: a round's insert and read together
        times[("insert+read", n)] = [(a[0] + b[0], a[1] + b[1]) for a, b in zip(times[("insert", n)], times[("read", n)])]
    out = []
    for op in ("insert", "read", "insert+read"):
        base = times[(op, "Plain")]
        for n in names[1:]:
            mine = times[(op, n)]
            wall = statistics.median(b[0] / m[0] for b, m in zip(base, mine))
            cpu = statistics.median(b[1] / m[1] for b, m in zip(base, mine))
            per_row = statistics.median(m[0] for m in mine) / rows * 1e6
            out.append((label, op, n, wall, cpu, per_row))
    timber_core.shutdown()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--postgres", metavar="URL", help="also run on a scratch database of this PostgreSQL server")
    parser.add_argument("--rows", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()
    os.environ.setdefault("ENABLE_ENCRYPTION", "true")
    os.environ.setdefault("TIMBER_ENCRYPTION_KEYS", Fernet.generate_key().decode())
    os.environ.setdefault("TIMBER_BLIND_INDEX_KEY", "bench-" * 8)
    os.environ.setdefault("TIMBER_HOME", tempfile.mkdtemp(prefix="timber-bench-home-"))
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        results += run(f"sqlite:///{tmp}/bench.db", "SQLite", args.rows, args.rounds)
    if args.postgres:
        from timber_core.testing import scratch_database

        with scratch_database(args.postgres) as url:
            results += run(url, "PostgreSQL", args.rows, args.rounds)
    print(f"{args.rows} rows per operation, median of {args.rounds} interleaved rounds; ratio = throughput vs Plain")
    print("| database | operation | model | wall ratio | CPU ratio | wall per row (µs) |")
    print("| --- | --- | --- | --- | --- | --- |")
    for label, op, name, wall, cpu, per_row in results:
        print(f"| {label} | {op} | {name} | {wall:.2f}x | {cpu:.2f}x | {per_row:.0f} |")


if __name__ == "__main__":
    main()
