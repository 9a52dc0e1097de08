"""Helpers shared by tests (fixtures live in conftest.py)."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent


def copy_demo_project(destination: Path, parsed_from: Path | None = None) -> Path:
    """manifests/, dbt_project/ and definitions.py copied to ``destination`` (no local state).

    With ``parsed_from`` (an earlier copy whose dbt project was parsed), its dbt manifest is
    reused with paths rewritten, which saves a `dbt parse` per test.
    """
    shutil.copytree(REPO / "manifests", destination / "manifests")
    shutil.copytree(
        REPO / "dbt_project", destination / "dbt_project", ignore=shutil.ignore_patterns("target", "logs")
    )
    shutil.copy(REPO / "definitions.py", destination / "definitions.py")
    if parsed_from is not None:
        source = parsed_from / "dbt_project" / "target" / "manifest.json"
        target = destination / "dbt_project" / "target" / "manifest.json"
        target.parent.mkdir(parents=True)
        target.write_text(source.read_text().replace(str(parsed_from), str(destination)))
    return destination
