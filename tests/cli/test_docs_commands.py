"""Every command block of the README and docs/ marked `<!-- test: run -->` runs on the demo and
succeeds (the marker convention: tests/readme_blocks.py). `floe` commands run in process, in a
copy of the demo whose dbt project is parsed once per session (the same `main` the `floe`
script calls); anything else runs in bash. The Mermaid picture the docs show is what
`floe plan --format mermaid` prints for the demo."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
from pathlib import Path

import pytest

from floe_dagster.cli import main
from tests.helpers import REPO, VENV_BIN, copy_demo_project
from tests.readme_blocks import Block, marked_blocks

DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
BLOCKS = [block for path in DOCS for block in marked_blocks(path, "run")]
FLOE = (".venv/bin/floe", "floe")


@pytest.fixture(scope="module")
def project(parsed_demo: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = copy_demo_project(tmp_path_factory.mktemp("docs") / "project", parsed_from=parsed_demo)
    (root / ".venv").symlink_to(VENV_BIN.parent)
    return root


def test_the_docs_mark_some_blocks_to_run() -> None:
    commands = [c for block in BLOCKS for c in block.commands]
    assert ".venv/bin/floe validate" in commands  # the README's own
    assert any(c.startswith(".venv/bin/floe plan --format mermaid") for c in commands)


@pytest.mark.parametrize("block", BLOCKS, ids=str)
def test_a_marked_block_runs_on_the_demo(
    block: Block, project: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(project)
    for name in ("FLOE_MANIFEST", "FLOE_ENV", "FLOE_STATE_DIR", "FLOE_PLAN"):
        monkeypatch.delenv(name, raising=False)
    for command in block.commands:
        argv = shlex.split(command)
        if argv[0] in FLOE:
            code = main(argv[1:])
            captured = capsys.readouterr()
            assert code == 0, f"{block}: `{command}` exited {code}:\n{captured.err}"
            assert captured.out.strip(), f"{block}: `{command}` printed nothing"
        else:
            result = subprocess.run(
                ["bash", "-c", command],
                cwd=project,
                env=dict(os.environ),
                capture_output=True,
                text=True,
                timeout=300,
            )
            assert result.returncode == 0, f"{block}: `{command}`:\n{result.stdout}{result.stderr}"


def mermaid_blocks(path: Path) -> list[str]:
    return re.findall(r"```mermaid\n(.*?)\n```", path.read_text(), flags=re.S)


def test_the_plan_picture_in_the_docs_is_the_demos(
    project: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(project)
    assert main(["plan", "--format", "mermaid"]) == 0
    printed = capsys.readouterr().out.strip()
    shown = {path.name: mermaid_blocks(path) for path in DOCS if mermaid_blocks(path)}
    assert {"README.md", "cli.md"} <= set(shown)
    for name, blocks in shown.items():
        assert blocks == [printed], f"{name}: the Mermaid plan differs from `floe plan --format mermaid`"
