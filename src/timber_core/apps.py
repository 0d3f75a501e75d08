"""The merged registry of installed apps: names, versions, owners, conflicts.

Built by :func:`timber_core.plugins.discover`; holds only metadata, so that
listing what is installed never imports SQLAlchemy or an app's services.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, Final

from .errors import ConfigurationError, NotFoundError, PluginError

__all__ = ["KERNEL_APP", "App", "AppRegistry", "Problem", "FatalProblem", "ModelProblem", "drop_unmet_dependencies"]

#: The name under which the kernel owns the shared tables.
KERNEL_APP: Final = "timber"

OK: Final = "ok"
BROKEN: Final = "broken"
DISABLED: Final = "disabled"
CONFLICT: Final = "conflict"


class Problem:
    """One thing wrong with the installed apps, said for a person to fix."""

    # Plain classes, not dataclasses: this module is on `timber apps list`'s path, which must
    # start fast (docs/performance.md), and the dataclass machinery costs milliseconds to import.
    __slots__ = ("app", "message")
    fatal = False

    def __init__(self, app: str, message: str) -> None:
        self.app = app
        self.message = message

    def __str__(self) -> str:
        return f"app {self.app!r}: {self.message}"

    def __repr__(self) -> str:
        return f"{type(self).__name__}(app={self.app!r}, message={self.message!r})"

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return (self.app, self.message) == (other.app, other.message)  # type: ignore[attr-defined]

    def __hash__(self) -> int:
        return hash((type(self), self.app, self.message))


class App:
    """One app as its plugin describes it."""

    __slots__ = (
        "name", "distribution", "version", "description", "depends", "model_dirs", "session_types",
        "rls_policies", "service_factories", "migrations_dir", "plugin", "status", "error",
    )

    def __init__(
        self,
        name: str,
        distribution: str,
        version: str = "",
        description: str = "",
        depends: list[str] | None = None,
        model_dirs: list[str] | None = None,
        session_types: list[str] | None = None,
        rls_policies: list[dict[str, Any]] | None = None,
        service_factories: dict[str, Any] | None = None,
        migrations_dir: str | None = None,
        plugin: Any = None,
        status: str = OK,
        error: str | None = None,
    ) -> None:
        self.name = name
        self.distribution = distribution
        self.version = version
        self.description = description
        self.depends: list[str] = list(depends or [])
        self.model_dirs: list[str] = list(model_dirs or [])
        self.session_types: list[str] = list(session_types or [])
        self.rls_policies: list[dict[str, Any]] = list(rls_policies or [])
        self.service_factories: dict[str, Any] = dict(service_factories or {})
        self.migrations_dir = migrations_dir
        self.plugin = plugin
        self.status = status
        self.error = error

    @property
    def loaded(self) -> bool:
        """True when the app takes part in the kernel (not broken, disabled or in conflict)."""
        return self.status == OK

    def __repr__(self) -> str:
        return f"App(name={self.name!r}, distribution={self.distribution!r}, status={self.status!r})"


class AppRegistry:
    """Every app found, in dependency order, with the problems found on the way."""

    def __init__(self, apps: list[App], problems: list[Problem]) -> None:
        self._apps = {a.name: a for a in apps}
        self.problems = problems
        self._type_owner = {t: a.name for a in apps if a.loaded for t in a.session_types}

    def __iter__(self) -> Iterator[App]:
        return iter(self._apps.values())

    def loaded(self) -> list[App]:
        """Return the apps that take part, kernel first, in dependency order."""
        return [a for a in self._apps.values() if a.loaded]

    def get(self, name: str) -> App:
        """Return the app called ``name``; raise NotFoundError naming the installed ones."""
        try:
            return self._apps[name]
        except KeyError:
            known = ", ".join(sorted(a for a in self._apps if a != KERNEL_APP)) or "none"
            raise NotFoundError(
                f"no app named {name!r} is installed (installed: {known}); install its "
                f"distribution, or check TIMBER_APPS / TIMBER_DISABLE_APPS"
            ) from None

    def require_loaded(self, name: str) -> App:
        """Return the loaded app ``name``; raise if it is unknown, broken or left out."""
        app = self.get(name)
        if not app.loaded:
            state = "in conflict" if app.status == CONFLICT else app.status
            raise PluginError(
                f"app {name!r} ({app.distribution}) is {state}: {app.error}; fix it, or initialize another app"
            )
        return app

    def session_types_of(self, name: str) -> frozenset[str]:
        """Return the session types owned by app ``name`` (empty for the kernel)."""
        return frozenset(self._apps[name].session_types) if name in self._apps else frozenset()

    def owner_of_session_type(self, session_type: str) -> str | None:
        """Return the app owning ``session_type``, or None if no loaded app owns it."""
        return self._type_owner.get(session_type)

    def all_session_types(self) -> frozenset[str]:
        """Return every session type owned by a loaded app."""
        return frozenset(self._type_owner)

    def failed(self) -> list[App]:
        """Return the apps left out by a failure (broken or in conflict), not by choice (disabled)."""
        return [a for a in self._apps.values() if a.status in (BROKEN, CONFLICT)]

    def leave_out(self, failures: Mapping[str, tuple[str, str, list[Problem]]]) -> list[App]:
        """Take each app of ``failures`` out of the kernel, then every app depending on one; return them.

        ``failures`` maps an app to ``(status, error, problems)``: ``error`` is what ``timber
        apps list`` shows for it, ``problems`` what ``timber check`` prints. Each dependent
        app is left out as broken, its error naming the failed dependency.
        """
        dropped = []
        for name, (status, error, problems) in failures.items():
            app = self._apps[name]
            app.status, app.error = status, error
            self.problems.extend(problems)
            dropped.append(app)
        dropped += drop_unmet_dependencies(list(self._apps.values()), self.problems)
        self._type_owner = {t: a.name for a in self._apps.values() if a.loaded for t in a.session_types}
        return dropped

    def raise_for_problems(self) -> None:
        """Raise PluginError listing every fatal problem (the kernel itself cannot load).

        Everything else (a broken, conflicting or disabled app, a missing dependency) is
        contained: that app is left out and reported, the others go on.
        """
        fatal = [p for p in self.problems if p.fatal]
        if fatal:
            raise PluginError("\n".join(str(p) for p in fatal))


class FatalProblem(Problem):
    """A problem no app can start with: the kernel's own plugin or models fail."""

    fatal = True


class ModelProblem(Problem):
    """A problem in an app's model files; its message already names the file, line, app and field."""

    __slots__ = ()

    def __str__(self) -> str:
        return self.message


def drop_unmet_dependencies(apps: list[App], problems: list[Problem]) -> list[App]:
    """Leave out (as broken) every loaded app whose dependency is not loaded, until none is left; return them.

    Each gets a problem naming the dependency, its state and the fix.
    """
    by_name = {a.name: a for a in apps}
    dropped: list[App] = []
    changed = True
    while changed:
        changed = False
        for app in apps:
            if not app.loaded:
                continue
            dep = next((d for d in app.depends if d not in by_name or not by_name[d].loaded), None)
            if dep is None:
                continue
            other = by_name.get(dep)
            if other is None or other.status == DISABLED:
                why = "is not installed" if other is None else "is disabled"
                fix = f"install or enable {dep!r}"
            else:
                why, fix = f"is {other.status} (left out)", f"fix {dep!r}"
            app.status = BROKEN
            app.error = (f"depends on app {dep!r}, which {why}; {fix}, or remove it from "
                         f"{app.name}'s timber_app_info() depends")
            problems.append(Problem(app.name, app.error))
            dropped.append(app)
            changed = True
    return dropped


def parse_app_list(value: str | None, variable: str) -> frozenset[str] | None:
    """Parse ``TIMBER_APPS``-style comma lists; None when unset."""
    if value is None:
        return None
    names = [n.strip() for n in value.split(",")]
    if any(not n for n in names if value.strip()):
        raise ConfigurationError(
            f"{variable}={value!r} has an empty entry; give app names separated by commas, "
            f"e.g. {variable}=canopy,grove"
        )
    return frozenset(n for n in names if n)
