"""ORM guards that keep each app to its own data, on every database.

Three walls, all driven by the current app context (:mod:`timber_core.context`):

* model boundaries: another app's private model cannot be fetched
  (:meth:`Isolation.check_model`) nor queried or written through the ORM;
* automatic filters: every ORM statement touching a shared, typed table (the
  ``sessions`` table, typed by ``session_type``) is limited to the context's
  own session types with ``with_loader_criteria``, lazy loads included;
* write checks: a flush or ORM insert that would write a row of a type the
  context does not own is refused.

The platform context passes all three. Raw SQL is beyond the ORM's reach; on
PostgreSQL the roles and row-level security of the migrations close that gap.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import ORMExecuteState, Session, sessionmaker, with_loader_criteria

from .apps import KERNEL_APP, AppRegistry
from .context import PLATFORM, current_app
from .errors import IsolationError
from .schema.build import attribute_name
from .schema.spec import ModelSpec

__all__ = ["Isolation"]


def _spec(cls: type) -> ModelSpec | None:
    return getattr(cls, "__timber_model__", None)


class Isolation:
    """The ORM guards for one kernel: its apps and its mapped classes."""

    def __init__(self, apps: AppRegistry, classes: dict[str, type]) -> None:
        self.apps = apps
        self.classes = classes
        self.typed = [
            (cls, getattr(cls, attribute_name(spec.typed_by)), spec.typed_by)
            for cls in classes.values()
            if (spec := _spec(cls)) is not None and spec.typed_by
        ]

    # -- model boundaries -------------------------------------------------
    def check_model(self, spec: ModelSpec, app: str, action: str = "use") -> None:
        """Raise IsolationError when ``app`` may not touch the model of ``spec``."""
        if app == PLATFORM or spec.shared or spec.app == app:
            return
        raise IsolationError(
            f"app {app!r} may not {action} model {spec.name!r} (table {spec.table_name!r}): it is "
            f"private to app {spec.app!r}. Reach app {spec.app}'s data through its services, or "
            f"run cross-app work in timber_core.platform_context()"
        )

    def check_type(self, session_type: Any, app: str, action: str = "write") -> None:
        """Raise IsolationError when ``app`` does not own ``session_type``."""
        if app == PLATFORM or session_type in self.apps.session_types_of(app):
            return
        owner = self.apps.owner_of_session_type(str(session_type))
        own = ", ".join(sorted(self.apps.session_types_of(app))) or "none"
        if owner is None:
            raise IsolationError(
                f"app {app!r} cannot {action} a session of type {session_type!r}: no installed app "
                f"owns that type. App {app!r} owns: {own}; declare new types in its timber_session_types()"
            )
        raise IsolationError(
            f"app {app!r} cannot {action} a session of type {session_type!r}: that type is owned by "
            f"app {owner!r}. App {app!r} owns: {own}"
        )

    # -- installation -----------------------------------------------------
    def install(self, factory: sessionmaker[Session]) -> None:
        """Attach the guards to every session ``factory`` makes."""
        event.listen(factory, "do_orm_execute", self._on_execute)
        event.listen(factory, "before_flush", self._on_flush)

    def _on_execute(self, state: ORMExecuteState) -> None:
        app = current_app()
        if app == PLATFORM:
            return
        for mapper in state.all_mappers:
            spec = _spec(mapper.class_)
            if spec is not None:
                self.check_model(spec, app, "query")
        if state.is_insert and self.typed:
            self._check_insert(state, app)
        if self.typed and (state.is_select or state.is_update or state.is_delete):
            own = sorted(self.apps.session_types_of(app))
            state.statement = state.statement.options(
                *[
                    with_loader_criteria(cls, column.in_(own), include_aliases=True)
                    for cls, column, _ in self.typed
                ]
            )

    def _check_insert(self, state: ORMExecuteState, app: str) -> None:
        typed = {cls: name for cls, _, name in self.typed}
        for mapper in state.all_mappers:
            name = typed.get(mapper.class_)
            if name is None:
                continue
            params = state.parameters
            rows: Iterable[Any] = params if isinstance(params, list) else [params or {}]
            for row in rows:
                self.check_type(row.get(attribute_name(name), row.get(name)), app, "create")

    def _on_flush(self, session: Session, _ctx: Any, _instances: Any) -> None:
        app = current_app()
        if app == PLATFORM:
            return
        for verb, objects in (("create", session.new), ("change", session.dirty), ("delete", session.deleted)):
            for obj in objects:
                spec = _spec(type(obj))
                if spec is None:
                    continue
                self.check_model(spec, app, verb)
                if spec.typed_by:
                    self.check_type(getattr(obj, attribute_name(spec.typed_by)), app, verb)


def owner_label(spec: ModelSpec) -> str:
    """Return ``"shared"`` for kernel-owned models, else the owning app."""
    return "shared" if spec.app == KERNEL_APP or spec.shared else spec.app
