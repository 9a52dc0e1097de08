"""Where a manifest's dbt project keeps its files, and reading its parsed manifest.json.

Read-only: nothing here runs dbt (that is ``floe_dagster.transforms.dbt_manifest``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import orjson

from floe_dagster.core.memory import gc_paused
from floe_dagster.manifest.loader import LoadedManifest

__all__ = ["IGNORED_DIRS", "dbt_target_dir", "newest_source_mtime", "profiles_dir", "read_dbt_manifest"]

IGNORED_DIRS = {"target", "dbt_packages", "logs", ".venv", "__pycache__"}


def dbt_target_dir(loaded: LoadedManifest) -> Path:
    return loaded.dbt_project_dir / "target"


def newest_source_mtime(project_dir: Path, extra: list[Path]) -> float:
    """The latest change under the project: a file written, or a folder whose entries changed
    (a model deleted or renamed changes only its folder's time)."""
    newest = max((p.stat().st_mtime for p in extra if p.exists()), default=0.0)
    for root, dirs, files in os.walk(project_dir):
        dirs[:] = [d for d in dirs if d not in IGNORED_DIRS and not d.startswith(".")]
        newest = max(newest, os.stat(root).st_mtime)
        for name in files:
            newest = max(newest, os.stat(os.path.join(root, name)).st_mtime)
    return newest


def read_dbt_manifest(loaded: LoadedManifest) -> dict[str, Any] | None:
    """The dbt project's target/manifest.json as it is (no ``dbt parse``); None when missing."""
    try:
        text = (dbt_target_dir(loaded) / "manifest.json").read_bytes()
    except FileNotFoundError:
        return None
    with gc_paused():  # millions of new containers: each collection they trigger walks them all
        return dict(orjson.loads(text))


def profiles_dir(loaded: LoadedManifest) -> Path:
    return loaded.state_dir / "dbt_profiles"
