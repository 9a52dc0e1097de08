"""YAML loading that remembers where every node came from (file, line, column)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError
from ruamel.yaml.scalarbool import ScalarBoolean

NodePath = tuple[str | int, ...]


@dataclass(frozen=True)
class Position:
    file: str
    line: int  # 1-based
    column: int  # 1-based

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"


@dataclass
class SourceMap:
    """Positions of keys and values, addressed by their path from the document root.

    A merged manifest (``extends:``) has one map whose entries point into several files.
    """

    file: str
    keys: dict[NodePath, Position] = field(default_factory=dict)
    values: dict[NodePath, Position] = field(default_factory=dict)

    def position(self, path: NodePath, *, prefer_key: bool = False) -> Position:
        """Position of ``path``, or of its nearest ancestor that the file has."""
        first, second = (self.keys, self.values) if prefer_key else (self.values, self.keys)
        for end in range(len(path), -1, -1):
            prefix = tuple(path[:end])
            found = first.get(prefix) or second.get(prefix)
            if found:
                return found
        return Position(self.file, 1, 1)

    def overlaid_with(self, child: SourceMap, replaced: tuple[NodePath, ...] = ()) -> SourceMap:
        """This map with ``child``'s entries on top; subtrees in ``replaced`` come from child only."""

        def keep(path: NodePath) -> bool:
            return not any(path[: len(r)] == r for r in replaced if r in child.values)

        merged = SourceMap(file=child.file)
        merged.keys = {p: v for p, v in self.keys.items() if keep(p)} | child.keys
        merged.values = {p: v for p, v in self.values.items() if keep(p)} | child.values
        return merged


class YamlSyntaxError(Exception):
    def __init__(self, position: Position, message: str) -> None:
        super().__init__(f"{position}: {message}")
        self.position = position
        self.message = message


def display_path(path: Path) -> str:
    """The path as a user typed it: relative to the working directory when below it."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def load_yaml_with_positions(path: Path) -> tuple[Any, SourceMap]:
    """Plain Python data (dicts, lists, scalars) and the source map of ``path``."""
    shown = display_path(path)
    yaml = YAML(typ="rt")
    try:
        with path.open(encoding="utf-8") as handle:
            document = yaml.load(handle)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        problem = exc.problem or exc.context or "invalid YAML"
        raise YamlSyntaxError(
            Position(shown, line, column), f"YAML syntax error: {problem}; fix the YAML at this position"
        ) from None
    source_map = SourceMap(file=shown)
    source_map.values[()] = Position(shown, 1, 1)
    return _to_plain(document, (), source_map), source_map


def _line_col(node: CommentedMap, which: str, key: Any) -> tuple[int, int]:
    """0-based position of a key or value; the mapping's own for keys ruamel did not place
    (keys merged in with ``<<: *anchor``, the entries of ``!!omap``)."""
    try:
        found = getattr(node.lc, which)(key)
    except (KeyError, TypeError):
        found = None
    if isinstance(found, tuple) and len(found) == 2 and None not in found:
        return found
    return (node.lc.line or 0, node.lc.col or 0)


def _to_plain(node: Any, path: NodePath, source_map: SourceMap) -> Any:
    file = source_map.file
    if isinstance(node, CommentedMap):
        plain: dict[Any, Any] = {}
        for key, value in node.items():
            child = (*path, str(key))
            key_line, key_col = _line_col(node, "key", key)
            value_line, value_col = _line_col(node, "value", key)
            source_map.keys[child] = Position(file, key_line + 1, key_col + 1)
            source_map.values[child] = Position(file, value_line + 1, value_col + 1)
            plain[str(key)] = _to_plain(value, child, source_map)
        return plain
    if isinstance(node, CommentedSeq):
        items = []
        for index, value in enumerate(node):
            child = (*path, index)
            line, col = node.lc.item(index)
            source_map.values[child] = Position(file, line + 1, col + 1)
            items.append(_to_plain(value, child, source_map))
        return items
    # ruamel's round-trip scalars subclass the builtins; hand pydantic the builtins themselves
    if isinstance(node, ScalarBoolean):
        return bool(node)
    for builtin in (bool, int, float, str):
        if isinstance(node, builtin):
            return builtin(node)
    return node
