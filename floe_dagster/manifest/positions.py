"""YAML loading that remembers where every node came from (file, line, column)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError
from ruamel.yaml.events import AliasEvent, CollectionEndEvent, CollectionStartEvent, NodeEvent
from ruamel.yaml.scalarbool import ScalarBoolean

from floe_dagster.core.errors import FloeError

NodePath = tuple[str | int, ...]

# Bounds on what one manifest file may make the loader do (README, "Limits"): a file is read
# only up to MAX_MANIFEST_BYTES; it holds at most MAX_NODES values (scalars, mappings, lists;
# pure-Python YAML parsing took 0.1 s per thousand on a loaded 2-core machine); collections
# nest at most MAX_NESTING_DEPTH deep; aliases (``*name``) may stand for at most
# MAX_ALIAS_NODES nodes in all once expanded, so an alias bomb stops at its first alias past
# the bound instead of expanding 9^8 items. All are checked while the YAML events stream by,
# before anything is built.
MAX_MANIFEST_BYTES = 1024 * 1024
MAX_NODES = 20_000
MAX_NESTING_DEPTH = 64
MAX_ALIAS_NODES = 10_000
_CORE_TAG_PREFIX = "tag:yaml.org,2002:"


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


class YamlSyntaxError(FloeError):
    def __init__(self, position: Position, message: str) -> None:
        super().__init__(message)
        self.position = position

    def __str__(self) -> str:
        return f"{self.position}: {self.message}"


def display_path(path: Path) -> str:
    """The path as a user typed it: relative to the working directory when below it."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except (ValueError, OSError, RuntimeError):  # not below it, or a symlink loop
        return str(path)


def read_bounded(path: Path, shown: str) -> str:
    """The text of ``path``, refusing a file over MAX_MANIFEST_BYTES before reading all of it."""
    with path.open("rb") as handle:
        data = handle.read(MAX_MANIFEST_BYTES + 1)
    if len(data) > MAX_MANIFEST_BYTES:
        raise YamlSyntaxError(
            Position(shown, 1, 1),
            f"the file is larger than the manifest size limit ({MAX_MANIFEST_BYTES:,} bytes);"
            " a manifest is a few kilobytes of YAML: split it or remove what does not belong",
        )
    return data.decode("utf-8")


def check_bounds(yaml: YAML, text: str, shown: str) -> None:
    """Walk the YAML events (an iterative parser, no recursion, nothing expanded) and refuse,
    at the position of the first offender, nesting deeper than MAX_NESTING_DEPTH, aliases
    standing for more than MAX_ALIAS_NODES nodes in all, an alias inside its own anchor, and
    tags other than YAML's own (``!!str``; a local ``!foo`` means nothing to floe)."""
    open_frames: list[list[Any]] = []  # [anchor, nodes so far] per open collection
    sizes: dict[str, int] = {}
    aliased = 0

    def fail(event: Any, message: str) -> None:
        mark = event.start_mark
        raise YamlSyntaxError(Position(shown, mark.line + 1, mark.column + 1), message)

    def add(nodes: int) -> None:
        if open_frames:
            open_frames[-1][1] += nodes

    nodes_seen = 0
    for event in yaml.parse(text):
        if isinstance(event, NodeEvent):
            nodes_seen += 1
            if nodes_seen > MAX_NODES:
                fail(
                    event,
                    f"more values than the manifest node limit ({MAX_NODES:,} scalars, mappings and"
                    " lists); a manifest needs far fewer: split it or remove what does not belong",
                )
        if isinstance(event, NodeEvent) and not isinstance(event, AliasEvent):
            tag = getattr(event, "tag", None)
            if tag is not None and not str(tag).startswith(_CORE_TAG_PREFIX):
                shown_tag = str(tag)[:40].encode("unicode_escape").decode("ascii")
                fail(event, f"the YAML tag '{shown_tag}' is not supported; remove it (plain YAML only)")
        if isinstance(event, CollectionStartEvent):
            if len(open_frames) >= MAX_NESTING_DEPTH:
                fail(
                    event,
                    f"nesting deeper than the manifest nesting limit ({MAX_NESTING_DEPTH} levels);"
                    " a manifest needs only a few levels: flatten this value",
                )
            open_frames.append([event.anchor, 1])
        elif isinstance(event, CollectionEndEvent):
            anchor, nodes = open_frames.pop()
            if anchor is not None:
                sizes[anchor] = nodes
            add(nodes)
        elif isinstance(event, AliasEvent):
            if any(frame[0] == event.anchor for frame in open_frames):
                fail(event, f"the alias *{event.anchor} is inside its own anchor (a recursive value)")
            nodes = sizes.get(event.anchor, 1)
            aliased += nodes
            if aliased > MAX_ALIAS_NODES:
                fail(
                    event,
                    f"aliases expand to more than the manifest alias expansion limit"
                    f" ({MAX_ALIAS_NODES:,} nodes); write the values out or use fewer aliases",
                )
            add(nodes)
        elif isinstance(event, NodeEvent):  # a scalar
            if event.anchor is not None:
                sizes[event.anchor] = 1
            add(1)


def load_yaml_with_positions(path: Path) -> tuple[Any, SourceMap]:
    """Plain Python data (dicts, lists, scalars) and the source map of ``path``, within the
    bounds above (YamlSyntaxError naming the bound otherwise)."""
    shown = display_path(path)
    yaml = YAML(typ="rt")
    try:
        text = read_bounded(path, shown)
        check_bounds(yaml, text, shown)
        document = yaml.load(text)
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
            found = node.lc.item(index)  # None for the items of a tagged sequence
            line, col = found if found else (node.lc.line or 0, node.lc.col or 0)
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
