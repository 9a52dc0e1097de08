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
    """Positions of keys and values in one YAML file, addressed by their path from the root."""

    file: str
    keys: dict[NodePath, tuple[int, int]] = field(default_factory=dict)
    values: dict[NodePath, tuple[int, int]] = field(default_factory=dict)

    def position(self, path: NodePath, *, prefer_key: bool = False) -> Position:
        """Position of ``path``, or of its nearest ancestor that the file has."""
        for end in range(len(path), -1, -1):
            prefix = tuple(path[:end])
            first, second = (self.keys, self.values) if prefer_key else (self.values, self.keys)
            found = first.get(prefix) or second.get(prefix)
            if found:
                return Position(self.file, found[0], found[1])
        return Position(self.file, 1, 1)


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
    source_map.values[()] = (1, 1)
    return _to_plain(document, (), source_map), source_map


def _to_plain(node: Any, path: NodePath, source_map: SourceMap) -> Any:
    if isinstance(node, CommentedMap):
        plain: dict[Any, Any] = {}
        for key, value in node.items():
            child = (*path, str(key))
            key_line, key_col = node.lc.key(key)
            value_line, value_col = node.lc.value(key)
            source_map.keys[child] = (key_line + 1, key_col + 1)
            source_map.values[child] = (value_line + 1, value_col + 1)
            plain[str(key)] = _to_plain(value, child, source_map)
        return plain
    if isinstance(node, CommentedSeq):
        items = []
        for index, value in enumerate(node):
            child = (*path, index)
            line, col = node.lc.item(index)
            source_map.values[child] = (line + 1, col + 1)
            items.append(_to_plain(value, child, source_map))
        return items
    # ruamel's round-trip scalars subclass the builtins; hand pydantic the builtins themselves
    if isinstance(node, ScalarBoolean):
        return bool(node)
    for builtin in (bool, int, float, str):
        if isinstance(node, builtin):
            return builtin(node)
    return node
