"""``timber new-app NAME``: write a new app distribution, ready to install, migrate and test.

The files come from the templates in ``scaffold_templates/`` (package data): each
``*.tmpl`` is written without that suffix, with ``__pkg__`` in its path and the
``{{placeholders}}`` in its text replaced. The initial migration is not a template: it is
written by ``timber migrate`` and ``timber create-migration "initial" --app NAME --rev-id
NAME_0001``, run for real in a child process on a throwaway SQLite database with the new app
on its path, so it is exactly what that command writes (and ``timber migrations check``
agrees with it on SQLite and PostgreSQL).

All or nothing: everything is written into a temporary directory beside the target, which is
renamed to the target only once complete; on any error it is removed.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from importlib import resources
from importlib.abc import Traversable
from pathlib import Path

from .errors import TimberError

__all__ = ["ScaffoldError", "new_app"]

_TEMPLATES = "scaffold_templates"
_SUFFIX = ".tmpl"
_PACKAGE = "__pkg__"  # in a template's path: the app's package name
_SESSION_TYPE_MAX = 50  # the length of sessions.session_type

# The child process runs the installed `timber` command's main, as the `timber` script does.
_RUN_TIMBER = "import sys; from timber_core.cli import main; sys.exit(main())"


class ScaffoldError(TimberError):
    """The app cannot be generated: a bad name, a target in the way, or its migration failed."""


def new_app(name: str, parent: str | os.PathLike[str] | None = None, *, session_type: str | None = None) -> Path:
    """Write app ``name``'s distribution into ``parent/name`` (default ``./timber-name``); return its path.

    ``session_type`` is the type of the app's rows in the shared ``sessions`` table (default:
    the app's name). Raise ScaffoldError, having written nothing, for a name the kernel would
    refuse, an app or module of that name already installed, a target that exists and is
    not an empty directory, or an initial migration that cannot be written.
    """
    _check_app_name(name)
    session_type = name if session_type is None else session_type
    _check_session_type(session_type)
    target = (Path(parent) / name if parent is not None else Path.cwd() / f"timber-{name}").absolute()
    _check_target(target)
    stage = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        os.chmod(stage, 0o777 & ~_umask())  # mkdtemp's 0700 is for secrets; this is a source tree
        _render(resources.files("timber_core") / _TEMPLATES, stage, _values(name, session_type))
        _write_initial_migration(stage, name)
        if target.is_dir():
            target.rmdir()  # empty (checked above); rename() needs it gone
        stage.rename(target)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
    return target


def _check_app_name(name: str) -> None:
    from importlib.metadata import entry_points
    from importlib.util import find_spec

    from .plugins import _APP_NAME, _RESERVED, ENTRY_POINT_GROUP

    if name in _RESERVED:
        raise ScaffoldError(f"the app name {name!r} is reserved for the kernel; choose another name")
    if not _APP_NAME.match(name):
        raise ScaffoldError(f"the app name {name!r} must be lowercase letters, digits and underscores, "
                            f"starting with a letter, at most 40 characters (e.g. my_app)")
    installed = [ep for ep in entry_points(group=ENTRY_POINT_GROUP) if ep.name == name]
    if installed:
        dist = installed[0].dist.name if installed[0].dist is not None else "a distribution"
        raise ScaffoldError(f"an app named {name!r} is already installed ({dist}); choose another name")
    if find_spec(name) is not None:
        raise ScaffoldError(f"a module named {name!r} is already importable here; the app's package {name!r} "
                            f"would clash with it: choose another name")


def _check_session_type(session_type: str) -> None:
    ok = (session_type[:1].isascii() and session_type[:1].islower() and len(session_type) <= _SESSION_TYPE_MAX
          and all(c.isascii() and (c.islower() or c.isdigit() or c == "_") for c in session_type))
    if not ok:
        raise ScaffoldError(f"the session type {session_type!r} must be lowercase letters, digits and underscores, "
                            f"starting with a letter, at most {_SESSION_TYPE_MAX} characters")


def _check_target(target: Path) -> None:
    if target.is_dir():
        if any(target.iterdir()):
            raise ScaffoldError(f"{target} already exists and is not empty; choose another --dir, or remove it")
    elif target.exists() or target.is_symlink():
        raise ScaffoldError(f"{target} already exists and is not a directory; choose another --dir, or remove it")
    if not target.parent.is_dir():
        raise ScaffoldError(f"{target.parent} does not exist; create it first")


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _values(name: str, session_type: str) -> dict[str, str]:
    """What each ``{{placeholder}}`` of the templates stands for."""
    return {
        "name": name,
        "dist": f"timber-{name}",
        "Camel": "".join(part.capitalize() for part in name.split("_")),
        "session_type": session_type,
        "command": f"{name.replace('_', '-')}-sessions",
    }


def _render(source: Traversable, dest: Path, values: dict[str, str]) -> None:
    """Write every template under ``source`` into ``dest``, placeholders replaced (see the module docstring)."""
    for item in sorted(source.iterdir(), key=lambda t: t.name):
        name = item.name.replace(_PACKAGE, values["name"])
        if item.is_dir():
            if name == "__pycache__":
                continue
            (dest / name).mkdir()
            _render(item, dest / name, values)
        elif name.endswith(_SUFFIX):
            text = item.read_text(encoding="utf-8")
            for key, value in values.items():
                text = text.replace("{{" + key + "}}", value)
            if "{{" in text:  # a placeholder nobody fills: a bug in the templates, never shipped half-filled
                raise ScaffoldError(f"template {item.name} has an unknown placeholder: {text[text.index('{{'):][:40]!r}")
            (dest / name[: -len(_SUFFIX)]).write_text(text, encoding="utf-8")


def _write_initial_migration(root: Path, name: str) -> None:
    """Run ``timber migrate`` and ``timber create-migration "initial"`` for the app at ``root``, in a child.

    The child sees the app through a throwaway ``.dist-info`` (its ``timber.apps`` entry point)
    and ``root/src`` on its path, only the kernel and this app (``TIMBER_APPS``), and a
    throwaway SQLite database and ``TIMBER_HOME``; create-migration writes into the app's
    ``migrations/versions``. Nothing else is written; no bytecode.
    """
    (root / "src" / name / "migrations" / "versions").mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="timber-new-app-") as work:
        site = Path(work, "site", f"timber_{name}-0.1.0.dist-info")
        site.mkdir(parents=True)
        (site / "METADATA").write_text(f"Metadata-Version: 2.1\nName: timber-{name}\nVersion: 0.1.0\n", encoding="utf-8")
        (site / "entry_points.txt").write_text(f"[timber.apps]\n{name} = {name}.plugin\n", encoding="utf-8")
        drop = {"DATABASE_URL", "TIMBER_APPS", "TIMBER_DISABLE_APPS", "TIMBER_APP"}
        env = {k: v for k, v in os.environ.items() if k not in drop}
        env.update({
            "PYTHONPATH": os.pathsep.join(p for p in (str(root / "src"), str(site.parent), env.get("PYTHONPATH")) if p),
            "PYTHONDONTWRITEBYTECODE": "1",
            "TIMBER_APPS": name,
            "TIMBER_HOME": str(Path(work, "home")),
            "DATABASE_URL": f"sqlite:///{Path(work, 'initial.db')}",
            "HF_HUB_OFFLINE": "1",
        })
        for args in (["migrate"], ["create-migration", "initial", "--app", name, "--rev-id", f"{name}_0001"]):
            done = subprocess.run([sys.executable, "-c", _RUN_TIMBER, *args], env=env, cwd=work,
                                  capture_output=True, text=True, check=False)
            if done.returncode != 0:
                said = [line for line in done.stderr.splitlines() if line.strip()] or [f"exit {done.returncode}"]
                raise ScaffoldError(f"could not write the initial migration: `timber {' '.join(args)}` failed: "
                                    f"{said[-1].removeprefix('Error: ')}")
