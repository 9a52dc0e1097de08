"""Manifest problems, each pinned to file:line:col and saying how to fix it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from floe_dagster.core.errors import FloeError
from floe_dagster.manifest.positions import NodePath, Position
from floe_dagster.plugins.redaction import escape_control, redact_uri, safe_text

MAX_MESSAGE_CHARS = 1000  # a message quoting a value shows it shortened (redaction.shown_value)


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

    def __post_init__(self) -> None:
        # whatever a check quoted: one line of printable text (no raw BEL/ESC, no 2 MB value),
        # and no URI user info (a credential pasted into any field, a plugin type included)
        object.__setattr__(self, "message", safe_text(redact_uri(self.message), MAX_MESSAGE_CHARS))

    def __str__(self) -> str:
        where = f"{safe_text(dotted(self.path), 200)}: " if self.path else ""
        return f"{escape_control(str(self.position))}: {where}{self.message}"


class ManifestError(FloeError):
    """Every problem found in a manifest; ``str()`` gives one line per problem."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))

    def __str__(self) -> str:
        return self.message
