"""Shared fixtures: an isolated copy of the demo project for every test that writes state."""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from floe_dagster.computes.duckdb_extensions import EXTENSION_DIR_ENV
from floe_dagster.core.compat import serialize_ast_parsing
from tests.helpers import VENV_BIN, copy_demo_project

# dbt (in-process), Hypothesis and these tests parse Python on several threads of one worker:
# CPython 3.11.7's AST race (python/cpython#106905) failed unrelated tests; guard it here too.
serialize_ast_parsing()

# One offline DuckDB extension folder for every test project and process (about 85 MB a copy; a
# folder per project filled the disk of a CI machine). Tests of the per-project default unset it.
os.environ.setdefault(EXTENSION_DIR_ENV, str(Path(tempfile.gettempdir()) / "floe-test-duckdb-extensions"))

# Session-scoped servers, shared by every module that asks for them.
pytest_plugins = [
    "tests.fixtures.postgres",
    "tests.fixtures.fakesnow_server",
    "tests.fixtures.hive_metastore",
    "tests.fixtures.iceberg_rest_server",
    "tests.fixtures.moto_server",
    "tests.fixtures.kube_api",
    "tests.fixtures.mariadb",
    "tests.fixtures.clickhouse",
    "tests.fixtures.s3rver_server",
    "tests.fixtures.s3_stores",
    "tests.fixtures.azurite_server",
    "tests.fixtures.gcs_emulator",
    "tests.fixtures.iceberg_rest_on_stores",
]


# Loggers dbt adapters silence when imported (dbt's ``set_package_logging``: level ERROR, no
# propagation): dbt-snowflake (snowflake.connector, botocore, boto3), dbt-redshift, dbt-spark.
# After any test imported one, a canary test looking for a secret in these libraries' records
# would see none and pass whether or not the secret was logged.
SILENCED_BY_DBT_ADAPTERS = (
    "snowflake.connector",
    "botocore",
    "boto3",
    "redshift_connector",
    "redshift_connector.core",
    "pyhive.hive",
    "thrift.transport",
    "thrift.protocol",
)


# Other libraries do the same at import: clickhouse-connect sets urllib3 to WARNING, and
# databricks-sql-connector adds a filter to urllib3's request logger that masks every query
# parameter. After a test in the same worker had imported either, the canaries over urllib3's
# request lines (Azure's SAS signature, GCS's) saw no lines, or lines a foreign filter had masked.
SILENCED_BY_OTHER_LIBRARIES = ("urllib3", "urllib3.connectionpool")
FILTERED_BY_OTHER_LIBRARIES = ("urllib3.connectionpool",)


@pytest.fixture(autouse=True)
def third_party_logs_reach_caplog(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test sees the records of the libraries above, whatever an earlier test imported, as
    floe's own filters (and no other library's) leave them."""
    for name in (*SILENCED_BY_DBT_ADAPTERS, *SILENCED_BY_OTHER_LIBRARIES):
        logger = logging.getLogger(name)
        monkeypatch.setattr(logger, "propagate", True)
        monkeypatch.setattr(logger, "level", logging.NOTSET)
    for name in FILTERED_BY_OTHER_LIBRARIES:
        logger = logging.getLogger(name)
        own = [f for f in logger.filters if type(f).__module__.startswith("floe_dagster.")]
        monkeypatch.setattr(logger, "filters", own)


@pytest.fixture(scope="session")
def parsed_demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the demo whose dbt project was parsed once for the whole session."""
    from floe_dagster.manifest.loader import load_manifest
    from floe_dagster.transforms.dbt_manifest import prepare_dbt_manifest

    root = copy_demo_project(tmp_path_factory.mktemp("parsed") / "project")
    prepare_dbt_manifest(load_manifest(root / "manifests" / "manifest.yaml"))
    return root


@pytest.fixture
def demo_project(tmp_path: Path, parsed_demo: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A fresh copy of the demo project (not seeded); DAGSTER_HOME and state live inside it."""
    root = copy_demo_project(tmp_path / "project", parsed_from=parsed_demo)
    home = root / ".floe" / "dagster_home"
    home.mkdir(parents=True)
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    monkeypatch.delenv("FLOE_STATE_DIR", raising=False)
    monkeypatch.delenv("FLOE_MANIFEST", raising=False)
    monkeypatch.delenv("FLOE_ENV", raising=False)
    yield root


@pytest.fixture
def subprocess_env(demo_project: Path) -> dict[str, str]:
    """Environment for CLI subprocesses: the venv's bin first on PATH, state inside the copy."""
    return {
        **os.environ,
        "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "DAGSTER_HOME": str(demo_project / ".floe" / "dagster_home"),
    }
