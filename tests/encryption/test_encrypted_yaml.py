"""The YAML loader's refusals for ``encrypted: true`` and ``blind_index: true``: each names file:line, field and fix."""

from __future__ import annotations

from pathlib import Path

import pytest

import timber_core
from timber_core.errors import SchemaError
from timber_core.schema.validate import parse_file

_HEAD = """models:
  - name: Box
    table_name: boxes
    columns:
      - name: id
        type: String(36)
        primary_key: true
"""
_CIPHER = ("its stored value is a random-looking token (AES-256-GCM), different each time the same text is written")


def _problems(extra: str) -> list[str]:
    model, problems = parse_file("boxes.yaml", "boxapp", _HEAD + extra)
    return [str(p) for p in problems]


@pytest.mark.parametrize(("extra", "expected"), [
    ("      - name: secret\n        type: Text\n        encrypted: true\n        index: true\n",
     f"boxes.yaml:11: app 'boxapp', field 'Box.columns.secret.index': an encrypted column cannot be indexed: "
     f"{_CIPHER}; add blind_index: true to index its keyed hash instead (equality lookups only)"),
    ("      - name: secret\n        type: Text\n        encrypted: true\n        unique: true\n",
     f"boxes.yaml:11: app 'boxapp', field 'Box.columns.secret.unique': an encrypted column cannot be unique: "
     f"{_CIPHER}; add blind_index: true to unique its keyed hash instead (equality lookups only)"),
    ("      - name: secret\n        type: Integer\n        encrypted: true\n",
     "boxes.yaml:9: app 'boxapp', field 'Box.columns.secret.encrypted': column 'secret' is Integer; only Text and "
     "String(n) columns can be encrypted"),
    ("      - name: owner\n        type: String(36)\n        encrypted: true\n        foreign_key: users.id\n",
     f"boxes.yaml:11: app 'boxapp', field 'Box.columns.owner.foreign_key': an encrypted column cannot be a foreign "
     f"key: {_CIPHER}; use another column as the reference"),
    ("      - name: secret\n        type: Text\n        blind_index: true\n",
     "boxes.yaml:10: app 'boxapp', field 'Box.columns.secret.blind_index': is only meaningful with encrypted: true "
     "(a plain column is indexed with index: true)"),
    ("      - name: secret\n        type: Text\n        encrypted: true\n    indexes:\n      - columns: [secret]\n",
     f"boxes.yaml:12: app 'boxapp', field 'Box.indexes.ix_boxes_secret': names the encrypted column 'secret', which "
     f"cannot be indexed: {_CIPHER}; add blind_index: true to the column to index its keyed hash (equality lookups "
     f"only)"),
    ("      - name: secret\n        type: Text\n        encrypted: true\n    vector_search:\n"
     "      content_field: secret\n",
     "boxes.yaml:12: app 'boxapp', field 'Box.vector_search.content_field': column 'secret' is encrypted; its text "
     "would leave the database unencrypted in the vector store (payload and embedding): index a column that is not "
     "encrypted, or drop vector_search"),
    ("      - name: secret\n        type: Text\n        encrypted: true\n        blind_index: true\n"
     "      - name: secret_bidx\n        type: Text\n",
     "boxes.yaml:8: app 'boxapp', field 'Box.columns.secret.blind_index': adds the column 'secret_bidx', which line "
     "12 declares too: rename that column"),
    ("      - name: kind\n        type: String(20)\n        encrypted: true\n    shared: true\n    typed_by: kind\n",
     "boxes.yaml:12: app 'boxapp', field 'Box.typed_by': must name a String column of Box holding the session type "
     "(not an encrypted one: the database filters on it)"),
], ids=["index", "unique", "integer", "foreign-key", "blind-index-alone", "indexes-entry", "vector-content",
        "hash-column-clash", "typed-by"])
def test_the_loader_refuses(extra: str, expected: str) -> None:
    assert _problems(extra) == [expected]


def test_an_encrypted_primary_key_is_refused() -> None:
    text = _HEAD.replace("        primary_key: true\n", "        primary_key: true\n        encrypted: true\n")
    model, problems = parse_file("boxes.yaml", "boxapp", text)
    assert [str(p) for p in problems] == [
        "boxes.yaml:7: app 'boxapp', field 'Box.columns.id.primary_key': an encrypted column cannot be a primary "
        f"key: {_CIPHER}; use another column as the key"]


def test_a_blind_index_carries_the_column_index_and_unique_to_the_hash_column() -> None:
    mf, problems = parse_file("boxes.yaml", "boxapp", _HEAD + (
        "      - name: email\n        type: String(254)\n        encrypted: true\n        blind_index: true\n"
        "        unique: true\n"))
    box = mf.models[0]
    email, hashed = box.column("email"), box.column("email_bidx")
    assert problems == []
    assert (email.unique, email.index) == (False, False)
    assert (str(hashed.type), hashed.unique, hashed.index, hashed.blind_index_of) == ("String(64)", True, False, "email")


def test_an_indexes_entry_on_a_blind_indexed_column_indexes_the_hash_column() -> None:
    mf, problems = parse_file("boxes.yaml", "boxapp", _HEAD + (
        "      - name: email\n        type: Text\n        encrypted: true\n        blind_index: true\n"
        "      - name: kind\n        type: String(10)\n    indexes:\n      - name: ix_box_kind_email\n"
        "        columns: [kind, email]\n"))
    assert (problems, mf.models[0].indexes[0].columns) == ([], ["kind", "email_bidx"])


def test_initialize_refuses_an_app_whose_yaml_indexes_an_encrypted_column(tmp_path: Path) -> None:
    (tmp_path / "boxes.yaml").write_text(
        _HEAD + "      - name: secret\n        type: Text\n        encrypted: true\n        index: true\n")
    with pytest.raises(SchemaError) as info:
        timber_core.initialize_timber("boxapp", model_config_dirs=[str(tmp_path)],
                                      database_url=f"sqlite:///{tmp_path}/t.db", session_types=["box"])
    assert str(info.value) == (
        f"{tmp_path / 'boxes.yaml'}:11: app 'boxapp', field 'Box.columns.secret.index': an encrypted column cannot "
        f"be indexed: {_CIPHER}; add blind_index: true to index its keyed hash instead (equality lookups only)")
