"""The ``timber vectors`` commands: ``register(cli)`` adds them.

``timber vectors sync``, ``timber vectors worker [--interval S] [--once]``,
``timber vectors status [--json]``, ``timber vectors reindex [--model M]``.

Cheap to import: click only (``timber apps list`` must never import SQLAlchemy, fastembed
or Qdrant). Each command initializes the kernel itself (app from ``--app``, else
``TIMBER_APP``, else the first installed app; database from ``DATABASE_URL``; store from
``QDRANT_URL``, else the embedded one under ``TIMBER_HOME``) and works in the platform
context. The embedded store belongs to one process: run these while no app process has
it open, or use a Qdrant server (``QDRANT_URL``).
"""

from __future__ import annotations

import json
import signal
import threading
import time
from typing import Any

import click

from .._cli_support import describe as _describe
from .._cli_support import fail as _fail
from .._cli_support import logged as _logged
from .._cli_support import kernel_for_command

__all__ = ["register"]


def _kernel(app: str | None) -> Any:
    """Initialize Timber as ``app`` (or TIMBER_APP, or the first installed app); refuse when vector search is off."""
    kernel = kernel_for_command(app)
    if not kernel.vectors.enabled:
        kernel.close()
        raise click.ClickException("vector search is disabled (ENABLE_VECTOR_SEARCH=false); nothing to do")
    return kernel


def _sync_line(result: Any) -> str:
    line = (f"applied {result.applied}, failed {result.failed} "
            f"(points upserted {result.upserted}, deleted {result.deleted})")
    return line + "".join(f"\n  error: {e}" for e in result.errors)


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

        kernel = _kernel(app)
        try:
            with platform_context():
                result = kernel.vectors.drain(due_only=False)
        except Exception as exc:
            raise _fail(exc) from None
        finally:
            kernel.close()
        click.echo(_sync_line(result))
        if result.failed:
            raise SystemExit(1)

    @vectors.command("worker")
    @click.option("--app", "app", default=None, help="Initialize as this app (default: TIMBER_APP).")
    @click.option("--interval", type=click.FloatRange(min=0.01), default=1.0, show_default=True,
                  help="Seconds between drains.")
    @click.option("--once", is_flag=True, help="Drain once (due work only) and exit.")
    def worker_cmd(app: str | None, interval: float, once: bool) -> None:
        """Drain due work every INTERVAL seconds until SIGINT/SIGTERM (retries wait out their backoff)."""
        from ..context import platform_context

        stop = threading.Event()
        previous = {}
        if not once:
            for sig in (signal.SIGINT, signal.SIGTERM):
                previous[sig] = signal.signal(sig, lambda *_: stop.set())
        kernel = _kernel(app)
        total_applied = total_failed = 0
        try:
            with platform_context():
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
            kernel.close()
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

        kernel = _kernel(app)
        runtime = kernel.vectors
        try:
            with platform_context():
                with kernel.db.connection() as conn:
                    outbox = summary(conn, runtime.table)
                store_error = None
                try:
                    existing = set(runtime.store.collections())
                    counts = {m.collection: runtime.store.count(m.collection) if m.collection in existing else 0
                              for m in runtime.models.values()}
                except Exception as exc:  # status must still show the outbox when the store is down
                    store_error, counts = f"{type(exc).__name__}: {exc}", {}
        except Exception as exc:
            raise _fail(exc) from None
        finally:
            kernel.close()
        collections = [
            {"collection": m.collection, "app": m.app, "model": m.name, "content_field": m.content_column,
             "embedding_model": m.embedding_model, "points": counts.get(m.collection),
             "pending": outbox["by_model"].get(m.name, {}).get("pending", 0),
             "failed": outbox["by_model"].get(m.name, {}).get("failed", 0)}
            for m in sorted(runtime.models.values(), key=lambda m: m.collection)
        ]
        report = {"store": repr(runtime._store) if runtime._store is not None else None,
                  "drain": "inline" if runtime.inline else "off",
                  "store_error": store_error, "collections": collections,
                  "pending": outbox["pending"], "failed": outbox["failed"], "errors": outbox["errors"]}
        if as_json:
            click.echo(json.dumps(report, indent=2))
            return
        for c in collections:
            points = "?" if c["points"] is None else str(c["points"])
            click.echo(f"{c['collection']:<20} app {c['app']:<8} model {c['model']:<16} points {points:<7} "
                       f"pending {c['pending']:<5} failed {c['failed']}")
        click.echo(f"outbox: {outbox['pending']} pending, {outbox['failed']} failed")
        if store_error:
            click.echo(f"store unavailable: {store_error}", err=True)
        for e in outbox["errors"]:
            click.echo(f"  {e['model']} {e['row_id']} ({e['op']}, {e['attempts']} attempts, next "
                       f"{e['next_attempt_at']}): {e['last_error']}")

    @vectors.command("reindex")
    @click.option("--app", "app", default=None, help="Initialize as this app (default: TIMBER_APP).")
    @click.option("--model", "models", multiple=True, help="Only this model's collection (repeatable).")
    def reindex_cmd(app: str | None, models: tuple[str, ...]) -> None:
        """Drop and rebuild collections from the database (every vector model, or --model M)."""
        from ..context import platform_context
        from .drain import reindex

        kernel = _kernel(app)
        try:
            with platform_context():
                written = reindex(kernel.vectors, list(models) or None)
        except Exception as exc:
            raise _fail(exc) from None
        finally:
            kernel.close()
        for collection, n in written.items():
            click.echo(f"reindexed {collection}: {n} points")
