"""Run the main job outside the UI: what `floe demo` and `floe run` do."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from dagster import (
    DagsterError,
    DagsterInstance,
    Definitions,
    JobDefinition,
    build_reconstructable_job,
    execute_job,
)

from floe_dagster.core.errors import ConfigurationError
from floe_dagster.dagster_stage.dbt_assets import pool_name
from floe_dagster.dagster_stage.definitions import MAIN_JOB, OBSERVE_JOB, build_definitions
from floe_dagster.dagster_stage.executors import manifest_executor
from floe_dagster.manifest.loader import ENVIRONMENT_ENV, LoadedManifest
from floe_dagster.plan.builders import build_compute
from floe_dagster.transforms.dbt_in_process import environment

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
    given = os.environ.get("DAGSTER_HOME")
    if not given:
        home = loaded.state_dir / "dagster_home"
        home.mkdir(parents=True, exist_ok=True)
        settings = home / "dagster.yaml"
        if not settings.exists():
            # an instance floe creates for the demo: no usage statistics, and so no telemetry banner
            settings.write_text(
                "# created by floe for its runs; delete the next two lines to send Dagster usage statistics\n"
                "telemetry:\n  enabled: false\n"
            )
        os.environ["DAGSTER_HOME"] = str(home)
    elif not Path(given).is_dir():
        raise ConfigurationError(
            f"DAGSTER_HOME={given} is not a directory; create it (mkdir -p {given}) or unset"
            f" DAGSTER_HOME to use {loaded.state_dir / 'dagster_home'}",
            provider="dagster",
            operation="instance",
        )
    try:
        return DagsterInstance.get()
    except DagsterError as exc:  # e.g. a dagster.yaml Dagster cannot read
        raise ConfigurationError(
            f"cannot open the Dagster instance at DAGSTER_HOME={os.environ['DAGSTER_HOME']}: {exc}",
            provider="dagster",
            operation="instance",
        ) from None


def apply_pool_limits(loaded: LoadedManifest, instance: DagsterInstance) -> dict[str, int | None]:
    """Size each approved compute's Dagster pool on ``instance`` as its plugin says (a DuckDB
    file: one writer); a compute without a limit has any earlier limit removed. Dagster keeps
    per-pool limits in the instance's storage, not in dagster.yaml, so this is what `floe run`,
    `floe demo` and `floe pools` (called by `make dev` before `dagster dev`) do."""

    storage = instance.event_log_storage
    limits: dict[str, int | None] = {}
    for name in loaded.manifest.computes.approved:
        plugin, config = build_compute(loaded, name)
        pool, limit = pool_name(name), plugin.max_concurrency(config)
        if limit is not None:
            storage.set_concurrency_slots(pool, limit)
        elif pool in storage.get_concurrency_keys():
            storage.delete_concurrency_limit(pool)
        limits[pool] = limit
    return limits


def run_main_job(
    loaded: LoadedManifest, defs: Definitions | None = None, progress: Callable[[str], None] | None = None
) -> RunSummary:
    """Observe the sources, then materialise every asset; ``progress`` hears each long step."""
    say = progress or (lambda step: None)
    if defs is None:
        say("loading the definitions (the first run parses the dbt project)")
        defs = build_definitions(loaded.path)
    instance = dagster_instance(loaded)
    apply_pool_limits(loaded, instance)
    observe_run_id = None
    job_names = {job.name for job in defs.jobs or []}
    if OBSERVE_JOB in job_names:
        say(f"observing the metastore tables (job {OBSERVE_JOB})")
        observed = defs.resolve_job_def(OBSERVE_JOB).execute_in_process(
            instance=instance, run_config=CONSOLE_INFO
        )
        observe_run_id = observed.run_id
    groups = ", ".join(loaded.manifest.computes.approved)
    executor = manifest_executor(loaded).type
    how = "" if executor == "in_process" else f", {executor} executor"
    say(f"materialising every asset (job {MAIN_JOB}{how}): one dbt build per compute group ({groups})")
    if executor == "in_process":
        result = defs.resolve_job_def(MAIN_JOB).execute_in_process(
            instance=instance, raise_on_error=False, run_config=CONSOLE_INFO
        )
        materialized = sorted(
            "/".join(e.asset_key.path) for e in result.get_asset_materialization_events() if e.asset_key
        )
        return RunSummary(observe_run_id, result.run_id, result.success, materialized)
    if executor == "k8s":
        raise ConfigurationError(
            f"environment '{loaded.environment}' runs its steps as Kubernetes Jobs (executor: k8s), which"
            " a Dagster deployment on Kubernetes launches (docs/deploy.md); `floe run` runs on this"
            " machine: pick an environment whose executor is in_process or multiprocess"
            f" ({ENVIRONMENT_ENV}=<environment> or --env), or launch the job from that deployment",
            provider="dagster",
            operation="executor",
        )
    # a process per step: each one rebuilds the job from the manifest (main_job_of below)
    job = build_reconstructable_job(
        __name__,
        main_job_of.__name__,
        reconstructable_kwargs={"manifest_path": str(loaded.path), "environment_name": loaded.environment},
    )
    with execute_job(job, instance=instance, raise_on_error=False, run_config=CONSOLE_INFO) as executed:
        materialized = sorted(
            "/".join(e.asset_key.path) for e in executed.get_asset_materialization_events() if e.asset_key
        )
        return RunSummary(observe_run_id, executed.run_id, executed.success, materialized)


def main_job_of(manifest_path: str, environment_name: str) -> JobDefinition:
    """The main job of a manifest in one environment, rebuilt in every process of a run whose
    executor starts a process per step (``build_reconstructable_job``)."""
    with environment({ENVIRONMENT_ENV: environment_name}):
        return build_definitions(manifest_path).resolve_job_def(MAIN_JOB)


def dagster_home() -> Path | None:
    value = os.environ.get("DAGSTER_HOME")
    return Path(value) if value else None
