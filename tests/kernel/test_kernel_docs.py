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


#: An error or warning line as printed or documented: at a line's start, after `- ` or inside backticks.
_PREFIXED = re.compile(r"(?:^|`|- )\s*(error|warning): ", re.IGNORECASE | re.MULTILINE)


def _printed_prefix() -> str:
    """The prefix ``_cli_support.report`` (every command's error) prints, read from the code itself."""
    import contextlib
    import io

    from timber_core._cli_support import report
    from timber_core.errors import TimberError

    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        assert report(TimberError("boom")) == 1
    assert err.getvalue().endswith("boom\n")
    return err.getvalue()[: -len("boom\n")]


def test_a_failing_command_prints_its_error_with_the_one_prefix() -> None:
    from timber_kernel_testing import run_timber

    result = run_timber("models", "list", "--app", "ledger")
    assert result.returncode == 1
    assert result.stderr == (
        f"{_printed_prefix()}no app named 'ledger' is installed (installed: canopy, grove); install its "
        "distribution, or check TIMBER_APPS / TIMBER_DISABLE_APPS\n"
    )


def test_timber_check_prints_each_problem_with_the_same_prefix_as_every_command() -> None:
    from timber_kernel_testing import run_timber

    result = run_timber("check", fixtures=("broken",))
    assert result.returncode == 1
    assert result.stderr.splitlines()[0] == (
        f"{_printed_prefix()}app 'brokenapp': plugin from timber-broken-app is broken and left out: "
        "RuntimeError: broken on purpose: the fixture's import fails"
    )


def test_every_error_and_warning_example_in_the_docs_uses_the_printed_prefix() -> None:
    assert _printed_prefix() == "Error: "
    wrong = [
        f"{path.name}: {m.group(0).strip()!r}"
        for path in sorted((ROOT / "docs").glob("*.md")) + [ROOT / "README.md"]
        for m in _PREFIXED.finditer(path.read_text(encoding="utf-8"))
        if m.group(1) not in ("Error", "Warning")
    ]
    assert wrong == []


def test_no_command_prints_a_lowercase_error_or_warning_prefix() -> None:
    literal = re.compile(r"""f?["'](?:\\n)?\s*(?:- )?(error|warning): """)
    wrong = [
        f"{path.relative_to(ROOT)}:{n}"
        for path in sorted((ROOT / "src" / "timber_core").rglob("*.py"))
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if literal.search(line)
    ]
    assert wrong == []
