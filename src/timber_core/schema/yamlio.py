"""Safe YAML reading that remembers the line of every mapping, key and list.

Duplicate keys are refused instead of silently keeping the last one. Aliases may expand
to at most :data:`ALIAS_BUDGET` nodes in total per file (a "billion laughs" bomb of nested
aliases is refused at the alias that passes it), and an alias may not refer to the node
that contains it. :func:`excerpt` shows a value in an error message in a bounded length.
"""

from __future__ import annotations

from typing import Any

import yaml

__all__ = ["ALIAS_BUDGET", "LineDict", "LineList", "excerpt", "load_yaml", "YamlSyntaxError"]

_Base: type = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

#: How many YAML nodes the aliases of one file may expand to, in total.
ALIAS_BUDGET = 10_000
#: The longest excerpt of a value an error message shows.
EXCERPT = 60


def excerpt(value: Any, limit: int = EXCERPT) -> str:
    """Return ``repr(value)`` cut to at most ``limit`` characters, without building the whole repr.

    Mappings and lists are walked only as far as the excerpt needs, so a value that
    aliases expand into millions of nodes costs no more than a short one.
    """
    parts: list[str] = []
    room = [limit + 1]

    def emit(piece: str) -> bool:
        parts.append(piece[: room[0]])
        room[0] -= len(parts[-1])
        return room[0] > 0

    def walk(v: Any) -> bool:
        if isinstance(v, dict):
            if not emit("{"):
                return False
            for i, (k, item) in enumerate(v.items()):
                if (i and not emit(", ")) or not walk(k) or not emit(": ") or not walk(item):
                    return False
            return emit("}")
        if isinstance(v, (list, tuple)):
            if not emit("["):
                return False
            for i, item in enumerate(v):
                if (i and not emit(", ")) or not walk(item):
                    return False
            return emit("]")
        if isinstance(v, str):
            return emit(repr(v[: room[0] + 1]) if len(v) > room[0] else repr(v))
        return emit(repr(v)[: room[0] + 1])

    walk(value)
    shown = "".join(parts)
    return shown if len(shown) <= limit else shown[: limit - 3] + "..."


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


class _AliasLoader(yaml.SafeLoader):
    """The pure-Python safe loader, counting what every alias expands to while composing."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._expanded = 0
        self._sizes: dict[int, int] = {}

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            node = self.anchors.get(event.anchor)
            if node is not None:  # an undefined alias is the composer's own error
                line = event.start_mark.line + 1
                if node.end_mark is None:  # still being composed: the alias is inside its anchor
                    raise YamlSyntaxError(line, f"alias *{event.anchor} refers to the node that contains it; "
                                                f"YAML that refers to itself cannot describe a model")
                self._expanded += self._size(node)
                if self._expanded > ALIAS_BUDGET:
                    raise YamlSyntaxError(
                        line, f"alias *{event.anchor} would expand the file past {ALIAS_BUDGET} YAML nodes "
                              f"(aliases nested like a 'billion laughs' bomb); write the values out instead of "
                              f"nesting aliases")
        return super().compose_node(parent, index)

    def _size(self, node: Any) -> int:
        """How many nodes ``node`` stands for once every alias inside it is expanded (memoized)."""
        known = self._sizes.get(id(node))
        if known is not None:
            return known
        if isinstance(node, yaml.ScalarNode):
            size = 1
        elif isinstance(node, yaml.SequenceNode):
            size = 1 + sum(self._size(child) for child in node.value)
        else:
            size = 1 + sum(self._size(k) + self._size(v) for k, v in node.value)
        self._sizes[id(node)] = size
        return size


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
                f"key {excerpt(key)} appears twice in the same mapping (first on line "
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


for _cls in (_Loader, _AliasLoader):
    _cls.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping)
    _cls.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _sequence)


def load_yaml(text: str) -> Any:
    """Parse ``text`` with the safe loader; raise YamlSyntaxError with the line.

    Text without any ``*`` has no alias and takes the fast C loader; the rest the
    pure-Python one that counts what aliases expand to.
    """
    loader = _AliasLoader if "*" in text else _Loader
    try:
        return yaml.load(text, Loader=loader)  # noqa: S506 - both derive from SafeLoader
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 1
        raise YamlSyntaxError(line, f"invalid YAML: {exc.problem or exc}") from None
    except yaml.YAMLError as exc:
        raise YamlSyntaxError(1, f"invalid YAML: {exc}") from None
