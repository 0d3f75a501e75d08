"""The ``timber cache`` commands: ``register(cli)`` adds them.

``timber cache stats [--json]``: the cache's backend and its counters per namespace. With
Redis, the hits and misses every process counted there; in-process, each process counts
its own (a web process shows them in ``GET /health``), so this command says so.

Cheap to import: click only.
"""

from __future__ import annotations

import json

import click

from .._cli_support import command_kernel, table

__all__ = ["register"]


def register(cli: click.Group) -> None:
    """Add the ``cache`` group to the ``timber`` group ``cli``."""

    @cli.group("cache")
    def cache_group() -> None:
        """The shared cache: in-process by default, Redis with REDIS_URL."""

    @cache_group.command("stats")
    @click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
    def stats_cmd(as_json: bool) -> None:
        """Show the cache's backend and its hits and misses per namespace (app)."""
        with command_kernel(None) as kernel:
            cache = kernel.cache
            where = cache.where()
            if not cache.enabled:
                shared = None
                why = ("TIMBER_CACHE=false" if kernel.config.ENABLE_CACHE is False
                       else "a server database without REDIS_URL: set REDIS_URL, or TIMBER_CACHE=true on one machine")
                note = f"the cache is off ({why}): every read goes to the database"
            elif cache.backend_name == "redis":
                from ._redis import CacheUnavailable

                try:
                    shared = cache.shared_stats()
                except CacheUnavailable as exc:
                    raise click.ClickException(
                        f"the cache's {where} does not answer ({exc}); start it or fix REDIS_URL") from None
                note = None
            else:
                shared = None
                note = ("the in-process cache counts in each process: read a running app's counters in its "
                        "GET /health, or set REDIS_URL to share the cache and its counters")
        if as_json:
            click.echo(json.dumps({"backend": cache.backend_name, "where": where, "enabled": cache.enabled,
                                   "namespaces": shared, "note": note}, sort_keys=True))
            return
        click.echo(f"backend: {cache.backend_name} ({where})")
        if note is not None:
            click.echo(f"Warning: {note}", err=True)
            return
        assert shared is not None
        rows = [[ns, str(c["hits"]), str(c["misses"])] for ns, c in shared.items()]
        click.echo(table(["namespace", "hits", "misses"], rows) if rows else "no lookups counted yet")
