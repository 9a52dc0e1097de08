"""Make sure the dbt project's manifest.json exists and is current, then load it."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from floe_dagster.core.errors import ConfigurationError
from floe_dagster.manifest.loader import LoadedManifest
from floe_dagster.plan.dbt_project import dbt_target_dir, newest_source_mtime, read_dbt_manifest
from floe_dagster.transforms.profiles import write_profiles

logger = logging.getLogger("floe_dagster")


def dbt_executable() -> str:
    """The ``dbt`` next to the running interpreter (the venv's), else whatever PATH has."""
    candidate = Path(sys.executable).parent / "dbt"
    return str(candidate) if candidate.exists() else "dbt"


def prepare_dbt_manifest(loaded: LoadedManifest, force: bool = False) -> dict[str, Any]:
    """Run ``dbt parse`` when manifest.json is missing or older than the project; return it."""
    profiles = write_profiles(loaded)
    manifest_json = dbt_target_dir(loaded) / "manifest.json"
    stale = (
        force
        or not manifest_json.exists()
        or (
            manifest_json.stat().st_mtime
            < newest_source_mtime(loaded.dbt_project_dir, [profiles / "profiles.yml"])
        )
    )
    if stale:
        # dbt keeps target/partial_parse.msgpack only for the --target it was written with
        # (its state check hashes the target name, and no --target hashes as ""). Dagster's
        # dbt steps run `dbt build --target <compute>` from a copy of that file, so parse for
        # the default compute: otherwise every run re-parses the whole project.
        run_dbt(loaded, ["parse", "--target", loaded.manifest.computes.default], profiles)
    parsed = read_dbt_manifest(loaded)
    assert parsed is not None  # dbt parse wrote it
    return parsed


def run_dbt(loaded: LoadedManifest, args: list[str], profiles: Path) -> None:
    command = [
        dbt_executable(),
        *args,
        "--project-dir",
        str(loaded.dbt_project_dir),
        "--profiles-dir",
        str(profiles),
    ]
    logger.info("floe: running %s", " ".join(command[:2]))
    env = {**os.environ, "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}
    result = subprocess.run(command, capture_output=True, text=True, env=env, cwd=loaded.dbt_project_dir)
    if result.returncode != 0:
        tail = "\n".join((result.stdout + result.stderr).strip().splitlines()[-15:])
        raise ConfigurationError(
            f"`dbt {' '.join(args)}` failed in {loaded.dbt_project_dir} (exit {result.returncode}):\n{tail}",
            provider="dbt",
            operation=args[0],
        )
