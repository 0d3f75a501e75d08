"""Canopy's ``timber`` commands. Imports click only: the database is reached inside each command."""

from __future__ import annotations

import click

__all__ = ["register"]


def register(cli: click.Group) -> None:
    """Add ``timber canopy-orders`` to the ``timber`` group ``cli``."""

    @cli.command("canopy-orders")
    @click.argument("email")
    @click.option("--status", type=click.Choice(["pending", "filled", "cancelled"]), default=None,
                  help="Only orders of this status.")
    def canopy_orders(email: str, status: str | None) -> None:
        """List the Canopy orders of the user with EMAIL, newest first."""
        from timber_core.cli import app_kernel
        from timber_core.services.persistence import user_service

        with app_kernel("canopy") as kernel:
            user = user_service.get_user_by_email(email)
            if user is None:
                raise click.ClickException(f"no user with email {email!r}")
            orders = kernel.services["orders"].get_user_orders(user.id, status=status)
            for o in orders:
                price = "market" if o.price is None else f"{o.price}"
                click.echo(f"{o.id}  {o.symbol:<6} {o.order_type:<10} {o.quantity:>6} @ {price:<10} {o.status}")
            click.echo(f"{len(orders)} order(s) of {email}")
