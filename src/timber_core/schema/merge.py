"""Merging every app's model files into one checked, ordered schema."""

from __future__ import annotations

import dataclasses
import glob
import graphlib
import heapq
import os
from collections.abc import Iterable

from ..apps import KERNEL_APP
from .spec import ColumnSpec, ModelFile, ModelSpec, SchemaProblem, TypeSpec, Where
from .validate import parse_file
from .yamlio import excerpt

__all__ = ["Schema", "load_schema", "model_files"]


@dataclasses.dataclass
class Schema:
    """Every model of every app, in ``depends`` order, with the problems found."""

    files: list[ModelFile]
    models: list[ModelSpec]
    problems: list[SchemaProblem]

    def by_name(self) -> dict[str, ModelSpec]:
        return {m.name: m for m in self.models}


def model_files(directory: str) -> list[str]:
    """Return the model files of ``directory`` (``*.yaml``, ``*.yml``), sorted."""
    return sorted(glob.glob(os.path.join(directory, "*.yaml")) + glob.glob(os.path.join(directory, "*.yml")))


def _order_files(files: list[ModelFile], problems: list[SchemaProblem]) -> list[ModelFile]:
    """Return ``files`` with each one after the files it ``depends`` on.

    Among files whose dependencies are in, the given order (app order, then file name) decides.
    An unresolved ``depends`` or a cycle is a problem; the files are ordered all the same.
    """
    by_base: dict[str, list[ModelFile]] = {}
    for f in files:
        by_base.setdefault(f.basename, []).append(f)
    by_path: dict[str, ModelFile] = {}
    for f in files:
        by_path.setdefault(f.path, f)
    position = {path: i for i, path in enumerate(by_path)}

    def resolve(f: ModelFile, i: int, dep: str) -> ModelFile | None:
        candidates = by_base.get(dep, [])
        if not candidates:
            known = ", ".join(sorted(by_base)) or "none"
            problems.append(SchemaProblem(f.depends_where(i), "depends", f"{excerpt(dep)} is not a model file of any loaded app; known files: {known}"))
            return None
        if len(candidates) > 1:
            own = [x for x in candidates if x.app == f.app]
            kernel = [x for x in candidates if x.app == KERNEL_APP]
            if len(own) == 1:
                return own[0]
            if len(kernel) == 1:
                return kernel[0]
            problems.append(SchemaProblem(f.depends_where(i), "depends", f"{excerpt(dep)} is ambiguous: {', '.join(x.path for x in candidates)}"))
            return None
        return candidates[0]

    graph: dict[str, list[str]] = {}
    for path, f in by_path.items():
        targets = (resolve(f, i, dep) for i, dep in enumerate(f.depends))
        graph[path] = list(dict.fromkeys(t.path for t in targets if t is not None))
    while True:
        sorter = graphlib.TopologicalSorter(graph)
        try:
            sorter.prepare()
            break
        except graphlib.CycleError as exc:
            cycle = _cycle_along(exc.args[1], graph, position)
            problems.append(SchemaProblem(by_path[cycle[0]].where, "depends",
                                          "cycle: " + " -> ".join(os.path.basename(p) for p in cycle)))
            graph[cycle[-2]].remove(cycle[-1])  # the problem fails the app; order the rest all the same
    ordered: list[ModelFile] = []
    ready: list[tuple[int, str]] = []
    while sorter.is_active():
        for path in sorter.get_ready():
            heapq.heappush(ready, (position[path], path))
        _, path = heapq.heappop(ready)
        ordered.append(by_path[path])
        sorter.done(path)
    return ordered


def _cycle_along(cycle: list[str], depends: dict[str, list[str]], position: dict[str, int]) -> list[str]:
    """Return graphlib's ``cycle`` (``[a, ..., a]``) read along ``depends``, from its first file in ``position``."""
    nodes = cycle[:-1]
    if len(nodes) > 1 and nodes[1] not in depends[nodes[0]]:
        nodes.reverse()
    start = nodes.index(min(nodes, key=position.__getitem__))
    nodes = nodes[start:] + nodes[:start]
    return nodes + [nodes[0]]


def _timestamps(model: ModelSpec) -> None:
    if not model.timestamps:
        return
    where = Where(model.where.app, model.where.file, model.where.line)
    for name in ("created_at", "updated_at"):
        if model.column(name) is None:
            model.columns.append(
                ColumnSpec(name=name, type=TypeSpec("DateTime"), where=where, nullable=False,
                           default="utcnow", has_default=True, implicit=True)
            )


def _check_references(models: list[ModelSpec], problems: list[SchemaProblem]) -> None:
    by_name = {m.name: m for m in models}
    by_table = {m.table_name: m for m in models}

    def crosses(src: ModelSpec, dst: ModelSpec) -> str | None:
        if src.app == dst.app or (dst.shared and dst.app == KERNEL_APP):
            return None
        if src.app == KERNEL_APP:
            return (f"a shared model never names an app's model; declare the link from app "
                    f"{dst.app!r}'s side (e.g. a relationship with backref)")
        if not dst.shared:
            return f"{dst.name} is private to app {dst.app!r}; an app may only reference its own and shared models"
        return None

    for m in models:
        for col in m.columns:
            if col.foreign_key:
                table, column = col.foreign_key.split(".")
                target = by_table.get(table)
                field = f"{m.name}.columns.{col.name}.foreign_key"
                if target is None:
                    problems.append(SchemaProblem(col.where, field, f"table {table!r} is not declared by any loaded model"))
                elif target.column(column) is None:
                    problems.append(SchemaProblem(col.where, field, f"table {table!r} has no column {column!r}"))
                else:
                    why = crosses(m, target)
                    if why:
                        problems.append(SchemaProblem(col.where, field, why))
        for rel in m.relationships:
            field = f"{m.name}.relationships.{rel.name}"
            target = by_name.get(rel.model)
            if target is None:
                problems.append(SchemaProblem(rel.where, field, f"model {rel.model!r} is not declared by any loaded app"))
                continue
            why = crosses(m, target)
            if why:
                problems.append(SchemaProblem(rel.where, field, why))
            if rel.secondary and rel.secondary not in by_table:
                problems.append(SchemaProblem(rel.where, f"{field}.secondary",
                                              f"association table {rel.secondary!r} is not declared by any loaded model"))


def _check_index_names(models: list[ModelSpec], problems: list[SchemaProblem]) -> None:
    """Index names share one namespace with table names in a database (PostgreSQL's schema, SQLite's file)."""
    taken: dict[str, tuple[str, Where]] = {m.table_name: (f"table {m.table_name!r}", m.where) for m in models}
    for m in models:
        names = [(ix.name, ix.where, f"{m.name}.indexes.{ix.name}") for ix in m.indexes]
        names += [(f"ix_{m.table_name}_{c.name}", c.where, f"{m.name}.columns.{c.name}.index")
                  for c in m.columns if c.index]
        for name, where, field in names:
            other = taken.get(name)
            if other is not None:
                what, at = other
                problems.append(SchemaProblem(where, field, f"index {name!r} is also the name of {what} "
                                              f"({at.file}:{at.line}, app {at.app!r}); index and table names are "
                                              f"unique in the whole database: rename one", (at.app,)))
                continue
            taken[name] = (f"an index of table {m.table_name!r}", where)


def load_schema(app_dirs: Iterable[tuple[str, str]]) -> Schema:
    """Read every model file of the given ``(app, directory)`` pairs into one Schema.

    Problems are collected, not raised: duplicate model or table names (naming
    both files), unresolved ``depends``, references to unknown or private models.
    """
    problems: list[SchemaProblem] = []
    files: list[ModelFile] = []
    for app, directory in app_dirs:
        if not os.path.isdir(directory):
            problems.append(SchemaProblem(Where(app, directory, 0), "model_dirs",
                                          "is not a directory; fix the app's timber_model_dirs() or model_config_dirs"))
            continue
        for path in model_files(directory):
            mf, found = parse_file(path, app)
            problems.extend(found)
            if mf is not None:
                files.append(mf)
    ordered = _order_files(files, problems)
    models: list[ModelSpec] = []
    names: dict[str, ModelSpec] = {}
    tables: dict[str, ModelSpec] = {}
    for f in ordered:
        for m in f.models:
            if m.name in names:
                o = names[m.name]
                problems.append(SchemaProblem(m.where, "name", f"model {m.name!r} is also declared at "
                                              f"{o.where.file}:{o.where.line} by app {o.app!r}; rename one "
                                              f"(prefix it with the app's name)", (o.app,)))
                continue
            folded = next((t for t in tables if t.lower() == m.table_name.lower() and t != m.table_name), None)
            if folded is not None:
                o = tables[folded]
                problems.append(SchemaProblem(m.where, "table_name", f"table {m.table_name!r} differs from table "
                                              f"{folded!r} (declared at {o.where.file}:{o.where.line} by app "
                                              f"{o.app!r}) only in case; SQLite would refuse both: rename one",
                                              (o.app,)))
                continue
            if m.table_name in tables:
                o = tables[m.table_name]
                problems.append(SchemaProblem(m.where, "table_name", f"table {m.table_name!r} is also declared at "
                                              f"{o.where.file}:{o.where.line} by app {o.app!r} (model {o.name}); "
                                              f"rename one (prefix it with the app's name)", (o.app,)))
                continue
            if m.app == KERNEL_APP:
                m.shared = True
            _timestamps(m)
            names[m.name] = m
            tables[m.table_name] = m
            models.append(m)
    _check_references(models, problems)
    _check_index_names(models, problems)
    return Schema(files=ordered, models=models, problems=problems)
