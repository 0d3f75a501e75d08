"""The ``timber keys`` commands: ``register(cli)`` adds them.

``timber keys generate`` prints a new encryption key as its last line; ``timber keys rotate
[--batch-size N]`` re-encrypts every encrypted column of every app under the newest key
(:func:`timber_core.encryption.rotate`), one progress line per batch.

Cheap to import: click only. ``rotate`` initializes the kernel with no app (database from
``DATABASE_URL``, keys from ``TIMBER_ENCRYPTION_KEYS`` or the key file) and works in the
platform context.
"""

from __future__ import annotations

from typing import Any

import click

from .._cli_support import command_kernel

__all__ = ["register"]


def register(cli: click.Group) -> None:
    """Add the ``keys`` group to the ``timber`` group ``cli``."""

    @cli.group("keys")
    def keys() -> None:
        """Field encryption keys: make one, re-encrypt every encrypted column under the newest."""

    @keys.command("generate")
    def generate() -> None:
        """Print a new encryption key (its last line), to put first in TIMBER_ENCRYPTION_KEYS."""
        from .keys import generate_key

        click.echo("# New encryption key: put it first in TIMBER_ENCRYPTION_KEYS (newest first, keep the old ones "
                   "after it), restart the apps, then run `timber keys rotate`.")
        click.echo(generate_key())

    @keys.command("rotate")
    @click.option("--batch-size", type=click.IntRange(1, 100_000), default=500, show_default=True,
                  help="Rows re-encrypted per transaction.")
    def rotate_command(batch_size: int) -> None:
        """Re-encrypt every encrypted column of every app under the newest key (resumable)."""
        from .rotation import rotate

        def show(tally: Any) -> None:
            click.echo(f"{tally.column.app} {tally.column.table}.{tally.column.column}: "
                       f"{tally.seen}/{tally.total} rows ({tally.rotated} re-encrypted, {tally.current} already current)")

        with command_kernel(None, environment=False, timber_errors="plain") as kernel:
            tallies = rotate(kernel, batch_size=batch_size, progress=show)
        rotated = sum(t.rotated for t in tallies)
        current = sum(t.current for t in tallies)
        click.echo(f"rotated {rotated} values in {len(tallies)} encrypted columns ({current} already under the "
                   f"newest key); the older keys can now be removed from TIMBER_ENCRYPTION_KEYS")
