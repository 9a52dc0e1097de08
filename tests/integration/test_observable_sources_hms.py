"""The generic sources/state/sensor path on a real Hive Metastore (the HMS connector)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from dagster import AssetKey

from floe_dagster.cli import main
from floe_dagster.dagster_stage.sensors import decode_cursor, encode_cursor, observe_changes
from floe_dagster.dagster_stage.sources import observable_sources
from floe_dagster.manifest.loader import load_manifest
from floe_dagster.metastores.state import write_state
from floe_dagster.plan.builders import build_metastore, table_filter
from tests.fixtures.hive_metastore import SeededMetastore
from tests.helpers import copy_demo_project

pytestmark = pytest.mark.server


def test_hms_tables_become_sources_from_state_and_the_sensor_reports_only_changes(
    seeded_hive_metastore: SeededMetastore, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    seeded = seeded_hive_metastore
    root = copy_demo_project(tmp_path / "project")
    manifest = root / "manifests" / "manifest.yaml"
    legacy = (
        "metastores:\n  legacy:\n    type: hive\n"
        f'    config: {{uri: "{seeded.metastore.uri}"}}\n    include: ["{seeded.db}.*"]\n'
    )
    manifest.write_text(manifest.read_text().replace("metastores:\n", legacy, 1))
    loaded = load_manifest(manifest)

    result = write_state(loaded, metastores=["legacy"])
    assert result.failed == {}
    records = {r["name"]: r for r in result.state.tables("legacy")}
    assert seeded.partitioned in records
    events = records[seeded.partitioned]
    assert events["partition_count"] == seeded.partition_count
    assert [name for name, _ in events["partition_keys"]] == ["ds", "bucket"]
    assert events["last_ddl_time"] and events["format"] == "parquet"

    assets = observable_sources(loaded, "legacy", result.state.tables("legacy"))
    assert assets is not None
    key = AssetKey(["legacy", seeded.db, seeded.partitioned])
    assert assets.specs_by_key[key].metadata["floe/partition_count"] == seeded.partition_count

    connector = build_metastore(loaded, "legacy")
    first = observe_changes(connector, table_filter(loaded, "legacy"), 100, "legacy", {}, assets.keys)
    assert {e.asset_key for e in first.events} == set(assets.keys)
    # each observation says what the metastore says now: partition count, location, format, DDL time
    observed = {e.asset_key: e.metadata for e in first.events}
    assert observed[key]["floe/partition_count"].value == seeded.partition_count
    assert observed[AssetKey(["legacy", seeded.db, "people_csv"])]["floe/partition_count"].value == 0
    assert str(observed[key]["floe/location"].value).endswith(f"{seeded.db}.db/events")
    assert observed[key]["floe/format"].value == "parquet" and "floe/last_ddl_time" in observed[key]
    cursor = encode_cursor(first.versions)
    second = observe_changes(
        connector, table_filter(loaded, "legacy"), 100, "legacy", decode_cursor(cursor), assets.keys
    )
    assert second.events == [] and second.versions == first.versions

    assert main(["observe", str(manifest), "--metastore", "legacy", "--format", "json"]) == 0
    observed = json.loads(capsys.readouterr().out)
    assert f"legacy/{seeded.db}/{seeded.partitioned}" in {o["key"] for o in observed}
    assert len(observed) == len(records)
