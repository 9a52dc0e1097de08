"""Hierarchical governance: an ``extends:`` chain (enterprise -> domain -> product) checked and merged.

Each level may only narrow what its parent allows: ``computes.approved`` is a subset of the
parent's effective approved set, ``computes.default`` is approved at its own level, and a level
configures (``computes.targets``) only computes its parent approved. Every violation names the
level, its file:line:col and the allowed options.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from ruamel.yaml.error import YAMLError
from ruamel.yaml.reader import ReaderError

from floe_dagster.manifest.errors import ManifestError, Problem
from floe_dagster.manifest.positions import (
    NodePath,
    Position,
    SourceMap,
    YamlSyntaxError,
    display_path,
    load_yaml_with_positions,
)
from floe_dagster.manifest.pydantic_problems import problem_from_pydantic
from floe_dagster.manifest.schema import ManifestLayer
from floe_dagster.plugins.redaction import redact_uri, safe_text

LEVELS = {"enterprise": 0, "domain": 1, "product": 2}
# Sections a child replaces whole instead of merging key by key into its parent's.
REPLACED: tuple[NodePath, ...] = (
    ("metadata",),
    ("transforms",),
    ("computes", "approved"),
    ("computes", "default"),
    ("extends",),
    ("executor",),
)


@dataclass(frozen=True)
class Layer:
    path: Path
    data: dict[str, Any] = field(repr=False)  # raw YAML: may hold a literal secret
    source_map: SourceMap
    document: ManifestLayer

    @property
    def level(self) -> str:
        return self.document.metadata.level

    @property
    def shown(self) -> str:
        return self.source_map.file

    def position(self, *path: str | int, prefer_key: bool = False) -> Position:
        return self.source_map.position(tuple(path), prefer_key=prefer_key)


def load_chain(path: Path) -> list[Layer]:
    """The file and its parents, root (enterprise) first."""
    chain: list[Layer] = []
    current: Path = path
    referrer: Layer | None = None
    declared = ""  # the referrer's extends value as written
    while True:
        try:
            resolved, found, unusable = current.resolve(), current.is_file(), ""
        except (OSError, ValueError, RuntimeError) as exc:  # a NUL byte, a long name, a symlink loop
            resolved, found = current, False
            unusable = f": {exc.strerror if isinstance(exc, OSError) and exc.strerror else exc}"
        if any(layer.path == resolved for layer in chain):
            names = " -> ".join([*(layer.shown for layer in chain), display_path(resolved)])
            assert referrer is not None  # a cycle needs at least one extends
            message = f"extends cycle: {names}; remove one of these extends"
            raise ManifestError([Problem(referrer.position("extends"), ("extends",), message)])
        if not found:
            shown = shown_path(current)
            if "://" in declared:  # a URL, not a path: shown as written, its user info masked
                shown = safe_text(redact_uri(declared))
                unusable = f"{unusable}; extends takes a file path, not a URL"
            if referrer is None:
                raise ManifestError(
                    [
                        Problem(
                            Position(shown, 1, 1),
                            (),
                            f"manifest file not found{unusable}; pass the path of a manifest.yaml"
                            " (default: manifests/manifest.yaml)",
                        )
                    ]
                )
            names = " -> ".join(layer.shown for layer in chain)
            raise ManifestError(
                [
                    Problem(
                        referrer.position("extends"),
                        ("extends",),
                        f"parent manifest {shown} not found{unusable} (chain: {names}"
                        f" -> {shown}); the path is relative to {referrer.shown}",
                    )
                ]
            )
        layer = _load_layer(current)
        chain.append(layer)
        if layer.document.extends is None:
            return list(reversed(chain))
        declared = str(layer.document.extends)
        current, referrer = resolved.parent / layer.document.extends, layer


def _load_layer(path: Path) -> Layer:
    try:
        data, source_map = load_yaml_with_positions(path)
    except YamlSyntaxError as exc:
        raise ManifestError([Problem(exc.position, (), exc.message)]) from None
    except (YAMLError, OSError, ValueError) as exc:
        # ruamel's reader errors (control characters), bytes that are not UTF-8, an unreadable
        # file, a tagged scalar ruamel cannot construct (`!!float abc`): still a problem in a file
        raise ManifestError([_unreadable_problem(path, exc)]) from None
    if not isinstance(data, dict):
        raise ManifestError(
            [
                Problem(
                    Position(display_path(path), 1, 1),
                    (),
                    "a manifest is a YAML mapping with apiVersion, kind, metadata, computes and"
                    " transforms; see manifests/manifest.yaml",
                )
            ]
        )
    try:
        document = ManifestLayer.model_validate(data)
    except ValidationError as exc:
        raise ManifestError(
            [problem_from_pydantic(e, (), source_map, ManifestLayer) for e in exc.errors()]
        ) from None
    return Layer(path.resolve(), data, source_map, document)


def shown_path(path: Path) -> str:
    """display_path, also for a path the OS refuses (shown as written, a NUL byte escaped)."""
    try:
        shown = display_path(path)
    except (OSError, ValueError):
        shown = str(path)
    return shown.replace("\0", "\\0")


def _unreadable_problem(path: Path, exc: Exception) -> Problem:
    shown = shown_path(path)
    line, column = 1, 1
    if isinstance(exc, UnicodeDecodeError):
        try:
            raw = path.read_bytes()
            raw.decode("utf-8")
        except UnicodeDecodeError as decode_error:  # re-decode whole: the reader's offset is per chunk
            before = raw[: decode_error.start]
            line, column = before.count(b"\n") + 1, len(before) - (before.rfind(b"\n") + 1) + 1
        except OSError:
            pass
        reason = f"the file is not UTF-8 ({exc.reason}); save it as UTF-8"
    elif isinstance(exc, ReaderError) and isinstance(exc.character, int):
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, ValueError):
            text = ""
        offset = min(max(exc.position, 0), len(text))
        line = text.count("\n", 0, offset) + 1
        column = offset - (text.rfind("\n", 0, offset) + 1) + 1
        reason = f"unacceptable character #x{exc.character:04x} ({exc.reason}); remove it"
    elif isinstance(exc, OSError):
        reason = f"cannot read the file ({exc.strerror or exc}); check its permissions"
    else:
        detail = " ".join(str(exc).split())
        reason = f"{detail}; fix the YAML in this file"
    return Problem(Position(shown, line, column), (), f"YAML syntax error: {reason}")


def check_levels(chain: list[Layer]) -> list[Problem]:
    problems = []
    for parent, child in itertools.pairwise(chain):
        if parent.level == "product" or LEVELS[child.level] < LEVELS[parent.level]:
            problems.append(
                Problem(
                    child.position("metadata", "level"),
                    ("metadata", "level"),
                    f"{_article(child.level)} {child.level} manifest cannot extend {_article(parent.level)}"
                    f" {parent.level} one ({parent.shown}); levels go"
                    " enterprise -> domain -> product, so set metadata.level or fix extends",
                )
            )
    return problems


def _article(level: str) -> str:
    return "an" if level == "enterprise" else "a"


def check_compute_governance(chain: list[Layer]) -> list[Problem]:
    problems: list[Problem] = []
    allowed: list[str] | None = None  # None: the root may approve anything
    parent: Layer | None = None
    for layer in chain:
        computes = layer.document.computes
        if computes is None:
            parent = layer
            continue
        where = f"by its parent level {parent.level} ({parent.shown})" if parent else ""
        level = f"level {layer.level}: " if len(chain) > 1 else ""
        if computes.approved is not None and allowed is not None:
            for index, name in enumerate(computes.approved):
                if name not in allowed:
                    problems.append(
                        Problem(
                            layer.position("computes", "approved", index),
                            ("computes", "approved", index),
                            f"{level}'{name}' is not approved {where}; approved there:"
                            f" [{', '.join(allowed)}]",
                        )
                    )
        if parent is not None and allowed is not None:
            for name in computes.targets:
                if name not in allowed:
                    problems.append(
                        Problem(
                            layer.position("computes", "targets", name, prefer_key=True),
                            ("computes", "targets", name),
                            f"{level}configures compute '{name}', which is not approved {where};"
                            f" a level may configure only [{', '.join(allowed)}]",
                        )
                    )
        if computes.approved is not None:
            allowed = [n for n in computes.approved if allowed is None or n in allowed]
        if computes.default is not None and allowed is not None and computes.default not in allowed:
            problems.append(
                Problem(
                    layer.position("computes", "default"),
                    ("computes", "default"),
                    f"{level}'{computes.default}' is not in computes.approved [{', '.join(allowed)}];"
                    " approve it or pick one of those",
                )
            )
        parent = layer
    return problems


def merge_chain(chain: list[Layer]) -> tuple[dict[str, Any], SourceMap]:
    data: dict[str, Any] = {}
    source_map = SourceMap(file=chain[-1].shown)
    for layer in chain:
        data = deep_merge(data, layer.data)
        source_map = source_map.overlaid_with(layer.source_map, REPLACED)
    return data, source_map


def deep_merge(parent: dict[str, Any], child: dict[str, Any], path: NodePath = ()) -> dict[str, Any]:
    merged = dict(parent)
    for key, value in child.items():
        here = (*path, key)
        if value is None:
            merged.pop(key, None)  # an explicit null resets the key to its default
        elif here not in REPLACED and isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value, here)
        else:
            merged[key] = value
    return merged
