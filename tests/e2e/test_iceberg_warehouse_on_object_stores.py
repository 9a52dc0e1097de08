"""The demo data product with its Iceberg warehouse on an object store: GCS (gcp-storage-emulator,
the SQL catalog's ``gcs`` block) and ADLS (Azurite, its ``adls`` block). PyIceberg seeds the raw
tables there, a real dbt build on the two DuckDB computes reads them (GCS: through a gcsfs
filesystem registered with DuckDB; ADLS: through the azure extension on the Blob endpoint, with
a secret scoped to the container), and the models are written back to the warehouse through
PyIceberg's FileIO."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
import yaml

from floe_dagster import load_manifest
from floe_dagster.dagster_stage.run import run_main_job
from floe_dagster.demo import demo_tables, seed_demo
from floe_dagster.plan.builders import build_catalog

pytestmark = [pytest.mark.e2e, pytest.mark.server]


def configure(project: Path, catalog: dict[str, Any], extensions: list[str]) -> None:
    enterprise = project / "manifests" / "enterprise.yaml"
    document = yaml.safe_load(enterprise.read_text())
    document["catalogs"]["lakehouse"]["config"].update(catalog)
    for target in document["computes"]["targets"].values():
        target["config"]["extensions"] = extensions
    enterprise.write_text(yaml.safe_dump(document, sort_keys=False))


def on_gcs(request: pytest.FixtureRequest, project: Path) -> tuple[str, Callable[[], list[str]]]:
    emulator = request.getfixturevalue("gcs_emulator")
    bucket = emulator.create_bucket("lake")
    gcs = {"project": emulator.project, "endpoint": emulator.endpoint, "anonymous": True}
    configure(project, {"warehouse": f"gs://{bucket}/warehouse", "gcs": gcs}, ["iceberg"])
    return f"gs://{bucket}/warehouse", lambda: [b.name for b in emulator.client().list_blobs(bucket)]


def on_adls(
    request: pytest.FixtureRequest, project: Path, monkeypatch: pytest.MonkeyPatch
) -> tuple[str, Callable[[], list[str]]]:
    server = request.getfixturevalue("azurite_server")
    container = server.create_container("lake")
    monkeypatch.setenv("FLOE_TEST_AZURITE_KEY", server.account_key)
    adls = {
        "account_name": server.account_name,
        "endpoint": server.endpoint,
        "account_key": "${env:FLOE_TEST_AZURITE_KEY}",
    }
    configure(project, {"warehouse": f"abfss://{container}/warehouse", "adls": adls}, ["iceberg", "azure"])
    return f"abfss://{container}/warehouse", lambda: [
        b.name for b in server.container_client(container).list_blobs()
    ]


@pytest.mark.parametrize("store", ["gcs", "adls"])
def test_dbt_models_are_read_and_written_in_a_warehouse_on_the_store(
    demo_project: Path, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, store: str
) -> None:
    if store == "gcs":
        warehouse, names = on_gcs(request, demo_project)
    else:
        warehouse, names = on_adls(request, demo_project, monkeypatch)

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
        assert table.metadata_location.startswith(f"{warehouse}/{namespace}/{name}/metadata/")
    customers = catalog.load_table(("marts", "customers")).scan().to_arrow()
    assert customers.num_rows == raw["customers"].num_rows
    # the marts (on the second DuckDB compute) read the staging models back from the store and add up
    expected_total = sum(raw["payments"].column("amount_cents").to_pylist()) / 100
    assert float(pa.compute.sum(customers.column("lifetime_value")).as_py()) == pytest.approx(expected_total)
    stored = names()
    for model in ("marts/customers", "marts/orders", "staging/stg_orders"):
        assert any(n.startswith(f"warehouse/{model}/data/") and n.endswith(".parquet") for n in stored)
    assert not (demo_project / ".floe" / "warehouse" / "marts").exists()  # nothing local
    if store == "adls":  # the account key reached DuckDB as a secret, and no file the run wrote
        secret = request.getfixturevalue("azurite_server").account_key
        for path in demo_project.rglob("*"):
            if path.is_file() and path.suffix in {".log", ".json", ".yml", ".yaml", ".txt", ".sql"}:
                assert secret not in path.read_text(errors="ignore"), path
