"""Two processes on one DuckDB file (issue 17, item 16): the second waits for the write lock,
bounded and logged, then fails naming the process that holds it and what to do."""

from __future__ import annotations

import logging
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest

from floe_dagster.computes.duckdb import DuckDBComputePlugin, DuckDBConfig
from floe_dagster.computes.duckdb_lock import DuckDBFileLockedError, lock_holder, wait_for_file_lock
from floe_dagster.core.errors import ComputeError
from floe_dagster.plugins.compute import DbtProfileContext

HOLD = """
import sys, time, duckdb
con = duckdb.connect(sys.argv[1])
con.execute("CREATE TABLE IF NOT EXISTS t AS SELECT 1 AS x")
print("ready", flush=True)
time.sleep(float(sys.argv[2]))
con.close()
"""


def hold(path: Path, seconds: float) -> subprocess.Popen[str]:
    """Another process (a stand-in for another Dagster instance's dbt) with the file open."""
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(path), str(seconds)], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    return proc


@pytest.fixture
def database(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path / "lake.duckdb"


def test_a_held_file_fails_after_the_bounded_wait_naming_the_holder(
    database: Path, caplog: pytest.LogCaptureFixture
) -> None:
    holder = hold(database, 60)
    try:
        assert lock_holder(database) == holder.pid
        with pytest.raises(duckdb.IOException, match="lock"):
            duckdb.connect(str(database))  # what dbt-duckdb would meet: DuckDB's own error
        caplog.set_level(logging.WARNING, "floe_dagster.duckdb")
        started = time.monotonic()
        with pytest.raises(DuckDBFileLockedError) as caught:
            wait_for_file_lock(database, 1.0, "duckdb", poll_seconds=0.1)
        waited = time.monotonic() - started
    finally:
        holder.kill()
        holder.wait()
    assert 1.0 <= waited < 30  # bounded by lock_wait_seconds, not DuckDB's or dbt's own
    error = caught.value
    assert isinstance(error, ComputeError) and error.retryable
    text = str(error)
    assert f"PID {holder.pid}" in text and "-c" in text  # the holder and its command line
    assert "lock_wait_seconds" in text and "computes.targets.duckdb.config.path" in text
    assert "one Dagster instance" in text
    assert any(f"held by PID {holder.pid}" in r.getMessage() and "waiting up to 1 s" in r.getMessage()
               for r in caplog.records)  # fmt: skip


def test_the_wait_ends_when_the_other_process_releases_the_file(
    database: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, "floe_dagster.duckdb")
    holder = hold(database, 1.5)
    try:
        waited = wait_for_file_lock(database, 60, "duckdb", poll_seconds=0.1)
    finally:
        holder.wait()
    assert 0 < waited < 60
    assert lock_holder(database) is None
    duckdb.connect(str(database)).close()  # and DuckDB can open it now
    assert any("is free after" in r.getMessage() for r in caplog.records)


def test_this_processes_own_connection_is_not_a_conflict(database: Path) -> None:
    con = duckdb.connect(str(database))
    try:
        assert lock_holder(database) is None
        assert wait_for_file_lock(database, 0, "duckdb") == pytest.approx(0, abs=0.5)
    finally:
        con.close()


def test_the_duckdb_compute_waits_before_dbt_starts(database: Path) -> None:
    config = DuckDBConfig.model_validate({"path": str(database), "lock_wait_seconds": 0.5})
    context = DbtProfileContext("duckdb", "m.yaml", "dev", str(database.parent), (), None)
    holder = hold(database, 60)
    try:
        with pytest.raises(DuckDBFileLockedError, match=f"PID {holder.pid}"):
            DuckDBComputePlugin().prepare_dbt_run(config, context)
    finally:
        holder.kill()
        holder.wait()
    assert DuckDBComputePlugin().prepare_dbt_run(config, context) == {}
