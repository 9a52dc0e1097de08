"""Run the main job outside the UI: what `floe demo` and `floe run` do."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

from dagster import DagsterInstance, Definitions

from floe_dagster.defs.definitions import MAIN_JOB, OBSERVE_JOB, build_definitions
from floe_dagster.manifest.loader import LoadedManifest

logger = logging.getLogger("floe_dagster")

# Progress without Dagster's per-event DEBUG lines.
CONSOLE_INFO = {"loggers": {"console": {"config": {"log_level": "INFO"}}}}


@dataclass(frozen=True)
class RunSummary:
    observe_run_id: str | None
    run_id: str
    success: bool
    materialized: list[str]


def dagster_instance(loaded: LoadedManifest) -> DagsterInstance:
    """The instance of $DAGSTER_HOME, or a persistent one under the state dir (seen by `dagster dev`)."""
    if not os.environ.get("DAGSTER_HOME"):
        home = loaded.state_dir / "dagster_home"
        home.mkdir(parents=True, exist_ok=True)
        (home / "dagster.yaml").touch()
        os.environ["DAGSTER_HOME"] = str(home)
    return DagsterInstance.get()


def apply_pool_limits(loaded: LoadedManifest, instance: DagsterInstance) -> dict[str, int]:
    """Size each compute's Dagster pool as its plugin says (a DuckDB file: one writer)."""
    from floe_dagster.defs.dbt_assets import pool_name
    from floe_dagster.plugins.factory import build_compute

    limits = {}
    for name in loaded.manifest.computes.approved:
        plugin, config = build_compute(loaded, name)
        limit = plugin.max_concurrency(config)
        if limit is not None:
            instance.event_log_storage.set_concurrency_slots(pool_name(name), limit)
            limits[pool_name(name)] = limit
    return limits


def run_main_job(loaded: LoadedManifest, defs: Definitions | None = None) -> RunSummary:
    defs = defs or build_definitions(loaded.path)
    instance = dagster_instance(loaded)
    apply_pool_limits(loaded, instance)
    observe_run_id = None
    job_names = {job.name for job in defs.jobs or []}
    if OBSERVE_JOB in job_names:
        observed = defs.resolve_job_def(OBSERVE_JOB).execute_in_process(
            instance=instance, run_config=CONSOLE_INFO
        )
        observe_run_id = observed.run_id
    result = defs.resolve_job_def(MAIN_JOB).execute_in_process(
        instance=instance, raise_on_error=False, run_config=CONSOLE_INFO
    )
    materialized = sorted(
        "/".join(e.asset_key.path) for e in result.get_asset_materialization_events() if e.asset_key
    )
    return RunSummary(observe_run_id, result.run_id, result.success, materialized)


def dagster_home() -> Path | None:
    value = os.environ.get("DAGSTER_HOME")
    return Path(value) if value else None
