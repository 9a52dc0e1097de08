"""Manifest problems, each pinned to file:line:col and saying how to fix it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from floe_dagster.manifest.positions import NodePath, Position


def dotted(path: NodePath) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(document)"


@dataclass(frozen=True)
class Problem:
    position: Position
    path: NodePath
    message: str

    def __str__(self) -> str:
        where = f"{dotted(self.path)}: " if self.path else ""
        return f"{self.position}: {where}{self.message}"


class ManifestError(Exception):
    """Every problem found in a manifest; ``str()`` gives one line per problem."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))
