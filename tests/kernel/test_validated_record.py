"""The record of model-file sets that validated clean, with their model names (``timber_core._validated``)."""

from __future__ import annotations

from pathlib import Path

from timber_core import _validated


def test_a_remembered_set_is_known_with_its_model_names_in_order(tmp_path: Path) -> None:
    names = {"timber": ["User", "Session"], "canopy": ["Trade", "Account"], "empty": []}
    _validated.remember(str(tmp_path), "abc123", names)
    assert _validated.known(str(tmp_path), "abc123") == names


def test_an_unremembered_set_is_unknown(tmp_path: Path) -> None:
    _validated.remember(str(tmp_path), "abc123", {"timber": ["User"]})
    assert _validated.known(str(tmp_path), "other") is None


def test_a_line_without_names_is_not_a_record(tmp_path: Path) -> None:
    (tmp_path / "cache").mkdir()
    (tmp_path / "cache" / "validated-models").write_text("abc123\n")
    assert _validated.known(str(tmp_path), "abc123") is None


def test_a_record_this_code_did_not_write_is_unknown(tmp_path: Path) -> None:
    (tmp_path / "cache").mkdir()
    (tmp_path / "cache" / "validated-models").write_text('abc123 {"timber": ["User"]}\n')
    assert _validated.known(str(tmp_path), "abc123") is None


def test_a_name_the_record_cannot_hold_is_not_remembered(tmp_path: Path) -> None:
    _validated.remember(str(tmp_path), "abc123", {"timber": ["User", "a,b"]})
    assert _validated.known(str(tmp_path), "abc123") is None


def test_nothing_is_written_without_a_timber_home(tmp_path: Path) -> None:
    _validated.remember(str(tmp_path / "absent"), "abc123", {"timber": ["User"]})
    assert not (tmp_path / "absent").exists()


def test_only_the_latest_sets_are_kept(tmp_path: Path) -> None:
    for i in range(20):
        _validated.remember(str(tmp_path), f"p{i}", {"timber": ["User"]})
    kept = [p for p in (f"p{i}" for i in range(20)) if _validated.known(str(tmp_path), p) is not None]
    assert kept == [f"p{i}" for i in range(4, 20)]
