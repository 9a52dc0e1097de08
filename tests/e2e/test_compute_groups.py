"""One dbt project split across two computes: placement, ordering, and the split-project pitfalls."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from dagster import AssetKey, DagsterEventType, DagsterInstance

from floe_dagster import MAIN_JOB, build_definitions, load_manifest
from floe_dagster.dagster_stage.dbt_assets import COMPUTE_TAG, K8S_CONFIG_TAG, pool_name
from floe_dagster.dagster_stage.run import run_main_job
from floe_dagster.demo import seed_demo
from floe_dagster.plan.builders import build_catalog

pytestmark = pytest.mark.e2e

STAGING = ["stg_customers", "stg_orders", "stg_payments"]
MARTS = ["customers", "orders"]


def external_outputs(project: Path, compute: str) -> set[str]:
    return {p.stem for p in (project / ".floe" / "dbt_external" / compute).glob("*.parquet")}


def test_models_run_on_their_assigned_compute_and_read_across_through_the_catalog(demo_project: Path) -> None:
    loaded = load_manifest(demo_project / "manifests" / "manifest.yaml")
    seed_demo(loaded)
    summary = run_main_job(loaded)
    assert summary.success
    # each compute wrote exactly its own models
    assert external_outputs(demo_project, "duckdb") == set(STAGING)
    assert external_outputs(demo_project, "duckdb_analytics") == set(MARTS)
    # the marts (duckdb_analytics) read the staging models (duckdb) through the Iceberg catalog
    catalog = build_catalog(loaded, "lakehouse")
    assert catalog.load_table(("marts", "customers")).scan().to_arrow().num_rows == 100
    assert catalog.load_table(("staging", "stg_orders")).scan().to_arrow().num_rows == 300


def test_group_tags_pools_and_k8s_resources(demo_project: Path) -> None:
    loaded = load_manifest(demo_project / "manifests" / "manifest.yaml")
    defs = build_definitions(loaded.path)
    graph = defs.resolve_asset_graph()
    customers = graph.get(AssetKey(["marts", "customers"]))
    stg = graph.get(AssetKey(["staging", "stg_orders"]))
    assert customers.tags[COMPUTE_TAG] == "duckdb_analytics"
    assert stg.tags[COMPUTE_TAG] == "duckdb"
    assert {"dbt", "duckdb", "iceberg"} <= set(customers.kinds)
    analytics = next(a for a in defs.assets if getattr(a, "op", None) and a.op.name == "dbt_duckdb_analytics")
    assert analytics.op.pool == pool_name("duckdb_analytics")
    resources = json.loads(analytics.op.tags[K8S_CONFIG_TAG])["container_config"]["resources"]
    assert resources == {"requests": {"cpu": "1", "memory": "4Gi"}, "limits": {"cpu": "2", "memory": "8Gi"}}


def test_two_groups_reading_one_source_do_not_conflict(demo_project: Path) -> None:
    """dagster-io/dagster#34140: split dbt projects must not define conflicting source metadata."""
    audit = demo_project / "dbt_project" / "models" / "marts" / "orders_audit.sql"
    audit.write_text("select count(*) as n from {{ source('raw', 'orders') }}\n")
    loaded = load_manifest(demo_project / "manifests" / "manifest.yaml")
    seed_demo(loaded)
    defs = build_definitions(loaded.path)
    graph = defs.resolve_asset_graph()
    source = AssetKey(["lakehouse", "raw", "orders"])
    readers = {k.path[-1] for k in graph.get(source).child_keys}
    assert {"stg_orders", "orders_audit"} <= readers
    assert graph.get(AssetKey(["marts", "orders_audit"])).tags[COMPUTE_TAG] == "duckdb_analytics"
    # one definition of the source, carrying the metastore's metadata, not dbt's
    assert graph.get(source).is_observable
    assert "floe/location" in graph.get(source).metadata


def test_failing_test_in_one_group_blocks_downstream_models_of_the_other(demo_project: Path) -> None:
    """dagster-io/dagster#19821: a failed dbt test upstream stops downstream groups in the same run.

    The staging group (duckdb) builds its models, one of its dbt tests fails, and that failure,
    nothing else, fails its step; the marts group (duckdb_analytics) depends on it and is not run.
    """
    staging = demo_project / "dbt_project" / "models" / "staging" / "_staging.yml"
    staging.write_text(staging.read_text().replace('"completed", "returned"', '"completed"'))
    loaded = load_manifest(demo_project / "manifests" / "manifest.yaml")
    seed_demo(loaded)
    defs = build_definitions(loaded.path)
    instance = DagsterInstance.get()
    result = defs.resolve_job_def(MAIN_JOB).execute_in_process(instance=instance, raise_on_error=False)
    assert not result.success

    # the upstream group ran: every staging model was materialised
    materialized = {e.asset_key.path[-1] for e in result.get_asset_materialization_events() if e.asset_key}
    assert materialized == set(STAGING), materialized
    # exactly one dbt test failed, the one made to fail, on the upstream group's model
    checks = [
        e.event_specific_data
        for e in result.all_events
        if e.event_type == DagsterEventType.ASSET_CHECK_EVALUATION
    ]
    failed = [(c.asset_key.path[-1], c.check_name) for c in checks if not c.passed]
    assert failed == [("stg_orders", "accepted_values_stg_orders_status__placed__shipped__completed")]
    assert len(checks) > len(failed), "the other staging tests ran and passed"
    # that is the only failed step, failing because dbt build exited with the failed test
    failures = {e.step_key: e.event_specific_data.error for e in result.all_events if e.is_step_failure}
    assert list(failures) == ["dbt_duckdb"]
    assert failures["dbt_duckdb"].cls_name == "DagsterDbtCliRuntimeError"
    # the downstream group's step never started: Dagster did not execute it for that failure
    started = {e.step_key for e in result.all_events if e.event_type == DagsterEventType.STEP_START}
    assert started == {"dbt_duckdb"}
    not_executed = [
        r.user_message
        for r in instance.all_logs(result.run_id)
        if r.step_key == "dbt_duckdb_analytics" and "Not executing" in r.user_message
    ]
    [message] = not_executed
    assert message.startswith("Dependencies for step dbt_duckdb_analytics failed: [")
    assert set(re.findall(r"'(\w+)'", message)) == {"dbt_duckdb"}, message  # one entry per input
    assert not external_outputs(demo_project, "duckdb_analytics")
    assert external_outputs(demo_project, "duckdb") == set(STAGING)


def test_every_compute_reuses_its_own_partial_parse_on_the_next_run(demo_project: Path) -> None:
    """dbt keeps a partial parse per --target: without floe's per-target cache, every compute but
    the default re-parsed the whole project on every run (see FloeDbtCliResource)."""
    loaded = load_manifest(demo_project / "manifests" / "manifest.yaml")
    seed_demo(loaded)
    target = demo_project / "dbt_project" / "target"
    assert run_main_job(loaded).success
    cached = {p.stem for p in (target / "floe_partial_parse").glob("*.msgpack")}
    assert cached == {"duckdb", "duckdb_analytics"}
    first_logs = set(target.glob("*/dbt.log"))
    assert run_main_job(loaded).success
    second_logs = set(target.glob("*/dbt.log")) - first_logs
    assert len(second_logs) == 2, second_logs  # one dbt invocation per compute
    for log in second_logs:
        text = log.read_text(encoding="utf-8")
        assert "Unable to do partial parsing" not in text, f"{log} re-parsed the project"
