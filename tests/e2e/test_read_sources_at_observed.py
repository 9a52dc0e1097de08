"""Snapshot-consistent runs: with ``transforms.read_sources_at: observed`` the models read each Delta
source at the version its latest observation recorded, even after a writer committed; with the
default (``latest``) they read the current version. Either way each materialisation records the
version it read (``floe/source_versions``).

Real Dagster (observe job, main job, in process), real dbt on DuckDB, a Delta table written by
delta-rs into moto's S3 and found by the ``s3`` source (``file_type: delta``).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from dagster import AssetKey, DagsterInstance

from floe_dagster import build_definitions
from floe_dagster.dagster_stage.names import MAIN_JOB, OBSERVE_JOB
from floe_dagster.dagster_stage.source_versions import METADATA_KEY
from tests.fixtures.format_tables import delta_append, moto_storage_options
from tests.fixtures.moto_server import MotoServer

pytestmark = [pytest.mark.e2e, pytest.mark.server]

MODEL = AssetKey(["orders_summary"])
SOURCE = AssetKey(["deltas", "lake", "lake_orders"])  # named after its prefix, lake/orders


def write_project(root: Path, server: MotoServer, bucket: str, read_at: str) -> Path:
    (root / "dbt" / "models").mkdir(parents=True, exist_ok=True)
    (root / "dbt" / "dbt_project.yml").write_text(
        "name: observed\nversion: '1.0.0'\nconfig-version: 2\nprofile: observed\n"
        "model-paths: [models]\nmodels:\n  observed:\n    +materialized: table\n"
    )
    (root / "dbt" / "models" / "_sources.yml").write_text(
        "version: 2\nsources:\n  - name: lake\n    schema: lake\n    meta: {floe: {metastore: deltas}}\n"
        "    tables:\n      - name: lake_orders\n"
    )
    (root / "dbt" / "models" / "orders_summary.sql").write_text(
        "select count(*) as n, max(id) as top from {{ source('lake', 'lake_orders') }}"
    )
    manifest = root / "manifest.yaml"
    manifest.write_text(
        "apiVersion: floe.dev/v1\nkind: Manifest\nmetadata: {name: observed}\nstate_dir: .floe\n"
        "computes:\n  approved: [duckdb]\n  default: duckdb\n  targets:\n"
        "    duckdb:\n      type: duckdb\n"
        "      config: {path: .floe/warehouse.duckdb, extensions: [httpfs]}\n"
        "metastores:\n  deltas:\n    type: s3\n    config:\n"
        f"      bucket: {bucket}\n      region: {server.region}\n      endpoint: {server.endpoint}\n"
        f"      access_key_id: {server.access_key_id}\n      secret_access_key: {server.secret_access_key}\n"
        "      path_prefix: lake/\n      namespace: lake\n      file_type: delta\n"
        f"transforms:\n  dbt_project: dbt\n  read_sources_at: {read_at}\n"
    )
    return manifest


def summary(root: Path) -> tuple[int, int]:
    import duckdb

    with duckdb.connect(str(root / ".floe" / "warehouse.duckdb"), read_only=True) as con:
        row = con.sql("SELECT n, top FROM main.orders_summary").fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


def test_observed_runs_read_the_observed_version_and_every_run_records_what_it_read(
    moto_server: MotoServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("FLOE_STATE_DIR", "FLOE_ENV", "DBT_TARGET_PATH"):
        monkeypatch.delenv(name, raising=False)
    bucket = moto_server.create_bucket("observed")
    options = moto_storage_options(moto_server)
    uri = f"s3://{bucket}/lake/orders"
    for start in (0, 10):
        delta_append(uri, range(start, start + 3), options)  # versions 0 and 1

    instance = DagsterInstance.ephemeral()
    defs = build_definitions(write_project(tmp_path, moto_server, bucket, "observed"))
    assert defs.resolve_job_def(OBSERVE_JOB).execute_in_process(instance=instance).success
    observed = instance.fetch_observations(SOURCE, limit=1).records[0].asset_observation
    assert observed is not None and observed.data_version == "1"

    delta_append(uri, range(20, 23), options)  # a writer commits version 2 after the observation
    result = defs.resolve_job_def(MAIN_JOB).execute_in_process(instance=instance)
    assert result.success
    assert summary(tmp_path) == (6, 12)  # version 1: what the observation recorded, not version 2
    (materialized,) = [e for e in result.get_asset_materialization_events() if e.asset_key == MODEL]
    metadata = materialized.materialization.metadata
    assert metadata[METADATA_KEY].value == {SOURCE.to_user_string(): "1"}

    latest = build_definitions(write_project(tmp_path, moto_server, bucket, "latest"))
    result = latest.resolve_job_def(MAIN_JOB).execute_in_process(instance=instance)
    assert result.success
    assert summary(tmp_path) == (9, 22)  # the current version
    (materialized,) = [e for e in result.get_asset_materialization_events() if e.asset_key == MODEL]
    assert materialized.materialization.metadata[METADATA_KEY].value == {SOURCE.to_user_string(): "2"}
