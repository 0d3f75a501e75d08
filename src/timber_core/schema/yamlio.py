"""Safe YAML reading that remembers the line of every mapping, key and list.

Duplicate keys are refused instead of silently keeping the last one.
"""

from __future__ import annotations

from typing import Any

import yaml

__all__ = ["LineDict", "LineList", "load_yaml", "YamlSyntaxError"]

_Base: type = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class LineDict(dict):  # type: ignore[type-arg]
    """A mapping read from YAML: ``line`` is its own line, ``key_lines`` each key's."""

    line: int = 0
    key_lines: dict[Any, int]


class LineList(list):  # type: ignore[type-arg]
    """A sequence read from YAML: ``line`` is its first line, ``item_lines`` each item's."""

    line: int = 0
    item_lines: list[int]


class YamlSyntaxError(Exception):
    """The file is not valid YAML (or repeats a key); ``line`` is 1-based."""

    def __init__(self, line: int, message: str) -> None:
        self.line = line
        super().__init__(message)


class _Loader(_Base):  # type: ignore[misc, valid-type]
    pass


def _mapping(loader: Any, node: yaml.MappingNode) -> LineDict:
    loader.flatten_mapping(node)
    result = LineDict()
    result.line = node.start_mark.line + 1
    result.key_lines = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if key in result:
            raise YamlSyntaxError(
                key_node.start_mark.line + 1,
                f"key {key!r} appears twice in the same mapping (first on line "
                f"{result.key_lines[key]}); keep one",
            )
        result[key] = loader.construct_object(value_node, deep=True)
        result.key_lines[key] = key_node.start_mark.line + 1
    return result


def _sequence(loader: Any, node: yaml.SequenceNode) -> LineList:
    result = LineList(loader.construct_object(child, deep=True) for child in node.value)
    result.line = node.start_mark.line + 1
    result.item_lines = [child.start_mark.line + 1 for child in node.value]
    return result


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping)
_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _sequence)


def load_yaml(text: str) -> Any:
    """Parse ``text`` with the safe loader; raise YamlSyntaxError with the line."""
    try:
        return yaml.load(text, Loader=_Loader)  # noqa: S506 - _Loader derives from SafeLoader
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 1
        raise YamlSyntaxError(line, f"invalid YAML: {exc.problem or exc}") from None
    except yaml.YAMLError as exc:
        raise YamlSyntaxError(1, f"invalid YAML: {exc}") from None
