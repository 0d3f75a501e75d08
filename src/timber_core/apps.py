"""The merged registry of installed apps: names, versions, owners, conflicts.

Built by :func:`timber_core.plugins.discover`; holds only metadata, so that
listing what is installed never imports SQLAlchemy or an app's services.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any, Final

from .errors import ConfigurationError, NotFoundError, PluginError

__all__ = ["KERNEL_APP", "App", "AppRegistry", "Problem"]

#: The name under which the kernel owns the shared tables.
KERNEL_APP: Final = "timber"

OK: Final = "ok"
BROKEN: Final = "broken"
DISABLED: Final = "disabled"
CONFLICT: Final = "conflict"


@dataclasses.dataclass
class Problem:
    """One thing wrong with the installed apps, said for a person to fix."""

    app: str
    message: str

    def __str__(self) -> str:
        return f"app {self.app!r}: {self.message}"


@dataclasses.dataclass
class App:
    """One app as its plugin describes it."""

    name: str
    distribution: str
    version: str = ""
    description: str = ""
    depends: list[str] = dataclasses.field(default_factory=list)
    model_dirs: list[str] = dataclasses.field(default_factory=list)
    session_types: list[str] = dataclasses.field(default_factory=list)
    rls_policies: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    service_factories: dict[str, Any] = dataclasses.field(default_factory=dict)
    migrations_dir: str | None = None
    plugin: Any = None
    status: str = OK
    error: str | None = None

    @property
    def loaded(self) -> bool:
        """True when the app takes part in the kernel (not broken, disabled or in conflict)."""
        return self.status == OK


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
            raise PluginError(
                f"app {name!r} ({app.distribution}) is {app.status}: {app.error}; "
                f"fix it, or initialize another app"
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

    def raise_for_problems(self) -> None:
        """Raise PluginError listing every conflict or ordering problem.

        A broken or disabled plugin is not raised here: it is left out and
        reported, so that one bad plugin cannot take the others down.
        """
        fatal = [p for p in self.problems if getattr(p, "fatal", False)]
        if fatal:
            raise PluginError("\n".join(str(p) for p in fatal))


class FatalProblem(Problem):
    """A problem that makes the set of apps ambiguous: conflicts, cycles, missing dependencies."""

    fatal = True


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
