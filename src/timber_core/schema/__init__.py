"""The YAML model language: read, validate, merge and build into SQLAlchemy classes.

Reading and validating (:func:`load_schema`) needs only PyYAML; building
(:mod:`timber_core.schema.build`) imports SQLAlchemy and is done by the kernel.
"""

from __future__ import annotations

from .merge import Schema, load_schema, model_files
from .spec import ColumnSpec, ModelFile, ModelSpec, SchemaProblem, TypeSpec, Where
from .validate import parse_file

__all__ = [
    "Schema", "load_schema", "model_files", "parse_file",
    "ColumnSpec", "ModelFile", "ModelSpec", "SchemaProblem", "TypeSpec", "Where",
]
