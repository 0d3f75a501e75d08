"""docs/tutorial.md runs as written, on SQLite and on PostgreSQL, so it cannot rot.

The page's fenced blocks are taken in order (the rules are in the comment at its top): a block
whose first line is ``# file: PATH`` is written to PATH; a ``bash`` block runs in one continuing
shell session (directory and exported variables carry over); a ``text`` block after
``<!-- tutorial: expect -->`` lists lines the previous bash block must print, in order (each
printed line begins with the expected one, so ``4 passed`` matches ``4 passed in 3.1s``); a block after
``<!-- tutorial: skip -->`` is not run. A ``python`` block that is neither a file nor skipped is an
error of the page: every piece of code a reader is told to run is run here.

The new app is installed for real (``pip install -e``) into a throwaway virtual environment in the
test's directory, which sees the test environment's packages through a ``.pth`` file: nothing is
downloaded (``PIP_NO_INDEX``) and the test environment itself is not changed. ``timber``, ``pip`` and
``pytest`` in that environment are small scripts running the test environment's modules with the
throwaway interpreter (tests/_throwaway_env.py).
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests._throwaway_env import base_env, make_env, require_build_backend

ROOT = Path(__file__).resolve().parents[2]
TUTORIAL = ROOT / "docs" / "tutorial.md"

_FENCE = re.compile(r"^```([A-Za-z0-9_-]*)\s*$")
_MARKER = re.compile(r"^<!--\s*tutorial:\s*(expect|skip)\s*-->\s*$")
_FILE = re.compile(r"^#\s*file:\s*(\S+)\s*$")

#: Shell variables that describe the shell itself, not the reader's environment.
_SHELL_OWN = {"PWD", "OLDPWD", "SHLVL", "_"}


@dataclass(frozen=True)
class Block:
    """One fenced block of the page: what to do with it, and where it is (1-based line of its fence)."""

    kind: str  # "file", "bash", "expect"
    line: int
    text: str
    path: str | None = None


def parse(markdown: str) -> list[Block]:
    """Return the page's runnable blocks in order; raise ValueError for a python block nobody runs."""
    lines = markdown.splitlines()
    blocks: list[Block] = []
    marker: str | None = None
    i = 0
    while i < len(lines):
        fence = _FENCE.match(lines[i])
        if fence is None:
            found = _MARKER.match(lines[i])
            if found:
                marker = found.group(1)
            elif lines[i].strip():
                marker = None
            i += 1
            continue
        lang, start = fence.group(1), i + 1
        end = next((j for j in range(start, len(lines)) if lines[j].startswith("```")), None)
        if end is None:
            raise ValueError(f"docs/tutorial.md:{start}: a fenced block is not closed")
        body = "\n".join(lines[start:end]) + "\n"
        first = _FILE.match(lines[start]) if start < end else None
        if marker == "skip":
            pass
        elif marker == "expect":
            blocks.append(Block("expect", start, body))
        elif first is not None:
            blocks.append(Block("file", start, body, first.group(1)))
        elif lang == "bash":
            blocks.append(Block("bash", start, body))
        elif lang == "python":
            raise ValueError(f"docs/tutorial.md:{start}: a python block is neither a file (# file: PATH) "
                             f"nor marked <!-- tutorial: skip -->")
        marker = None
        i = end + 1
    return blocks


def _expect(block: Block, output: str) -> None:
    """Check that, for each line of ``block`` in order, a later line of ``output`` begins with it."""
    got = output.splitlines()
    at = 0
    for wanted in (line.rstrip() for line in block.text.splitlines() if line.strip()):
        found = next((i for i in range(at, len(got)) if got[i].startswith(wanted)), None)
        if found is not None:
            at = found + 1
        else:
            pytest.fail(f"docs/tutorial.md:{block.line}: the previous command did not print (in this order)\n"
                        f"  {wanted}\nit printed:\n{output}")


def run_tutorial(workdir: Path, database_url: str | None) -> None:
    """Run every block of the tutorial in ``workdir``, failing at the first block that does not do what it says."""
    require_build_backend()
    blocks = parse(TUTORIAL.read_text(encoding="utf-8"))
    bin_dir = make_env(workdir / "venv")
    project = workdir / "project"
    project.mkdir()
    env = base_env(bin_dir, project / ".timber", database_url)
    cwd, state = project, workdir / "shell-state"
    output: str | None = None
    for block in blocks:
        if block.kind == "file":
            assert block.path is not None
            target = cwd / block.path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(block.text, encoding="utf-8")
        elif block.kind == "expect":
            assert output is not None, f"docs/tutorial.md:{block.line}: an expect block before any command"
            _expect(block, output)
        else:
            script = (f"set -eo pipefail\n{block.text}\n"
                      f"pwd > {state}.cwd\nenv -0 > {state}.env\n")
            done = subprocess.run(["bash", "-c", script], cwd=cwd, env=env, capture_output=True, text=True,
                                  timeout=300, check=False)
            if done.returncode != 0:
                pytest.fail(f"docs/tutorial.md:{block.line}: exit {done.returncode}\n{block.text}\n"
                            f"--- stdout\n{done.stdout}\n--- stderr\n{done.stderr}")
            output = done.stdout
            cwd = Path(Path(f"{state}.cwd").read_text(encoding="utf-8").strip())
            pairs = (item.split("=", 1) for item in Path(f"{state}.env").read_text(encoding="utf-8").split("\0") if "=" in item)
            env = {k: v for k, v in pairs if k not in _SHELL_OWN}


def test_parse_takes_files_commands_and_expectations_and_leaves_skipped_blocks() -> None:
    page = ("# T\n\n```toml\n# file: a/b.toml\nx = 1\n```\n\n```bash\necho hi\n```\n\n"
            "<!-- tutorial: expect -->\n```text\nhi\n```\n\n<!-- tutorial: skip -->\n```bash\nrm -rf /\n```\n\n"
            "```text\nnot run\n```\n")
    assert parse(page) == [Block("file", 3, "# file: a/b.toml\nx = 1\n", "a/b.toml"),
                           Block("bash", 8, "echo hi\n"), Block("expect", 13, "hi\n")]


def test_parse_refuses_a_python_block_that_is_neither_a_file_nor_skipped() -> None:
    with pytest.raises(ValueError, match=r"docs/tutorial.md:1: a python block is neither a file"):
        parse("```python\nprint('hi')\n```\n")


def test_the_tutorial_runs_on_sqlite(tmp_path: Path) -> None:
    run_tutorial(tmp_path, None)


def test_the_tutorial_runs_on_postgresql(tmp_path: Path, scratch_postgres: str) -> None:
    run_tutorial(tmp_path, scratch_postgres)
