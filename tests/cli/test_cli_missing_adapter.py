"""An approved compute whose dbt adapter is not installed fails early and clearly.

`floe validate`, `floe health` and the code-location load (``build_definitions``) each name the
missing adapter with its install command, before dbt parses or a run starts; no traceback. The
demo's DuckDB adapter is made absent the way Python documents for blocking an import
(``sys.modules["dbt.adapters.duckdb"] = None``), in this process for the in-process CLI and in a
real ``floe`` subprocess through a ``sitecustomize`` module.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any, cast

import pytest

from floe_dagster.computes.duckdb import DuckDBComputePlugin
from tests.helpers import VENV_BIN, run_floe

ADAPTER = DuckDBComputePlugin().get_required_dbt_packages()[0]  # "dbt-duckdb>=1.11,<1.12"
INSTALL = f"pip install '{ADAPTER}'"


@pytest.fixture
def no_duckdb_adapter(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "dbt.adapters.duckdb", cast(Any, None))


def test_validate_names_the_missing_adapter_and_how_to_install_it(
    demo_project: Path, subprocess_env: dict[str, str], no_duckdb_adapter: None
) -> None:
    result = run_floe(["validate"], cwd=demo_project, env=subprocess_env)
    assert result.returncode == 1, result.stdout + result.stderr
    assert result.stdout == ""
    # both approved computes are DuckDB: each is named, with the command that fixes it
    for compute in ("duckdb", "duckdb_analytics"):
        assert f"compute '{compute}' (duckdb): the dbt adapter '{ADAPTER}' is missing" in result.stderr
    assert "module dbt.adapters.duckdb not found" in result.stderr
    assert f"`{INSTALL}`" in result.stderr
    assert "Traceback" not in result.stderr


def test_health_reports_a_failed_row_naming_the_adapter(
    demo_project: Path, subprocess_env: dict[str, str], no_duckdb_adapter: None
) -> None:
    result = run_floe(["health"], cwd=demo_project, env=subprocess_env)
    assert result.returncode == 1, result.stdout + result.stderr
    rows = {line.split()[1]: line for line in result.stdout.splitlines()[1:] if line.startswith("compute")}
    assert set(rows) == {"duckdb", "duckdb_analytics"}
    for line in rows.values():
        assert line.split()[3] == "failed"
        assert f"the dbt adapter '{ADAPTER}' is missing" in line and INSTALL in line
    assert "2 check(s) failed" in result.stderr
    assert "Traceback" not in result.stderr


def test_the_code_location_load_fails_naming_the_adapter(demo_project: Path, no_duckdb_adapter: None) -> None:
    from floe_dagster import build_definitions
    from floe_dagster.plugins.dbt_packages import MissingDbtPackageError

    with pytest.raises(MissingDbtPackageError) as caught:
        build_definitions(demo_project / "manifests" / "manifest.yaml")
    error = caught.value
    assert error.compute == "duckdb, duckdb_analytics"
    assert [m.requirement for m in error.missing] == [ADAPTER, ADAPTER]
    assert INSTALL in str(error)


def test_a_real_floe_process_without_the_adapter_fails_validate(
    demo_project: Path, subprocess_env: dict[str, str], tmp_path: Path
) -> None:
    """The `floe` script itself, in a Python where the adapter module cannot be imported."""
    hide = tmp_path / "hide"
    hide.mkdir()
    (hide / "sitecustomize.py").write_text("import sys\nsys.modules['dbt.adapters.duckdb'] = None\n")
    env = {**subprocess_env, "PYTHONPATH": str(hide)}
    result = subprocess.run(
        [str(VENV_BIN / "floe"), "validate"],
        cwd=demo_project,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"the dbt adapter '{ADAPTER}' is missing" in result.stderr and INSTALL in result.stderr
    assert "Traceback" not in result.stderr


def test_with_the_adapter_installed_validate_passes(
    demo_project: Path, subprocess_env: dict[str, str]
) -> None:
    result = run_floe(["validate"], cwd=demo_project, env=subprocess_env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 approved compute(s)" in result.stdout
