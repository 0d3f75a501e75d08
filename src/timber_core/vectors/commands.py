"""The ``timber vectors`` commands: ``register(cli)`` adds them.

``timber vectors sync``, ``timber vectors worker [--interval S] [--once]``,
``timber vectors status [--json]``, ``timber vectors verify [--repair] [--model M] [--json]``,
``timber vectors reindex [--model M]``.

Cheap to import: click only (``timber apps list`` must never import SQLAlchemy, fastembed
or Qdrant). Each command initializes the kernel itself (app from ``--app``, else
``TIMBER_APP``, else no app; database from ``DATABASE_URL``; store from
``QDRANT_URL``, else the embedded one under ``TIMBER_HOME``) and works in the platform
context. The default embedded store is shared by every process; the Edge store
(``TIMBER_VECTOR_STORE=edge``) belongs to one process at a time.
"""

from __future__ import annotations

import contextlib
import json
import math
import signal
import threading
import time
from collections.abc import Iterator
from typing import Any

import click

from .._cli_support import command_kernel, table
from .._cli_support import describe as _describe
from .._cli_support import fail as _fail
from .._cli_support import logged as _logged

__all__ = ["register"]


class _Seconds(click.ParamType):
    """A finite number of seconds within ``[low, high]``: nan, inf, 1e400 and negatives are usage errors."""

    name = "seconds"

    def __init__(self, low: float, high: float) -> None:
        self.low, self.high = low, high

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> float:
        try:
            seconds = float(value)
        except (TypeError, ValueError):
            seconds = math.nan
        if not (math.isfinite(seconds) and self.low <= seconds <= self.high):
            self.fail(f"{str(value)[:40]!r} is not a number of seconds from {self.low:g} to {self.high:g}.", param, ctx)
        return seconds


#: The worker's interval: at least 10 ms (a busy loop otherwise), at most a day.
INTERVAL = _Seconds(0.01, 86_400)


@contextlib.contextmanager
def _vector_kernel(app: str | None) -> Iterator[Any]:
    """:func:`command_kernel` as ``app`` (or TIMBER_APP, or no app); refuse when vector search is off."""
    with command_kernel(app) as kernel:
        if not kernel.vectors.enabled:
            raise click.ClickException("vector search is disabled (ENABLE_VECTOR_SEARCH=false); nothing to do")
        yield kernel


def _sync_line(result: Any) -> str:
    line = (f"applied {result.applied}, failed {result.failed} "
            f"(points upserted {result.upserted}, deleted {result.deleted})")
    return line + "".join(f"\n  Error: {e}" for e in result.errors)


def register(cli: click.Group) -> None:
    """Add the ``vectors`` group to the ``timber`` group ``cli``."""

    @cli.group("vectors")
    def vectors() -> None:
        """Vector search: drain the outbox, run the worker, show status, rebuild collections."""

    @vectors.command("sync")
    @click.option("--app", "app", default=None, help="Initialize as this app (default: TIMBER_APP).")
    def sync_cmd(app: str | None) -> None:
        """Apply every pending index update now, failed ones included; exit 1 if any fails."""
        from ..context import platform_context

        with _vector_kernel(app) as kernel, platform_context():
            result = kernel.vectors.drain(due_only=False)
        click.echo(_sync_line(result))
        if result.failed:
            raise SystemExit(1)

    @vectors.command("worker")
    @click.option("--app", "app", default=None, help="Initialize as this app (default: TIMBER_APP).")
    @click.option("--interval", type=INTERVAL, default=1.0, show_default=True,
                  help="Seconds between drains, from 0.01 to 86400.")
    @click.option("--once", is_flag=True, help="Drain once (due work only) and exit.")
    def worker_cmd(app: str | None, interval: float, once: bool) -> None:
        """Drain due work every INTERVAL seconds until SIGINT/SIGTERM (retries wait out their backoff)."""
        from ..context import platform_context

        stop = threading.Event()
        previous = {}
        if not once:
            for sig in (signal.SIGINT, signal.SIGTERM):
                previous[sig] = signal.signal(sig, lambda *_: stop.set())
        total_applied = total_failed = 0
        try:
            with _vector_kernel(app) as kernel, platform_context():
                while True:
                    started = time.monotonic()
                    try:
                        result = kernel.vectors.drain(due_only=True)
                    except Exception as exc:  # the database itself is unreachable: say so, keep going
                        if once:
                            raise _fail(exc) from None
                        if not _logged(exc):  # a lost connection: the kernel logged its one line
                            click.echo(f"drain failed: {_describe(exc)}", err=True)
                    else:
                        total_applied += result.applied
                        total_failed += result.failed
                        if result.applied or result.failed or once:
                            click.echo(_sync_line(result))
                    if once or stop.wait(max(0.0, interval - (time.monotonic() - started))):
                        break
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        if not once:
            click.echo(f"worker stopped: applied {total_applied}, failed {total_failed}")

    @vectors.command("status")
    @click.option("--app", "app", default=None, help="Initialize as this app (default: TIMBER_APP).")
    @click.option("--json", "as_json", is_flag=True, help="Print JSON.")
    def status_cmd(app: str | None, as_json: bool) -> None:
        """Show the vector collections, their point counts, and pending or failed outbox work."""
        from ..context import platform_context
        from .outbox import summary
        from .verify import count_rows

        with _vector_kernel(app) as kernel, platform_context():
            runtime = kernel.vectors
            with kernel.db.connection() as conn:
                outbox = summary(conn, runtime.table)
            rows = {m.collection: count_rows(runtime, m) for m in runtime.models.values()}
            store_error = None
            try:
                existing = set(runtime.store.collections())
                counts = {m.collection: runtime.store.count(m.collection) if m.collection in existing else 0
                          for m in runtime.models.values()}
            except Exception as exc:  # status must still show the outbox when the store is down
                store_error, counts = f"{type(exc).__name__}: {exc}", {}
        collections = [
            {"collection": m.collection, "app": m.app, "model": m.name, "content_field": m.content_column,
             "embedding_model": m.embedding_model, "rows": rows[m.collection], "points": counts.get(m.collection),
             "pending": outbox["by_model"].get(m.name, {}).get("pending", 0),
             "failed": outbox["by_model"].get(m.name, {}).get("failed", 0)}
            for m in sorted(runtime.models.values(), key=lambda m: m.collection)
        ]
        for c in collections:  # rows of a dropped table count as none: their points are orphans
            c["differs"] = c["points"] is not None and (c["rows"] or 0) != c["points"]
        report = {"store": repr(runtime._store) if runtime._store is not None else None,
                  "drain": "inline" if runtime.inline else "off",
                  "store_error": store_error, "collections": collections,
                  "pending": outbox["pending"], "failed": outbox["failed"], "errors": outbox["errors"]}
        if as_json:
            click.echo(json.dumps(report, indent=2))
            return
        click.echo(table(["collection", "app", "model", "rows", "points", "pending", "failed", "index"], [
            [c["collection"], c["app"], c["model"], "-" if c["rows"] is None else str(c["rows"]),
             "?" if c["points"] is None else str(c["points"]), str(c["pending"]), str(c["failed"]),
             "DIFFERS" if c["differs"] else "ok"]
            for c in collections
        ]))
        click.echo(f"outbox: {outbox['pending']} pending, {outbox['failed']} failed")
        differing = [c["collection"] for c in collections if c["differs"]]
        if differing:
            click.echo(f"index differs from the database in {', '.join(differing)}"
                       + (" (pending work may close the gap: `timber vectors sync`)" if outbox["pending"] else "")
                       + "; compare ids and content with `timber vectors verify`, fix with"
                       " `timber vectors verify --repair`")
        if store_error:
            click.echo(f"store unavailable: {store_error}", err=True)
        for e in outbox["errors"]:
            click.echo(f"  {e['model']} {e['row_id']} ({e['op']}, {e['attempts']} attempts, next "
                       f"{e['next_attempt_at']}): {e['last_error']}")

    @vectors.command("verify")
    @click.option("--app", "app", default=None, help="Initialize as this app (default: TIMBER_APP).")
    @click.option("--model", "models", multiple=True, help="Only this model's collection (repeatable).")
    @click.option("--repair", is_flag=True, help="Write missing and stale points, delete orphans.")
    @click.option("--json", "as_json", is_flag=True, help="Print JSON.")
    def verify_cmd(app: str | None, models: tuple[str, ...], repair: bool, as_json: bool) -> None:
        """Compare every collection with its table by id and content; exit 1 while they differ."""
        from ..context import platform_context
        from .verify import compare
        from .verify import repair as repair_drift

        with _vector_kernel(app) as kernel, platform_context():
            runtime = kernel.vectors
            chosen = [runtime.model(n) for n in models] or sorted(runtime.models.values(), key=lambda m: m.collection)
            drifts = [compare(runtime, m) for m in chosen]
            repaired = []
            if repair:
                for drift in drifts:
                    if not drift.clean:
                        repair_drift(runtime, drift)
                        repaired.append(drift.collection)
                after = [compare(runtime, m) for m in chosen]
        if as_json:
            click.echo(json.dumps([d.as_dict() for d in drifts], indent=2))
        else:
            click.echo(table(["collection", "rows", "points", "state"], [
                [d.collection, str(d.rows), str(d.points),
                 ("ok" if d.clean else f"{len(d.missing)} missing, {len(d.orphans)} orphan(s), {len(d.stale)} stale")
                 + ("" if d.table_exists else " (table not in the database)")]
                for d in drifts
            ]))
            for name in repaired:
                click.echo(f"repaired {name}")
        final = after if repair else drifts
        if any(not d.clean for d in final):
            if not repair and not as_json:
                click.echo("run `timber vectors verify --repair` to make the index equal the database", err=True)
            raise SystemExit(1)

    @vectors.command("reindex")
    @click.option("--app", "app", default=None, help="Initialize as this app (default: TIMBER_APP).")
    @click.option("--model", "models", multiple=True, help="Only this model's collection (repeatable).")
    def reindex_cmd(app: str | None, models: tuple[str, ...]) -> None:
        """Drop and rebuild collections from the database (every vector model, or --model M)."""
        from ..context import platform_context
        from .drain import reindex

        with _vector_kernel(app) as kernel, platform_context():
            written = reindex(kernel.vectors, list(models) or None)
        for collection, n in written.items():
            click.echo(f"reindexed {collection}: {n} points")
