#!/usr/bin/env python
"""Start-up benchmark for Timber (issue 2). Not a test: run it, read it, copy the figures to docs/performance.md.

(a) ``timber apps list`` wall time (with an existing TIMBER_HOME, and without one) beside
    ``python -c "import importlib.metadata"`` and beside
    ``datasette plugins`` (datasette in a throwaway venv under /tmp, created if missing),
    medians of interleaved runs.
(b) ``initialize_timber`` on 10/25/50 generated apps x 10 models (fake installed distributions),
    each in a fresh interpreter, to show ms per model and linearity.

    python bench/bench_startup.py [--runs 15] [--init-runs 5] [--no-datasette]

Run it with the interpreter that has timber-core installed; PYTHONPATH decides which checkout is measured.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

DATASETTE_VENV = Path(os.environ.get("TIMBER_BENCH_DATASETTE_VENV", "/tmp/timber-bench-datasette-venv"))
MODELS_PER_APP = 10


def _wall(cmd: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, check=True)
    return time.perf_counter() - start


def _datasette() -> tuple[list[str] | None, str]:
    exe = DATASETTE_VENV / "bin" / "datasette"
    if exe.exists():
        return [str(exe), "plugins"], f"datasette from {DATASETTE_VENV}"
    try:
        subprocess.run([sys.executable, "-m", "venv", str(DATASETTE_VENV)], check=True, capture_output=True)
        subprocess.run([str(DATASETTE_VENV / "bin" / "pip"), "install", "--quiet", "datasette"], check=True,
                       capture_output=True, timeout=600)
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
        out = getattr(exc, "stderr", b"") or b""
        shutil.rmtree(DATASETTE_VENV, ignore_errors=True)
        return None, f"skipped: could not install datasette ({out.decode(errors='replace').strip()[-200:] or exc})"
    return [str(exe), "plugins"], f"datasette installed into {DATASETTE_VENV}"


def bench_cli(runs: int, with_datasette: bool) -> dict[str, float | str]:
    """Median wall times. ``timber apps list`` runs twice over: with an existing TIMBER_HOME, where
    unchanged model files validated once are not validated again (the usual case once Timber has
    been used there), and with TIMBER_HOME absent, where every run validates them."""
    env = dict(os.environ)
    scratch = Path(tempfile.mkdtemp(prefix="timber-bench-startup-"))
    (scratch / "home").mkdir()
    warm = {**env, "TIMBER_HOME": str(scratch / "home")}
    cold = {**env, "TIMBER_HOME": str(scratch / "absent")}
    timber = Path(sys.executable).with_name("timber")
    timber_cmd = [str(timber), "apps", "list"] if timber.exists() else [
        sys.executable, "-c", "import sys; sys.argv[0]='timber'; from timber_core.cli import main; main()", "apps", "list"]
    commands: dict[str, tuple[list[str], dict[str, str]]] = {
        "python -c 'import importlib.metadata'": ([sys.executable, "-c", "import importlib.metadata"], env),
        "timber apps list": (timber_cmd, warm),
        "timber apps list (no TIMBER_HOME)": (timber_cmd, cold),
    }
    note = "datasette: not requested"
    if with_datasette:
        ds, note = _datasette()
        if ds is not None:
            commands["datasette plugins"] = (ds, env)
    print(note)
    for cmd, cmd_env in commands.values():  # warm the OS caches and .pyc files (and TIMBER_HOME's record)
        _wall(cmd, cmd_env)
    times: dict[str, list[float]] = {k: [] for k in commands}
    for _ in range(runs):
        for name, (cmd, cmd_env) in commands.items():  # interleaved, so drift hits every column alike
            times[name].append(_wall(cmd, cmd_env))
    shutil.rmtree(scratch, ignore_errors=True)
    result: dict[str, float | str] = {name: statistics.median(t) * 1000 for name, t in times.items()}
    result["datasette_note"] = note
    return result


def _generate(root: Path, apps: int) -> None:
    """Write ``apps`` fake installed distributions, each with MODELS_PER_APP models of ~8 columns."""
    for a in range(apps):
        app = f"gen{a:03d}"
        dist = root / f"timber_{app}-0.1.dist-info"
        dist.mkdir(parents=True)
        (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: timber-{app}\nVersion: 0.1\n")
        (dist / "entry_points.txt").write_text(f"[timber.apps]\n{app} = {app}_plugin\n")
        models_dir = root / f"{app}_models"
        models_dir.mkdir()
        (root / f"{app}_plugin.py").write_text(textwrap.dedent(f"""\
            import os
            from timber_core import hookimpl
            @hookimpl
            def timber_app_info():
                return {{"name": "{app}", "version": "0.1", "description": "generated", "depends": []}}
            @hookimpl
            def timber_model_dirs():
                return [os.path.join(os.path.dirname(os.path.abspath(__file__)), "{app}_models")]
            """))
        lines = ['version: "1.0.0"', 'depends: ["user_models.yaml"]', "models:"]
        for m in range(MODELS_PER_APP):
            model, table = f"{app.capitalize()}Thing{m}", f"{app}_thing{m}"
            lines += [
                f"  - name: {model}", f"    table_name: {table}", "    columns:",
                "      - {name: id, type: String(36), primary_key: true, default: uuid4}",
                "      - {name: user_id, type: String(36), foreign_key: users.id, ondelete: CASCADE, nullable: false}",
                "      - {name: title, type: String(200), nullable: false}",
                "      - {name: body, type: Text}",
                "      - {name: amount, type: 'Numeric(12, 2)'}",
                "      - {name: quantity, type: Integer, default: 0}",
                "      - {name: active, type: Boolean, default: true}",
                "      - {name: data, type: JSON}",
                "    indexes:", "      - {columns: [user_id, title]}",
                "    relationships:",
                f"      - {{name: user, model: User, type: many-to-one, backref: {table}_rows}}",
            ]
        (models_dir / f"{app}_models.yaml").write_text("\n".join(lines) + "\n")


_INIT_PROBE = """
import json, sys, time
import sqlalchemy.orm  # imported by every app anyway; the probe times initialize_timber itself
import timber_core
start = time.perf_counter()
kernel = timber_core.initialize_timber(sys.argv[1], database_url=sys.argv[2])
elapsed = time.perf_counter() - start
print(json.dumps({"seconds": elapsed, "models": len(kernel.models), "tables": len(kernel.metadata.tables)}))
"""


_PLAIN_PROBE = """
import json, sys, time, uuid, datetime
from sqlalchemy import JSON, Boolean, Column, ForeignKey, Index, Integer, Numeric, String, Text, DateTime, create_engine
from sqlalchemy.orm import DeclarativeBase, relationship, configure_mappers
apps, per_app = int(sys.argv[1]), int(sys.argv[2])
# Keep the classes alive, as an application does: a registry holds its mappers weakly, and
# classes dropped on the floor are collected before configure_mappers() ever sees them.
keep = []
start = time.perf_counter()
class Base(DeclarativeBase):
    pass
class User(Base):
    __tablename__ = "users"
    id = Column(String(36), primary_key=True, default=lambda: str(uuid.uuid4()))
    email = Column(String(255), unique=True, nullable=False)
    username = Column(String(100), unique=True, nullable=False)
    created_at = Column(DateTime(timezone=True), nullable=False)
    updated_at = Column(DateTime(timezone=True), nullable=False)
for a in range(apps):
    for m in range(per_app):
        table = f"gen{a:03d}_thing{m}"
        keep.append(type(f"Gen{a:03d}Thing{m}", (Base,), {
            "__tablename__": table,
            "id": Column(String(36), primary_key=True, default=lambda: str(uuid.uuid4())),
            "user_id": Column(String(36), ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
            "title": Column(String(200), nullable=False), "body": Column(Text),
            "amount": Column(Numeric(12, 2)), "quantity": Column(Integer, default=0),
            "active": Column(Boolean, default=True), "data": Column(JSON),
            "created_at": Column(DateTime(timezone=True), nullable=False),
            "updated_at": Column(DateTime(timezone=True), nullable=False),
            "__table_args__": (Index(f"ix_{table}_user_id_title", "user_id", "title"),),
            "user": relationship("User", backref=f"{table}_rows"),
        }))
configure_mappers()
engine = create_engine(sys.argv[3])
with engine.connect() as conn:
    conn.exec_driver_sql("BEGIN")
    Base.metadata.create_all(conn)
    conn.commit()
print(json.dumps({"seconds": time.perf_counter() - start, "models": len(keep) + 1}))
"""


def bench_plain(sizes: list[int], runs: int) -> list[dict[str, float]]:
    """The floor: the same tables as plain SQLAlchemy declarative classes written in Python."""
    rows = []
    with tempfile.TemporaryDirectory(prefix="timber-bench-plain-") as tmp:
        for apps in sizes:
            samples, models = [], 0
            for r in range(runs):
                db = Path(tmp) / f"plain{apps}_{r}.sqlite"
                out = subprocess.run([sys.executable, "-c", _PLAIN_PROBE, str(apps), str(MODELS_PER_APP),
                                      f"sqlite:///{db}"], capture_output=True, text=True, check=True)
                probe = json.loads(out.stdout)
                samples.append(probe["seconds"])
                models = probe["models"]
            median = statistics.median(samples) * 1000
            rows.append({"apps": apps, "models": models, "ms": median, "ms_per_model": median / models})
            print(f"  plain SQLAlchemy, {models:4d} models: {median:7.1f} ms  ({median / models:.2f} ms/model)")
    return rows


def bench_init(sizes: list[int], runs: int) -> list[dict[str, float]]:
    rows = []
    with tempfile.TemporaryDirectory(prefix="timber-bench-") as tmp:
        for apps in sizes:
            root = Path(tmp) / f"apps{apps}"
            _generate(root, apps)
            env = dict(os.environ)
            env["PYTHONPATH"] = os.pathsep.join([str(root), env.get("PYTHONPATH", "")])
            env["TIMBER_DISABLE_APPS"] = "canopy,grove"  # only the generated apps (and the kernel's 4 models)
            samples, models = [], 0
            for r in range(runs):
                db = Path(tmp) / f"db{apps}_{r}.sqlite"
                out = subprocess.run([sys.executable, "-c", _INIT_PROBE, "gen000", f"sqlite:///{db}"],
                                     capture_output=True, text=True, env=env, check=False)
                if out.returncode != 0:
                    raise SystemExit(f"initialize_timber failed with {apps} apps:\n{out.stderr}")
                probe = json.loads(out.stdout)
                samples.append(probe["seconds"])
                models = probe["models"]
            median = statistics.median(samples) * 1000
            rows.append({"apps": apps, "models": models, "ms": median, "ms_per_model": median / models})
            print(f"  {apps:3d} apps, {models:4d} models: {median:7.1f} ms  ({median / models:.2f} ms/model)")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=15, help="runs per command for (a), interleaved (default 15)")
    parser.add_argument("--init-runs", type=int, default=5, help="fresh processes per size for (b) (default 5)")
    parser.add_argument("--no-datasette", action="store_true", help="skip the datasette column")
    args = parser.parse_args()

    print(f"machine: {platform.platform()}, {os.cpu_count()} CPUs, Python {platform.python_version()}")
    print(f"\n(a) CLI start-up, median of {args.runs} interleaved runs")
    cli = bench_cli(args.runs, not args.no_datasette)
    base = float(cli["python -c 'import importlib.metadata'"])
    for name, ms in cli.items():
        if name != "datasette_note":
            print(f"  {name:40s} {float(ms):7.1f} ms  {float(ms) / base:5.2f}x")
    ratio = float(cli["timber apps list"]) / base
    print(f"  target timber apps list <= 2x bare import: {'met' if ratio <= 2 else 'MISSED'} ({ratio:.2f}x)")

    print(f"\n(b) initialize_timber, {MODELS_PER_APP} models per app, median of {args.init_runs} fresh processes")
    rows = bench_init([10, 25, 50], args.init_runs)
    small, big = rows[0], rows[-1]
    slope = (big["ms"] - small["ms"]) / (big["models"] - small["models"])
    print(f"  marginal cost: {slope:.2f} ms/model between {small['models']} and {big['models']} models")
    print("  the floor, same tables declared directly in SQLAlchemy (no YAML, no plugins):")
    plain = bench_plain([10, 25, 50], args.init_runs)
    for r, p in zip(rows, plain):
        print(f"  {r['apps']:3d} apps: timber {r['ms_per_model']:.2f} ms/model vs plain SQLAlchemy "
              f"{p['ms_per_model']:.2f} ms/model ({r['ms'] / p['ms']:.2f}x)")
    worst = max(r["ms_per_model"] for r in rows)
    print(f"  target <= 2 ms/model: {'met' if worst <= 2 else 'MISSED'} (worst {worst:.2f} ms/model)")


if __name__ == "__main__":
    main()
