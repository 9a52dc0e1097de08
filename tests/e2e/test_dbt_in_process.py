"""dbt run inside the Dagster step's process (defs/dbt_in_process.py) for computes that allow it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from dagster import DagsterEventType, DagsterInstance

from floe_dagster import MAIN_JOB, build_definitions, load_manifest
from floe_dagster.dagster_stage.resources import FloeDbtCliResource
from floe_dagster.dagster_stage.run import run_main_job
from floe_dagster.demo import seed_demo
from floe_dagster.plan.builders import build_catalog
from floe_dagster.plan.dbt_project import profiles_dir
from floe_dagster.transforms.dbt_in_process import InProcessDbt
from floe_dagster.transforms.dbt_manifest import dbt_executable
from floe_dagster.transforms.profiles import write_profiles

pytestmark = pytest.mark.e2e


@pytest.fixture
def dbt_processes(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[list[str]]]:
    """Every ``dbt build`` process started while the test runs (other processes start as usual;
    preparing the dbt manifest may run ``dbt parse``)."""
    started: list[list[str]] = []
    real_popen = subprocess.Popen

    class RecordingPopen(real_popen):  # type: ignore[misc,valid-type]
        def __init__(self, args, *rest, **kwargs):  # type: ignore[no-untyped-def]
            if isinstance(args, list | tuple) and Path(str(args[0])).name == "dbt" and "build" in args:
                started.append([str(a) for a in args])
            super().__init__(args, *rest, **kwargs)

    monkeypatch.setattr(subprocess, "Popen", RecordingPopen)
    yield started


def writable_by_another_process(database: Path) -> str:
    """'ok', or the error another process gets writing the DuckDB file (e.g. a held lock)."""
    code = f"import duckdb; duckdb.connect({str(database)!r}).execute('create table if not exists t (x int)')"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    return "ok" if result.returncode == 0 else result.stderr.strip().splitlines()[-1]


def test_duckdb_groups_run_dbt_in_the_step_process_and_leave_nothing_behind(
    demo_project: Path, dbt_processes: list[list[str]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    loaded = load_manifest(demo_project / "manifests" / "manifest.yaml")
    seed_demo(loaded)
    elsewhere = tmp_path / "elsewhere"  # the process's working directory is not the dbt project
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    environment_before = dict(os.environ)

    summary = run_main_job(loaded)

    assert summary.success
    assert dbt_processes == []  # both compute groups ran dbt without a dbt process
    catalog = build_catalog(loaded, "lakehouse")
    assert catalog.load_table(("staging", "stg_orders")).scan().to_arrow().num_rows == 300
    assert catalog.load_table(("marts", "customers")).scan().to_arrow().num_rows == 100
    assert list(elsewhere.iterdir()) == []  # dbt's target and log folders stayed in the project
    assert len(list((demo_project / "dbt_project" / "target").glob("dbt_duckdb*/dbt.log"))) == 2
    # what the dbt process's exit would have released: its environment and the DuckDB files
    assert dict(os.environ) == environment_before
    for database in ("lakehouse.duckdb", "analytics.duckdb"):
        assert writable_by_another_process(demo_project / ".floe" / "duckdb" / database) == "ok"


def test_switching_it_off_runs_a_dbt_subprocess_per_group(
    demo_project: Path, dbt_processes: list[list[str]]
) -> None:
    loaded = load_manifest(demo_project / "manifests" / "manifest.yaml")
    seed_demo(loaded)
    defs = build_definitions(loaded.path)
    dbt = defs.resources["dbt"]
    assert isinstance(dbt, FloeDbtCliResource) and dbt.run_dbt_in_process
    # as a user would in the launchpad: the resource's config, for one run
    config = {
        "project_dir": dbt.project_dir,
        "profiles_dir": dbt.profiles_dir,
        "dbt_executable": dbt.dbt_executable,
        "run_dbt_in_process": False,
    }
    switched_off = {"resources": {"dbt": {"config": config}}}

    result = defs.resolve_job_def(MAIN_JOB).execute_in_process(
        instance=DagsterInstance.get(), run_config=switched_off
    )

    assert result.success
    targets = sorted(command[command.index("--target") + 1] for command in dbt_processes)
    assert targets == ["duckdb", "duckdb_analytics"]


def test_a_failing_model_fails_its_step_with_dbt_s_error_and_stops_downstream(demo_project: Path) -> None:
    model = demo_project / "dbt_project" / "models" / "staging" / "stg_orders.sql"
    model.write_text(model.read_text().replace("select", "select no_such_column,", 1))
    loaded = load_manifest(demo_project / "manifests" / "manifest.yaml")
    seed_demo(loaded)
    defs = build_definitions(loaded.path)

    result = defs.resolve_job_def(MAIN_JOB).execute_in_process(
        instance=DagsterInstance.get(), raise_on_error=False
    )

    assert not result.success
    failure = next(e for e in result.all_events if e.event_type == DagsterEventType.STEP_FAILURE)
    assert failure.step_key == "dbt_duckdb"
    assert "no_such_column" in str(failure.event_specific_data.error)
    materialized = {e.asset_key.path[-1] for e in result.get_asset_materialization_events()}
    assert "stg_orders" not in materialized
    assert not materialized & {"orders", "customers"}


def test_dbt_that_cannot_start_exits_2_with_its_error_as_an_event(demo_project: Path) -> None:
    loaded = load_manifest(demo_project / "manifests" / "manifest.yaml")
    write_profiles(loaded)
    target_path = demo_project / "dbt_project" / "target" / "cannot-start"
    env = {
        **os.environ,
        "DBT_PROFILES_DIR": str(profiles_dir(loaded)),
        "DBT_PROJECT_DIR": str(loaded.dbt_project_dir),
        "DBT_TARGET_PATH": str(target_path),
        "DBT_LOG_PATH": str(target_path),
    }
    process = InProcessDbt([dbt_executable(), "build", "--target", "no_such_target"], env, demo_project)

    assert process.wait(timeout=120) == 2
    events = [json.loads(line) for line in process.stdout]
    errors = [event["info"]["msg"] for event in events if event["info"]["level"] == "error"]
    assert any("does not have a target named 'no_such_target'" in error for error in errors), errors


SLOW_PROJECT = {
    "dbt_project.yml": "name: slow\nprofile: slow\nmodel-paths: [models]\n",
    "profiles.yml": "slow:\n  target: dev\n  outputs:\n    dev: {{type: duckdb, path: '{db}', threads: 1}}\n",
    # minutes of work for DuckDB: the invocation only ends early if it is really interrupted
    "models/slow.sql": "select count(*) as n from range(1000000000000)\n",
    "models/after.sql": "select n from {{ ref('slow') }}\n",
}


def slow_project(root: Path) -> dict[str, str]:
    for name, text in SLOW_PROJECT.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text.format(db=root / "slow.duckdb"))
    return {
        **os.environ,
        "DBT_PROFILES_DIR": str(root),
        "DBT_PROJECT_DIR": str(root),
        "DBT_TARGET_PATH": "target",  # relative, as dagster-dbt passes it
        "DBT_LOG_PATH": "target",
    }


def test_an_interrupt_cancels_the_running_query_and_ends_the_invocation(tmp_path: Path) -> None:
    """What dagster-dbt does when a run is terminated: SIGINT to the dbt process, then wait."""
    env = slow_project(tmp_path)
    process = InProcessDbt([dbt_executable(), "build"], env, tmp_path)
    lines = iter(process.stdout)
    for line in lines:  # until dbt has started the slow model's query
        event = json.loads(line)
        if event["info"]["name"] == "NodeExecuting" and "model.slow.slow" in line.decode():
            break
    time.sleep(1)
    interrupted = time.perf_counter()

    process.send_signal(signal.SIGINT)

    assert process.wait(timeout=60) != 0
    assert time.perf_counter() - interrupted < 30
    names = [json.loads(line)["info"]["name"] for line in lines]
    assert "NodeFinished" not in names[names.index("NodeExecuting") :] if "NodeExecuting" in names else True
    # the next invocation in this process runs (the lock and the database were released)
    again = InProcessDbt([dbt_executable(), "parse"], env, tmp_path)
    assert again.wait(timeout=120) == 0
    assert (tmp_path / "target" / "dbt.log").exists()


def test_dbt_refusing_its_arguments_reaches_dagster_dbt_as_an_error(tmp_path: Path) -> None:
    """dbt refuses a DBT_LOG_LEVEL it does not know before it fires any event; without a line
    saying why, dagster-dbt would report a bare exit code 2."""
    env = {**slow_project(tmp_path), "DBT_LOG_LEVEL": "verbose"}
    process = InProcessDbt([dbt_executable(), "parse"], env, tmp_path)

    assert process.wait(timeout=120) == 2
    errors = [
        event["info"]["msg"] for event in map(json.loads, process.stdout) if event["info"]["level"] == "error"
    ]
    assert any("verbose" in error for error in errors), errors
