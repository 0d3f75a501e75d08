"""Containing model failures: an app whose models fail to load is left out, never the others.

Reads and validates YAML only (no SQLAlchemy), so ``timber apps list`` and ``timber check``
use it as ``initialize_timber`` does. The rule (docs/plugins.md, "failure is contained"):

* a problem in an app's model files leaves that app out (status ``broken``);
* a name two apps both declare (model, table or index name) leaves both out (``conflict``):
  neither is the right owner, and which was installed later is not knowable;
* an app depending on a left-out app is left out too (``broken``, naming the dependency);
* the remaining apps' models are loaded again, until they load clean: an app that
  referenced a left-out app's model fails in the next round and is left out in its turn;
* a problem in the kernel's own models stops everything: no app can start without them.
"""

from __future__ import annotations

from .apps import BROKEN, CONFLICT, KERNEL_APP, AppRegistry, ModelProblem, Problem
from .schema import Schema, SchemaProblem, load_schema

__all__ = ["load_contained"]


def load_contained(apps: AppRegistry) -> Schema:
    """Load the models of ``apps``' loaded apps, leaving out (in ``apps``) each app whose models fail.

    Return the schema of the apps left in. Its ``problems`` are empty, or the kernel's
    own (a problem no app can start with: the caller raises SchemaError).
    """
    while True:
        schema = load_schema((a.name, d) for a in apps.loaded() for d in a.model_dirs)
        if not schema.problems:
            return schema
        kernel = [p for p in schema.problems if p.where.app == KERNEL_APP]
        if kernel:
            schema.problems = kernel
            return schema
        apps.leave_out(_failures(schema.problems))


def _failures(problems: list[SchemaProblem]) -> dict[str, tuple[str, str, list[Problem]]]:
    """Map each app to blame to ``(status, error, problems for timber check)``."""
    own: dict[str, list[SchemaProblem]] = {}
    contested: dict[str, list[SchemaProblem]] = {}
    for p in problems:
        own.setdefault(p.where.app, []).append(p)
        for other in p.contested:
            if other not in (KERNEL_APP, p.where.app):
                contested.setdefault(other, []).append(p)
    failures: dict[str, tuple[str, str, list[Problem]]] = {}
    for name in sorted(set(own) | set(contested)):
        mine = own.get(name, [])
        status = BROKEN if any(not p.contested for p in mine) else CONFLICT
        error = "; ".join(str(p) for p in mine + contested.get(name, []))
        failures[name] = (status, error, [ModelProblem(name, str(p)) for p in mine])
    return failures
