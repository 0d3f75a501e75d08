"""Validation of one model YAML file into :class:`ModelFile`, collecting every problem."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from ..apps import KERNEL_APP
from .spec import (
    ColumnSpec,
    IndexSpec,
    ModelFile,
    ModelSpec,
    RelationshipSpec,
    SchemaProblem,
    TypeSpec,
    VectorSearchSpec,
    Where,
)
from .yamlio import LineDict, LineList, YamlSyntaxError, excerpt, load_yaml

__all__ = ["parse_file", "TYPES", "DEFAULT_EMBEDDING_MODEL"]

IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
MAX_IDENTIFIER = 63  # PostgreSQL truncates longer names silently
#: Limits of the target databases (the smaller of PostgreSQL's and SQLite's defaults).
MAX_COLUMNS = 1600  # PostgreSQL; SQLite's SQLITE_MAX_COLUMN is 2000
MAX_INDEX_COLUMNS = 32  # PostgreSQL's INDEX_MAX_KEYS
MAX_STRING_LENGTH = 10_485_760  # PostgreSQL's varchar(n)
MAX_NUMERIC_PRECISION = 1000  # PostgreSQL's numeric(p, s)
_TYPE = re.compile(r"^\s*([A-Za-z]+)\s*(?:\(\s*([0-9]+)\s*(?:,\s*([0-9]+)\s*)?\))?\s*$")
DEFAULT_EMBEDDING_MODEL = "BAAI/bge-small-en-v1.5"
#: The length of a blind-index column: an HMAC-SHA256 in hex.
BLIND_INDEX_LENGTH = 64
#: What an ``owned_by`` column must reference.
USERS_ID = "users.id"

#: Allowed column types and how many arguments each takes: (min, max).
TYPES: dict[str, tuple[int, int]] = {
    "String": (1, 1),
    "Text": (0, 0),
    "Integer": (0, 0),
    "BigInteger": (0, 0),
    "Float": (0, 0),
    "Numeric": (0, 2),
    "Boolean": (0, 0),
    "DateTime": (0, 0),
    "Date": (0, 0),
    "JSON": (0, 0),
    "UUID": (0, 0),
}
TEXT_TYPES = {"String", "Text"}
RELATIONSHIP_TYPES = ("one-to-many", "many-to-one", "one-to-one", "many-to-many")
ONDELETE = ("CASCADE", "SET NULL", "SET DEFAULT", "RESTRICT", "NO ACTION")
FUNCTION_DEFAULTS = {"uuid4": {"String", "UUID"}, "utcnow": {"DateTime", "Date"}}

FILE_KEYS = ("version", "description", "depends", "models")
MODEL_KEYS = (
    "name", "table_name", "description", "columns", "indexes", "relationships",
    "vector_search", "shared", "typed_by", "owned_by", "timestamps", "gdpr",
)
COLUMN_KEYS = (
    "name", "type", "primary_key", "nullable", "unique", "index", "default",
    "foreign_key", "ondelete", "description", "encrypted", "blind_index",
)
INDEX_KEYS = ("name", "columns", "unique")
RELATIONSHIP_KEYS = ("name", "model", "type", "back_populates", "backref", "secondary", "foreign_key", "cascade")
VECTOR_KEYS = ("enabled", "content_field", "embedding_model")


class _Checker:
    """Collects problems for one file while walking its mappings."""

    def __init__(self, app: str, path: str) -> None:
        self.app = app
        self.path = path
        self.problems: list[SchemaProblem] = []

    def where(self, line: int) -> Where:
        return Where(self.app, self.path, line)

    def fail(self, line: int, field: str, message: str) -> None:
        self.problems.append(SchemaProblem(self.where(line), field, message))

    def mapping(self, value: Any, line: int, field: str, allowed: tuple[str, ...]) -> LineDict | None:
        if not isinstance(value, LineDict):
            self.fail(line, field, f"must be a mapping with keys {', '.join(allowed)}; got {_kind(value)}")
            return None
        for key in value:
            if key not in allowed:
                shown = key if isinstance(key, str) and len(key) <= MAX_IDENTIFIER else excerpt(key)
                self.fail(value.key_lines[key], f"{field}.{shown}", f"unknown key; allowed: {', '.join(allowed)}")
        return value

    def line_of(self, m: LineDict, key: str) -> int:
        return m.key_lines.get(key, m.line)

    def get(self, m: LineDict, key: str, field: str, check: Callable[[Any], str | None], default: Any = None,
            required: bool = False) -> Any:
        if key not in m or m[key] is None:
            if required:
                self.fail(m.line, f"{field}.{key}", "is required")
            return default
        error = check(m[key])
        if error:
            self.fail(self.line_of(m, key), f"{field}.{key}", error)
            return default
        return m[key]


def _kind(value: Any) -> str:
    if value is None:
        return "nothing"
    return {dict: "a mapping", LineDict: "a mapping", list: "a list", LineList: "a list", str: "text",
            bool: "true/false", int: "a number", float: "a number"}.get(type(value), type(value).__name__)


def _is_bool(v: Any) -> str | None:
    return None if isinstance(v, bool) else f"must be true or false; got {excerpt(v)}"


def _is_text(v: Any) -> str | None:
    return None if isinstance(v, str) and v.strip() else f"must be non-empty text; got {excerpt(v)}"


def _is_identifier(kind: str) -> Callable[[Any], str | None]:
    def check(v: Any) -> str | None:
        if not isinstance(v, str) or not IDENTIFIER.match(v):
            return (f"{excerpt(v)} is not a valid {kind}: use letters, digits and underscores, "
                    f"starting with a letter or underscore")
        if len(v) > MAX_IDENTIFIER:
            return f"{excerpt(v)} is longer than {MAX_IDENTIFIER} characters, the PostgreSQL limit"
        return None
    return check


def parse_type(text: Any) -> tuple[TypeSpec | None, str | None]:
    """Parse ``String(36)``-style text; return (spec, None) or (None, error)."""
    allowed = "String(n), Text, Integer, BigInteger, Float, Numeric(p, s), Boolean, DateTime, Date, JSON, UUID"
    if not isinstance(text, str):
        return None, f"must be a type name; allowed: {allowed}"
    m = _TYPE.match(text)
    if not m or m.group(1) not in TYPES:
        return None, f"unknown type {excerpt(text)}; allowed: {allowed}"
    name = m.group(1)
    args = tuple(int(a) for a in m.groups()[1:] if a is not None)
    lo, hi = TYPES[name]
    if not lo <= len(args) <= hi:
        if name == "String":
            return None, f"{excerpt(text)}: String needs a length, e.g. String(255)"
        return None, f"{excerpt(text)}: {name} takes {'no arguments' if hi == 0 else f'at most {hi} arguments'}"
    if name == "String" and args[0] < 1:
        return None, f"{excerpt(text)}: the length must be at least 1"
    if name == "String" and args[0] > MAX_STRING_LENGTH:
        return None, f"{excerpt(text)}: the length must be at most {MAX_STRING_LENGTH} (PostgreSQL's limit); use Text"
    if name == "Numeric" and args and args[0] > MAX_NUMERIC_PRECISION:
        return None, f"{excerpt(text)}: the precision must be at most {MAX_NUMERIC_PRECISION} (PostgreSQL's limit)"
    if name == "Numeric" and len(args) == 2 and args[1] > args[0]:
        return None, f"{excerpt(text)}: the scale must not exceed the precision"
    return TypeSpec(name, args), None


def _check_default(col: ColumnSpec, value: Any) -> str | None:
    t = col.type.name
    if isinstance(value, str) and value in FUNCTION_DEFAULTS:
        if t not in FUNCTION_DEFAULTS[value]:
            return f"{value} is a default for {' or '.join(sorted(FUNCTION_DEFAULTS[value]))} columns, not {t}"
        return None
    ok = {
        "String": lambda v: isinstance(v, str),
        "Text": lambda v: isinstance(v, str),
        "Integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
        "BigInteger": lambda v: isinstance(v, int) and not isinstance(v, bool),
        "Float": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
        "Numeric": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
        "Boolean": lambda v: isinstance(v, bool),
        "JSON": lambda v: isinstance(v, (dict, list, str, int, float, bool)),
    }.get(t)
    if ok is None:
        return f"{t} columns take only a function default ({', '.join(k for k, v in FUNCTION_DEFAULTS.items() if t in v) or 'none'})"
    if not ok(value):
        return f"{excerpt(value)} is not a valid {t} value"
    if t == "String" and len(value) > col.type.args[0]:
        return f"{excerpt(value)} is longer than the column's {col.type}"
    return None


def _named(raw: Any, field: str) -> str:
    """Return ``field.<name>`` when ``raw`` is a mapping with a usable name, so errors say which one."""
    name = raw.get("name") if isinstance(raw, LineDict) else None
    if isinstance(name, str) and IDENTIFIER.match(name) and len(name) <= MAX_IDENTIFIER:
        return f"{field}.{name}" if field else name
    return field or "models[]"


def _column(c: _Checker, raw: Any, line: int, field: str) -> ColumnSpec | None:
    m = c.mapping(raw, line, _named(raw, field), COLUMN_KEYS)
    if m is None:
        return None
    name = c.get(m, "name", field, _is_identifier("column name"), required=True)
    field = f"{field}.{name}" if name else field
    type_text = m.get("type")
    type_spec, error = parse_type(type_text)
    if "type" not in m:
        c.fail(m.line, f"{field}.type", "is required")
    elif error:
        c.fail(c.line_of(m, "type"), f"{field}.type", error)
    if not name or type_spec is None:
        return None
    col = ColumnSpec(
        name=name,
        type=type_spec,
        where=c.where(m.line),
        primary_key=c.get(m, "primary_key", field, _is_bool, False),
        nullable=c.get(m, "nullable", field, _is_bool, None),
        unique=c.get(m, "unique", field, _is_bool, False),
        index=c.get(m, "index", field, _is_bool, False),
        description=c.get(m, "description", field, _is_text, None),
        encrypted=c.get(m, "encrypted", field, _is_bool, False),
        blind_index=c.get(m, "blind_index", field, _is_bool, False),
    )
    if "default" in m:
        error = _check_default(col, m["default"])
        if error:
            c.fail(c.line_of(m, "default"), f"{field}.default", error)
        else:
            col.default, col.has_default = m["default"], True
    fk = c.get(m, "foreign_key", field, _fk_check)
    col.foreign_key = fk
    ondelete = c.get(m, "ondelete", field, _ondelete_check)
    if ondelete is not None:
        if fk is None:
            c.fail(c.line_of(m, "ondelete"), f"{field}.ondelete", "needs a foreign_key on the same column")
        else:
            col.ondelete = ondelete.upper()
    _check_encrypted_column(c, m, col, field)
    return col


#: What an encrypted column's value is compared to, for each refused option: why it cannot work.
_CIPHERTEXT = "its stored value is a random-looking token (AES-256-GCM), different each time the same text is written"


def _check_encrypted_column(c: _Checker, m: LineDict, col: ColumnSpec, field: str) -> None:
    """Refuse what an encrypted column cannot be: a key, a reference, an index or constraint without a blind index."""
    if col.blind_index and not col.encrypted:
        c.fail(c.line_of(m, "blind_index"), f"{field}.blind_index",
               "is only meaningful with encrypted: true (a plain column is indexed with index: true)")
        col.blind_index = False
    if not col.encrypted:
        return
    if col.type.name not in TEXT_TYPES:
        c.fail(c.line_of(m, "type"), f"{field}.encrypted",
               f"column {col.name!r} is {col.type}; only Text and String(n) columns can be encrypted")
    for option in ("primary_key", "foreign_key"):
        if getattr(col, option):
            c.fail(c.line_of(m, option), f"{field}.{option}",
                   f"an encrypted column cannot be a {option.replace('_', ' ')}: {_CIPHERTEXT}; "
                   f"use another column as the {'key' if option == 'primary_key' else 'reference'}")
    for option in ("index", "unique"):
        if getattr(col, option) and not col.blind_index:
            c.fail(c.line_of(m, option), f"{field}.{option}",
                   f"an encrypted column cannot be {'indexed' if option == 'index' else 'unique'}: {_CIPHERTEXT}; "
                   f"add blind_index: true to {option} its keyed hash instead (equality lookups only)")


def _fk_check(v: Any) -> str | None:
    if not isinstance(v, str) or v.count(".") != 1 or not all(IDENTIFIER.match(p) for p in v.split(".")):
        return f"{excerpt(v)} must name a column as table.column, e.g. users.id"
    return None


def _ondelete_check(v: Any) -> str | None:
    if not isinstance(v, str) or v.upper() not in ONDELETE:
        return f"{excerpt(v)} is not allowed; use one of {', '.join(ONDELETE)}"
    return None


def _list(c: _Checker, m: LineDict, key: str, field: str) -> LineList | None:
    value = m.get(key)
    if value is None:
        return None
    if not isinstance(value, LineList):
        c.fail(c.line_of(m, key), f"{field}.{key}", f"must be a list; got {_kind(value)}")
        return None
    return value


def _index(c: _Checker, raw: Any, line: int, model: ModelSpec) -> IndexSpec | None:
    m = c.mapping(raw, line, f"{model.name}.indexes", INDEX_KEYS)
    if m is None:
        return None
    field = f"{model.name}.indexes"
    cols = _list(c, m, "columns", field)
    if not cols or not all(isinstance(x, str) for x in cols):
        c.fail(c.line_of(m, "columns"), f"{field}.columns", "must be a non-empty list of column names")
        return None
    name = c.get(m, "name", field, _is_identifier("index name"), None)
    if name is None:
        name = f"ix_{model.table_name}_{'_'.join(cols)}"
        if len(name) > MAX_IDENTIFIER:
            c.fail(m.line, field, f"the index name Timber generates, {excerpt(name, 140)}, is {len(name)} characters "
                                  f"long; PostgreSQL truncates names past {MAX_IDENTIFIER}: give the index a shorter `name:`")
            return None
    if len(cols) > MAX_INDEX_COLUMNS:
        c.fail(m.line, f"{field}.{name}", f"has {len(cols)} columns; PostgreSQL indexes take at most "
                                          f"{MAX_INDEX_COLUMNS}: index fewer columns")
        return None
    return IndexSpec(name=name, columns=list(cols), where=c.where(m.line), unique=c.get(m, "unique", field, _is_bool, False))


def _relationship(c: _Checker, raw: Any, line: int, model: ModelSpec) -> RelationshipSpec | None:
    field = f"{model.name}.relationships"
    m = c.mapping(raw, line, field, RELATIONSHIP_KEYS)
    if m is None:
        return None
    name = c.get(m, "name", field, _is_identifier("relationship name"), required=True)
    field = f"{model.name}.relationships.{name}" if name else field
    target = c.get(m, "model", field, _is_identifier("model name"), required=True)
    kind = c.get(m, "type", field, lambda v: None if v in RELATIONSHIP_TYPES else
                 f"{excerpt(v)} is not a relationship type; use one of {', '.join(RELATIONSHIP_TYPES)}", required=True)
    rel = RelationshipSpec(
        name=name, model=target, type=kind, where=c.where(m.line),
        back_populates=c.get(m, "back_populates", field, _is_identifier("attribute name")),
        backref=c.get(m, "backref", field, _is_identifier("attribute name")),
        secondary=c.get(m, "secondary", field, _is_identifier("table name")),
        foreign_key=c.get(m, "foreign_key", field, _is_identifier("column name")),
        cascade=c.get(m, "cascade", field, _is_text),
    )
    if rel.back_populates and rel.backref:
        c.fail(m.line, field, "give back_populates or backref, not both")
    if kind == "many-to-many" and not rel.secondary:
        c.fail(m.line, f"{field}.secondary", "is required for many-to-many: name the association table")
    if kind and kind != "many-to-many" and rel.secondary:
        c.fail(c.line_of(m, "secondary"), f"{field}.secondary", "is only allowed for many-to-many")
    return rel if name and target and kind else None


def _vector(c: _Checker, raw: Any, line: int, model: ModelSpec) -> VectorSearchSpec | None:
    field = f"{model.name}.vector_search"
    m = c.mapping(raw, line, field, VECTOR_KEYS)
    if m is None:
        return None
    enabled = c.get(m, "enabled", field, _is_bool, True)
    content = c.get(m, "content_field", field, _is_identifier("column name"), required=True)
    emb = c.get(m, "embedding_model", field, _is_text, DEFAULT_EMBEDDING_MODEL)
    if content:
        col = model.column(content)
        if col is None:
            c.fail(c.line_of(m, "content_field"), f"{field}.content_field",
                   f"names no column of {model.name}; columns: {', '.join(x.name for x in model.columns)}")
        elif col.type.name not in TEXT_TYPES:
            c.fail(c.line_of(m, "content_field"), f"{field}.content_field",
                   f"column {content!r} is {col.type}; vector search needs a Text or String column")
        elif col.encrypted:
            c.fail(c.line_of(m, "content_field"), f"{field}.content_field",
                   f"column {content!r} is encrypted; its text would leave the database unencrypted in the vector "
                   f"store (payload and embedding): index a column that is not encrypted, or drop vector_search")
    return VectorSearchSpec(enabled=enabled, content_field=content, embedding_model=emb, where=c.where(m.line)) if content else None


def _model(c: _Checker, raw: Any, line: int) -> ModelSpec | None:
    m = c.mapping(raw, line, _named(raw, ""), MODEL_KEYS)
    if m is None:
        return None
    name = c.get(m, "name", "models[]", _is_identifier("model name"), required=True)
    field = name or "models[]"
    table = c.get(m, "table_name", field, _is_identifier("table name"), required=True)
    if not name or not table:
        return None
    model = ModelSpec(
        name=name, table_name=table, app=c.app, where=c.where(m.line),
        description=c.get(m, "description", field, _is_text),
        shared=c.get(m, "shared", field, _is_bool, False),
        timestamps=c.get(m, "timestamps", field, _is_bool, True),
    )
    cols = _list(c, m, "columns", field)
    if not cols:
        c.fail(c.line_of(m, "columns"), f"{field}.columns", "must list at least one column")
        cols = LineList()
        cols.item_lines = []
    _check_table_name(c, m, model)
    seen: dict[str, int] = {}
    folded: dict[str, str] = {}
    for raw_col, col_line in zip(cols, cols.item_lines):
        col = _column(c, raw_col, col_line, f"{field}.columns")
        if col is None:
            continue
        if col.name in seen:
            c.fail(col_line, f"{field}.columns.{col.name}", f"is declared twice (first on line {seen[col.name]})")
            continue
        other = folded.get(col.name.lower())
        if other is not None:
            c.fail(col_line, f"{field}.columns.{col.name}", f"differs from column {other!r} (line {seen[other]}) "
                                                            f"only in case; SQLite would refuse both in one table: rename one")
            continue
        seen[col.name] = col_line
        folded[col.name.lower()] = col.name
        model.columns.append(col)
        _check_generated_names(c, model, col, f"{field}.columns.{col.name}")
    _add_blind_indexes(c, model, seen, field)
    implicit = [n for n in ("created_at", "updated_at") if model.timestamps and n not in seen]
    total = len(model.columns) + len(implicit)
    if total > MAX_COLUMNS:
        with_implicit = f" (with the implicit {' and '.join(implicit)})" if implicit else ""
        c.fail(c.line_of(m, "columns"), f"{field}.columns",
               f"has {total} columns{with_implicit}; PostgreSQL allows at most {MAX_COLUMNS} in one table "
               f"(SQLite 2000): split the model")
    if cols and model.columns and not any(col.primary_key for col in model.columns):
        c.fail(c.line_of(m, "columns"), f"{field}.columns", "no column has primary_key: true; mark the key column")
    typed_by = c.get(m, "typed_by", field, _is_identifier("column name"))
    if typed_by:
        col = model.column(typed_by)
        if col is None or col.type.name != "String" or col.encrypted:
            c.fail(c.line_of(m, "typed_by"), f"{field}.typed_by",
                   f"must name a String column of {name} holding the session type"
                   + (" (not an encrypted one: the database filters on it)" if col is not None and col.encrypted else ""))
        elif not model.shared:
            c.fail(c.line_of(m, "typed_by"), f"{field}.typed_by",
                   "is only meaningful on a shared model: add shared: true")
        else:
            model.typed_by = typed_by
    owned_by = c.get(m, "owned_by", field, _is_identifier("column name"))
    if owned_by:
        model.owned_by = _check_owned_by(c, m, model, owned_by)
    for raw_ix, ix_line in zip(*_items(_list(c, m, "indexes", field))):
        ix = _index(c, raw_ix, ix_line, model)
        if ix is not None:
            for i, col_name in enumerate(ix.columns):
                col = model.column(col_name)
                if col is None and col_name not in ("created_at", "updated_at"):
                    c.fail(ix_line, f"{field}.indexes.{ix.name}", f"names no column {excerpt(col_name)} of {name}")
                elif col is not None and col.encrypted and col.blind_index:
                    ix.columns[i] = col.blind_index_column  # the index is on the keyed hash
                elif col is not None and col.encrypted:
                    c.fail(ix_line, f"{field}.indexes.{ix.name}",
                           f"names the encrypted column {col_name!r}, which cannot be indexed: {_CIPHERTEXT}; "
                           f"add blind_index: true to the column to index its keyed hash (equality lookups only)")
            model.indexes.append(ix)
    for raw_rel, rel_line in zip(*_items(_list(c, m, "relationships", field))):
        rel = _relationship(c, raw_rel, rel_line, model)
        if rel is not None:
            if rel.name in seen:
                c.fail(rel_line, f"{field}.relationships.{rel.name}", "has the name of a column; rename one")
                continue
            model.relationships.append(rel)
    if "vector_search" in m:
        model.vector_search = _vector(c, m["vector_search"], c.line_of(m, "vector_search"), model)
    if m.get("gdpr") is not None:
        model.gdpr_anonymize = _check_gdpr(c, m, model)
    return model


def _add_blind_indexes(c: _Checker, model: ModelSpec, seen: dict[str, int], field: str) -> None:
    """Add the keyed-hash column of each ``blind_index: true`` column; its index or unique moves there."""
    for col in list(model.columns):
        if not (col.encrypted and col.blind_index):
            continue
        name = col.blind_index_column
        if name in seen:
            c.fail(col.where.line, f"{field}.columns.{col.name}.blind_index",
                   f"adds the column {name!r}, which line {seen[name]} declares too: rename that column")
            continue
        if len(name) > MAX_IDENTIFIER:
            c.fail(col.where.line, f"{field}.columns.{col.name}.blind_index",
                   f"adds the column {name!r}, longer than {MAX_IDENTIFIER} characters: shorten the column name")
            continue
        hashed = ColumnSpec(name=name, type=TypeSpec("String", (BLIND_INDEX_LENGTH,)), where=col.where,
                            nullable=col.nullable, unique=col.unique, index=col.index or not col.unique,
                            description=f"keyed hash of {col.name} for equality lookups (blind_index)",
                            blind_index_of=col.name)
        col.index = col.unique = False
        seen[name] = col.where.line
        model.columns.append(hashed)
        _check_generated_names(c, model, hashed, f"{field}.columns.{col.name}.blind_index")


GDPR_KEYS = ("anonymize",)


def _check_gdpr(c: _Checker, m: LineDict, model: ModelSpec) -> list[str] | None:
    """Return the columns ``gdpr: {anonymize: [...]}`` blanks (None for ``gdpr: delete``); report what is wrong."""
    value, line, field = m["gdpr"], c.line_of(m, "gdpr"), f"{model.name}.gdpr"
    if value == "delete":
        return None
    if not isinstance(value, LineDict):
        c.fail(line, field, f"must be delete, or a mapping {{anonymize: [columns to blank]}}; got {excerpt(value)}")
        return None
    c.mapping(value, line, field, GDPR_KEYS)  # reports any other key
    if "anonymize" not in value:
        c.fail(line, field, "must name the columns to blank: anonymize: [column, ...] (or write gdpr: delete)")
        return None
    if not any(col.foreign_key == USERS_ID for col in model.columns):
        c.fail(line, field, f"{model.name} has no column with foreign_key: {USERS_ID}, so no row of it belongs to a "
                            f"user: remove gdpr, or add the owner column")
        return None
    raw = value["anonymize"]
    items, lines = _items(raw) if isinstance(raw, LineList) else ([], [])
    if not isinstance(raw, LineList):
        c.fail(c.line_of(value, "anonymize"), f"{field}.anonymize", f"must be a list of column names; got {_kind(raw)}")
        return None
    fields: list[str] = []
    for name, item_line in zip(items, lines):
        col = model.column(name) if isinstance(name, str) else None
        where = f"{field}.anonymize"
        if col is None:
            c.fail(item_line, where, f"names no column {excerpt(name)} of {model.name}; its columns: "
                                     f"{', '.join(x.name for x in model.columns)}")
        elif col.primary_key or col.foreign_key == USERS_ID:
            c.fail(item_line, where, f"column {name!r} is {'the primary key' if col.primary_key else 'a users.id key'}"
                                     f": the key is kept and every users.id column is pointed at a placeholder user "
                                     f"anyway; list the columns holding the user's data")
        elif col.nullable is False and col.type.name not in TEXT_TYPES:
            c.fail(item_line, where, f"column {name!r} is {col.type} and nullable: false, so it cannot be blanked: "
                                     f"make it nullable, or leave it out")
        elif name in fields:
            c.fail(item_line, where, f"names column {name!r} twice")
        else:
            fields.append(name)
    return fields


def _check_owned_by(c: _Checker, m: LineDict, model: ModelSpec, column: str) -> str | None:
    """Return ``column`` if it can hold the owner of a private model's rows; report why not otherwise."""
    line, field = c.line_of(m, "owned_by"), f"{model.name}.owned_by"
    col = model.column(column)
    if col is None:
        c.fail(line, field, f"names no column of {model.name}: declare a column {column!r} with "
                            f"foreign_key: users.id, or name one of: {', '.join(x.name for x in model.columns)}")
    elif col.foreign_key != USERS_ID:
        c.fail(line, field, f"column {column!r} must reference the users (foreign_key: {USERS_ID}); "
                            f"it has {'foreign_key: ' + col.foreign_key if col.foreign_key else 'no foreign_key'}")
    elif model.shared or c.app == KERNEL_APP:
        c.fail(line, field, "is only allowed on an app's private model; a shared model's rows are "
                            "restricted by typed_by and the kernel's policies")
    else:
        return column
    return None


def _check_table_name(c: _Checker, m: LineDict, model: ModelSpec) -> None:
    """The limits on a table's name beyond being an identifier: SQLite's reserved prefix, the primary key's name."""
    table, line, field = model.table_name, c.line_of(m, "table_name"), f"{model.name}.table_name"
    if table.lower().startswith("sqlite_"):
        c.fail(line, field, f"{table!r} starts with 'sqlite_', which SQLite reserves for itself; choose another name")
    pk = f"pk_{table}"
    if len(pk) > MAX_IDENTIFIER:
        c.fail(line, field, f"the primary key name Timber generates, {pk!r}, is {len(pk)} characters long; "
                            f"PostgreSQL truncates names past {MAX_IDENTIFIER}: shorten the table name")


def _check_generated_names(c: _Checker, model: ModelSpec, col: ColumnSpec, field: str) -> None:
    """Refuse a column whose index or constraint name (``NAMING_CONVENTION``) PostgreSQL would truncate."""
    table = model.table_name
    generated = []
    if col.index:
        generated.append(("index", f"ix_{table}_{col.name}"))
    elif col.unique:
        generated.append(("unique constraint", f"uq_{table}_{col.name}"))
    if col.foreign_key:
        generated.append(("foreign key", f"fk_{table}_{col.name}_{col.foreign_key.split('.')[0]}"))
    for kind, name in generated:
        if len(name) > MAX_IDENTIFIER:
            c.fail(col.where.line, field, f"the {kind} name Timber generates, {name!r}, is {len(name)} characters "
                                          f"long; PostgreSQL truncates names past {MAX_IDENTIFIER}: shorten the "
                                          f"table or column name")


def _items(lst: LineList | None) -> tuple[list[Any], list[int]]:
    if not lst:
        return [], []
    return list(lst), lst.item_lines


def parse_file(path: str, app: str, text: str | None = None) -> tuple[ModelFile | None, list[SchemaProblem]]:
    """Read and validate one model file; return it (or None) and every problem found."""
    c = _Checker(app, path)
    if text is None:
        try:
            with open(path, encoding="utf-8") as fh:
                text = fh.read()
        except OSError as exc:
            c.fail(1, "file", f"cannot be read: {exc.strerror}")
            return None, c.problems
    try:
        doc = load_yaml(text)
    except YamlSyntaxError as exc:
        c.fail(exc.line, "file", str(exc))
        return None, c.problems
    top = c.mapping(doc, 1, "file", FILE_KEYS)
    if top is None:
        return None, c.problems
    version = top.get("version")
    if version is not None and not isinstance(version, (str, int, float)):
        c.fail(c.line_of(top, "version"), "version", "must be text such as \"1.0.0\"")
    depends: list[str] = []
    depends_lines: list[int] = []
    for dep, dep_line in zip(*_items(_list(c, top, "depends", "file"))):
        if not isinstance(dep, str) or not dep.endswith((".yaml", ".yml")):
            c.fail(dep_line, "depends", f"{excerpt(dep)} must be a model file name such as \"user_models.yaml\"")
        else:
            depends.append(dep)
            depends_lines.append(dep_line)
    models: list[ModelSpec] = []
    raw_models = _list(c, top, "models", "file")
    if not raw_models:
        c.fail(c.line_of(top, "models"), "models", "must list at least one model")
    for raw, line in zip(*_items(raw_models)):
        model = _model(c, raw, line)
        if model is not None:
            models.append(model)
    mf = ModelFile(
        path=path, app=app, version=None if version is None else str(version),
        description=top.get("description") if isinstance(top.get("description"), str) else None,
        depends=depends, models=models, where=c.where(1), depends_lines=depends_lines,
    )
    return mf, c.problems
