"""The hook reference in docs/plugins.md matches hookspecs.py (as datasette tests its own)."""

from __future__ import annotations

import inspect
import re

import pytest

from timber_core import hookspecs
from timber_kernel_testing import ROOT

_HEADING = re.compile(r"^### `(timber_\w+\(.*\) -> .+)`$", re.MULTILINE)


def _spec_signatures() -> dict[str, str]:
    found = {}
    for name, fn in vars(hookspecs).items():
        if name.startswith("timber_") and callable(fn):
            sig = inspect.signature(fn)  # annotations stay strings: from __future__ import annotations
            params = ", ".join(f"{p.name}: {p.annotation}" for p in sig.parameters.values())
            found[name] = f"{name}({params}) -> {sig.return_annotation}"
    return found


def _documented() -> dict[str, str]:
    text = (ROOT / "docs" / "plugins.md").read_text(encoding="utf-8")
    return {sig.split("(")[0]: sig for sig in _HEADING.findall(text)}


def test_every_hook_is_documented_and_every_documented_hook_exists() -> None:
    assert sorted(_documented()) == sorted(_spec_signatures())


@pytest.mark.parametrize("hook", sorted(_spec_signatures()))
def test_documented_signature_matches_the_hookspec(hook: str) -> None:
    assert _documented()[hook] == _spec_signatures()[hook]


def test_every_hookspec_has_a_docstring() -> None:
    assert [n for n in _spec_signatures() if not (getattr(hookspecs, n).__doc__ or "").strip()] == []
