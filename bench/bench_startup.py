#!/usr/bin/env python
"""Start-up benchmark for Timber (issues 2 and 14). Not a test: run it, read it, copy the figures to docs/performance.md.

(a) ``timber apps list`` wall time (kernel + Canopy + Grove; with an existing TIMBER_HOME, and without
    one) beside ``python -c "import importlib.metadata"`` and beside ``datasette plugins`` (datasette
    in a throwaway venv under /tmp, created if missing), medians of interleaved runs.
(b) The installed-apps sweep for ``timber apps list``: 2, 10, 50, 200 generated apps x 10 models
    (fake installed distributions, Canopy and Grove disabled) beside the bare import, interleaved.
(c) Building every model, each round a fresh interpreter per contender, interleaved, at 2, 10, 50,
    200 generated apps x 10 models with a relationship to ``User``:
    ``initialize_timber(app_name=None)`` (every app's classes; SQLite, tables created through the
    migration graph); the same with the
    collector as before issue 14 (automatic collections during start-up, nothing frozen);
    plain SQLAlchemy declarative classes for the same tables (the floor); Django's ``setup()`` plus
    creating the same tables (Django installed, e.g. by ``nox -s bench``; ``--no-django`` skips it).
    Wall and CPU medians, Timber's phases, the pause of a full ``gc.collect()`` after start-up
    and the cost of interpreter exit.
(d) Building the classes only (Timber's ``build_models`` + ``registry.configure()`` against plain
    declarative classes + ``configure()``) in one process per size, rounds interleaved, CPU medians.
(e) A process pays for its own app (issue 14 goal 1): ``initialize_timber(app_name="gen000")`` with
    2, 10, 50, 200 generated apps installed, on a database already migrated and an existing
    TIMBER_HOME (the usual start: the models of unchanged files are unpickled from it), beside
    ``initialize_timber(app_name=None)`` on the same database and Django's ``settings.configure()`` +
    ``setup()`` for every model, fresh processes, rounds interleaved; wall and CPU medians and
    the per-app start-up's phases (CPU).

    python bench/bench_startup.py [--runs 15] [--init-runs 3] [--sizes 2,10,50,200] [--no-datasette] [--no-django]
        [--ab-rounds 5] [--only a|b|c|d|e ...]

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
from typing import Any

DATASETTE_VENV = Path(os.environ.get("TIMBER_BENCH_DATASETTE_VENV", "/tmp/timber-bench-datasette-venv"))
MODELS_PER_APP = 10


PYCACHE = Path(tempfile.gettempdir()) / "timber-bench-pycache"


def _environ() -> dict[str, str]:
    """This process's environment, with bytecode caching on, in a prefix outside the checkout.

    With PYTHONDONTWRITEBYTECODE set (as on the shared machine) an editable checkout and the generated
    apps would be compiled from source in every process, which an installed wheel never is; the
    warm-up runs fill the prefix.
    """
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = str(PYCACHE)
    return env


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
    env = _environ()
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


# Every probe prints one JSON line: "wall" and "cpu" of the timed start-up, "pause" (a full
# gc.collect() after it) and "t_end" (time.time() just before exit, to measure the exit).
_INIT_PROBE = """
import gc, json, sys, time
import sqlalchemy.orm  # imported by every app anyway; the probe times initialize_timber itself
import timber_core
from timber_core import _collector, kernel as K
if sys.argv[3] == "gc-as-before":  # the collector as before issue 14: automatic collections, nothing frozen
    import contextlib
    _collector.paused = contextlib.nullcontext
    _collector.freeze = lambda: None
phases = {"yaml": 0.0, "classes": 0.0, "schema": 0.0}
def timed(name, fn):
    def run(*a, **k):
        s = time.process_time()
        try:
            return fn(*a, **k)
        finally:
            phases[name] += time.process_time() - s
    return run
K.load_contained = timed("yaml", K.load_contained)
K.build_tables = timed("tables", K.build_tables)
K.map_models = timed("classes", K.map_models)
K._build_schema = timed("schema", K._build_schema)
phases["tables"] = 0.0
start, cpu = time.perf_counter(), time.process_time()
kernel = timber_core.initialize_timber(None, database_url=sys.argv[2])  # None: every app's classes, eagerly
wall, cpu = time.perf_counter() - start, time.process_time() - cpu
s = time.perf_counter(); gc.collect(); pause = time.perf_counter() - s
phases["classes"] += phases["tables"]  # "classes" here is tables + classes, as build_models was
configure = phases["schema"] - phases["yaml"] - phases["classes"]
print(json.dumps({"wall": wall, "cpu": cpu, "pause": pause, "models": len(kernel.models),
                  "build_cpu": phases["classes"] + configure, "classes_cpu": phases["classes"],
                  "configure_cpu": configure, "yaml_cpu": phases["yaml"], "t_end": time.time()}))
"""


#: The plain SQLAlchemy declarative classes for the generated apps' tables (what Timber builds
#: from their YAML), shared by the probes of (c) and (d): ``plain_models(apps, per_app)`` returns
#: the base and every class. The caller keeps the classes alive, as an application does: a
#: registry holds its mappers weakly, and classes dropped on the floor are collected before
#: configure_mappers() ever sees them.
_PLAIN_MODELS = """
import uuid
from sqlalchemy import JSON, Boolean, Column, ForeignKey, Index, Integer, Numeric, String, Text, DateTime
from sqlalchemy.orm import DeclarativeBase, relationship
def plain_models(apps, per_app):
    class Base(DeclarativeBase):
        pass
    class User(Base):
        __tablename__ = "users"
        id = Column(String(36), primary_key=True, default=lambda: str(uuid.uuid4()))
        email = Column(String(255), unique=True, nullable=False)
        username = Column(String(100), unique=True, nullable=False)
        created_at = Column(DateTime(timezone=True), nullable=False)
        updated_at = Column(DateTime(timezone=True), nullable=False)
    classes = [User]
    for a in range(apps):
        for m in range(per_app):
            table = f"gen{a:03d}_thing{m}"
            classes.append(type(f"Gen{a:03d}Thing{m}", (Base,), {
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
    return Base, classes
"""

_PLAIN_PROBE = _PLAIN_MODELS + """
import gc, json, sys, time
from sqlalchemy import create_engine
from sqlalchemy.orm import configure_mappers
apps, per_app = int(sys.argv[1]), int(sys.argv[2])
start, cpu = time.perf_counter(), time.process_time()
Base, keep = plain_models(apps, per_app)
classes_cpu = time.process_time() - cpu
configure_mappers()
build_cpu = time.process_time() - cpu
engine = create_engine(sys.argv[3])
with engine.connect() as conn:
    conn.exec_driver_sql("BEGIN")
    Base.metadata.create_all(conn)
    conn.commit()
wall, cpu = time.perf_counter() - start, time.process_time() - cpu
s = time.perf_counter(); gc.collect(); pause = time.perf_counter() - s
print(json.dumps({"wall": wall, "cpu": cpu, "pause": pause, "models": len(keep), "build_cpu": build_cpu,
                  "classes_cpu": classes_cpu, "configure_cpu": build_cpu - classes_cpu, "t_end": time.time()}))
"""


_DJANGO_PROBE = """
import gc, json, sys, time
import django, django.apps, django.db.models  # imported before the clock, as SQLAlchemy is for the others
from django.conf import settings
apps = int(sys.argv[1])
start, cpu = time.perf_counter(), time.process_time()
settings.configure(
    INSTALLED_APPS=["djcore"] + [f"djgen{a:03d}" for a in range(apps)],
    DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": sys.argv[2]}},
    USE_TZ=True, DEFAULT_AUTO_FIELD="django.db.models.BigAutoField",
)
django.setup()
from django.apps import apps as registry
from django.db import connection
setup_cpu, setup_wall = time.process_time() - cpu, time.perf_counter() - start
if sys.argv[3:] == ["setup-only"]:
    print(json.dumps({"wall": setup_wall, "cpu": setup_cpu, "pause": 0.0, "models": len(registry.get_models()),
                      "build_cpu": setup_cpu, "t_end": time.time()}))
    sys.exit(0)
with connection.schema_editor() as editor:  # Django's own floor for creating the tables: no migration files
    for model in registry.get_models():
        editor.create_model(model)
wall, cpu = time.perf_counter() - start, time.process_time() - cpu
s = time.perf_counter(); gc.collect(); pause = time.perf_counter() - s
print(json.dumps({"wall": wall, "cpu": cpu, "pause": pause, "models": len(registry.get_models()),
                  "build_cpu": setup_cpu, "t_end": time.time()}))
"""


def _generate_django(root: Path, apps: int) -> None:
    """Write the same models as :func:`_generate` as Django apps: ``djcore`` (User) and ``djgenNNN``."""
    (root / "djcore").mkdir(parents=True)
    (root / "djcore" / "__init__.py").write_text("")
    (root / "djcore" / "models.py").write_text(textwrap.dedent("""\
        import uuid
        from django.db import models
        def _uuid():
            return str(uuid.uuid4())
        class User(models.Model):
            id = models.CharField(max_length=36, primary_key=True, default=_uuid)
            email = models.CharField(max_length=255, unique=True)
            username = models.CharField(max_length=100, unique=True)
            created_at = models.DateTimeField()
            updated_at = models.DateTimeField()
            class Meta:
                db_table = "users"
        """))
    for a in range(apps):
        app = f"djgen{a:03d}"
        (root / app).mkdir()
        (root / app / "__init__.py").write_text("")
        lines = ["from django.db import models", "from djcore.models import User, _uuid", ""]
        for m in range(MODELS_PER_APP):
            table = f"gen{a:03d}_thing{m}"
            lines += [
                f"class Gen{a:03d}Thing{m}(models.Model):",
                "    id = models.CharField(max_length=36, primary_key=True, default=_uuid)",
                f"    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name='{table}_rows')",
                "    title = models.CharField(max_length=200)",
                "    body = models.TextField(null=True)",
                "    amount = models.DecimalField(max_digits=12, decimal_places=2, null=True)",
                "    quantity = models.IntegerField(default=0, null=True)",
                "    active = models.BooleanField(default=True, null=True)",
                "    data = models.JSONField(null=True)",
                "    created_at = models.DateTimeField()",
                "    updated_at = models.DateTimeField()",
                "    class Meta:",
                f"        db_table = '{table}'",
                f"        indexes = [models.Index(fields=['user', 'title'], name='ix_{table}_ut')]",
                "",
            ]
        (root / app / "models.py").write_text("\n".join(lines))


def _probe(cmd: list[str], env: dict[str, str]) -> dict[str, float]:
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    ended = time.time()
    if out.returncode != 0:
        raise SystemExit(f"probe failed: {' '.join(cmd[:2])} ...\n{out.stderr}")
    probe: dict[str, float] = json.loads(out.stdout)
    probe["exit"] = ended - probe.pop("t_end")
    return probe


def _contender_envs(tmp: Path, sizes: list[int], make_home: bool) -> dict[tuple[str, int], dict[str, str]]:
    """Generate each size's apps (Timber and Django) under ``tmp``; return each contender's environment.

    Timber's sees only the generated apps and the kernel's, with ``tmp/home<N>`` as TIMBER_HOME
    (created when ``make_home``); Django's sees its generated project.
    """
    envs: dict[tuple[str, int], dict[str, str]] = {}
    pythonpath = os.environ.get("PYTHONPATH", "")
    for apps in sizes:
        root = tmp / f"apps{apps}"
        _generate(root, apps)
        _generate_django(root / "dj", apps)
        if make_home:
            (tmp / f"home{apps}").mkdir()
        envs[("timber", apps)] = {
            **_environ(), "TIMBER_DISABLE_APPS": "canopy,grove", "TIMBER_HOME": str(tmp / f"home{apps}"),
            "PYTHONPATH": os.pathsep.join([str(root), pythonpath])}
        envs[("django", apps)] = {**_environ(), "PYTHONPATH": os.pathsep.join([str(root / "dj"), pythonpath])}
    return envs


def bench_build(sizes: list[int], runs: int, with_django: bool) -> dict[tuple[str, int], dict[str, float]]:
    """Median figures per (contender, apps), rounds interleaved: each round runs every contender at every size."""
    contenders = ["timber", "timber, collector as before", "plain SQLAlchemy"] + (["Django"] if with_django else [])
    samples: dict[tuple[str, int], list[dict[str, float]]] = {(c, n): [] for n in sizes for c in contenders}
    with tempfile.TemporaryDirectory(prefix="timber-bench-build-") as tmp:
        envs = _contender_envs(Path(tmp), sizes, make_home=False)

        def run(contender: str, apps: int, r: int) -> dict[str, float]:
            db = Path(tmp) / f"{contender.replace(' ', '_').replace(',', '')}{apps}_{r}.sqlite"
            db.unlink(missing_ok=True)
            if contender.startswith("timber"):
                mode = "now" if contender == "timber" else "gc-as-before"
                return _probe([sys.executable, "-c", _INIT_PROBE, "every-app", f"sqlite:///{db}", mode],
                              envs[("timber", apps)])
            if contender == "plain SQLAlchemy":
                return _probe([sys.executable, "-c", _PLAIN_PROBE, str(apps), str(MODELS_PER_APP), f"sqlite:///{db}"],
                              _environ())
            return _probe([sys.executable, "-c", _DJANGO_PROBE, str(apps), str(db)], envs[("django", apps)])

        for contender, apps in samples:  # warm-up: .pyc files, TIMBER_HOME's record of validated files, OS caches
            run(contender, apps, -1)
        for r in range(runs):
            for contender, apps in samples:
                samples[(contender, apps)].append(run(contender, apps, r))
    return {key: {k: statistics.median(row[k] for row in rows) for k in rows[0]} for key, rows in samples.items()}


# (e): one app's start-up, by phase (CPU seconds). "YAML" is reading the models (unpickled from TIMBER_HOME
# when the model files are unchanged: the usual start), "kernel" the Kernel object (isolation, SQLite wall,
# vectors, cache, services), "schema check" the migration graph's check of the existing database,
# "start-up hooks" every app's timber_services/timber_startup; "imports" what the phases import on first use.
_APP_PROBE = """
import json, sys, time
import sqlalchemy.orm  # imported by every app anyway; the probe times initialize_timber itself
import timber_core
from timber_core import kernel as K
from timber_core.migrations import runner
phases = {}
def timed(name, owner, attr):
    fn = getattr(owner, attr)
    def run(*a, **k):
        s = time.process_time()
        try:
            return fn(*a, **k)
        finally:
            phases[name] = phases.get(name, 0.0) + time.process_time() - s
    setattr(owner, attr, run)
for name, owner, attr in (("discovery", K, "discover"), ("YAML", K, "_load_models"), ("tables", K, "build_tables"),
                          ("classes", K, "map_models"), ("schema", K, "_build_schema"), ("schema check", runner, "ensure_schema"),
                          ("start-up hooks", K, "_start_apps")):
    timed(name, owner, attr)
init = K.Kernel.__init__
def kernel_init(self, *a, **k):
    s = time.process_time()
    try:
        init(self, *a, **k)
    finally:
        phases["kernel"] = time.process_time() - s
K.Kernel.__init__ = kernel_init
app = None if sys.argv[1] == "-" else sys.argv[1]
start, cpu = time.perf_counter(), time.process_time()
kernel = timber_core.initialize_timber(app, database_url=sys.argv[2])
wall, cpu = time.perf_counter() - start, time.process_time() - cpu
phases["configure"] = phases.pop("schema") - phases["YAML"] - phases["tables"] - phases["classes"]
phases["rest"] = cpu - sum(phases.values())
mapped = len(kernel.models.mapped())
enter = 0.0
if app is not None:  # the first entry into another app maps its classes: what it costs then
    s = time.process_time()
    with timber_core.app_context("gen001"):
        pass
    enter = time.process_time() - s
print(json.dumps({"wall": wall, "cpu": cpu, "pause": 0.0, "models": len(kernel.models), "mapped": mapped,
                  "enter_other": enter, "build_cpu": 0.0, "phases": phases, "t_end": time.time()}))
"""


def bench_own_app(sizes: list[int], runs: int, with_django: bool) -> dict[tuple[str, int], dict[str, Any]]:
    """Medians per (contender, apps) for (e); rounds interleaved, fresh processes, migrated databases."""
    contenders = ["timber, one app", "timber, every app"] + (["Django setup()"] if with_django else [])
    samples: dict[tuple[str, int], list[dict[str, Any]]] = {(c, n): [] for n in sizes for c in contenders}
    with tempfile.TemporaryDirectory(prefix="timber-bench-own-app-") as tmp:
        # An existing TIMBER_HOME, as once Timber has been used there: it keeps the loaded models.
        envs = _contender_envs(Path(tmp), sizes, make_home=True)

        def run(contender: str, apps: int) -> dict[str, Any]:
            db = f"sqlite:///{Path(tmp) / f'timber{apps}.sqlite'}"  # one database per size, migrated by the warm-up
            if contender == "timber, one app":
                return _probe([sys.executable, "-c", _APP_PROBE, "gen000", db], envs[("timber", apps)])
            if contender == "timber, every app":
                return _probe([sys.executable, "-c", _APP_PROBE, "-", db], envs[("timber", apps)])
            return _probe([sys.executable, "-c", _DJANGO_PROBE, str(apps), str(Path(tmp) / "django.sqlite"), "setup-only"],
                          envs[("django", apps)])

        for key in samples:  # warm-up: .pyc files, TIMBER_HOME, the migrated database, OS caches
            run(*key)
        for _ in range(runs):
            for key in samples:
                samples[key].append(run(*key))
    out: dict[tuple[str, int], dict[str, Any]] = {}
    for key, rows in samples.items():
        fig: dict[str, Any] = {k: statistics.median(row[k] for row in rows) for k in ("wall", "cpu", "models")}
        fig["mapped"] = statistics.median(row.get("mapped", row["models"]) for row in rows)
        fig["enter_other"] = statistics.median(row.get("enter_other", 0.0) for row in rows)
        if "phases" in rows[0]:
            fig["phases"] = {p: statistics.median(row["phases"][p] for row in rows) for p in rows[0]["phases"]}
        out[key] = fig
    return out


def _report_own_app(sizes: list[int], fig: dict[tuple[str, int], dict[str, Any]]) -> None:
    names = sorted({c for c, _ in fig}, key=["timber, one app", "timber, every app", "Django setup()"].index)
    print(f"  {'contender':20s} {'apps':>4s} {'models':>6s} {'mapped':>6s} {'wall ms':>8s} {'CPU ms':>8s}")
    for apps in sizes:
        for name in names:
            f = fig[(name, apps)]
            print(f"  {name:20s} {apps:4d} {int(f['models']):6d} {int(f['mapped']):6d} {f['wall'] * 1000:8.1f} "
                  f"{f['cpu'] * 1000:8.1f}")
    for apps in sizes:
        one, every = fig[("timber, one app", apps)], fig[("timber, every app", apps)]
        line = f"  {apps:3d} apps: one app / every app: CPU {one['cpu'] / every['cpu']:.2f}x, wall {one['wall'] / every['wall']:.2f}x"
        if ("Django setup()", apps) in fig:
            d = fig[("Django setup()", apps)]
            line += (f"; one app / Django setup() for every model: CPU {one['cpu'] / d['cpu']:.2f}x, "
                     f"wall {one['wall'] / d['wall']:.2f}x (target <= 0.25x)")
        print(line)
    print("  one app's kernel, first entry into another app (app_context('gen001'), mapping its 10 classes), CPU ms: "
          + ", ".join(f"{apps} apps {fig[('timber, one app', apps)]['enter_other'] * 1000:.1f}" for apps in sizes))
    order = ["discovery", "YAML", "tables", "classes", "configure", "kernel", "schema check", "start-up hooks", "rest"]
    print("  one app's phases, CPU ms: " + ", ".join(order))
    for apps in sizes:
        ph = fig[("timber, one app", apps)]["phases"]
        print(f"  {apps:3d} apps: " + ", ".join(f"{ph.get(p, 0.0) * 1000:.0f}" for p in order))
    if len(sizes) > 1:
        lo, hi = fig[("timber, one app", sizes[0])], fig[("timber, one app", sizes[-1])]
        print(f"  flatness: one app's CPU at {sizes[-1]} apps / at {sizes[0]} apps: {hi['cpu'] / lo['cpu']:.2f}x "
              f"(target within 10 %)")


def bench_sweep_cli(sizes: list[int], runs: int) -> dict[int, tuple[float, float]]:
    """``timber apps list`` with N generated apps installed beside the bare import: median ms of each, interleaved."""
    timber = Path(sys.executable).with_name("timber")
    timber_cmd = [str(timber), "apps", "list"] if timber.exists() else [
        sys.executable, "-c", "import sys; sys.argv[0]='timber'; from timber_core.cli import main; main()", "apps", "list"]
    bare = [sys.executable, "-c", "import importlib.metadata"]
    with tempfile.TemporaryDirectory(prefix="timber-bench-sweep-") as tmp:
        envs = {}
        for apps in sizes:
            root = Path(tmp) / f"apps{apps}"
            _generate(root, apps)
            (Path(tmp) / f"home{apps}").mkdir()
            envs[apps] = {**_environ(), "TIMBER_DISABLE_APPS": "canopy,grove", "TIMBER_HOME": str(Path(tmp) / f"home{apps}"),
                          "PYTHONPATH": os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")])}
        times: dict[tuple[str, int], list[float]] = {}
        for apps in sizes:  # warm-up, which also writes TIMBER_HOME's record of validated files
            _wall(bare, envs[apps])
            _wall(timber_cmd, envs[apps])
        for _ in range(runs):
            for apps in sizes:
                for name, cmd in (("bare", bare), ("timber", timber_cmd)):
                    times.setdefault((name, apps), []).append(_wall(cmd, envs[apps]))
    return {apps: (statistics.median(times[("bare", apps)]) * 1000, statistics.median(times[("timber", apps)]) * 1000)
            for apps in sizes}


# (d): building the classes in one process, Timber's build_models against plain declarative classes, rounds
# interleaved, the collector disabled for both (start-up pauses it): CPU of classes and of registry.configure().
_BUILD_AB_PROBE = _PLAIN_MODELS + """
import gc, json, statistics, sys, time
from timber_core.containment import load_contained
from timber_core.plugins import discover
from timber_core.schema.build import build_models
apps, _pm = discover()
schema = load_contained(apps)
napps, rounds = int(sys.argv[1]), int(sys.argv[2])
keep = []
def plain():
    base, k = plain_models(napps, 10)
    mid = time.process_time()
    base.registry.configure()
    keep.append(k)
    return mid, len(k)
def timber():
    base, classes = build_models(schema.models)
    mid = time.process_time()
    base.registry.configure()
    keep.append(classes)
    return mid, len(classes)
gc.disable()
rows = {"plain": [], "timber": []}
for r in range(rounds):
    for name, fn in (("plain", plain), ("timber", timber)):
        s = time.process_time(); mid, n = fn(); e = time.process_time()
        rows[name].append((mid - s, e - mid, n))
print(json.dumps({name: {"classes": statistics.median(x[0] for x in v), "configure": statistics.median(x[1] for x in v),
                         "total": statistics.median(x[0] + x[1] for x in v), "models": v[0][2]}
                  for name, v in rows.items()}))
"""


def bench_build_in_process(sizes: list[int], rounds: int) -> dict[int, dict[str, dict[str, float]]]:
    """Per size: median CPU seconds of building Timber's classes and plain SQLAlchemy's (classes, configure, total)."""
    out = {}
    with tempfile.TemporaryDirectory(prefix="timber-bench-ab-") as tmp:
        for apps in sizes:
            root = Path(tmp) / f"apps{apps}"
            _generate(root, apps)
            env = {**_environ(), "TIMBER_DISABLE_APPS": "canopy,grove", "TIMBER_HOME": str(Path(tmp) / "home"),
                   "PYTHONPATH": os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")])}
            res = subprocess.run([sys.executable, "-c", _BUILD_AB_PROBE, str(apps), str(rounds)],
                                 capture_output=True, text=True, env=env, check=False)
            if res.returncode != 0:
                raise SystemExit(f"the in-process build comparison failed with {apps} apps:\n{res.stderr}")
            out[apps] = json.loads(res.stdout)
    return out


def _report_build(sizes: list[int], fig: dict[tuple[str, int], dict[str, float]]) -> None:
    order = ["timber", "timber, collector as before", "plain SQLAlchemy", "Django"]
    names = sorted({c for c, _ in fig}, key=order.index)
    print(f"  {'contender':30s} {'apps':>4s} {'models':>6s} {'wall ms':>8s} {'CPU ms':>8s} {'ms/model':>8s} "
          f"{'build CPU':>9s} {'gc pause':>8s} {'exit ms':>8s}")
    for apps in sizes:
        for name in names:
            f = fig[(name, apps)]
            print(f"  {name:30s} {apps:4d} {int(f['models']):6d} {f['wall'] * 1000:8.1f} {f['cpu'] * 1000:8.1f} "
                  f"{f['cpu'] * 1000 / f['models']:8.2f} {f['build_cpu'] * 1000:9.1f} {f['pause'] * 1000:8.1f} "
                  f"{f['exit'] * 1000:8.1f}")
    print("  (ms/model: CPU; build CPU: classes + registry.configure() for Timber and plain SQLAlchemy, setup() for Django)")
    for apps in sizes:
        t, b, p = fig[("timber", apps)], fig[("timber, collector as before", apps)], fig[("plain SQLAlchemy", apps)]
        line = (f"  {apps:3d} apps: timber / plain SQLAlchemy: start-up CPU {t['cpu'] / p['cpu']:.2f}x, "
                f"building the classes (CPU) {t['build_cpu'] / p['build_cpu']:.2f}x "
                f"[classes {t['classes_cpu'] * 1000:.0f} vs {p['classes_cpu'] * 1000:.0f} ms, "
                f"configure {t['configure_cpu'] * 1000:.0f} vs {p['configure_cpu'] * 1000:.0f} ms]; "
                f"timber / collector as before: CPU {t['cpu'] / b['cpu']:.2f}x, wall {t['wall'] / b['wall']:.2f}x")
        if ("Django", apps) in fig:
            d = fig[("Django", apps)]
            line += f"; timber / Django: wall {t['wall'] / d['wall']:.2f}x, CPU {t['cpu'] / d['cpu']:.2f}x"
        print(line)
    for apps in sizes:
        t = fig[("timber", apps)]
        rest = t["cpu"] - t["yaml_cpu"] - t["classes_cpu"] - t["configure_cpu"]
        print(f"  {apps:3d} apps: timber's phases (CPU ms): YAML {t['yaml_cpu'] * 1000:.0f}, classes "
              f"{t['classes_cpu'] * 1000:.0f}, configure {t['configure_cpu'] * 1000:.0f}, the rest (discovery, "
              f"migration graph and tables, start-up hooks) {rest * 1000:.0f}")
    if len(sizes) > 1:
        lo, hi = fig[("timber", sizes[-2])], fig[("timber", sizes[-1])]
        lin = (hi["cpu"] / hi["models"]) / (lo["cpu"] / lo["models"])
        print(f"  linearity: timber CPU ms/model at {int(hi['models'])} models / at {int(lo['models'])} models: {lin:.2f}")


def _with_django(no_django: bool) -> bool:
    """Whether Django is the comparator: asked for (no ``--no-django``) and installed (said when it is not)."""
    if no_django:
        return False
    try:
        import django  # noqa: F401
    except ModuleNotFoundError:
        print("  Django is not installed (nox -s bench installs it): no Django column")
        return False
    return True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=15, help="runs per command for (a) and (b), interleaved (default 15)")
    parser.add_argument("--init-runs", type=int, default=3, help="rounds of fresh processes for (c) (default 3)")
    parser.add_argument("--sizes", default="2,10,50,200",
                        help="installed generated apps for (b) and (c) (default 2,10,50,200)")
    parser.add_argument("--no-datasette", action="store_true", help="skip the datasette column")
    parser.add_argument("--no-django", action="store_true", help="skip the Django contender of (c)")
    parser.add_argument("--ab-rounds", type=int, default=5, help="interleaved rounds in one process for (d) (default 5)")
    parser.add_argument("--only", choices=["a", "b", "c", "d", "e"], action="append",
                        help="run only these parts (repeatable)")
    args = parser.parse_args()
    sizes = [int(n) for n in args.sizes.split(",")]
    parts = set(args.only or ["a", "b", "c", "d", "e"])

    print(f"machine: {platform.platform()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
          f"load average {os.getloadavg()[0]:.1f}")
    if "a" in parts:
        print(f"\n(a) CLI start-up, median of {args.runs} interleaved runs")
        cli = bench_cli(args.runs, not args.no_datasette)
        base = float(cli["python -c 'import importlib.metadata'"])
        for name, ms in cli.items():
            if name != "datasette_note":
                print(f"  {name:40s} {float(ms):7.1f} ms  {float(ms) / base:5.2f}x")
        ratio = float(cli["timber apps list"]) / base
        print(f"  target timber apps list <= 2x bare import: {'met' if ratio <= 2 else 'MISSED'} ({ratio:.2f}x)")

    if "b" in parts:
        print(f"\n(b) timber apps list with N generated apps installed, median of {args.runs} interleaved runs")
        for apps, (bare, timber) in bench_sweep_cli(sizes, args.runs).items():
            target = 2 if apps <= 50 else 3
            print(f"  {apps:3d} apps: bare import {bare:6.1f} ms, timber apps list {timber:6.1f} ms: "
                  f"{timber / bare:.2f}x (target <= {target}x: {'met' if timber / bare <= target else 'MISSED'})")

    if "c" in parts:
        print(f"\n(c) building every model, {MODELS_PER_APP} per app, medians of {args.init_runs} interleaved rounds "
              f"of fresh processes (SQLite)")
        _report_build(sizes, bench_build(sizes, args.init_runs, _with_django(args.no_django)))

    if "d" in parts:
        print(f"\n(d) building the classes in one process, collector off, CPU medians of {args.ab_rounds} interleaved "
              f"rounds: Timber's build_models + configure vs plain SQLAlchemy declarative classes + configure")
        for apps, fig in bench_build_in_process([n for n in sizes if n >= 10], args.ab_rounds).items():
            t, p = fig["timber"], fig["plain"]
            print(f"  {apps:3d} apps: timber {t['models']} models {t['classes'] * 1000:.0f} + {t['configure'] * 1000:.0f} "
                  f"= {t['total'] * 1000:.0f} ms ({t['total'] * 1000 / t['models']:.2f} ms/model); plain {p['models']} "
                  f"models {p['classes'] * 1000:.0f} + {p['configure'] * 1000:.0f} = {p['total'] * 1000:.0f} ms "
                  f"({p['total'] * 1000 / p['models']:.2f} ms/model): {t['total'] / p['total']:.2f}x "
                  f"(target <= 1.0x: {'met' if t['total'] <= p['total'] else 'MISSED'})")

    if "e" in parts:
        print(f"\n(e) one app's start-up (initialize_timber(app_name='gen000')) with N apps installed, migrated SQLite "
              f"database, medians of {args.init_runs} interleaved rounds of fresh processes")
        _report_own_app(sizes, bench_own_app(sizes, args.init_runs, _with_django(args.no_django)))


if __name__ == "__main__":
    main()
