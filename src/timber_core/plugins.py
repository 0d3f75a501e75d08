"""Discovery of app plugins from the ``timber.apps`` entry-point group.

Each entry point is loaded and each hook called inside its own ``try``, through
pluggy for one app at a time (:func:`call_hook`): a plugin whose import or hook
raises is recorded as broken, with its distribution and error, and left out;
the other apps and the CLI go on. Apps
contesting a name (app name, session type, service) are left out as in
conflict, and so is every app whose dependency is missing, left out or in a
cycle (docs/plugins.md, "Failure is contained"). Ordering follows the apps'
declared ``depends``. Nothing here imports
SQLAlchemy: ``timber apps list`` runs on this module alone.
"""

from __future__ import annotations

import graphlib
import heapq
import os
import re
import types
from collections.abc import Callable, Iterable, Mapping
from importlib.metadata import EntryPoint, entry_points
from typing import Any

import pluggy

from . import _kernel_plugin, context, hookspecs
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
from .errors import PluginError

__all__ = [
    "ENTRY_POINT_GROUP", "DirectApp", "bind_services", "call_hook", "discover", "new_manager",
    "register_app_commands", "start_app", "web_routes",
]

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


def _dist_name_version(ep: EntryPoint) -> tuple[str, str]:
    """The name and version of the distribution of ``ep``, from ONE read of its metadata.

    (``dist.name`` and ``dist.version`` each parse the METADATA file again: at 200 apps installed
    that was a tenth of ``timber apps list``.)
    """
    dist = getattr(ep, "dist", None)
    if dist is None:
        return f"<entry point {ep.value}>", ""
    headers = _core_headers(dist.read_text("METADATA") or dist.read_text("PKG-INFO") or "")
    if "Name" in headers and "Version" in headers:
        return headers["Name"], headers["Version"]
    meta = dist.metadata  # anything unusual: the email parser, as importlib.metadata reads it
    return meta["Name"], meta["Version"]


def _core_headers(text: str) -> dict[str, str]:
    """The ``Name`` and ``Version`` headers of a core-metadata file, read from its header lines.

    Parsing the whole file as an email message (``dist.metadata``) costs about 0.2 ms a
    distribution, the description included; the two headers are single-line fields near the top.
    A header seen twice or folded onto a continuation line is left out (the caller then parses).
    """
    found: dict[str, str] = {}
    last = ""
    for line in text.splitlines():
        if not line:
            break  # the end of the headers: the description follows
        if line[0] in " \t":
            if last in ("Name", "Version"):
                return {}  # folded onto a continuation line: leave it to the email parser
            continue
        last, sep, value = line.partition(":")
        if last in ("Name", "Version"):
            if not sep or last in found:
                return {}
            found[last] = value.strip()
    return found


def new_manager() -> pluggy.PluginManager:
    """Return a plugin manager knowing Timber's hooks, with no plugin registered.

    Pass it to :func:`discover` after registering a plugin that is not an app on it (a
    tracer, a hookwrapper) or after ``pm.add_hookcall_monitoring`` / ``pm.enable_tracing``.
    """
    pm = _Manager(hookspecs.PROJECT_NAME)
    pm.add_hookspecs(hookspecs)
    return pm


#: What a module attribute must be for pluggy to consider it (functions; methods and the like are
#: left to pluggy's own check).
_ROUTINE = (types.FunctionType, types.BuiltinFunctionType, types.MethodType, classmethod, staticmethod)


class _Manager(pluggy.PluginManager):
    """pluggy's manager, answering quickly for a plugin module's attributes that cannot be hooks.

    ``register`` asks :meth:`parse_hookimpl_opts` about every name of the plugin; pluggy looks each
    up with ``inspect.getattr_static``, about 7 µs a name (a tenth of ``timber apps list`` at 200 apps).
    A module's names live in its ``__dict__`` and only routines can be hook implementations
    (pluggy's rule), so its imports, constants and dunders are answered from the dictionary.
    """

    def parse_hookimpl_opts(self, plugin: Any, name: str) -> Any:
        if type(plugin) is types.ModuleType:
            value = plugin.__dict__.get(name, _MISSING)
            if value is not _MISSING and not isinstance(value, _ROUTINE):
                return None
        return super().parse_hookimpl_opts(plugin, name)


_MISSING = object()


def call_hook(pm: pluggy.PluginManager, app: App, apps: Iterable[App], hook: str, **kwargs: Any) -> Any:
    """Call ``hook`` for ``app`` alone, through pluggy; return its answer, None when it gives none.

    The call goes through ``pm`` like any hook call (hookwrappers, ``tryfirst``/``trylast``,
    tracing, ``add_hookcall_monitoring``) with the plugins of the other ``apps`` left out: the
    kernel needs each app's own answer, and an exception raised is then this app's to carry.
    Plugins registered on ``pm`` that are not apps take part in every app's call. The answer
    is the first result that is not None, in pluggy's call order (``tryfirst`` first).
    """
    if app.plugin is None:
        return None
    return _call_alone(pm, _others(app, apps), hook, kwargs)


def _others(app: App, apps: Iterable[App]) -> frozenset[object]:
    """The plugins of ``apps`` other than ``app``'s: those left out of a call for ``app`` alone."""
    return frozenset(a.plugin for a in apps if a.plugin is not None and a.plugin is not app.plugin)


def _call_alone(pm: pluggy.PluginManager, others: frozenset[object], hook: str, kwargs: Mapping[str, Any]) -> Any:
    """:func:`call_hook` with the plugins to leave out already gathered (one gathering per app, not per hook:
    at 200 apps, gathering them for each of an app's seven hooks was a tenth of ``timber apps list``)."""
    caller = getattr(pm.hook, hook)
    # Only the other plugins that implement this hook need leaving out: pluggy checks each plugin
    # it is given, which for every app of every hook call grew with the square of the apps.
    remove = [impl.plugin for impl in caller.get_hookimpls() if impl.plugin in others]
    results = (pm.subset_hook_caller(hook, remove_plugins=remove) if remove else caller)(**kwargs)
    return results[0] if results else None


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


def _describe(pm: pluggy.PluginManager, app: App, apps: list[App]) -> None:
    """Fill ``app`` from its plugin's hooks; raise on the first bad answer."""

    others = _others(app, apps)

    def call(hook: str, **kwargs: Any) -> Any:
        return _call_alone(pm, others, hook, kwargs)

    info = call("timber_app_info") or {}
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
    app.model_dirs = _string_list(call("timber_model_dirs"), "timber_model_dirs")
    app.session_types = _string_list(call("timber_session_types"), "timber_session_types")
    policies = call("timber_rls_policies") or []
    if not isinstance(policies, list) or not all(isinstance(p, Mapping) for p in policies):
        raise TypeError("timber_rls_policies() must return a list of dicts")
    app.rls_policies = [dict(p) for p in policies]
    app.service_factories = _services(call("timber_services", kernel=None))
    mdir = call("timber_migrations_dir")
    app.migrations_dir = os.fspath(mdir) if mdir else None


def _services(answer: Any) -> dict[str, Any]:
    if answer is None:
        return {}
    if not isinstance(answer, Mapping):
        raise TypeError(f"timber_services() must return a dict, not {type(answer).__name__}")
    return dict(answer)


def _load(pm: pluggy.PluginManager, app: App, loader: Callable[[], object], apps: list[App]) -> None:
    """Import and register one plugin, then read its hooks; mark it broken on any error.

    ``apps`` are the apps registered so far (their plugins are left out of this app's calls).
    """
    try:
        plugin = loader()
        pm.register(plugin, name=app.name)
        try:
            pm.check_pending()
        except pluggy.PluginValidationError:
            pm.unregister(plugin)
            raise
        app.plugin = plugin
        _describe(pm, app, apps)
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

    The kernel comes first; then each app once its dependencies are in, and among the apps
    ready at the same time, by name. An app whose dependency is missing, not loaded or in a
    cycle is left out (broken), with every app depending on it; the others are ordered.
    """
    by_name = {a.name: a for a in apps}
    while True:
        drop_unmet_dependencies(apps, problems)
        # Every app depends on the kernel's shared tables, declared or not.
        graph = {
            a.name: set(a.depends) | ({KERNEL_APP} if a.name != KERNEL_APP and by_name[KERNEL_APP].loaded else set())
            for a in apps if a.loaded
        }
        sorter = graphlib.TopologicalSorter(graph)
        try:
            sorter.prepare()
        except graphlib.CycleError as exc:
            cycle = _in_dependency_order(exc.args[1], graph)
            message = f"dependency cycle: {' -> '.join(cycle)}; break it in one app's depends"
            for name in sorted(set(cycle)):
                by_name[name].status, by_name[name].error = BROKEN, message
                problems.append(Problem(name, message))
            continue
        break
    ordered: list[App] = []
    ready: list[str] = []
    while sorter.is_active():
        for name in sorter.get_ready():
            heapq.heappush(ready, name)
        name = heapq.heappop(ready)
        ordered.append(by_name[name])
        sorter.done(name)
    return ordered + [a for a in apps if not a.loaded]


def _in_dependency_order(cycle: list[str], depends: Mapping[str, Iterable[str]]) -> list[str]:
    """Return graphlib's ``cycle`` (``[a, ..., a]``) read along ``depends``, from its first name in sort order."""
    nodes = cycle[:-1]
    if len(nodes) > 1 and nodes[1] not in depends[nodes[0]]:
        nodes.reverse()
    start = nodes.index(min(nodes))
    nodes = nodes[start:] + nodes[:start]
    return nodes + [nodes[0]]


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
    manager: pluggy.PluginManager | None = None,
) -> tuple[AppRegistry, pluggy.PluginManager]:
    """Find, load and order every app; return the registry and the plugin manager.

    ``TIMBER_APPS=a,b`` loads only those apps; ``TIMBER_DISABLE_APPS=a,b``
    leaves them out. ``direct`` adds an app given to ``initialize_timber``
    without a distribution (or adds model directories to the installed app of
    that name). ``manager`` (from :func:`new_manager`) is the plugin manager to register
    the apps on, when the caller wants to trace or wrap their hooks. A broken or conflicting app is left out and recorded, with every app
    depending on it, never raised (docs/plugins.md, "failure is contained"); only the
    kernel's own plugin failing is a fatal problem, which
    :meth:`AppRegistry.raise_for_problems` raises.
    """
    env = os.environ if environ is None else environ
    only = parse_app_list(env.get("TIMBER_APPS"), "TIMBER_APPS")
    disabled = parse_app_list(env.get("TIMBER_DISABLE_APPS"), "TIMBER_DISABLE_APPS") or frozenset()
    pm = new_manager() if manager is None else manager
    problems: list[Problem] = []

    kernel = App(name=KERNEL_APP, distribution="timber-core")
    _load(pm, kernel, lambda: _kernel_plugin, [])
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
        dist_names = [_dist_name_version(ep) for ep in eps]
        app = App(name=name, distribution=dist_names[0][0], version=dist_names[0][1])
        apps.append(app)
        bad_name = _check_name(name, f"distribution {app.distribution}")
        if bad_name:
            app.status, app.error = BROKEN, bad_name
            problems.append(Problem(name, bad_name))
            continue
        dists = sorted({dist for dist, _version in dist_names})
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
        _load(pm, app, eps[0].load, apps)
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
    # An app defined here without session types owns the one named after it (the design
    # document's MyApp creates 'myapp' sessions and declares nothing), unless that name is
    # already another app's type.
    taken = {t for a in apps for t in a.session_types}
    types = list(direct.session_types) or ([] if direct.name in taken else [direct.name])
    app = App(
        name=direct.name,
        distribution="<initialize_timber model_config_dirs>",
        model_dirs=list(direct.model_dirs),
        session_types=types,
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
            call_hook(pm, app, registry, "timber_register_commands", cli=cli)
        except Exception as exc:
            warnings.append(f"app {app.name!r} ({app.distribution}) failed to register its commands: "
                            f"{type(exc).__name__}: {exc}")
    return warnings


def web_routes(registry: AppRegistry, pm: pluggy.PluginManager, app_name: str) -> Any:
    """Return loaded app ``app_name``'s answer to ``timber_web_app()`` (None: no routes of its own).

    Raise NotFoundError / PluginError for an app that is unknown or left out, and PluginError,
    naming the app and the fix, when its hook raises: a server must not start without its routes.
    """
    app = registry.require_loaded(app_name)
    try:
        return call_hook(pm, app, registry, "timber_web_app")
    except Exception as exc:
        raise PluginError(f"app {app_name!r} ({app.distribution}): timber_web_app() raised "
                          f"{type(exc).__name__}: {exc}; fix the plugin's web routes") from exc


#: What :meth:`AppRegistry.leave_out` takes for one app: ``(status, error, problems)``.
Failure = tuple[str, str, list[Problem]]


def _failure(app: App, error: str) -> Failure:
    return BROKEN, error, [Problem(app.name, f"plugin from {app.distribution} is broken and left out: {error}")]


def bind_services(registry: AppRegistry, pm: pluggy.PluginManager, kernel: Any) -> dict[str, Failure]:
    """Call every loaded app's ``timber_services(kernel)`` with the built ``kernel``; keep its factories.

    Discovery asked each app with ``kernel=None`` (what ``timber apps list`` shows and what the
    service conflicts were judged on); the answer given the kernel replaces those factories and
    must name the same services. Return a failure per app whose hook raises or answers
    otherwise, for :meth:`AppRegistry.leave_out`; the other apps keep their new factories.
    """
    failures: dict[str, Failure] = {}
    for app in registry.loaded():
        if app.plugin is None:
            continue
        try:
            factories = _services(call_hook(pm, app, registry, "timber_services", kernel=kernel))
        except Exception as exc:  # a plugin's own bug must not take the kernel down
            failures[app.name] = _failure(app, f"timber_services(kernel) raised {type(exc).__name__}: {exc}")
            continue
        if sorted(factories) != sorted(app.service_factories):
            failures[app.name] = _failure(
                app,
                f"timber_services(kernel) returned the services {sorted(factories)} but "
                f"timber_services(None) returned {sorted(app.service_factories)}; return the same "
                f"names with and without a kernel",
            )
            continue
        app.service_factories = factories
    return failures


def start_app(registry: AppRegistry, pm: pluggy.PluginManager, app: App, kernel: Any) -> Failure | None:
    """Call ``app``'s ``timber_startup(kernel)`` in ``app``'s context; return its failure (for ``leave_out``).

    The context is set directly, not through ``app_context``: the kernel is not published yet,
    so ``app_context`` would still validate against the previous kernel's apps.
    """
    token = context._app.set(app.name)
    try:
        call_hook(pm, app, registry, "timber_startup", kernel=kernel)
    except Exception as exc:  # a plugin's own bug must not take the kernel down
        return _failure(app, f"timber_startup(kernel) raised {type(exc).__name__}: {exc}")
    finally:
        context._app.reset(token)
    return None
