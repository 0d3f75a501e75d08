"""Discovery of app plugins from the ``timber.apps`` entry-point group.

Each entry point is loaded and each hook called inside its own ``try``: a
plugin whose import or hook raises is recorded as broken, with its
distribution and error, and left out; the other apps and the CLI go on. Apps
contesting a name (app name, session type, service) are left out as in
conflict, and so is every app whose dependency is missing, left out or in a
cycle (docs/plugins.md, "Failure is contained"). Ordering follows the apps'
declared ``depends``. Nothing here imports
SQLAlchemy: ``timber apps list`` runs on this module alone.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable, Mapping
from importlib.metadata import EntryPoint, entry_points
from typing import Any

import pluggy

from . import _kernel_plugin, hookspecs
from .apps import (
    BROKEN,
    CONFLICT,
    DISABLED,
    KERNEL_APP,
    App,
    AppRegistry,
    FatalProblem,
    Problem,
    drop_unmet_dependencies,
    parse_app_list,
)
from .context import PLATFORM

__all__ = ["ENTRY_POINT_GROUP", "discover", "register_app_commands", "DirectApp"]

ENTRY_POINT_GROUP = "timber.apps"
_APP_NAME = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
_RESERVED = {KERNEL_APP, PLATFORM}


class DirectApp:
    """An app given to ``initialize_timber`` directly, without a distribution.

    Its hooks are plain values: the model directories passed as
    ``model_config_dirs`` and the ``session_types`` setting.
    """

    def __init__(self, name: str, model_dirs: Iterable[str], session_types: Iterable[str] = ()) -> None:
        self.name = name
        self.model_dirs = [os.path.abspath(d) for d in model_dirs]
        self.session_types = list(session_types)


def _dist_name(ep: EntryPoint) -> str:
    dist = getattr(ep, "dist", None)
    return dist.name if dist is not None else f"<entry point {ep.value}>"


def _dist_version(ep: EntryPoint) -> str:
    dist = getattr(ep, "dist", None)
    return dist.version if dist is not None else ""


def _new_manager() -> pluggy.PluginManager:
    pm = pluggy.PluginManager(hookspecs.PROJECT_NAME)
    pm.add_hookspecs(hookspecs)
    return pm


def _call(pm: pluggy.PluginManager, plugin: object, hook: str, **kwargs: Any) -> Any:
    """Call one plugin's implementation of ``hook``; None when it has none.

    The kernel needs each app's answer separately (to know who owns what, and
    to blame the right plugin when one raises), so it calls the plugin's own
    implementation instead of the fan-out hook call.
    """
    for impl in getattr(pm.hook, hook).get_hookimpls():
        if impl.plugin is plugin:
            return impl.function(*[kwargs[arg] for arg in impl.argnames])
    return None


def _string_list(value: Any, hook: str) -> list[str]:
    if value is None:
        return []
    if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
        raise TypeError(f"{hook}() must return a list of strings, not {type(value).__name__}")
    items = list(value)
    for item in items:
        if not isinstance(item, (str, os.PathLike)):
            raise TypeError(f"{hook}() must return a list of strings; got {item!r}")
    return [os.fspath(i) for i in items]


def _describe(pm: pluggy.PluginManager, app: App) -> None:
    """Fill ``app`` from its plugin's hooks; raise on the first bad answer."""
    plugin = app.plugin
    info = _call(pm, plugin, "timber_app_info") or {}
    if not isinstance(info, Mapping):
        raise TypeError(f"timber_app_info() must return a dict, not {type(info).__name__}")
    unknown = set(info) - {"name", "version", "description", "depends"}
    if unknown:
        raise TypeError(
            f"timber_app_info() returned unknown keys {sorted(unknown)}; "
            f"allowed: name, version, description, depends"
        )
    declared = info.get("name", app.name)
    if declared != app.name:
        raise ValueError(
            f"timber_app_info() names the app {declared!r} but its entry point is "
            f"{app.name!r}; make them the same"
        )
    app.version = str(info.get("version") or app.version)
    app.description = str(info.get("description") or "")
    app.depends = _string_list(info.get("depends"), "timber_app_info")
    app.model_dirs = _string_list(_call(pm, plugin, "timber_model_dirs"), "timber_model_dirs")
    app.session_types = _string_list(_call(pm, plugin, "timber_session_types"), "timber_session_types")
    policies = _call(pm, plugin, "timber_rls_policies") or []
    if not isinstance(policies, list) or not all(isinstance(p, Mapping) for p in policies):
        raise TypeError("timber_rls_policies() must return a list of dicts")
    app.rls_policies = [dict(p) for p in policies]
    services = _call(pm, plugin, "timber_services", kernel=None) or {}
    if not isinstance(services, Mapping):
        raise TypeError(f"timber_services() must return a dict, not {type(services).__name__}")
    app.service_factories = dict(services)
    mdir = _call(pm, plugin, "timber_migrations_dir")
    app.migrations_dir = os.fspath(mdir) if mdir else None


def _load(pm: pluggy.PluginManager, app: App, loader: Callable[[], object]) -> None:
    """Import and register one plugin, then read its hooks; mark it broken on any error."""
    try:
        plugin = loader()
        pm.register(plugin, name=app.name)
        try:
            pm.check_pending()
        except pluggy.PluginValidationError:
            pm.unregister(plugin)
            raise
        app.plugin = plugin
        _describe(pm, app)
    except Exception as exc:  # a plugin's own bug must not take the kernel down
        if app.plugin is not None:
            pm.unregister(app.plugin)
            app.plugin = None
        app.status = BROKEN
        app.error = f"{type(exc).__name__}: {exc}"


def _check_name(name: str, source: str) -> str | None:
    if name in _RESERVED:
        return f"the app name {name!r} is reserved for the kernel; rename the entry point in {source}"
    if not _APP_NAME.match(name):
        return (
            f"the app name {name!r} (from {source}) must be lowercase letters, digits and "
            f"underscores, starting with a letter, at most 40 characters"
        )
    return None


def _order(apps: list[App], problems: list[Problem]) -> list[App]:
    """Return the apps, loaded ones first in dependency order.

    An app whose dependency is missing, not loaded or in a cycle is left out (broken), with
    every app depending on it; the others are ordered.
    """
    by_name = {a.name: a for a in apps}
    while True:
        drop_unmet_dependencies(apps, problems)
        loaded = {a.name for a in apps if a.loaded}
        cycle = _first_cycle(by_name, loaded)
        if cycle is None:
            break
        message = f"dependency cycle: {' -> '.join(cycle)}; break it in one app's depends"
        for name in sorted(set(cycle)):
            by_name[name].status, by_name[name].error = BROKEN, message
            problems.append(Problem(name, message))
    ordered: list[App] = []
    done: set[str] = set()

    def visit(name: str) -> None:
        if name in done or name not in loaded:
            return
        done.add(name)
        for dep in sorted(by_name[name].depends):
            visit(dep)
        ordered.append(by_name[name])

    visit(KERNEL_APP)
    for name in sorted(loaded):
        visit(name)
    return ordered + [a for a in apps if not a.loaded]


def _first_cycle(by_name: Mapping[str, App], loaded: set[str]) -> list[str] | None:
    """Return the first dependency cycle among the loaded apps (``[a, b, a]``), in name order; None if none."""
    state: dict[str, int] = {}  # 1 visiting, 2 done

    def visit(name: str, path: list[str]) -> list[str] | None:
        if state.get(name) == 2 or name not in loaded:
            return None
        if state.get(name) == 1:
            return path[path.index(name):] + [name]
        state[name] = 1
        for dep in sorted(by_name[name].depends):
            found = visit(dep, path + [name])
            if found:
                return found
        state[name] = 2
        return None

    for name in sorted(loaded):
        found = visit(name, [])
        if found:
            return found
    return None


def _claim(
    apps: list[App], problems: list[Problem], kind: str, verb: str, names_of: Callable[[App], Iterable[str]]
) -> None:
    """Leave out every app claiming a name (session type, service) another app claims too.

    All claimants are left out (``conflict``): no one of them is the right owner, and which
    was installed later is not knowable. The kernel is never left out: an app claiming one
    of the kernel's names is left out alone.
    """
    claims: dict[str, list[App]] = {}
    for app in apps:
        if app.loaded:
            for name in names_of(app):
                claims.setdefault(name, []).append(app)
    contested: dict[str, list[str]] = {}
    for name in sorted(claims):
        owners = sorted(claims[name], key=lambda a: (a.name != KERNEL_APP, a.name))
        if len(owners) < 2:
            continue
        named = " and by ".join(f"app {a.name!r} ({a.distribution})" for a in owners)
        out = [a for a in owners if a.name != KERNEL_APP]
        who = "all of them are left out: rename it in all but one" if len(out) == len(owners) else (
            f"the kernel keeps it: rename it in {', '.join(repr(a.name) for a in out)}")
        message = f"{kind} {name!r} is {verb} by {named}; each {kind} has one owner, so {who}"
        for app in out:
            contested.setdefault(app.name, []).append(message)
    for app in apps:
        if app.name in contested:
            app.status, app.error = CONFLICT, "; ".join(contested[app.name])
            problems.extend(Problem(app.name, m) for m in contested[app.name])


def discover(
    *,
    direct: DirectApp | None = None,
    environ: Mapping[str, str] | None = None,
) -> tuple[AppRegistry, pluggy.PluginManager]:
    """Find, load and order every app; return the registry and the plugin manager.

    ``TIMBER_APPS=a,b`` loads only those apps; ``TIMBER_DISABLE_APPS=a,b``
    leaves them out. ``direct`` adds an app given to ``initialize_timber``
    without a distribution (or adds model directories to the installed app of
    that name). A broken or conflicting app is left out and recorded, with every app
    depending on it, never raised (docs/plugins.md, "failure is contained"); only the
    kernel's own plugin failing is a fatal problem, which
    :meth:`AppRegistry.raise_for_problems` raises.
    """
    env = os.environ if environ is None else environ
    only = parse_app_list(env.get("TIMBER_APPS"), "TIMBER_APPS")
    disabled = parse_app_list(env.get("TIMBER_DISABLE_APPS"), "TIMBER_DISABLE_APPS") or frozenset()
    pm = _new_manager()
    problems: list[Problem] = []

    kernel = App(name=KERNEL_APP, distribution="timber-core")
    _load(pm, kernel, lambda: _kernel_plugin)
    if not kernel.loaded:
        problems.append(
            FatalProblem(KERNEL_APP, f"the kernel's own plugin fails: {kernel.error}; reinstall timber-core")
        )
    apps = [kernel]

    by_name: dict[str, list[EntryPoint]] = {}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        by_name.setdefault(ep.name, []).append(ep)

    for name in sorted(by_name):
        eps = by_name[name]
        first = eps[0]
        app = App(name=name, distribution=_dist_name(first), version=_dist_version(first))
        apps.append(app)
        bad_name = _check_name(name, f"distribution {app.distribution}")
        if bad_name:
            app.status, app.error = BROKEN, bad_name
            problems.append(Problem(name, bad_name))
            continue
        dists = sorted({_dist_name(ep) for ep in eps})
        if len(eps) > 1:
            # pluggy would silently keep one of them (FIELD-NOTES); say which clash.
            app.status = CONFLICT
            app.distribution = ", ".join(dists)
            app.error = (
                f"the app name {name!r} is registered by {len(eps)} distributions: "
                f"{' and '.join(dists)}; uninstall one of them"
            )
            problems.append(Problem(name, app.error))
            continue
        if (only is not None and name not in only) or name in disabled:
            app.status = DISABLED
            app.error = "left out by TIMBER_APPS" if name not in disabled else "left out by TIMBER_DISABLE_APPS"
            continue
        _load(pm, app, first.load)
        if app.status == BROKEN:
            problems.append(Problem(name, f"plugin from {app.distribution} is broken and left out: {app.error}"))

    if direct is not None:
        _add_direct(direct, apps, problems)

    _claim(apps, problems, "session type", "claimed", lambda a: a.session_types)
    _claim(apps, problems, "service", "contributed", lambda a: a.service_factories)
    ordered = _order(apps, problems)
    return AppRegistry(ordered, problems), pm


def _add_direct(direct: DirectApp, apps: list[App], problems: list[Problem]) -> None:
    existing = next((a for a in apps if a.name == direct.name), None)
    if existing is not None:
        # Extra model directories for an installed app (or for the kernel).
        existing.model_dirs.extend(d for d in direct.model_dirs if d not in existing.model_dirs)
        existing.session_types.extend(t for t in direct.session_types if t not in existing.session_types)
        return
    app = App(
        name=direct.name,
        distribution="<initialize_timber model_config_dirs>",
        model_dirs=list(direct.model_dirs),
        session_types=list(direct.session_types),
    )
    apps.append(app)
    bad_name = _check_name(direct.name, "initialize_timber(app_name=...)")
    if bad_name:
        app.status, app.error = BROKEN, bad_name
        problems.append(Problem(direct.name, bad_name))


def register_app_commands(registry: AppRegistry, pm: pluggy.PluginManager, cli: Any) -> list[str]:
    """Call every loaded app's ``timber_register_commands(cli)``; return a warning per failing app.

    One app's bad command must not take the CLI down: its failure is returned, not raised.
    """
    warnings = []
    for app in registry.loaded():
        if app.plugin is None:
            continue
        try:
            _call(pm, app.plugin, "timber_register_commands", cli=cli)
        except Exception as exc:
            warnings.append(f"app {app.name!r} ({app.distribution}) failed to register its commands: "
                            f"{type(exc).__name__}: {exc}")
    return warnings
