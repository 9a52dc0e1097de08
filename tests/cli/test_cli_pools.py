"""`floe pools`: each compute's Dagster pool limit set on the instance the UI uses (`make dev`
runs it before `dagster dev`), and Dagster holding two runs on one pool to one step at a time."""

from __future__ import annotations

import subprocess
import threading
import time
from pathlib import Path

import pytest
from dagster import DagsterInstance, asset, materialize

from floe_dagster.dagster_stage.dbt_assets import pool_name
from tests.helpers import VENV_BIN, run_floe

FLOE = str(VENV_BIN / "floe")


def floe_pools(project: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return run_floe(["pools"], cwd=project, env=env)


def pool_limits(home: Path) -> dict[str, int]:
    with DagsterInstance.from_config(str(home)) as instance:
        storage = instance.event_log_storage
        return {key: storage.get_concurrency_info(key).slot_count for key in storage.get_concurrency_keys()}


def test_pools_limits_each_duckdb_file_compute_to_one_step_on_the_instance(
    demo_project: Path, subprocess_env: dict[str, str]
) -> None:
    home = Path(subprocess_env["DAGSTER_HOME"])
    assert pool_limits(home) == {}
    result = floe_pools(demo_project, subprocess_env)
    assert result.returncode == 0, result.stderr
    assert result.stdout == (
        "POOL                           LIMIT\n"
        "floe-compute-duckdb            1\n"
        "floe-compute-duckdb_analytics  1\n"
        f"\ndagster instance: DAGSTER_HOME={home}\n"
    )
    assert pool_limits(home) == {"floe-compute-duckdb": 1, "floe-compute-duckdb_analytics": 1}

    # an in-memory DuckDB has no file to protect: its pool's earlier limit is removed
    manifest = demo_project / "manifests" / "manifest.yaml"
    text = manifest.read_text()
    assert text.count("  default: duckdb\n") == 1
    manifest.write_text(
        text.replace(
            "  default: duckdb\n", '  default: duckdb\n  targets:\n    duckdb: {config: {path: ":memory:"}}\n'
        )
    )
    result = floe_pools(demo_project, subprocess_env)
    assert result.returncode == 0, result.stderr
    assert "floe-compute-duckdb            unlimited\n" in result.stdout
    assert pool_limits(home) == {"floe-compute-duckdb_analytics": 1}


def test_pools_reports_a_missing_dagster_home_in_one_line(
    demo_project: Path, subprocess_env: dict[str, str]
) -> None:
    missing = demo_project / "no-such-home"
    result = floe_pools(demo_project, {**subprocess_env, "DAGSTER_HOME": str(missing)})
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr == (
        f"floe: [dagster:instance] DAGSTER_HOME={missing} is not a directory; create it (mkdir -p"
        f" {missing}) or unset DAGSTER_HOME to use {demo_project / '.floe' / 'dagster_home'}\n"
    )


def overlapping_steps(home: Path, pool: str) -> bool:
    """Two runs, the second started while the first one's step holds ``pool`` (each step holds it
    for 2 s): did the steps run at the same time?"""
    spans: list[tuple[float, float]] = []
    errors: list[BaseException] = []
    holding = threading.Event()

    @asset(pool=pool)
    def holds_the_pool() -> None:
        started = time.monotonic()
        holding.set()
        time.sleep(2)
        spans.append((started, time.monotonic()))

    def one_run() -> None:
        try:
            with DagsterInstance.from_config(str(home)) as instance:
                assert materialize([holds_the_pool], instance=instance).success
        except BaseException as exc:  # reported by the test thread
            errors.append(exc)

    threads = [threading.Thread(target=one_run) for _ in range(2)]
    threads[0].start()
    # the second run starts once the first one's step holds the pool (two claims of one slot in
    # the same instant race in the SQLite instance's concurrency table)
    assert holding.wait(timeout=120), errors
    threads[1].start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    assert len(spans) == 2, spans
    (first_start, first_end), (second_start, second_end) = sorted(spans)
    return second_start < first_end


@pytest.mark.e2e
def test_two_runs_on_a_limited_pool_never_run_their_steps_at_once(
    demo_project: Path, subprocess_env: dict[str, str]
) -> None:
    home = Path(subprocess_env["DAGSTER_HOME"])
    assert floe_pools(demo_project, subprocess_env).returncode == 0
    # without a limit the two steps do overlap, so the check below can see an overlap
    assert overlapping_steps(home, "floe-test-unlimited")
    assert not overlapping_steps(home, pool_name("duckdb"))
