"""Command blocks of the README and docs/ that tests run, found by a marker comment.

A fenced ```bash block directly after an HTML comment `<!-- test: NAME -->` (blank lines between
are allowed) is marked NAME: `run` blocks are run by tests/cli/test_docs_commands.py, `ui` is the
README's UI command (tests/e2e/test_ui_command.py). Lines of a block are commands; `#` starts a
comment; a line ending in `\\` continues on the next.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

MARKER = re.compile(r"<!--\s*test:\s*([\w-]+)\s*-->")


@dataclass(frozen=True)
class Block:
    file: Path
    line: int  # of the opening fence, 1-based
    commands: list[str]

    def __str__(self) -> str:
        return f"{self.file.name}:{self.line}"


def marked_blocks(path: Path, name: str) -> list[Block]:
    lines = path.read_text().splitlines()
    blocks = []
    for index, line in enumerate(lines):
        match = MARKER.fullmatch(line.strip())
        if not match or match.group(1) != name:
            continue
        fence = index + 1
        while fence < len(lines) and not lines[fence].strip():
            fence += 1
        if fence >= len(lines) or lines[fence].strip() not in ("```bash", "```sh", "```console"):
            raise ValueError(f"{path}:{index + 1}: <!-- test: {name} --> must be followed by a ```bash block")
        end = fence + 1
        while end < len(lines) and lines[end].strip() != "```":
            end += 1
        blocks.append(Block(path, fence + 1, commands(lines[fence + 1 : end])))
    return blocks


def commands(lines: list[str]) -> list[str]:
    result: list[str] = []
    pending = ""
    for raw in lines:
        line = raw.strip()
        if pending:
            line = pending + " " + line
            pending = ""
        if line.endswith("\\"):
            pending = line[:-1].strip()
            continue
        line = re.sub(r"\s+#.*$", "", line) if not line.startswith("#") else ""
        if line:
            result.append(line)
    return result
