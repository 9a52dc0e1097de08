"""What a code-location load of the demo imports, in a fresh process as a code server loads it.

The load builds definitions only; what runs a step (the ingest's pyarrow writer, PyIceberg's SQL
catalog on SQLAlchemy) is imported when the step runs, so that a code location with thousands of
tables does not pay for it at every load (issue 15, benchmarks/load_scale.py). The benchmark's
floe side imports ``LOAD_IMPORTS`` before the definitions to time them apart: they must be what
the load imports anyway.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.helpers import copy_demo_project

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))

import _common  # noqa: E402

# imported by the steps that run, not by the load
RUN_ONLY = ("pyarrow", "sqlalchemy", "pyiceberg.catalog.sql", "floe_dagster.ingest.table")


def test_a_code_location_load_imports_what_it_needs_and_no_step_machinery(tmp_path: Path) -> None:
    project = copy_demo_project(tmp_path / "project")
    script = (
        "import json, runpy, sys\n"
        "from dagster._core.remote_representation.external_data import RepositorySnap\n"
        "defs = runpy.run_path('definitions.py')['defs']\n"
        "RepositorySnap.from_def(defs.get_repository_def())\n"
        f"print(json.dumps({{m: m in sys.modules for m in {[*_common.LOAD_IMPORTS, *RUN_ONLY]!r}}}))\n"
    )
    env = _common.clean_env(FLOE_MANIFEST=str(project / "manifests" / "manifest.yaml"))
    # the first load parses the dbt project (dbt-duckdb's plugin, PyIceberg's SQL catalog and
    # all); a code server's loads after it reuse that parse: the second one is what is checked
    for _ in range(2):
        result = subprocess.run(
            [sys.executable, "-c", script], cwd=project, env=env, capture_output=True, text=True, timeout=600
        )
        assert result.returncode == 0, result.stderr[-3000:]
    imported = json.loads(result.stdout.strip().splitlines()[-1])
    assert {m: imported[m] for m in _common.LOAD_IMPORTS} == dict.fromkeys(_common.LOAD_IMPORTS, True)
    assert {m: imported[m] for m in RUN_ONLY} == dict.fromkeys(RUN_ONLY, False)


def test_the_ingest_imports_no_manifest_loader_or_planner() -> None:
    """A run process that ingests (benchmarks/s3_ingest.py's child, a step worker) pays for the
    writer and the source, not for the manifest's loader and planner (``floe_dagster`` names them
    lazily)."""
    script = (
        "import json, sys\n"
        "import floe_dagster.ingest.table, floe_dagster.metastores.s3\n"
        "print(json.dumps({m: m in sys.modules for m in ('floe_dagster.manifest', 'floe_dagster.plan')}))\n"
        "import floe_dagster\n"
        "print(json.dumps([floe_dagster.load_manifest.__module__, floe_dagster.ManifestError.__name__]))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], env=_common.clean_env(), capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-3000:]
    first, second = result.stdout.strip().splitlines()[-2:]
    assert json.loads(first) == {"floe_dagster.manifest": False, "floe_dagster.plan": False}
    assert json.loads(second) == ["floe_dagster.plan.compile", "ManifestError"]
