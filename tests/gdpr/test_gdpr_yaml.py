"""The model key ``gdpr``: ``delete`` or ``{anonymize: [columns]}``, each mistake named with file and line."""

from __future__ import annotations

from pathlib import Path

import pytest

from timber_core.schema.validate import parse_file

MODEL = """\
version: "1"
depends: ["user_models.yaml"]
models:
  - name: Note
    table_name: notes
{gdpr}
    columns:
      - name: id
        type: String(36)
        primary_key: true
      - name: user_id
        type: String(36)
        foreign_key: users.id
        nullable: false
      - name: body
        type: Text
        nullable: false
      - name: pages
        type: Integer
        nullable: false
      - name: stars
        type: Integer
"""


def _parse(tmp_path: Path, gdpr: str, model: str = MODEL) -> tuple[list[str] | None, list[str]]:
    path = tmp_path / "notes.yaml"
    path.write_text(model.format(gdpr=gdpr))
    found, problems = parse_file(str(path), "notes")
    anonymize = found.models[0].gdpr_anonymize if found and found.models else None
    return anonymize, [str(p).replace(str(path), "notes.yaml") for p in problems]


def test_without_gdpr_the_rows_are_deleted(tmp_path: Path) -> None:
    assert _parse(tmp_path, "") == (None, [])


def test_gdpr_delete_says_so_explicitly(tmp_path: Path) -> None:
    assert _parse(tmp_path, "    gdpr: delete") == (None, [])


def test_gdpr_anonymize_lists_the_columns_to_blank(tmp_path: Path) -> None:
    assert _parse(tmp_path, "    gdpr:\n      anonymize: [body, stars]") == (["body", "stars"], [])


@pytest.mark.parametrize(("gdpr", "problem"), [
    ("    gdpr: shred", "notes.yaml:6: app 'notes', field 'Note.gdpr': must be delete, or a mapping {anonymize: "
                      "[columns to blank]}; got 'shred'"),
    ("    gdpr:\n      keep: [body]", "notes.yaml:6: app 'notes', field 'Note.gdpr': must name the columns to "
                                     "blank: anonymize: [column, ...] (or write gdpr: delete)"),
    ("    gdpr:\n      anonymize: body", "notes.yaml:7: app 'notes', field 'Note.gdpr.anonymize': must be a list of "
                                         "column names; got text"),
    ("    gdpr:\n      anonymize:\n        - title", "notes.yaml:8: app 'notes', field 'Note.gdpr.anonymize': names no "
                                                    "column 'title' of Note; its columns: id, user_id, body, pages, "
                                                    "stars"),
    ("    gdpr:\n      anonymize:\n        - user_id", "notes.yaml:8: app 'notes', field 'Note.gdpr.anonymize': column "
                                                      "'user_id' is a users.id key: the key is kept and every users.id "
                                                      "column is pointed at a placeholder user anyway; list the "
                                                      "columns holding the user's data"),
    ("    gdpr:\n      anonymize:\n        - pages", "notes.yaml:8: app 'notes', field 'Note.gdpr.anonymize': column "
                                                    "'pages' is Integer and nullable: false, so it cannot be blanked: "
                                                    "make it nullable, or leave it out"),
])
def test_a_wrong_gdpr_declaration_is_named_with_its_line(tmp_path: Path, gdpr: str, problem: str) -> None:
    assert _parse(tmp_path, gdpr)[1][-1] == problem


def test_gdpr_anonymize_needs_a_model_whose_rows_belong_to_users(tmp_path: Path) -> None:
    model = MODEL.replace("        foreign_key: users.id\n", "")
    assert _parse(tmp_path, "    gdpr:\n      anonymize: [body]", model)[1] == [
        "notes.yaml:6: app 'notes', field 'Note.gdpr': Note has no column with foreign_key: users.id, so no row of "
        "it belongs to a user: remove gdpr, or add the owner column"]
