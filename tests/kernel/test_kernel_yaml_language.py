"""The YAML model language: each construct builds the right SQLAlchemy schema; each mistake is named."""

from __future__ import annotations

import datetime as dt
import uuid
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import JSON, BigInteger, Boolean, Date, DateTime, Float, Integer, Numeric, String, Text, Uuid
from sqlalchemy.orm import RelationshipDirection

from timber_core.schema import Schema, load_schema, parse_file
from timber_core.schema.build import build_models
from timber_kernel_testing import BAD_YAML, CANOPY_MODELS, GOOD_YAML, GROVE_MODELS, KERNEL_MODELS

LIBRARY = GOOD_YAML / "library"


def _library() -> tuple[Schema, dict[str, Any]]:
    schema = load_schema([("timber", str(KERNEL_MODELS)), ("library", str(LIBRARY))])
    assert schema.problems == []
    base, classes = build_models(schema.models)
    base.registry.configure()
    return schema, classes


@pytest.fixture(scope="module")
def library() -> dict[str, Any]:
    return _library()[1]


def _problems(*dirs: tuple[str, Path]) -> list[str]:
    return [str(p) for p in load_schema([(app, str(d)) for app, d in dirs]).problems]


@pytest.mark.parametrize(
    ("column", "sa_type", "attrs"),
    [
        ("id", String, {"length": 36}),
        ("title", String, {"length": 200}),
        ("summary", Text, {}),
        ("pages", Integer, {}),
        ("copies_sold", BigInteger, {}),
        ("rating", Float, {}),
        ("price", Numeric, {"precision": 10, "scale": 2, "asdecimal": True}),
        ("in_print", Boolean, {}),
        ("released_at", DateTime, {"timezone": True}),
        ("release_date", Date, {}),
        ("extra", JSON, {}),
        ("isbn_uuid", Uuid, {"as_uuid": False}),
    ],
)
def test_each_column_type_maps_to_its_sqlalchemy_type(
    library: dict[str, Any], column: str, sa_type: type, attrs: dict[str, Any]
) -> None:
    col_type = library["Book"].__table__.c[column].type
    assert type(col_type) is sa_type
    assert {k: getattr(col_type, k) for k in attrs} == attrs


def test_json_columns_become_jsonb_on_postgresql(library: dict[str, Any]) -> None:
    from sqlalchemy.dialects import postgresql

    extra = library["Book"].__table__.c["extra"].type
    assert isinstance(extra.dialect_impl(postgresql.dialect()), postgresql.JSONB)


def test_literal_defaults_are_kept_as_written(library: dict[str, Any]) -> None:
    c = library["Book"].__table__.c
    assert (c.pages.default.arg, c.rating.default.arg, c.price.default.arg, c.in_print.default.arg) == (
        100, 4.5, 9.99, True
    )


def test_json_default_gives_each_row_its_own_copy(library: dict[str, Any]) -> None:
    make = library["Book"].__table__.c.extra.default.arg
    first, second = make(None), make(None)
    assert first == {"tags": []} and first is not second


def test_uuid4_default_makes_a_new_uuid_string_per_row(library: dict[str, Any]) -> None:
    make = library["Book"].__table__.c.id.default.arg
    first, second = make(None), make(None)
    assert str(uuid.UUID(first)) == first and first != second


def test_utcnow_default_is_timezone_aware_for_datetime_and_a_date_for_date(library: dict[str, Any]) -> None:
    c = library["Book"].__table__.c
    now = c.released_at.default.arg(None)
    today = c.release_date.default.arg(None)
    assert now.tzinfo is dt.timezone.utc
    assert type(today) is dt.date and today == now.date()


def test_foreign_keys_carry_their_ondelete(library: dict[str, Any]) -> None:
    (author_fk,) = library["Book"].__table__.c.author_id.foreign_keys
    (user_fk,) = library["Author"].__table__.c.user_id.foreign_keys
    assert (author_fk.target_fullname, author_fk.ondelete) == ("authors.id", "SET NULL")
    assert (user_fk.target_fullname, user_fk.ondelete) == ("users.id", "CASCADE")


def test_unique_and_index_flags_make_a_constraint_and_an_index(library: dict[str, Any]) -> None:
    authors, books = library["Author"].__table__, library["Book"].__table__
    assert authors.c.name.unique is True and authors.c.name.nullable is False
    assert [ix.name for ix in books.indexes if [c.name for c in ix.columns] == ["title"]] == ["ix_books_title"]


def test_composite_indexes_keep_their_name_order_and_uniqueness(library: dict[str, Any]) -> None:
    indexes = {ix.name: ([c.name for c in ix.columns], bool(ix.unique)) for ix in library["Book"].__table__.indexes}
    assert indexes["ix_books_author_title"] == (["author_id", "title"], True)
    assert indexes["ix_books_rating_pages"] == (["rating", "pages"], False)  # name generated from the columns


def test_one_to_many_and_many_to_one_pair_through_back_populates(library: dict[str, Any]) -> None:
    books = library["Author"].books.property
    author = library["Book"].author.property
    assert (books.direction, books.uselist, books.back_populates) == (RelationshipDirection.ONETOMANY, True, "author")
    assert (author.direction, author.uselist, author.back_populates) == (RelationshipDirection.MANYTOONE, False, "books")


def test_one_to_one_is_scalar_on_both_sides(library: dict[str, Any]) -> None:
    profile = library["Author"].profile.property
    assert (profile.direction, profile.uselist) == (RelationshipDirection.ONETOMANY, False)
    assert library["AuthorProfile"].author.property.uselist is False


def test_many_to_many_goes_through_the_secondary_table_with_a_backref(library: dict[str, Any]) -> None:
    tags = library["Book"].tags.property
    assert (tags.direction, tags.secondary.name) == (RelationshipDirection.MANYTOMANY, "book_tags")
    reverse = library["Tag"].books.property
    assert (reverse.direction, reverse.mapper.class_) == (RelationshipDirection.MANYTOMANY, library["Book"])


def test_backref_adds_the_reverse_relationship_to_a_shared_model(library: dict[str, Any]) -> None:
    reverse = library["User"].library_authors.property
    assert (reverse.mapper.class_, reverse.uselist) == (library["Author"], True)


def test_metadata_column_keeps_its_name_in_the_database_with_attribute_metadata_(library: dict[str, Any]) -> None:
    author = library["Author"]
    assert author.__table__.c["metadata_"].name == "metadata"
    assert author.metadata_.property.columns[0].name == "metadata"
    assert author.metadata is author.__table__.metadata  # SQLAlchemy's own attribute is untouched


def test_created_at_and_updated_at_are_added_to_models(library: dict[str, Any]) -> None:
    c = library["Tag"].__table__.c
    assert [col.name for col in c] == ["id", "label", "created_at", "updated_at"]
    assert (c.created_at.nullable, c.updated_at.nullable, c.updated_at.onupdate is not None) == (False, False, True)


def test_declared_created_at_is_kept_and_only_updated_at_is_added(library: dict[str, Any]) -> None:
    c = library["ReadingNote"].__table__.c
    assert [col.name for col in c] == ["id", "body", "created_at", "updated_at"]
    assert (c.created_at.nullable, c.created_at.default) == (True, None)


def test_timestamps_false_adds_no_timestamp_columns(library: dict[str, Any]) -> None:
    assert [c.name for c in library["BookTag"].__table__.c] == ["book_id", "tag_id"]


def test_vector_search_block_is_stored_on_the_model(library: dict[str, Any]) -> None:
    vs = library["ReadingNote"].__timber_model__.vector_search
    assert (vs.enabled, vs.content_field, vs.embedding_model) == (True, "body", "BAAI/bge-small-en-v1.5")
    assert library["Book"].__timber_model__.vector_search is None


def test_depends_orders_files_within_an_app_and_across_apps() -> None:
    schema, _ = _library()
    names = [Path(f.path).name for f in schema.files]
    assert names.index("user_models.yaml") < names.index("z_authors.yaml") < names.index("a_library.yaml")


def test_canopy_and_grove_resolve_user_models_yaml_from_the_kernel() -> None:
    schema = load_schema([("timber", str(KERNEL_MODELS)), ("canopy", str(CANOPY_MODELS)), ("grove", str(GROVE_MODELS))])
    assert schema.problems == []
    assert [Path(f.path).name for f in schema.files][:1] == ["user_models.yaml"]
    assert {f.depends[0] for f in schema.files if f.app != "timber"} == {"user_models.yaml"}


def test_kernel_models_are_shared_and_app_models_private() -> None:
    schema = load_schema([("timber", str(KERNEL_MODELS)), ("canopy", str(CANOPY_MODELS))])
    assert {m.name: m.shared for m in schema.models} == {
        "User": True, "Event": True, "Notification": True, "Session": True, "VectorOutbox": True,
        "TradingSession": False, "Order": False,
    }
    assert schema.by_name()["Session"].typed_by == "session_type"


def test_shared_model_naming_an_app_model_is_refused_with_the_fix() -> None:
    path = BAD_YAML / "shared_names_app_model" / "shared_extras.yaml"
    problems = _problems(("timber", KERNEL_MODELS), ("timber", path.parent), ("canopy", CANOPY_MODELS))
    why = ("a shared model never names an app's model; declare the link from app 'canopy''s side "
           "(e.g. a relationship with backref)")
    assert problems == [
        f"{path}:11: app 'timber', field 'UserBadge.columns.order_id.foreign_key': {why}",
        f"{path}:15: app 'timber', field 'UserBadge.relationships.order': {why}",
    ]


def test_yaml_is_read_with_the_safe_loader(tmp_path: Path) -> None:
    path = tmp_path / "evil.yaml"
    path.write_text('version: !!python/object/apply:os.system ["true"]\nmodels: []\n')
    _mf, problems = parse_file(str(path), "evil")
    assert [str(p) for p in problems] == [
        f"{path}:1: app 'evil', field 'file': invalid YAML: could not determine a constructor for the tag "
        "'tag:yaml.org,2002:python/object/apply:os.system'"
    ]


def test_every_problem_of_a_file_is_reported_not_only_the_first(tmp_path: Path) -> None:
    path = tmp_path / "many.yaml"
    path.write_text(
        "models:\n"
        "  - name: Thing\n"
        "    table_name: things\n"
        "    colour: blue\n"
        "    columns:\n"
        "      - name: id\n"
        "        type: Integer\n"
        "        primary_key: true\n"
        "      - name: size\n"
        "        type: Numeric(2, 5)\n"
    )
    _mf, problems = parse_file(str(path), "many")
    assert [(p.where.line, p.field) for p in problems] == [(4, "Thing.colour"), (10, "Thing.columns.size.type")]
    assert problems[1].message == "'Numeric(2, 5)': the scale must not exceed the precision"


def test_model_without_a_primary_key_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "nopk.yaml"
    path.write_text("models:\n  - name: Thing\n    table_name: things\n    columns:\n      - name: label\n        type: Text\n")
    _mf, problems = parse_file(str(path), "nopk")
    assert [str(p) for p in problems] == [
        f"{path}:4: app 'nopk', field 'Thing.columns': no column has primary_key: true; mark the key column"
    ]


def test_uuid4_default_on_an_integer_column_says_where_it_is_allowed(tmp_path: Path) -> None:
    path = tmp_path / "d.yaml"
    path.write_text("models:\n  - name: T\n    table_name: t\n    columns:\n      - name: id\n        type: Integer\n"
                    "        primary_key: true\n        default: uuid4\n")
    _mf, problems = parse_file(str(path), "d")
    assert [p.message for p in problems] == ["uuid4 is a default for String or UUID columns, not Integer"]
