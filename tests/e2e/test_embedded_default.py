"""The embedded default end to end, in process: seed, observe, materialise, read back."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pyarrow as pa
import pytest
from dagster import AssetKey, DagsterInstance, instance_for_test
from dagster._core.definitions.data_version import extract_data_version_from_entry

from floe_dagster import MAIN_JOB, build_definitions, load_manifest
from floe_dagster.dagster_stage.definitions import OBSERVE_JOB
from floe_dagster.dagster_stage.run import run_main_job
from floe_dagster.demo import demo_tables, seed_demo
from floe_dagster.plan.builders import build_catalog
from tests.helpers import VENV_BIN

pytestmark = pytest.mark.e2e

RAW_KEYS = [AssetKey(["lakehouse", "raw", t]) for t in ("customers", "orders", "payments")]


def latest_data_versions(instance: DagsterInstance, keys: list[AssetKey]) -> dict[AssetKey, str | None]:
    versions = {}
    for key in keys:
        record = instance.get_latest_data_version_record(key, is_source=True)
        version = extract_data_version_from_entry(record.event_log_entry) if record else None
        versions[key] = version.value if version else None
    return versions


def test_main_job_writes_every_model_to_iceberg(demo_project: Path) -> None:
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
    customers = catalog.load_table(("marts", "customers")).scan().to_arrow()
    assert customers.num_rows == raw["customers"].num_rows
    orders = catalog.load_table(("marts", "orders")).scan().to_arrow()
    assert orders.num_rows == raw["orders"].num_rows
    # the marts add up: lifetime value over customers equals payments in currency units
    expected_total = sum(raw["payments"].column("amount_cents").to_pylist()) / 100
    assert float(pa.compute.sum(customers.column("lifetime_value")).as_py()) == pytest.approx(expected_total)
    assert float(pa.compute.sum(orders.column("amount")).as_py()) == pytest.approx(expected_total)
    assert set(catalog.list_namespaces()) == {("raw",), ("staging",), ("marts",)}

    # running it again replaces the outputs instead of appending to them
    assert run_main_job(loaded).success
    assert catalog.load_table(("marts", "customers")).scan().to_arrow().num_rows == raw["customers"].num_rows


def test_observation_changes_only_the_appended_tables_version(demo_project: Path) -> None:
    loaded = load_manifest(demo_project / "manifests" / "manifest.yaml")
    seed_demo(loaded)
    defs = build_definitions(loaded.path)
    instance = DagsterInstance.get()
    observe = defs.resolve_job_def(OBSERVE_JOB)

    assert observe.execute_in_process(instance=instance).success
    first = latest_data_versions(instance, RAW_KEYS)
    assert all(first.values()), first

    assert observe.execute_in_process(instance=instance).success
    assert latest_data_versions(instance, RAW_KEYS) == first, "no data change must keep every version"
    assert defs.resolve_job_def(MAIN_JOB).execute_in_process(instance=instance).success
    assert latest_data_versions(instance, RAW_KEYS) == first, "dbt's source tests must not reset versions"

    orders = build_catalog(loaded, "lakehouse").load_table(("raw", "orders"))
    orders.append(demo_tables()["orders"].slice(0, 5))
    assert observe.execute_in_process(instance=instance).success
    third = latest_data_versions(instance, RAW_KEYS)
    changed = {key for key in RAW_KEYS if third[key] != first[key]}
    assert changed == {AssetKey(["lakehouse", "raw", "orders"])}


def test_definitions_wire_sources_to_dbt_models(demo_project: Path) -> None:
    loaded = load_manifest(demo_project / "manifests" / "manifest.yaml")
    seed_demo(loaded)
    defs = build_definitions(loaded.path)
    graph = defs.resolve_asset_graph()
    for key in RAW_KEYS:
        assert graph.get(key).is_observable
    stg_orders = graph.get(AssetKey(["staging", "stg_orders"]))
    assert AssetKey(["lakehouse", "raw", "orders"]) in stg_orders.parent_keys
    assert stg_orders.tags["floe/compute"] == "duckdb"
    assert set(defs.resources or {}) == {
        "catalog_lakehouse",
        "compute_duckdb",
        "compute_duckdb_analytics",
        "metastore_lakehouse",
        "dbt",
    }
    job_names = {job.name for job in defs.jobs or []}  # type: ignore[union-attr]
    assert {MAIN_JOB, OBSERVE_JOB} <= job_names
    # the source's column schema comes with its observation, not with the definition
    orders = AssetKey(["lakehouse", "raw", "orders"])
    assert "dagster/column_schema" not in graph.get(orders).metadata
    with instance_for_test() as instance:
        assert defs.resolve_job_def(OBSERVE_JOB).execute_in_process(instance=instance).success
        record = instance.get_latest_data_version_record(orders, is_source=True)
        assert record is not None and record.event_log_entry.asset_observation is not None
        schema = record.event_log_entry.asset_observation.metadata["dagster/column_schema"]
    assert [c.name for c in schema.schema.columns] == [  # type: ignore[attr-defined]
        "id",
        "customer_id",
        "order_date",
        "status",
    ]


def test_floe_run_materialises_every_model_and_prints_the_outputs(
    demo_project: Path, subprocess_env: dict[str, str]
) -> None:
    def floe(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(VENV_BIN / "floe"), *args],
            cwd=demo_project,
            env=subprocess_env,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )

    seeded = floe("seed")
    assert seeded.returncode == 0, seeded.stderr
    result = floe("run")
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stdout.splitlines()
    [summary] = [line for line in lines if line.startswith("run ")]  # after dbt's own output
    assert re.fullmatch(r"run [0-9a-f-]{36}: success; 5 asset\(s\) materialised", summary), summary
    tables = {
        line.split()[0]: line.split()[1] for line in lines if line.startswith(("marts.", "staging.", "raw."))
    }
    assert tables == {
        "marts.customers": "100",
        "marts.orders": "300",
        "raw.customers": "100",
        "raw.orders": "300",
        "raw.payments": str(demo_tables()["payments"].num_rows),
        "staging.stg_customers": "100",
        "staging.stg_orders": "300",
        "staging.stg_payments": str(demo_tables()["payments"].num_rows),
    }
    home = demo_project / ".floe" / "dagster_home"
    assert f"dagster runs: DAGSTER_HOME={home}" in result.stdout
    # the run used the instance of DAGSTER_HOME, with each DuckDB file's pool limited to one step
    with DagsterInstance.from_config(str(home)) as instance:
        [run] = [r for r in instance.get_runs() if r.job_name == MAIN_JOB]
        assert run.run_id in summary and run.is_success
        assert instance.event_log_storage.get_concurrency_info("floe-compute-duckdb").slot_count == 1
