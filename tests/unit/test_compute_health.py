"""Compute health in Dagster: the ``floe_health`` job runs one ``connection`` check per compute."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from dagster import AssetCheckSeverity, AssetKey, DagsterInstance

from floe_dagster.dagster_stage.health import CHECK_NAME, HEALTH_GROUP, HEALTH_JOB
from floe_dagster.dagster_stage.resources import ComputeResource
from tests.fixtures.manifests import health_definitions

CANARY = "CANARY-health-3b9f"


def run_health(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Any, dict[str, Any], int, Any]:
    monkeypatch.setenv("FLOE_HEALTH_PG_PASSWORD", CANARY)
    defs, port = health_definitions(tmp_path)
    instance = DagsterInstance.ephemeral()
    result = defs.resolve_job_def(HEALTH_JOB).execute_in_process(instance=instance)
    evaluations = {e.asset_key.path[-1]: e for e in result.get_asset_check_evaluations()}
    return result, evaluations, port, instance


def test_health_job_reports_each_compute_with_status_latency_and_message(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    result, evaluations, port, instance = run_health(tmp_path, monkeypatch)
    assert result.success  # a failed check is a result, not a crashed run
    assert set(evaluations) == {"fast", "warehouse"}

    ok = evaluations["fast"]
    assert ok.passed and ok.check_name == CHECK_NAME
    assert ok.asset_key == AssetKey(["floe_compute", "fast"])
    assert ok.metadata["status"].value == "ok"
    assert ok.metadata["latency_ms"].value > 0
    assert ok.metadata["message"].value.startswith("compute 'fast' (duckdb): ")

    failed = evaluations["warehouse"]
    assert not failed.passed
    assert failed.severity == AssetCheckSeverity.ERROR
    assert failed.metadata["status"].value == "failed"
    message = failed.metadata["message"].value
    assert message.startswith("compute 'warehouse' (postgres): ")
    assert f"127.0.0.1:{port}" in message and "refused" in message.lower()
    assert failed.description == message

    records = instance.get_records_for_run(result.run_id).records
    events = "\n".join(json.dumps(r.event_log_entry.to_json()) for r in records)
    assert "warehouse" in events and CANARY not in events


def test_compute_assets_stand_apart_from_the_materialised_ones(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FLOE_HEALTH_PG_PASSWORD", CANARY)
    defs, _ = health_definitions(tmp_path)
    graph = defs.resolve_asset_graph()
    keys = {AssetKey(["floe_compute", "fast"]), AssetKey(["floe_compute", "warehouse"])}
    for key in keys:
        node = graph.get(key)
        assert node.group_name == HEALTH_GROUP
        assert not node.is_materializable  # it stands for the engine; "Materialize all" skips it
    assert graph.get(AssetKey(["floe_compute", "warehouse"])).kinds == {"postgres"}


def test_a_compute_whose_plugin_cannot_be_built_is_a_failed_check(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The manifest loads when the definitions are built, but the step's resource reloads it: an
    ``${env:...}`` unset by then is a failed check naming the variable, not a crashed step."""
    monkeypatch.setenv("FLOE_HEALTH_PG_PASSWORD", CANARY)
    defs, _ = health_definitions(tmp_path)
    monkeypatch.delenv("FLOE_HEALTH_PG_PASSWORD")
    result = defs.resolve_job_def(HEALTH_JOB).execute_in_process(instance=DagsterInstance.ephemeral())
    assert result.success
    evaluations = {e.asset_key.path[-1]: e for e in result.get_asset_check_evaluations()}
    failed = evaluations["warehouse"]
    assert not failed.passed
    message = failed.metadata["message"].value
    assert message.startswith("compute 'warehouse' (postgres): ")
    assert "environment variable FLOE_HEALTH_PG_PASSWORD is not set" in message
    correlation_id = failed.metadata["correlation_id"].value
    assert re.fullmatch(r"[0-9a-f]{12}", correlation_id)
    assert message.endswith(f"(correlation id {correlation_id})")
    # the same check, called directly: the one validate() behind `floe health` and the asset check
    resource = ComputeResource(
        manifest_path=str(tmp_path / "manifest.yaml"),
        environment="dev",
        name="warehouse",
        plugin_type="postgres",
    )
    direct = resource.validate()
    assert not direct.ok and "FLOE_HEALTH_PG_PASSWORD is not set" in direct.message
    assert direct.correlation_id != correlation_id  # one id per failure
