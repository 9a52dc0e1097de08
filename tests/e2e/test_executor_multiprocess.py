"""The demo under the `multiprocess` executor: real processes, the same outputs, pools kept.

The manifest's dev environment is given `executor: multiprocess`; `floe run`'s path
(``run_main_job``) then runs the main job with Dagster's multiprocess executor, each compute
group's step (one ``dbt build``) in a process of its own, rebuilt from the manifest.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from dagster import AssetKey, DagsterEventType, DagsterInstance, build_reconstructable_job, execute_job

from floe_dagster import MAIN_JOB, load_manifest
from floe_dagster.dagster_stage.dbt_assets import pool_name
from floe_dagster.dagster_stage.run import apply_pool_limits, run_main_job
from floe_dagster.demo import seed_demo
from floe_dagster.plan.builders import build_catalog

pytestmark = pytest.mark.e2e

OUTPUTS = [
    ("staging", "stg_customers"),
    ("staging", "stg_orders"),
    ("staging", "stg_payments"),
    ("marts", "customers"),
    ("marts", "orders"),
]
STEPS = {"dbt_duckdb", "dbt_duckdb_analytics"}


def set_dev_executor(project: Path, executor: str) -> Path:
    manifest = project / "manifests" / "manifest.yaml"
    text = manifest.read_text()
    assert text.count("  dev: {}\n") == 1
    manifest.write_text(text.replace("  dev: {}\n", f"  dev:\n    executor: {executor}\n"))
    return manifest


def outputs(project: Path) -> dict[tuple[str, str], list[dict[str, Any]]]:
    """Every dbt output table's rows, in a stable order."""
    catalog = build_catalog(load_manifest(project / "manifests" / "manifest.yaml"), "lakehouse")
    found = {}
    for name in OUTPUTS:
        rows = catalog.load_table(name).scan().to_arrow().to_pylist()
        found[name] = sorted(rows, key=repr)
    return found


def step_events(instance: DagsterInstance, run_id: str, kind: DagsterEventType) -> dict[str, Any]:
    return {
        record.step_key: record
        for record in instance.all_logs(run_id, of_type=kind)
        if record.step_key is not None
    }


def test_the_demo_under_multiprocess_runs_each_group_in_its_own_process_with_the_same_outputs(
    demo_project: Path,
) -> None:
    manifest = demo_project / "manifests" / "manifest.yaml"
    loaded = load_manifest(manifest)
    seed_demo(loaded)
    in_process = run_main_job(loaded)
    assert in_process.success
    expected = outputs(demo_project)
    assert all(expected.values())

    set_dev_executor(demo_project, "multiprocess")
    summary = run_main_job(load_manifest(manifest))
    assert summary.success
    assert summary.materialized == in_process.materialized
    assert outputs(demo_project) == expected  # the same rows as the in-process run wrote

    with DagsterInstance.from_config(os.environ["DAGSTER_HOME"]) as instance:
        run = instance.get_run_by_id(summary.run_id)
        assert run is not None and run.job_name == MAIN_JOB
        [run_start] = instance.all_logs(summary.run_id, of_type=DagsterEventType.RUN_START)
        orchestrator = run_start.dagster_event.pid
        assert orchestrator == os.getpid()  # the run is orchestrated here ...
        started = step_events(instance, summary.run_id, DagsterEventType.STEP_START)
        assert set(started) == STEPS
        pids = {step: record.dagster_event.pid for step, record in started.items()}
        # ... and each compute group's dbt build ran in a process of its own
        assert len(set(pids.values())) == 2, pids
        assert orchestrator not in pids.values(), pids
        engine = [
            r.user_message for r in instance.all_logs(summary.run_id, of_type=DagsterEventType.ENGINE_EVENT)
        ]
        assert any("multiprocess executor" in message for message in engine), engine
        # the in-process run before it: one process for every step
        in_process_pids = {
            r.dagster_event.pid
            for r in step_events(instance, in_process.run_id, DagsterEventType.STEP_START).values()
        }
        assert in_process_pids == {os.getpid()}


def test_two_multiprocess_runs_keep_one_writer_on_a_duckdb_file(demo_project: Path) -> None:
    """The compute's pool (limit 1: one writer per DuckDB file) holds the second run's step in
    its orchestrator until the first run's step, in another process, has finished."""
    manifest = set_dev_executor(demo_project, "multiprocess")
    loaded = load_manifest(manifest)
    seed_demo(loaded)
    home = os.environ["DAGSTER_HOME"]
    with DagsterInstance.from_config(home) as instance:
        assert apply_pool_limits(loaded, instance)[pool_name("duckdb")] == 1
    job = build_reconstructable_job(
        "floe_dagster.dagster_stage.run",
        "main_job_of",
        reconstructable_kwargs={"manifest_path": str(manifest), "environment_name": "dev"},
    )
    staging = [AssetKey(["staging", name]) for name in ("stg_customers", "stg_orders", "stg_payments")]
    run_ids: list[str] = []
    errors: list[BaseException] = []

    def one_run() -> None:
        try:
            with (
                DagsterInstance.from_config(home) as instance,
                execute_job(job, instance=instance, asset_selection=staging) as result,
            ):
                assert result.success
                run_ids.append(result.run_id)
        except BaseException as exc:  # reported by the test thread
            errors.append(exc)

    def holding(instance: DagsterInstance) -> bool:
        return bool(instance.event_log_storage.get_concurrency_info(pool_name("duckdb")).claimed_slots)

    first = threading.Thread(target=one_run)
    first.start()
    with DagsterInstance.from_config(home) as instance:
        deadline = time.monotonic() + 300
        while not holding(instance) and first.is_alive() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert holding(instance), errors  # the first run's step holds the pool
    second = threading.Thread(target=one_run)
    second.start()
    for thread in (first, second):
        thread.join(timeout=600)
    assert not errors, errors
    assert len(run_ids) == 2

    with DagsterInstance.from_config(home) as instance:
        spans = []
        for run_id in run_ids:
            [run_start] = instance.all_logs(run_id, of_type=DagsterEventType.RUN_START)
            start = step_events(instance, run_id, DagsterEventType.STEP_START)["dbt_duckdb"]
            end = step_events(instance, run_id, DagsterEventType.STEP_SUCCESS)["dbt_duckdb"]
            assert start.dagster_event.pid != os.getpid()  # the dbt build ran in a step process
            spans.append((run_start.timestamp, start.timestamp, end.timestamp))
    (_, first_start, first_end), (second_run_start, second_start, _) = sorted(spans, key=lambda s: s[1])
    # the second run was ready while the first run's step wrote, and its step waited for it
    assert second_run_start < first_end
    assert second_start >= first_end
    assert first_start < first_end
