"""What ``alembic_version`` records, including revisions the installed code does not have.

The problem: Alembic reads the applied heads from ``alembic_version`` and stops with
``Can't locate revision identified by 'portfolio_0001'`` when one of them is not in the
graph, i.e. when the app that wrote it is uninstalled, disabled (``TIMBER_DISABLE_APPS``),
broken, or installed in an older version than the one that migrated the database. One
app's revision then took every app down.

What is done: around every Alembic run (in the migration's one transaction, see
:mod:`.transaction`, so a crash leaves the table as it was) :func:`set_aside` takes the
rows of unknown revisions out of ``alembic_version``, puts in their place the known
revisions they stand on, lets Alembic run on the known graph, then puts the unknown
rows back (dropping the known revisions they imply again). Reads (status, check,
``ensure_schema``'s fast path, the doctor) use :func:`read`, which does the same
without writing.

Why a table of our own: Alembic keeps only heads, and a revision reached through
``depends_on`` is collapsed out of ``alembic_version``. ``portfolio_0001`` depends on the
kernel's ``timber_0004``; were that the kernel's head, once it is applied the table would hold
``canopy_0002, grove_0002, portfolio_0001`` and no kernel revision at all: removing the unknown row
alone would make Alembic believe the kernel is at base and run ``timber_0001`` again.
The ancestors of a revision whose file is gone cannot be read from the graph, so the
runner records them while it still can: ``timber_revisions`` holds, for every applied
revision, its app and its parents (down revision and ``depends_on``). It is Timber's
bookkeeping beside ``alembic_version`` (created the same way, by the migration login,
not a model of any app; like it, readable by every login on PostgreSQL and not
writable by apps on SQLite, see :mod:`timber_core.sqlite_wall`), and :func:`record`
rewrites it after every upgrade or downgrade in the same transaction. A database
migrated before this table existed gets it filled on its next ``timber migrate``; an
unknown revision applied before that has no record, and a migration is then refused
with the fix (install the app's version that has it and migrate once); reads still
report it. A downgrade that would take away what an unknown revision stands on is
refused too (its app is not there to go down first).

Why the runner creates that table rather than a kernel revision: it is bookkeeping
about revisions, written around every Alembic run like ``alembic_version``, and must
outlive any of them (a kernel revision's table would be dropped by ``timber downgrade
--app timber --all base`` while an uninstalled app's rows still need it).

The app of an unknown revision is the one recorded, else the ``<app>_NNNN`` prefix of
its id (the ids ``create-migration --rev-id`` is documented to take), else unknown.
An unknown revision of an app that is installed means its distribution was downgraded:
that app is left out of upgrades (:func:`excluded_apps`) and cannot start; the others can.
"""

from __future__ import annotations

import contextlib
import dataclasses
import re
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Column, MetaData, String, Table, delete, inspect, insert, select, text

from ..errors import ConfigurationError

if TYPE_CHECKING:  # pragma: no cover
    from ..kernel import Kernel

__all__ = ["TABLE", "Unknown", "Applied", "read", "set_aside", "set_rows", "record", "excluded_apps",
           "wanted_heads"]

#: Timber's record of every applied revision's app and parents (see the module docstring).
TABLE = "timber_revisions"

_meta = MetaData()
_table = Table(
    TABLE, _meta,
    Column("revision", String(255), primary_key=True),
    Column("app", String(100), nullable=False),
    Column("parents", String(2000), nullable=False),  # space-separated revision ids
)
_ID = re.compile(r"^([a-z][a-z0-9_]*?)_\d+$")


@dataclasses.dataclass(frozen=True)
class Unknown:
    """A revision ``alembic_version`` records that the installed code does not have."""

    revision: str
    #: Its app (recorded, else from the id's prefix), or None when nothing says.
    app: str | None
    #: The app is loaded: its installed distribution is older than the database.
    installed: bool
    #: Its ancestors are in ``timber_revisions``.
    recorded: bool
    #: The installed app's head, when ``installed``.
    head: str | None = None
    #: The installed app's distribution and version, when ``installed``.
    distribution: str = ""

    @property
    def severity(self) -> str:
        return "error" if self.installed else "warning"

    def message(self) -> str:
        """Say what is wrong, naming the app and the revision, and the fix, in one line."""
        return f"{self.problem()}. Fix: {self.fix()}"

    def problem(self) -> str:
        """What is wrong: the app, the revision, and what Timber does about it."""
        if self.installed:
            return (
                f"app {self.app!r} ({self.distribution}) is older than the database: revision {self.revision} "
                f"is applied but the installed version does not have it (its head is {self.head}), so app "
                f"{self.app!r} is left out of migrations and cannot start"
            )
        who = f"app {self.app!r}" if self.app else "an app that is not installed"
        return (
            f"revision {self.revision} of {who} is applied but {'the app' if self.app else 'it'} is not installed "
            f"(or is disabled or broken): its tables are left alone and the other apps go on"
        )

    def fix(self) -> str:
        """What to do about it."""
        if self.installed:
            return (
                f"reinstall the newer version; or, to go back, run `timber downgrade --app {self.app} {self.head}` "
                f"with the newer version installed, then install the older one"
            )
        return (
            f"reinstall {'its' if self.app else 'the'} distribution to use it again; to remove it, reinstall it "
            f"and run `timber apps remove {self.app or 'NAME'}` before uninstalling it"
        )


@dataclasses.dataclass(frozen=True)
class Applied:
    """The state of ``alembic_version`` as the installed graph can understand it."""

    #: The rows of ``alembic_version``, as they are.
    recorded: tuple[str, ...]
    #: Known revisions only: the known rows, plus the known revisions the unknown ones stand on.
    heads: tuple[str, ...]
    unknown: tuple[Unknown, ...]

    def applied(self, script: ScriptDirectory) -> set[str]:
        """Every known revision applied (the heads and all they stand on)."""
        return {r.revision for r in script.iterate_revisions(self.heads, "base")} if self.heads else set()


def _parents(script: ScriptDirectory, revision: str) -> list[str]:
    rev = script.get_revision(revision)
    assert rev is not None
    found = []
    for name in _as_tuple(rev.down_revision) + _as_tuple(rev.dependencies):
        try:
            parent = script.get_revision(name)
        except Exception:  # a symbolic dependency Alembic cannot resolve alone: keep the name
            parent = None
        found.append(parent.revision if parent is not None else name)
    return found


def _as_tuple(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    return (value,) if isinstance(value, str) else tuple(value)


def _known(script: ScriptDirectory, revision: str) -> bool:
    try:
        return script.get_revision(revision) is not None
    except Exception:
        return False


def _records(conn: Any) -> dict[str, tuple[str, list[str]]]:
    if not inspect(conn).has_table(TABLE):
        return {}
    return {r: (app, parents.split()) for r, app, parents in conn.execute(select(_table)).all()}


def _app_of(revision: str, records: dict[str, tuple[str, list[str]]]) -> str | None:
    if revision in records:
        return records[revision][0]
    match = _ID.match(revision)
    return match.group(1) if match else None


def _reduce(script: ScriptDirectory, revisions: set[str]) -> tuple[str, ...]:
    """``revisions`` without those another one of them stands on (what Alembic keeps as heads)."""
    implied: set[str] = set()
    for rev in revisions:
        implied |= {r.revision for r in script.iterate_revisions(rev, "base")} - {rev}
    return tuple(sorted(revisions - implied))


def read(kernel: Kernel, script: ScriptDirectory, conn: Any) -> Applied:
    """Return ``alembic_version`` on ``conn`` split into known heads and unknown revisions; write nothing."""
    recorded = tuple(MigrationContext.configure(conn).get_current_heads())
    unknown_ids = [h for h in recorded if not _known(script, h)]
    if not unknown_ids:
        return Applied(recorded, recorded, ())
    records = _records(conn)
    frontier: set[str] = set()
    stack, seen = list(unknown_ids), set(unknown_ids)
    while stack:  # walk the recorded parents of the unknown revisions down to known ones
        current = stack.pop()
        for parent in records.get(current, ("", []))[1]:
            if _known(script, parent):
                frontier.add(parent)
            elif parent not in seen:
                seen.add(parent)
                stack.append(parent)
    loaded = {a.name: a for a in kernel.apps.loaded()}
    unknown = []
    for rev in unknown_ids:
        app = _app_of(rev, records)
        the_app = loaded.get(app) if app else None
        head = None
        if the_app is not None:
            from .autogen import app_head

            tip = app_head(script, the_app.name)
            head = tip.revision if tip is not None else None
        unknown.append(Unknown(
            rev, app, the_app is not None, rev in records, head,
            f"{the_app.distribution} {the_app.version}".strip() if the_app is not None else "",
        ))
    known = {h for h in recorded if h not in unknown_ids} | frontier
    return Applied(recorded, _reduce(script, known), tuple(unknown))


def excluded_apps(state: Applied) -> list[str]:
    """The installed apps with an unknown revision applied (older than the database): left out of upgrades."""
    return sorted({u.app for u in state.unknown if u.installed and u.app})


def wanted_heads(script: ScriptDirectory, state: Applied) -> set[str]:
    """The graph's heads, but those of the apps left out (:func:`excluded_apps`): what "migrated" means."""
    left_out = set(excluded_apps(state))
    return {h for h in script.get_heads()
            if not (script.get_revision(h).branch_labels & left_out)}  # type: ignore[union-attr]


def _ancestors_recorded(records: dict[str, tuple[str, list[str]]], revisions: list[str]) -> set[str]:
    found: set[str] = set()
    stack = list(revisions)
    while stack:
        for parent in records.get(stack.pop(), ("", []))[1]:
            if parent not in found:
                found.add(parent)
                stack.append(parent)
    return found


def set_rows(conn: Any, rows: tuple[str, ...] | list[str]) -> None:
    """Make ``alembic_version`` on ``conn`` hold exactly ``rows`` (in the caller's transaction)."""
    conn.execute(text("DELETE FROM alembic_version"))
    for rev in rows:
        conn.execute(text("INSERT INTO alembic_version (version_num) VALUES (:v)"), {"v": rev})


@contextlib.contextmanager
def set_aside(kernel: Kernel, script: ScriptDirectory, conn: Any) -> Iterator[Applied]:
    """Within the block, ``alembic_version`` on ``conn`` holds known revisions only; then the unknown come back.

    ``conn`` must be in the migration's transaction. After the block, :func:`record`
    brings ``timber_revisions`` up to date. Raise ConfigurationError, changing nothing,
    when an unknown revision has no record: what it stands on cannot be known, and a
    guess could run the revisions of other apps again.
    """
    state = read(kernel, script, conn)
    if state.unknown:
        set_rows(conn, state.heads)
        blind = [u for u in state.unknown if not u.recorded]
        if blind:
            names = ", ".join(f"{u.revision} (app {u.app!r})" if u.app else u.revision for u in blind)
            raise ConfigurationError(
                f"alembic_version records {names}, which the installed code does not have, and Timber cannot "
                f"tell which revisions of the other apps {'it stands' if len(blind) == 1 else 'they stand'} on "
                f"(applied before Timber recorded revisions in {TABLE}), so migrating could run those again. "
                f"Fix: install the version of the app that has {'it' if len(blind) == 1 else 'them'} and run "
                f"`timber migrate` once (that records them); then it can be uninstalled or downgraded"
            )
    yield state
    after = tuple(MigrationContext.configure(conn).get_current_heads())
    if state.unknown:
        records = _records(conn)
        unknown_ids = [u.revision for u in state.unknown]
        implied = _ancestors_recorded(records, unknown_ids)
        done = {r.revision for r in script.iterate_revisions(after, "base")} if after else set()
        lost = sorted(r for r in implied if _known(script, r) and r not in done)
        if lost:  # a downgrade took away what an unknown revision stands on: refused, the transaction rolls back
            names = ", ".join(f"{u.revision} (app {u.app!r})" if u.app else u.revision for u in state.unknown)
            app = next((u.app for u in state.unknown if u.app), None) or "NAME"
            raise ConfigurationError(
                f"this downgrade would remove {', '.join(lost)}, which {names} stand(s) on, and that app's code "
                f"is not installed to take its revisions down first. Fix: reinstall it and take it down first "
                f"(`timber downgrade --app {app} base`, or `timber apps remove {app}`)"
            )
        set_rows(conn, sorted([h for h in after if h not in implied] + unknown_ids))
    record(script, conn, after, [u.revision for u in state.unknown])


def record(script: ScriptDirectory, conn: Any, known_heads: tuple[str, ...], unknown: list[str]) -> None:
    """Make ``timber_revisions`` hold every applied revision: the known ones (all that ``known_heads``
    stand on, read from the graph) and the unknown ones with what they recorded stand on."""
    if not known_heads and not unknown and not inspect(conn).has_table(TABLE):
        return  # nothing applied (a database left to create_all, or never migrated): nothing to record
    if not inspect(conn).has_table(TABLE):
        _table.create(conn)
        if conn.dialect.name == "postgresql":  # readable like alembic_version: the doctor runs from app logins
            conn.execute(text(f"GRANT SELECT ON {TABLE} TO PUBLIC"))
    records = _records(conn)
    applied = {r.revision for r in script.iterate_revisions(known_heads, "base")} if known_heads else set()
    keep = applied | set(unknown) | _ancestors_recorded(records, unknown)
    stale = [r for r in records if r not in keep]
    if stale:
        conn.execute(delete(_table).where(_table.c.revision.in_(stale)))
    for rev in sorted(applied - set(records)):
        labels = sorted(script.get_revision(rev).branch_labels)  # type: ignore[union-attr]
        conn.execute(insert(_table).values(
            revision=rev, app=labels[0] if labels else "", parents=" ".join(_parents(script, rev))))
