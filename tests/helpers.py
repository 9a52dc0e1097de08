"""Helpers shared by tests (fixtures live in conftest.py)."""

from __future__ import annotations

import json
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
        from floe_dagster.transforms.dbt_manifest import PARSE_STAMP

        stamp = source.with_name(PARSE_STAMP)
        if stamp.exists():  # which environment and profiles it was parsed for: still current here
            carried = json.loads(stamp.read_text().replace(str(parsed_from), str(destination)))
            carried["manifest_mtime_ns"] = target.stat().st_mtime_ns
            target.with_name(PARSE_STAMP).write_text(json.dumps(carried))
    return destination
