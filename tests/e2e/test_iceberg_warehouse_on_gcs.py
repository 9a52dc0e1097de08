"""The demo data product with its Iceberg warehouse on GCS (gcp-storage-emulator): the SQL
catalog's ``gcs`` block; PyIceberg seeds the raw tables there, a real dbt build on the DuckDB
computes reads them through a gcsfs filesystem registered with DuckDB, and the models are
written back to the warehouse on GCS through PyIceberg's fsspec FileIO."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest
import yaml

from floe_dagster import load_manifest
from floe_dagster.dagster_stage.run import run_main_job
from floe_dagster.demo import demo_tables, seed_demo
from floe_dagster.plan.builders import build_catalog
from tests.fixtures.gcs_emulator import GcsEmulator

pytestmark = [pytest.mark.e2e, pytest.mark.server]


def put_warehouse_on_gcs(project: Path, emulator: GcsEmulator, bucket: str) -> None:
    enterprise = project / "manifests" / "enterprise.yaml"
    document = yaml.safe_load(enterprise.read_text())
    document["catalogs"]["lakehouse"]["config"].update(
        {
            "warehouse": f"gs://{bucket}/warehouse",
            "gcs": {"project": emulator.project, "endpoint": emulator.endpoint, "anonymous": True},
        }
    )
    enterprise.write_text(yaml.safe_dump(document, sort_keys=False))


def test_dbt_models_are_read_and_written_in_a_warehouse_on_gcs(
    demo_project: Path, gcs_emulator: GcsEmulator
) -> None:
    bucket = gcs_emulator.create_bucket("lake")
    put_warehouse_on_gcs(demo_project, gcs_emulator, bucket)
    loaded = load_manifest(demo_project / "manifests" / "manifest.yaml")
    seed_demo(loaded)
    summary = run_main_job(loaded)
    assert summary.success
    assert summary.materialized == [
        "marts/customers",
        "marts/orders",
        "staging/stg_customers",
        "staging/stg_orders",
        "staging/stg_payments",
    ]

    catalog = build_catalog(loaded, "lakehouse")
    raw = demo_tables()
    for namespace, name in (("marts", "customers"), ("marts", "orders"), ("staging", "stg_payments")):
        table = catalog.load_table((namespace, name))
        assert table.metadata_location.startswith(f"gs://{bucket}/warehouse/{namespace}/{name}/metadata/")
    customers = catalog.load_table(("marts", "customers")).scan().to_arrow()
    assert customers.num_rows == raw["customers"].num_rows
    # the marts (on the second DuckDB compute) read the staging models back from GCS and add up
    expected_total = sum(raw["payments"].column("amount_cents").to_pylist()) / 100
    assert float(pa.compute.sum(customers.column("lifetime_value")).as_py()) == pytest.approx(expected_total)
    names = [blob.name for blob in gcs_emulator.client().list_blobs(bucket)]
    for model in ("marts/customers", "marts/orders", "staging/stg_orders"):
        assert any(n.startswith(f"warehouse/{model}/data/") and n.endswith(".parquet") for n in names)
    assert not (demo_project / ".floe" / "warehouse" / "marts").exists()  # nothing local
