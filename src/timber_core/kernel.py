"""The kernel object and ``initialize_timber``: apps + models + database, in explicit phases."""

from __future__ import annotations

import importlib
import logging
import os
import sys
import threading
from collections.abc import Iterator, Mapping
from typing import Any

import sqlalchemy.exc
from sqlalchemy import MetaData, Table

from . import _collector, _kernel_plugin, context
from .apps import CONFLICT, KERNEL_APP, App, AppRegistry, ModelProblem
from .config import TimberConfig
from .containment import load_contained
from .context import PLATFORM, current_app
from .db import DatabaseManager, embedded_url
from .errors import ConfigurationError, NotFoundError, NotInitializedError, PluginError, SchemaError
from .isolation import Isolation
from .plugins import DirectApp, Failure, bind_services, discover, start_app
from .schema import Schema
from .schema.build import build_tables, map_models
from .schema.spec import ModelSpec, SchemaProblem, Where

__all__ = ["Kernel", "initialize_timber", "get_kernel", "shutdown"]

log = logging.getLogger("timber")

_SETTINGS = ("session_types", "create_tables", "echo", "pool_size", "max_overflow", "pool_timeout", "connect_timeout",
             "config")
_kernel: Kernel | None = None
_lock = threading.Lock()


class ServiceRegistry(Mapping[str, Any]):
    """The apps' services by name, built on first use from their factories.

    A read-only Mapping: ``registry[name]`` raises NotFoundError naming the installed
    services, while ``in`` and ``get`` answer without raising, as for any Mapping.
    """

    def __init__(self, kernel: Kernel) -> None:
        self._kernel = kernel
        self._factories: dict[str, tuple[App, Any]] = {}
        self._built: dict[str, Any] = {}
        self._lock = threading.Lock()
        for app in kernel.apps.loaded():
            for name, factory in app.service_factories.items():
                if name in self._factories:
                    other = self._factories[name][0]
                    raise PluginError(
                        f"service {name!r} is contributed by app {other.name!r} ({other.distribution}) "
                        f"and by app {app.name!r} ({app.distribution}); rename one"
                    )
                self._factories[name] = (app, factory)

    def _leave_out(self, apps: list[App]) -> None:
        """Forget the services of ``apps``, left out after the registry was made (timber_startup)."""
        gone = {a.name for a in apps}
        for name in [n for n, (app, _f) in self._factories.items() if app.name in gone]:
            del self._factories[name]
            self._built.pop(name, None)

    def _entry(self, name: str) -> tuple[App, Any]:
        try:
            return self._factories[name]
        except KeyError:
            raise NotFoundError(
                f"no service named {name!r}; installed services: {', '.join(sorted(self._factories)) or 'none'}"
            ) from None

    def owner(self, name: str) -> str:
        """Return the app that contributes service ``name``; raise NotFoundError for an unknown one."""
        return self._entry(name)[0].name

    def __getitem__(self, name: str) -> Any:
        if name in self._built:
            return self._built[name]
        self._entry(name)
        with self._lock:
            if name not in self._built:
                app, factory = self._factories[name]
                if isinstance(factory, str):
                    module, _, attr = factory.partition(":")
                    try:
                        factory = getattr(importlib.import_module(module), attr)
                    except (ImportError, AttributeError) as exc:
                        raise PluginError(
                            f"service {name!r} of app {app.name!r} ({app.distribution}) names "
                            f"{factory!r}, which cannot be imported: {exc}"
                        ) from None
                self._built[name] = factory(self._kernel)
        return self._built[name]

    def __contains__(self, name: object) -> bool:
        return name in self._factories

    def get(self, name: str, default: Any = None) -> Any:
        """Return service ``name``, or ``default`` when no app contributes it (the Mapping contract)."""
        return self[name] if name in self._factories else default

    def __iter__(self) -> Iterator[str]:
        return iter(self._factories)

    def __len__(self) -> int:
        return len(self._factories)


class ModelMap(Mapping[str, type]):
    """The kernel's mapped classes by model name; an app's classes are mapped on first need.

    Its names are every loaded app's models, mapped yet or not (``in``, ``len``, iteration
    map nothing). ``models[name]`` (so ``get``, ``values``, ``items``) maps the owning app's
    classes first, with those of the apps it depends on, as entering that app's context does
    (docs/plugins.md, "What a process builds"): iterating ``values()`` maps every app.
    :meth:`built` answers without mapping.
    """

    def __init__(self, kernel: Kernel, owners: dict[str, str], classes: dict[str, type]) -> None:
        self._kernel = kernel
        self._owners = owners
        self._classes = classes

    def __getitem__(self, name: str) -> type:
        cls = self._classes.get(name)
        if cls is None:
            owner = self._owners[name]  # KeyError for a name no loaded app declares, as a dict
            self._kernel._ensure_built(owner)
            cls = self._classes[name]
        return cls

    def __contains__(self, name: object) -> bool:
        return name in self._owners

    def __iter__(self) -> Iterator[str]:
        return iter(self._owners)

    def __len__(self) -> int:
        return len(self._owners)

    def built(self, name: str) -> type | None:
        """Return model ``name``'s class if it is mapped already, else None (mapping nothing)."""
        return self._classes.get(name)

    def mapped(self) -> dict[str, type]:
        """Return a copy of the classes mapped so far, by model name."""
        return dict(self._classes)

    def __repr__(self) -> str:
        return f"<ModelMap {len(self._classes)} of {len(self._owners)} mapped>"


class Kernel:
    """Everything ``initialize_timber`` built: apps, models, database, services.

    Attributes: ``app_name`` (the default context; None for a kernel built with no app), ``apps`` (:class:`AppRegistry`),
    ``models`` (:class:`ModelMap`: the classes by model name, an app's mapped on first need), ``metadata`` (one MetaData for every
    table), ``db`` (:class:`DatabaseManager`), ``services``, ``config``, ``vectors``
    (:class:`~timber_core.vectors.runtime.VectorRuntime`: outbox, store, embedders), ``cache``
    (:class:`~timber_core.cache.Cache`).
    """

    def __init__(
        self,
        app_name: str | None,
        apps: AppRegistry,
        plugin_manager: Any,
        schema: Schema,
        base: type,
        classes: dict[str, type],
        db: DatabaseManager,
        config: TimberConfig,
        tables: dict[str, Table] | None = None,
    ) -> None:
        """``classes`` are the mapped classes; ``tables`` (every model's Table, by model name) is
        given when some apps' classes are not mapped yet: they are mapped on first need."""
        self.app_name = app_name
        self.apps = apps
        self.plugin_manager = plugin_manager
        self.schema = schema
        self.base = base
        self._specs: dict[str, ModelSpec] = {m.name: m for m in schema.models}
        mapped_apps = {cls.__timber_model__.app for cls in classes.values()}  # type: ignore[attr-defined]
        #: The loaded apps whose classes are not mapped yet; replaced (never changed in place) under ``_build_lock``.
        self._unbuilt: frozenset[str] = frozenset(m.app for m in schema.models if m.app not in mapped_apps)
        self._tables = tables or {}
        #: The apps in the registry's order: each after the apps it depends on (plugins._order).
        self._app_order = [KERNEL_APP, *(a.name for a in apps.loaded() if a.name != KERNEL_APP)]
        self._build_lock = threading.Lock()
        #: App -> the SchemaError its late mapping raised (it stays unmapped).
        self._build_failures: dict[str, SchemaError] = {}
        #: Whether every loaded app's mapping was tried (platform_context): later calls have nothing to do.
        self._all_tried = False
        self.models = ModelMap(self, {m.name: m.app for m in schema.models}, dict(classes))
        self.metadata: MetaData = base.metadata
        self.db = db
        self.config = config
        #: The keys of encrypted columns (:class:`timber_core.encryption.FieldKeys`), loaded when the
        #: kernel starts; None when no model has an encrypted column.
        self.field_keys: Any = None
        self.isolation = Isolation(apps, classes, schema.models)
        self.isolation.install(db.session_factory)
        #: On SQLite, the database wall (authorizer and temporary views); None on PostgreSQL.
        self.sqlite_wall: Any = None
        if db.dialect == "sqlite":
            from .sqlite_wall import SqliteWall

            self.sqlite_wall = SqliteWall(self)
            self.sqlite_wall.install(db.engine)
        db.kernel = self
        from .vectors.runtime import VectorRuntime

        # Records index work in the outbox on every flush of a vector-enabled model; opens
        # nothing (store, embedding model) until the first drain or search.
        self.vectors = VectorRuntime(self)
        from .cache import Cache
        from .cache.hooks import install as install_cache_hooks

        #: The shared cache (:mod:`timber_core.cache`): in-process, or Redis with ``REDIS_URL``.
        self.cache = Cache.from_config(config, db)
        install_cache_hooks(self)
        self.services = ServiceRegistry(self)

    def spec(self, name: str) -> ModelSpec:
        """Return the validated spec of model ``name`` (mapping nothing); raise NotFoundError with suggestions."""
        spec = self._specs.get(name)
        if spec is None:
            import difflib

            close = difflib.get_close_matches(name, self._specs, n=3)
            hint = f" Did you mean {', '.join(close)}?" if close else ""
            raise NotFoundError(
                f"no model named {name!r} is declared by any loaded app.{hint} "
                f"Known models: {', '.join(sorted(self._specs))}"
            )
        return spec

    def get_model(self, name: str) -> type[Any]:
        """Return model ``name`` if the current app context may use it.

        Raise IsolationError naming the owner for another app's private model. A model whose
        app is not mapped yet (another app's shared model) is mapped first, with that app.
        """
        spec = self.spec(name)
        self.isolation.check_model(spec, current_app(), "use")
        return self.models[name]

    def table_owner(self, table: str) -> str:
        """Return the app owning ``table`` (``"timber"`` for the kernel's shared tables)."""
        for spec in self.schema.models:
            if spec.table_name == table:
                return str(spec.app)
        raise NotFoundError(f"no loaded model declares table {table!r}")

    def models_of(self, app: str) -> list[ModelSpec]:
        """Return the specs of the models app ``app`` owns, in schema order."""
        return [m for m in self.schema.models if m.app == app]

    def _ensure_built(self, app: str | None) -> None:
        """Map the classes of ``app`` and of the apps it depends on (None: of every app), once.

        Called on entering an app's context (``app_context``, ``set_context``), on
        ``platform_context()`` (every app) and on reading an unmapped model in ``models``.
        Under a lock: two threads entering an unmapped app map it once. An app whose
        mapping fails stays unmapped, the others usable; entering it raises SchemaError
        naming it, each time. With ``app=None`` an app that fails is skipped (warned once).
        """
        if not self._unbuilt and not self._build_failures:
            return  # every app mapped: the common case costs two attribute reads
        if app is None and self._all_tried:
            return  # what platform_context() could map is mapped; a failure was warned of once
        wanted = None if app is None else _closure(self.apps, app)
        if wanted is not None:
            failed = next((a for a in self._app_order if a in wanted and a in self._build_failures), None)
            if failed is not None:
                raise self._build_failures[failed]
            if not (self._unbuilt & wanted):
                return
        elif not self._unbuilt:
            return
        with self._build_lock, _collector.paused():
            # Dependencies first: their classes must be mapped when a relationship names them.
            # Every app (None) means every app still loaded: one left out by its start-up hook stays unmapped.
            chosen = wanted if wanted is not None else {a.name for a in self.apps.loaded()}
            for name in [a for a in self._app_order if a in chosen and a in self._unbuilt]:
                try:
                    self._map_app(name)
                except SchemaError as exc:
                    if wanted is not None:
                        raise
                    log.warning("timber: app %r cannot be mapped and stays out of this process: %s", name, exc)
            if wanted is None:
                self._all_tried = True

    def _map_app(self, app: str) -> None:
        """Map ``app``'s classes (its dependencies mapped already) and configure, under ``_build_lock``.

        On failure, undo the mapping, record the SchemaError (raised again on each later entry) and raise it.
        """
        specs = [m for m in self.schema.models if m.app == app]
        where = specs[0].where if specs else Where(app, "<models>", 0)
        dep = next((d for d in self.apps.get(app).depends if d in self._build_failures), None)
        registry = self.base.registry
        try:
            if dep is not None:
                raise SchemaError([SchemaProblem(where, "depends", f"app {app!r} depends on app {dep!r}, whose "
                                                                   f"models cannot be mapped: {self._build_failures[dep]}")])
            classes = map_models(self.base, specs, self._tables)
            registry.configure()
        except (sqlalchemy.exc.ArgumentError, sqlalchemy.exc.InvalidRequestError, SchemaError) as exc:
            _unmap(registry, specs)
            error = exc if isinstance(exc, SchemaError) else SchemaError([SchemaProblem(
                where, "relationships", f"SQLAlchemy cannot configure the models of app {app!r}, so it cannot be "
                                        f"entered in this process (the other apps can): {exc}")])
            self._build_failures[app] = error
            self._unbuilt = self._unbuilt - {app}
            raise error from None
        self.models._classes.update(classes)
        self.isolation.add(classes)
        self._unbuilt = self._unbuilt - {app}

    def close(self) -> None:
        """Close the vector store (if opened) and dispose of the engine's connections."""
        try:
            self.vectors.close()
        finally:
            try:
                self.cache.close()
            finally:
                self.db.dispose()

    def __repr__(self) -> str:
        return f"<Kernel app={self.app_name!r} apps={[a.name for a in self.apps.loaded()]} db={self.db.display_url!r}>"


def _closure(apps: AppRegistry, app: str) -> set[str]:
    """``app``, the apps it depends on (transitively) and the kernel: the apps whose classes it needs."""
    seen, todo = {KERNEL_APP}, [app]
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            todo.extend(apps.get(name).depends)
    return seen


def _unmap(registry: Any, specs: list[ModelSpec]) -> None:
    """Take the classes of ``specs`` out of ``registry`` after their mapping failed.

    SQLAlchemy keeps a mapper that failed to configure and refuses every later ``configure()``
    naming it, which would stop every app of the kernel; disposing of the new mappers (and of the
    backrefs they already added to mapped classes) leaves the registry as it was before.
    """
    ids = {id(s) for s in specs}
    new = [m for m in list(registry.mappers) if id(getattr(m.class_, "__timber_model__", None)) in ids]
    gone = set(new)
    for mapper in list(registry.mappers):
        if mapper in gone:
            continue
        for key, prop in list(mapper._props.items()):
            if getattr(prop, "mapper", None) in gone or getattr(getattr(prop, "entity", None), "mapper", None) in gone:
                del mapper._props[key]
                mapper.class_manager.uninstrument_attribute(key)
                mapper._expire_memoizations()
    for mapper in new:
        manager = mapper.class_manager
        registry._managers.pop(manager, None)
        registry._dispose_manager_and_mapper(manager)
    registry._new_mappers = False


def get_kernel() -> Kernel:
    """Return the kernel made by the last ``initialize_timber``; raise before that."""
    if _kernel is None:
        raise NotInitializedError(
            "Timber is not initialized: call timber_core.initialize_timber(app_name=...) "
            "before using models or services"
        )
    return _kernel


def shutdown() -> None:
    """Close the current kernel (if any) and forget every process-level state Timber keeps.

    After it, the process is as if no ``initialize_timber`` had run: ``get_kernel()`` raises
    NotInitializedError, there is no default app context, the configuration is read from the
    environment again on next use, the CLI discovers the apps again, and the shared service
    singletons (``timber_core.services.persistence``), which look the kernel up at each call,
    refuse until the next ``initialize_timber``, and what the first start-up froze
    (``gc.freeze()``) is unfrozen, so the closed kernel can be collected. Safe to call at
    any time, also twice; the public way for tests to start clean (docs/testing.md).
    """
    global _kernel
    with _lock:
        previous, _kernel = _kernel, None
        context._set_default(None, None)
    TimberConfig.clear_cache()
    # Only a CLI already imported holds a discovery; importing it here would cost click.
    cli = sys.modules.get("timber_core.cli")
    if cli is not None:
        cli._reset_discovery()
    if previous is not None:
        previous.close()
    _collector.release()  # the closed kernel's objects must be collectable


def _validator(kernel: Kernel) -> Any:
    """The check of each app context entered: a loaded app, its classes mapped (first entry maps them)."""
    apps = kernel.apps

    def validate(name: str) -> str:
        if name == KERNEL_APP:
            raise ConfigurationError(
                "app_context('timber') is not allowed: the kernel is not an app; use "
                "timber_core.platform_context() for cross-app work"
            )
        name = apps.require_loaded(name).name
        kernel._ensure_built(name)
        return name

    return validate


def build_schema(apps: AppRegistry) -> tuple[Schema, type, dict[str, type]]:
    """Load the loaded apps' models and build the classes into one registry.

    An app whose models fail is left out in ``apps`` (see :mod:`timber_core.containment`),
    so the registry holds nothing of it. Raise SchemaError when the kernel's own models
    fail or SQLAlchemy cannot configure the classes: no app can start then.
    """
    schema, base, classes, _tables = _build_schema(apps, None)
    return schema, base, classes


def _build_schema(apps: AppRegistry, app_name: str | None,
                  home: str | None = None) -> tuple[Schema, type, dict[str, type], dict[str, Table]]:
    """As :func:`build_schema`, mapping only the classes ``app_name`` needs (None: every app's).

    Every model's Table is built (the migrations check the whole MetaData); the classes mapped
    are the kernel's, ``app_name``'s and those of the apps it depends on. Return also the
    tables by model name, for the apps mapped later (``Kernel._ensure_built``). With ``home``
    (TIMBER_HOME), the models of an unchanged set of model files are unpickled from there
    instead of read from their YAML (:mod:`timber_core._schema_cache`).
    """
    schema = _load_models(apps, home)
    if schema.problems:
        raise SchemaError(schema.problems)
    base, tables = build_tables(schema.models)
    models = schema.models
    if app_name is not None and apps.get(app_name).loaded:
        needed = _closure(apps, app_name)
        models = [m for m in schema.models if m.app in needed]
    classes = map_models(base, models, tables)
    try:
        base.registry.configure()
    except (sqlalchemy.exc.ArgumentError, sqlalchemy.exc.InvalidRequestError) as exc:
        first = schema.models[0].where if schema.models else Where(KERNEL_APP, "<models>", 0)
        raise SchemaError([SchemaProblem(first, "relationships", f"SQLAlchemy cannot configure the models: {exc}")]) from None
    return schema, base, classes, tables


def _load_models(apps: AppRegistry, home: str | None) -> Schema:
    """``load_contained(apps)``, through the cache in ``home`` when given: only a clean load is kept."""
    if home is None:
        return load_contained(apps)
    from . import _schema_cache

    before = [a.name for a in apps.loaded()]
    key = _schema_cache.key((a.name, a.model_dirs) for a in apps.loaded())
    schema = _schema_cache.load(home, key)
    if isinstance(schema, Schema):
        return schema
    schema = load_contained(apps)
    if not schema.problems and [a.name for a in apps.loaded()] == before:
        _schema_cache.store(home, key, schema)
    return schema


def _require_startable(apps: AppRegistry, app_name: str) -> None:
    """Raise for ``app_name`` left out: SchemaError with its model problems, else PluginError saying why."""
    app = apps.get(app_name)
    if app.loaded:
        return
    own = [p for p in apps.problems if isinstance(p, ModelProblem) and p.app == app_name]
    if own:
        raise SchemaError(own)
    apps.require_loaded(app_name)


def _warn_left_out(apps: AppRegistry) -> None:
    """Log one warning per app left out by a failure: which app, why (file, line, field) and the fix."""
    for app in apps.failed():
        log.warning("timber: app %r (%s) is %s and left out; the other apps start without it: %s",
                    app.name, app.distribution, "in conflict" if app.status == CONFLICT else app.status, app.error)


def _start_apps(kernel: Kernel) -> None:
    """Give each loaded app the ready kernel: its ``timber_services(kernel)``, then its ``timber_startup``.

    An app whose hook fails is left out with the apps depending on it (their services leave
    ``kernel.services``), one warning each; the others go on. Raise as ``_require_startable``
    when ``kernel.app_name`` is left out.
    """
    apps, pm = kernel.apps, kernel.plugin_manager

    def leave_out(failures: Mapping[str, Failure]) -> None:
        dropped = apps.leave_out(failures)
        kernel.services._leave_out(dropped)
        for app in dropped:
            log.warning("timber: app %r (%s) is %s and left out; the other apps start without it: %s",
                        app.name, app.distribution, app.status, app.error)

    leave_out(bind_services(apps, pm, kernel))
    kernel.services = ServiceRegistry(kernel)  # built from the factories given the kernel
    for app in apps.loaded():
        failure = start_app(apps, pm, app, kernel) if app.loaded else None
        if failure is not None:
            leave_out({app.name: failure})
    if kernel.app_name is not None:  # a kernel with no default app has no app of its own to start
        _require_startable(apps, kernel.app_name)


def initialize_timber(
    app_name: str | None = None,
    model_config_dirs: list[str] | None = None,
    database_url: str | None = None,
    **settings: Any,
) -> Kernel:
    """Build the kernel for ``app_name`` and make it the process's default context.

    With ``app_name=None`` the kernel is built and published with no default app
    context: every installed app is loaded, and code must enter
    ``app_context(name)`` or ``platform_context()`` before using models or
    services (outside them, NotInitializedError names that fix). The migration
    commands run so (``timber migrate`` needs no app).

    Phases: (1) discover and order the apps, (2) read and build every model into
    one registry (an app whose plugin, models, names or dependencies fail is left
    out with the apps depending on it, one warning each on the ``timber`` logger;
    initializing as such an app raises SchemaError naming its model problems, or
    PluginError saying why; only the kernel's own failure stops every app), (3) connect (``database_url``, else ``DATABASE_URL``, else an
    embedded SQLite file under ``TIMBER_HOME``, ``./.timber`` by default), (4)
    bring the tables to every migration head when ``create_tables`` (default: on
    SQLite only) and, on PostgreSQL, run the ``timber doctor`` startup check
    (errors raise ConfigurationError; a database that cannot be reached raises
    DatabaseUnavailableError, one line naming it and the fix), then give each app
    the ready kernel: ``timber_services(kernel)``, then ``timber_startup(kernel)`` (an
    app whose hook raises is left out like the others), (5) publish the
    kernel. Safe to call again: the new kernel replaces the old one, whose
    connections are closed.

    The garbage collector is disabled while it runs and enabled again after (also
    when it raises); the first successful call of a process then freezes the heap (``gc.freeze()``),
    so a later full collection and the interpreter's exit do not traverse
    the models again. ``shutdown()`` and a replacement unfreeze it (docs/performance.md).

    ``model_config_dirs`` adds model directories to ``app_name`` (or defines it,
    when no plugin of that name is installed, with the ``session_types`` setting).
    Other settings: ``create_tables`` (default: True on SQLite), ``echo``,
    ``pool_size``, ``max_overflow``, ``pool_timeout``, ``connect_timeout`` (seconds, default
    ``TIMBER_CONNECT_TIMEOUT``), ``config`` (a TimberConfig).
    """
    unknown = sorted(set(settings) - set(_SETTINGS))
    if unknown:
        raise ConfigurationError(
            f"initialize_timber() got unknown settings {unknown}; allowed: {', '.join(_SETTINGS)}"
        )
    if app_name is not None and (not isinstance(app_name, str) or not app_name):
        raise ConfigurationError(
            f"initialize_timber() needs app_name, the name of an installed app (or None for no app); got {app_name!r}"
        )
    if app_name == PLATFORM:
        raise ConfigurationError("app_name='platform' is reserved; initialize as an app and use platform_context()")
    # The collector would traverse the classes being built again and again for little garbage;
    # the published kernel is frozen so later collections, and the one at exit, skip it (_collector).
    with _collector.paused():
        kernel = _start(app_name, model_config_dirs, database_url, settings)
        _collector.freeze()
    return kernel


def _start(app_name: str | None, model_config_dirs: list[str] | None, database_url: str | None,
           settings: dict[str, Any]) -> Kernel:
    """Phases 1 to 5 of :func:`initialize_timber`, its arguments checked."""
    global _kernel
    config: TimberConfig = settings.get("config") or TimberConfig.load()

    # Phase 1: apps.
    direct = None
    if (model_config_dirs or settings.get("session_types")) and app_name is None:
        raise ConfigurationError("initialize_timber(model_config_dirs=..., session_types=...) defines or extends an "
                                 "app: name it with app_name")
    if model_config_dirs or settings.get("session_types"):
        assert app_name is not None
        kernel_dirs = {os.path.abspath(d) for d in _kernel_plugin.timber_model_dirs()}
        dirs = [d for d in (model_config_dirs or []) if os.path.abspath(d) not in kernel_dirs]
        direct = DirectApp(app_name, dirs, settings.get("session_types") or ())
    # An app that fails (plugin, models, conflict, dependency) is left out, never the others:
    # only the kernel's own failure raises here (docs/plugins.md, "failure is contained").
    apps, pm = discover(direct=direct)
    apps.raise_for_problems()
    if app_name is not None:
        apps.get(app_name)

    # Phase 2: models, leaving out each app whose models fail (and the apps depending on it).
    # Every Table, but only the classes of app_name and the apps it depends on (all of them with no
    # app): another app's are mapped when code first enters it (docs/plugins.md, "What a process builds").
    schema, base, classes, tables = _build_schema(apps, app_name, config.TIMBER_HOME)
    if app_name is not None:
        _require_startable(apps, app_name)
    _warn_left_out(apps)

    # Phase 3: database.
    url = database_url or config.DATABASE_URL
    if url is None:
        url = embedded_url(config.TIMBER_HOME)
        log.info("timber: no DATABASE_URL set; using the embedded SQLite database %s", url)
    db = DatabaseManager(
        url,
        pool_size=settings.get("pool_size") or config.DB_POOL_SIZE,
        max_overflow=settings.get("max_overflow", config.DB_MAX_OVERFLOW),
        pool_timeout=settings.get("pool_timeout") or config.DB_POOL_TIMEOUT,
        echo=bool(settings.get("echo", False)),
        connect_timeout=settings.get("connect_timeout") or config.CONNECT_TIMEOUT,
        lock_timeout_ms=config.LOCK_TIMEOUT_MS,
        statement_timeout_ms=config.STATEMENT_TIMEOUT_MS,
    )
    log.info("timber: %s connected to %s", f"app {app_name!r}" if app_name else "the kernel (no app)", db.display_url)
    kernel = Kernel(app_name, apps, pm, schema, base, classes, db, config, tables)

    # Phase 4: tables, through the one migration graph (batch mode on SQLite; roles and RLS
    # only on PostgreSQL), then on PostgreSQL the startup check of `timber doctor`: errors
    # (isolation does not hold) raise, warnings (pending revisions, connections) are logged.
    create = settings.get("create_tables")
    if create is None:
        create = db.dialect == "sqlite"
    try:
        if any(c.encrypted for m in schema.models for c in m.columns):
            from .encryption import install

            kernel.field_keys = install(kernel)
        if create:
            from .migrations.runner import ensure_schema

            ensure_schema(kernel)
        if db.dialect == "postgresql":
            from .migrations.doctor import startup_check

            startup_check(kernel)
        # Then the apps get the ready kernel (docs/plugins.md, timber_services, timber_startup).
        _start_apps(kernel)
    except BaseException:
        kernel.close()
        raise

    # Phase 5: publish.
    with _lock:
        previous, _kernel = _kernel, kernel
        context._set_default(app_name, _validator(kernel), lambda: kernel._ensure_built(None))
    if previous is not None:  # its engine is never the new one: each kernel makes its own
        previous.close()
        _collector.release()  # a replaced kernel's objects must be collectable
    return kernel
