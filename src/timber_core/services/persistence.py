"""The shared services every app uses: users, sessions, notifications, events.

    from timber_core.services.persistence import session_service
    session_id = session_service.create_session(user_id, "trading", {"strategy": "momentum"})

The module-level instances are bound to the kernel of the last
``initialize_timber`` and run in the caller's app context
(:mod:`timber_core.context`): an app creates, reads and changes only sessions
of the types it owns; notifications are shared (a user sees every app's, each
stamped with its app); events are stamped with their app and read back per
app. The platform context reads across apps.

Reads return SQLAlchemy ``Row`` objects with attribute access by model
attribute (``s.id``, ``s.session_type``, ``s.metadata_``); writes go through
SQLAlchemy Core in one transaction per call, multi-row inserts for the bulk
paths. Bad arguments raise ValidationError before anything is written.

Inside a ``session_scope()`` every call joins the scope's transaction (see
:meth:`timber_core.db.DatabaseManager.session_scope`) and commits with it, so an app
service composes them into one operation::

    with user_context(user_id), self.db.session_scope() as session:
        session_id = session_service.create_session(user_id, "research")
        session.add(ResearchSession(id=session_id, user_id=user_id))
        tracker_service.track_event(user_id, "research_session_created")
"""

from __future__ import annotations

import datetime as _dt
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, Row, Table, bindparam, func, insert, literal, select, text, update

from ..cache.hooks import NOTIFICATIONS, SESSIONS, USER
from ..cache.service import KERNEL_NAMESPACE
from ..context import PLATFORM, current_app, current_user, user_context
from ..errors import IsolationError, ValidationError
from ._validate import check_acting_user, check_bool, check_id, check_json, check_limit, check_name, check_text
from .base import BaseService

__all__ = [
    "UserService",
    "SessionService",
    "NotificationService",
    "TrackerService",
    "user_service",
    "session_service",
    "notification_service",
    "tracker_service",
]


def _check_user(user_id: Any, call: str) -> str:
    """Return ``user_id`` if it is an id and the block (if it acts for a user) acts for it."""
    check_id(user_id, "user_id", call)
    check_acting_user(user_id, call)
    return user_id  # type: ignore[no-any-return]


def _optional_user(user_id: Any, call: str) -> str | None:
    """Check an optional ``user_id``; return it, else the ``user_context()`` user (None if none)."""
    if user_id is None:
        return current_user()
    return _check_user(user_id, call)


def _now() -> _dt.datetime:
    return _dt.datetime.now(_dt.timezone.utc)


def _new_id() -> str:
    return str(uuid.uuid4())


_SET_USER = text("SELECT set_config('timber.user_id', :u, true)")


class _SharedService(BaseService):
    """A kernel service over one shared table, acting for one user per transaction."""

    model = ""
    #: The cache family the service's writes change (per user).
    _family = ""

    def _table(self) -> Table:
        return self.kernel.models[self.model].__table__  # type: ignore[no-any-return]

    def _kernel_stmt(self, key: tuple[Any, ...], build: Any) -> Any:
        """Return the statement ``build(table)`` of this service's table, built once per kernel and ``key``.

        Reused statements are compiled once (SQLAlchemy's cache, DatabaseManager._run_kernel_statement).
        """
        cache = self.kernel.__dict__.setdefault("_timber_stmt_cache", {})
        full = (self.model, *key)
        stmt = cache.get(full)
        if stmt is None:
            stmt = cache[full] = build(self._table())
        return stmt

    def _cached(self, user_id: str, family: str, variant: str, load: Any) -> Any:
        """Return ``load()`` through the kernel's cache (bypassed inside an open transaction)."""
        return self.kernel.cache.lookup(KERNEL_NAMESPACE, user_id, family, variant, load)

    def _changed(self, user_ids: Any, family: str) -> None:
        """Drop ``family`` of each user once the caller's transaction commits (never on rollback)."""
        if not family:
            return
        cache = self.kernel.cache
        for user_id in sorted(set(user_ids)):
            cache.drop(KERNEL_NAMESPACE, user_id, (family,))

    @contextmanager
    def _tx(self, user_id: str | None, one_statement: bool = False) -> Iterator[Connection]:
        # The user is published for the database's row-level security (PostgreSQL); without
        # one, the caller's user_context() stands. Inside a session_scope() the connection is
        # the scope's (same app and user, else IsolationError) and commits with it.
        # one_statement: the block runs exactly one statement, sent with the context in one
        # round trip on PostgreSQL (DatabaseManager.one_statement).
        with user_context(user_id if user_id is not None else current_user()):
            with (self.db.one_statement() if one_statement else self.db.connection()) as conn:
                yield conn

    def _insert_rows(self, rows: list[dict[str, Any]]) -> list[str]:
        """Insert checked rows in one transaction, one multi-row insert per user; return their ids.

        Rows of one user are written for that user, like a single-row call. Rows of several
        users are written in the caller's context, the PostgreSQL RLS user switched before
        each user's rows and given back afterwards (the transaction may be an outer scope's).
        """
        if not rows:
            return []
        by_user: dict[str, list[dict[str, Any]]] = {}
        for row in rows:
            by_user.setdefault(row["user_id"], []).append(row)
        table = self._table()
        if len(by_user) == 1:
            with self._tx(rows[0]["user_id"]) as conn:
                conn.execute(insert(table), rows)
                self._changed(by_user, self._family)
            return [str(r["id"]) for r in rows]
        with self._tx(None) as conn:
            self._changed(by_user, self._family)
            postgres = conn.dialect.name == "postgresql"
            for user_id, group in by_user.items():
                if postgres:
                    conn.execute(_SET_USER, {"u": user_id})
                conn.execute(insert(table), group)
            if postgres:
                conn.execute(_SET_USER, {"u": current_user() or ""})
        return [str(r["id"]) for r in rows]


class UserService(_SharedService):
    """Accounts in the shared ``users`` table, open to every app.

    Its calls run in the caller's user context (``users`` has no per-user row-level
    security), so they join an open ``session_scope()`` whoever the account is.
    """

    model = "User"
    _family = USER

    def create_user(self, email: str, username: str) -> str:
        """Create a user and return its id; raise ValidationError if the email or username is taken."""
        call = "create_user"
        check_text(email, "email", call, 255)
        if "@" not in email or any(c.isspace() for c in email):
            raise ValidationError(f"{call}: email={email!r} is not an email address")
        check_text(username, "username", call, 100)
        users = self._table()
        user_id = _new_id()
        with self._tx(None) as conn:
            taken = conn.execute(
                select(users.c.email, users.c.username).where(
                    (users.c.email == email) | (users.c.username == username)
                )
            ).first()
            if taken is None:
                conn.execute(insert(users), {"id": user_id, "email": email, "username": username})
                self._changed((user_id,), USER)
        if taken is not None:
            # Raised after the block, which wrote nothing: an enclosing scope stays usable.
            what = f"email {email!r}" if taken.email == email else f"username {username!r}"
            raise ValidationError(f"{call}: {what} is already taken; use get_user_by_email() to find the user")
        return user_id

    def get_user(self, user_id: str) -> Row[Any] | None:
        """Return the user ``user_id``, or None (cached; see docs/services.md, "Cache")."""
        check_id(user_id, "user_id", "get_user")
        users = self._table()

        def load() -> Row[Any] | None:
            with self._tx(None) as conn:
                return conn.execute(select(users).where(users.c.id == user_id)).first()

        return self._cached(user_id, USER, "", load)  # type: ignore[no-any-return]

    def get_user_by_email(self, email: str) -> Row[Any] | None:
        """Return the user with ``email``, or None."""
        check_text(email, "email", "get_user_by_email", 255)
        users = self._table()
        with self._tx(None) as conn:
            return conn.execute(select(users).where(users.c.email == email)).first()


class SessionService(_SharedService):
    """Sessions in the shared ``sessions`` table, each typed by the app that owns the type."""

    model = "Session"
    _family = SESSIONS

    def _owned_or_raise(self, session_type: str, call: str) -> tuple[str, str]:
        """Return (app owning the type, app acting); raise IsolationError if the caller may not."""
        check_name(session_type, "session_type", call)
        app = current_app()
        self.kernel.isolation.check_type(session_type, app, "create" if call.startswith("create") else "use")
        owner = self.kernel.apps.owner_of_session_type(session_type)
        if owner is None:  # only reachable from the platform context, which passes check_type
            raise IsolationError(f"{call}: no installed app owns session type {session_type!r}; "
                                 f"known types: {', '.join(sorted(self.kernel.apps.all_session_types()))}")
        return owner, app

    def _visible_types(self) -> list[str] | None:
        """Return the caller's own session types, or None in the platform context (every type)."""
        app = current_app()
        if app == PLATFORM:
            return None
        return sorted(self.kernel.apps.session_types_of(app))

    def _visible_by_id(self, table: Table, session_id: str, user_id: str | None) -> list[Any]:
        """The conditions that find session ``session_id`` only if the caller may see it."""
        conditions = [table.c.id == session_id]
        types = self._visible_types()
        if types is not None:
            conditions.append(table.c.session_type.in_(types))
        if user_id is not None:
            conditions.append(table.c.user_id == user_id)
        return conditions

    def _row(self, user_id: str, session_type: str, metadata: Mapping[str, Any] | None, call: str,
             now: _dt.datetime, checked: dict[tuple[Any, Any], tuple[str, str]] | None = None) -> dict[str, Any]:
        key = (user_id, session_type)
        if checked is not None and key in checked:
            owner, app = checked[key]
        else:
            _check_user(user_id, call)
            owner, app = self._owned_or_raise(session_type, call)
            if checked is not None:
                checked[key] = (owner, app)
        if metadata is None:
            meta: dict[str, Any] = {"app": owner, "created_by_app": app}
        else:
            meta = check_json(metadata, "metadata", call)
            claimed = meta.get("app")
            if claimed is not None and claimed != owner:
                raise ValidationError(
                    f"{call}: metadata['app']={claimed!r} but the session belongs to app {owner!r}; "
                    f"leave 'app' out, Timber stamps it"
                )
            meta["app"] = owner
            meta["created_by_app"] = app
        return {
            "id": _new_id(), "user_id": user_id, "session_type": session_type, "app_name": owner,
            "status": "active", "metadata_": meta, "created_at": now, "updated_at": now,
        }

    def create_session(self, user_id: str, session_type: str, metadata: Mapping[str, Any] | None = None) -> str:
        """Create a session of ``session_type`` for ``user_id``; return its id.

        Raise IsolationError when the calling app does not own the type (the
        message names the owner), ValidationError for malformed arguments.
        """
        row = self._row(user_id, session_type, metadata, "create_session", _now())
        with user_context(user_id):
            self.db._run_kernel_statement(self._kernel_stmt(("insert",), lambda t: insert(t)), row, tuple(row))
            self._changed((user_id,), SESSIONS)
        return str(row["id"])

    def create_sessions(self, sessions: Sequence[Mapping[str, Any]]) -> list[str]:
        """Create many sessions in one transaction with multi-row inserts; return their ids in order.

        Each item is ``{"user_id", "session_type", "metadata"?}``. Every item is
        checked before anything is written.
        """
        if isinstance(sessions, (str, bytes, Mapping)) or not isinstance(sessions, Sequence):
            raise ValidationError("create_sessions: sessions must be a list of dicts")
        now = _now()
        rows: list[dict[str, Any]] = []
        checked: dict[tuple[Any, Any], tuple[str, str]] = {}
        allowed = {"user_id", "session_type", "metadata"}
        for i, item in enumerate(sessions):
            if type(item) is not dict and not isinstance(item, Mapping):
                raise ValidationError(f"create_sessions: item {i} must be a dict, not {type(item).__name__}")
            if not allowed.issuperset(item):
                raise ValidationError(f"create_sessions: item {i} has unknown keys {sorted(set(item) - allowed)}; "
                                      f"allowed: user_id, session_type, metadata")
            try:
                rows.append(self._row(item.get("user_id"), item.get("session_type"), item.get("metadata"),
                                      "create_sessions", now, checked))
            except (ValidationError, IsolationError) as exc:
                # Say which item was bad; the message otherwise stays the single call's.
                raise type(exc)(str(exc).replace("create_sessions:", f"create_sessions (item {i}):", 1)) from None
        return self._insert_rows(rows)

    def get_session(self, session_id: str, user_id: str | None = None) -> Row[Any] | None:
        """Return session ``session_id`` if the caller may see it, else None."""
        check_id(session_id, "session_id", "get_session")
        user_id = _optional_user(user_id, "get_session")
        table = self._table()
        stmt = select(table).where(*self._visible_by_id(table, session_id, user_id))
        with self._tx(user_id, one_statement=True) as conn:
            return conn.execute(stmt).first()

    def get_user_sessions(self, user_id: str, session_type: str | None = None, limit: int | None = None) -> list[Row[Any]]:
        """Return ``user_id``'s sessions, newest first.

        Without ``session_type``: the calling app's own types (every type in
        the platform context). Asking for another app's type raises IsolationError.
        """
        call = "get_user_sessions"
        _check_user(user_id, call)
        limit = check_limit(limit, "limit", call)
        if session_type is not None:
            self._owned_or_raise(session_type, call)
            types: tuple[str, ...] | None = (session_type,)
        else:
            visible = self._visible_types()
            types = None if visible is None else tuple(visible)
        stmt = self._user_sessions_stmt(types, limit is not None)
        params: dict[str, Any] = {"user_id": user_id}
        if limit is not None:
            params["limit"] = limit

        def load() -> list[Row[Any]]:
            with user_context(user_id):
                return self.db._run_kernel_statement(stmt, params)  # type: ignore[no-any-return]

        # The variant names the types asked for: each app's list is its own entry.
        return self._cached(user_id, SESSIONS, f"types={types!r} limit={limit!r}", load)  # type: ignore[no-any-return]

    def _user_sessions_stmt(self, types: tuple[str, ...] | None, limited: bool) -> Any:
        """Build (once per kernel and shape) the user-sessions query; values are bound at execution."""

        def build(table: Table) -> Any:
            stmt = select(table).where(table.c.user_id == bindparam("user_id"))
            if types is not None:
                # One bound value per type (not an expanding IN): the statement's SQL is the same at
                # every call, so it is compiled and prepared once (DatabaseManager._run_kernel_statement).
                kind = table.c.session_type.type
                stmt = stmt.where(table.c.session_type.in_([literal(t, kind) for t in types]))
            stmt = stmt.order_by(table.c.created_at.desc(), table.c.id)
            return stmt.limit(bindparam("limit")) if limited else stmt

        return self._kernel_stmt(("user_sessions", types, limited), build)

    def get_app_sessions(self, user_id: str, app_name: str) -> list[Row[Any]]:
        """Return ``user_id``'s sessions of app ``app_name``'s types.

        An app may ask for its own; another app's raise IsolationError unless
        in the platform context.
        """
        call = "get_app_sessions"
        _check_user(user_id, call)
        check_name(app_name, "app_name", call)
        self.kernel.apps.require_loaded(app_name)
        app = current_app()
        if app not in (PLATFORM, app_name):
            raise IsolationError(
                f"{call}: app {app!r} may not read app {app_name!r}'s sessions; read your own, "
                f"or use timber_core.platform_context() for cross-app work"
            )
        table = self._table()
        types = sorted(self.kernel.apps.session_types_of(app_name))
        stmt = (select(table).where(table.c.user_id == user_id, table.c.session_type.in_(types))
                .order_by(table.c.created_at.desc(), table.c.id))

        def load() -> list[Row[Any]]:
            with self._tx(user_id, one_statement=True) as conn:
                return conn.execute(stmt).all()  # one fetchall, not a fetchone per row

        return self._cached(user_id, SESSIONS, f"app={app_name}", load)  # type: ignore[no-any-return]

    def _change(self, call: str, session_id: str, user_id: str | None, values: dict[str, Any]) -> bool:
        check_id(session_id, "session_id", call)
        user_id = _optional_user(user_id, call)
        table = self._table()
        stmt = update(table).where(*self._visible_by_id(table, session_id, user_id))
        values["updated_at"] = _now()
        with self._tx(user_id) as conn:
            if "metadata_" in values:
                current = conn.execute(select(table.c.metadata_, table.c.app_name).where(stmt.whereclause)).first()  # type: ignore[arg-type]
                if current is None:
                    return False
                merged = dict(current.metadata_ or {})
                merged.update(values["metadata_"])
                merged["app"] = current.app_name
                values["metadata_"] = merged
            owners = [r.user_id for r in conn.execute(stmt.values(**values).returning(table.c.user_id))]
            self._changed(owners, SESSIONS)
            return len(owners) == 1

    def update_session(self, session_id: str, *, metadata: Mapping[str, Any] | None = None,
                       status: str | None = None, user_id: str | None = None) -> bool:
        """Merge ``metadata`` into the session and/or set its ``status``; return False if not visible."""
        call = "update_session"
        values: dict[str, Any] = {}
        if metadata is not None:
            meta = check_json(metadata, "metadata", call)
            if "app" in meta:
                raise ValidationError(f"{call}: metadata['app'] is stamped by Timber and cannot be changed")
            values["metadata_"] = meta
        if status is not None:
            values["status"] = check_name(status, "status", call, max_len=20)
        if not values:
            raise ValidationError(f"{call}: give metadata and/or status to change")
        return self._change(call, session_id, user_id, values)

    def end_session(self, session_id: str, user_id: str | None = None) -> bool:
        """Mark the session ended (status ``ended``, ``ended_at`` now); return False if not visible."""
        return self._change("end_session", session_id, user_id, {"status": "ended", "ended_at": _now()})


class NotificationService(_SharedService):
    """Notifications: shared, so a user sees every app's, each stamped with its app."""

    model = "Notification"
    _family = NOTIFICATIONS

    def create_notification(self, user_id: str, notification_type: str, title: str,
                            message: str | None = None, data: Mapping[str, Any] | None = None) -> str:
        """Create a notification from the calling app; return its id.

        ``app_name`` and ``data["app"]`` are stamped with the calling app.
        """
        call = "create_notification"
        _check_user(user_id, call)
        check_name(notification_type, "notification_type", call)
        check_text(title, "title", call, 255)
        check_text(message, "message", call, 10_000, required=False)
        payload = check_json(data, "data", call)
        app = current_app()
        if payload.get("app", app) != app:
            raise ValidationError(f"{call}: data['app']={payload['app']!r} but the caller is app {app!r}; "
                                  f"leave 'app' out, Timber stamps it")
        payload["app"] = app
        row = {"id": _new_id(), "user_id": user_id, "app_name": app, "notification_type": notification_type,
               "title": title, "message": message, "data": payload, "is_read": False,
               "created_at": _now(), "updated_at": _now()}
        with self._tx(user_id, one_statement=True) as conn:
            conn.execute(insert(self._table()), row)
            self._changed((user_id,), NOTIFICATIONS)
        return str(row["id"])

    def get_user_notifications(self, user_id: str, unread_only: bool = False, app_name: str | None = None,
                               limit: int = 50) -> list[Row[Any]]:
        """Return ``user_id``'s notifications from every app (or one), newest first (cached)."""
        call = "get_user_notifications"
        _check_user(user_id, call)
        check_bool(unread_only, "unread_only", call)
        limit = check_limit(limit, "limit", call, 1000) or 50
        if app_name is not None:
            check_name(app_name, "app_name", call)

        def load() -> list[Row[Any]]:
            t = self._table()
            stmt = select(t).where(t.c.user_id == user_id)
            if unread_only:
                stmt = stmt.where(t.c.is_read.is_(False))
            if app_name is not None:
                stmt = stmt.where(t.c.app_name == app_name)
            stmt = stmt.order_by(t.c.created_at.desc(), t.c.id).limit(limit)
            with self._tx(user_id, one_statement=True) as conn:
                return conn.execute(stmt).all()  # one fetchall, not a fetchone per row

        variant = f"list unread_only={unread_only} app={app_name} limit={limit}"
        return self._cached(user_id, NOTIFICATIONS, variant, load)  # type: ignore[no-any-return]

    def mark_read(self, notification_id: str, user_id: str) -> bool:
        """Mark one of ``user_id``'s notifications read; return False if there is none such."""
        check_id(notification_id, "notification_id", "mark_read")
        _check_user(user_id, "mark_read")
        t = self._table()
        with self._tx(user_id, one_statement=True) as conn:
            result = conn.execute(update(t).where(t.c.id == notification_id, t.c.user_id == user_id)
                                  .values(is_read=True, read_at=_now(), updated_at=_now()))
            self._changed((user_id,), NOTIFICATIONS)
            return result.rowcount == 1

    def mark_all_read(self, user_id: str, app_name: str | None = None) -> int:
        """Mark every unread notification of ``user_id`` (of one app, if given) read; return how many."""
        _check_user(user_id, "mark_all_read")
        t = self._table()
        stmt = update(t).where(t.c.user_id == user_id, t.c.is_read.is_(False))
        if app_name is not None:
            stmt = stmt.where(t.c.app_name == check_name(app_name, "app_name", "mark_all_read"))
        with self._tx(user_id, one_statement=True) as conn:
            count = int(conn.execute(stmt.values(is_read=True, read_at=_now(), updated_at=_now())).rowcount)
            self._changed((user_id,), NOTIFICATIONS)  # after the write: a fill in between reads the new rows
            return count

    def unread_count(self, user_id: str, app_name: str | None = None) -> int:
        """Return how many of ``user_id``'s notifications are unread (of one app, if given; cached)."""
        _check_user(user_id, "unread_count")
        if app_name is not None:
            check_name(app_name, "app_name", "unread_count")

        def load() -> int:
            t = self._table()
            stmt = select(func.count()).select_from(t).where(t.c.user_id == user_id, t.c.is_read.is_(False))
            if app_name is not None:
                stmt = stmt.where(t.c.app_name == app_name)
            with self._tx(user_id, one_statement=True) as conn:
                return int(conn.execute(stmt).scalar_one())

        return self._cached(user_id, NOTIFICATIONS, f"unread app={app_name}", load)  # type: ignore[no-any-return]


class TrackerService(_SharedService):
    """Activity events, stamped with the app that tracked them; cross-app summaries in the platform context."""

    model = "Event"

    def _event_row(self, user_id: Any, event_type: Any, event_data: Any, call: str, now: _dt.datetime) -> dict[str, Any]:
        _check_user(user_id, call)
        check_name(event_type, "event_type", call, max_len=100)
        app = current_app()
        if app == PLATFORM:
            raise IsolationError(f"{call}: events are tracked by an app; run it in app_context('<app>')")
        return {"id": _new_id(), "user_id": user_id, "app_name": app, "event_type": event_type,
                "event_data": check_json(event_data, "event_data", call), "created_at": now, "updated_at": now}

    def track_event(self, user_id: str, event_type: str, event_data: Mapping[str, Any] | None = None) -> str:
        """Record an event of the calling app for ``user_id``; return its id."""
        row = self._event_row(user_id, event_type, event_data, "track_event", _now())
        with self._tx(user_id, one_statement=True) as conn:
            conn.execute(insert(self._table()), row)
        return str(row["id"])

    def track_events(self, events: Sequence[Mapping[str, Any]]) -> list[str]:
        """Record many events (``{"user_id", "event_type", "event_data"?}``) with multi-row inserts."""
        if isinstance(events, (str, bytes, Mapping)) or not isinstance(events, Sequence):
            raise ValidationError("track_events: events must be a list of dicts")
        now = _now()
        rows = []
        for i, e in enumerate(events):
            if not isinstance(e, Mapping) or set(e) - {"user_id", "event_type", "event_data"}:
                raise ValidationError(f"track_events: item {i} must be a dict with user_id, event_type, event_data")
            rows.append(self._event_row(e.get("user_id"), e.get("event_type"), e.get("event_data"),
                                        f"track_events (item {i})", now))
        return self._insert_rows(rows)

    def get_user_events(self, user_id: str, event_type: str | None = None, limit: int = 100) -> list[Row[Any]]:
        """Return ``user_id``'s events of the calling app (every app's in the platform context), newest first."""
        call = "get_user_events"
        _check_user(user_id, call)
        limit = check_limit(limit, "limit", call) or 100
        t = self._table()
        stmt = select(t).where(t.c.user_id == user_id)
        app = current_app()
        if app != PLATFORM:
            stmt = stmt.where(t.c.app_name == app)
        if event_type is not None:
            stmt = stmt.where(t.c.event_type == check_name(event_type, "event_type", call, max_len=100))
        with self._tx(user_id, one_statement=True) as conn:
            return conn.execute(stmt.order_by(t.c.created_at.desc(), t.c.id).limit(limit)).all()

    def get_user_activity_summary(self, user_id: str) -> dict[str, Any]:
        """Count ``user_id``'s sessions per app and type, and events per app (platform context only).

        Returns ``{"<app>": {"<type>": n, ..., "events": n}, ..., "total": sessions}``,
        listing every loaded app's types, zero included.
        """
        call = "get_user_activity_summary"
        _check_user(user_id, call)
        if current_app() != PLATFORM:
            raise IsolationError(
                f"{call}: app {current_app()!r} may not read other apps' activity; call it inside "
                f"timber_core.platform_context()"
            )
        sessions = self.kernel.models["Session"].__table__
        events = self._table()
        summary: dict[str, Any] = {}
        for app in self.kernel.apps.loaded():
            if app.session_types:
                summary[app.name] = {t: 0 for t in app.session_types}
                summary[app.name]["events"] = 0
        total = 0
        with self._tx(user_id) as conn:
            for st, n in conn.execute(select(sessions.c.session_type, func.count()).where(
                    sessions.c.user_id == user_id).group_by(sessions.c.session_type)):
                owner = self.kernel.apps.owner_of_session_type(st) or "unowned"
                summary.setdefault(owner, {"events": 0})[st] = int(n)
                total += int(n)
            for app_name, n in conn.execute(select(events.c.app_name, func.count()).where(
                    events.c.user_id == user_id).group_by(events.c.app_name)):
                summary.setdefault(app_name, {"events": 0})["events"] = int(n)
        summary["total"] = total
        return summary


user_service = UserService()
session_service = SessionService()
notification_service = NotificationService()
tracker_service = TrackerService()
