"""docs/design-samples.md lists every Python block of the design document, each a sample or illustrative.

The table is the repository's record of the document's blocks (the document itself is not in the
repository). Each sample file, with its ``# added:`` lines dropped and its ``# changed (why), was:``
lines put back, must be the block whose fingerprint the table gives: the samples change nothing else.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest

from .conftest import SAMPLES

ROOT = SAMPLES.parents[1]
PAGE = ROOT / "docs" / "design-samples.md"

_ROW = re.compile(r"^\| (\d+) \| (\d+) \| (.+?) \| ([0-9a-f]{12}) \| (\S+) \|$", re.MULTILINE)
_HEADER = re.compile(r'^# Design document "Multi-App Support", section "(.+)" '
                     r"\(python block (\d+), line (\d+), fingerprint ([0-9a-f]{12})\)\.$")
_CHANGED = re.compile(r"^(\s*).*#\s*changed \(.*?\), was: (.*)$")


def _rows() -> list[tuple[int, int, str, str, str]]:
    return [(int(n), int(line), section, fp, runs)
            for n, line, section, fp, runs in _ROW.findall(PAGE.read_text(encoding="utf-8"))]


def _original(sample: Path) -> str:
    """The document's block, from a sample: marked additions dropped, marked changes undone."""
    lines = sample.read_text(encoding="utf-8").split("\n")[2:]
    kept = []
    for line in lines:
        if "# added:" in line:
            continue
        changed = _CHANGED.match(line)
        kept.append(changed.group(1) + changed.group(2) if changed else line)
    return "\n".join(kept).removesuffix("\n")


def test_the_table_lists_blocks_1_to_22_each_once() -> None:
    assert [row[0] for row in _rows()] == list(range(1, 23))


def test_every_sample_file_is_in_the_table_and_every_listed_sample_exists() -> None:
    listed = {runs for *_rest, runs in _rows() if runs != "illustrative"}
    assert sorted(p.name for p in SAMPLES.glob("sample_*.py")) == sorted(listed)


def test_every_illustrative_block_has_a_reason_on_the_page() -> None:
    text = PAGE.read_text(encoding="utf-8")
    for number, _line, section, _fp, runs in _rows():
        if runs == "illustrative":
            assert f"- **Block {number}** ({section}" in text, f"block {number} has no reason"


@pytest.mark.parametrize("sample", sorted(p.name for p in SAMPLES.glob("sample_*.py")))
def test_sample_is_its_block_but_for_the_marked_lines(sample: str) -> None:
    path = SAMPLES / sample
    header = _HEADER.match(path.read_text(encoding="utf-8").split("\n")[0])
    assert header is not None, f"{sample}: first line is not the block header"
    section, number, line, fingerprint = header.groups()
    assert (int(number), int(line), section, fingerprint, sample) in _rows()
    assert hashlib.sha256(_original(path).encode()).hexdigest()[:12] == fingerprint
