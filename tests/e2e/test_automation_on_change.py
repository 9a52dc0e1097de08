"""Automation on real change: a repeated observation requests nothing; a changed table requests
exactly its downstream models (dagster_stage.automation; transforms.automation in the manifest)."""

from __future__ import annotations

from pathlib import Path

import pytest
from dagster import (
    AssetKey,
    AssetMaterialization,
    DagsterInstance,
    EvaluateAutomationConditionsResult,
    evaluate_automation_conditions,
)

from floe_dagster import build_definitions, load_manifest
from floe_dagster.dagster_stage.automation import LABEL
from floe_dagster.dagster_stage.definitions import OBSERVE_JOB
from floe_dagster.demo import demo_tables, seed_demo
from floe_dagster.plan.builders import build_catalog

pytestmark = pytest.mark.e2e

MODELS = {
    AssetKey(["staging", "stg_customers"]),
    AssetKey(["staging", "stg_orders"]),
    AssetKey(["staging", "stg_payments"]),
    AssetKey(["marts", "customers"]),
    AssetKey(["marts", "orders"]),
}


ORDERS = AssetKey(["lakehouse", "raw", "orders"])


def set_automation(manifest: Path, mode: str) -> None:
    text = manifest.read_text()
    marker = "  catalog: lakehouse\n  assignments:"
    assert marker in text
    manifest.write_text(text.replace(marker, f"  catalog: lakehouse\n  automation: {mode}\n  assignments:"))


def requested(result: EvaluateAutomationConditionsResult) -> set[AssetKey]:
    return {key for key in MODELS if result.get_num_requested(key)}


def last_updated(instance: DagsterInstance) -> float:
    """``dagster/last_updated_timestamp`` of raw.orders' latest observation."""
    records = instance.fetch_observations(ORDERS, limit=1).records
    return records[0].asset_observation.metadata["dagster/last_updated_timestamp"].value  # type: ignore[union-attr]


def test_repeat_observation_requests_nothing_a_change_requests_its_downstream(demo_project: Path) -> None:
    manifest = demo_project / "manifests" / "manifest.yaml"
    set_automation(manifest, "on_upstream_change")
    loaded = load_manifest(manifest)
    seed_demo(loaded)
    defs = build_definitions(manifest)
    models = {
        spec.key: spec.automation_condition
        for assets in defs.assets or []
        for spec in getattr(assets, "specs", [])
        if spec.key in MODELS
    }
    assert set(models) == MODELS
    assert all(c is not None and c.get_label() == LABEL for c in models.values())

    instance = DagsterInstance.get()
    observe = defs.resolve_job_def(OBSERVE_JOB)
    # every model exists already (recorded, not run: the point is the automation, not dbt)
    for key in sorted(MODELS):
        instance.report_runless_asset_event(AssetMaterialization(key))
    assert observe.execute_in_process(instance=instance).success

    result = evaluate_automation_conditions(defs=defs, instance=instance)
    assert result.total_requested == 0, "the first evaluation only sets the cursor"

    first_update = last_updated(instance)
    assert observe.execute_in_process(instance=instance).success  # same snapshots again
    result = evaluate_automation_conditions(defs=defs, instance=instance, cursor=result.cursor)
    assert result.total_requested == 0, requested(result)
    # freshness reads the table's own commit time, which a repeated observation does not move
    assert last_updated(instance) == first_update
    table = build_catalog(loaded, "lakehouse").load_table(("raw", "orders"))
    assert first_update == table.metadata.last_updated_ms / 1000

    orders = build_catalog(loaded, "lakehouse").load_table(("raw", "orders"))
    orders.append(demo_tables()["orders"].slice(0, 5))
    assert observe.execute_in_process(instance=instance).success
    result = evaluate_automation_conditions(defs=defs, instance=instance, cursor=result.cursor)
    # raw.orders -> stg_orders -> marts.orders and marts.customers (in the same run)
    assert requested(result) == {
        AssetKey(["staging", "stg_orders"]),
        AssetKey(["marts", "orders"]),
        AssetKey(["marts", "customers"]),
    }

    # nothing ran and nothing changed: the next evaluation does not request them again
    result = evaluate_automation_conditions(defs=defs, instance=instance, cursor=result.cursor)
    assert result.total_requested == 0, requested(result)
