"""The observation sensor of the embedded demo (an Iceberg metastore on a SQL catalog) observes
through its change feed when evaluated by Dagster: the cursor carries the feed's state, a quiet
tick loads no table, a commit is observed on the next tick, and ``change_feed.enabled: false``
goes back to full scans."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from dagster import build_sensor_context, instance_for_test

from floe_dagster import build_definitions, load_manifest
from floe_dagster.dagster_stage.sensors import decode_feed_state, sensor_name
from floe_dagster.demo import seed_demo
from floe_dagster.manifest.loader import LoadedManifest
from floe_dagster.plan.builders import build_catalog
from floe_dagster.transforms.profiles import write_profiles
from tests.helpers import copy_demo_project


@pytest.fixture
def seeded(parsed_demo: Path, tmp_path: Path) -> Iterator[LoadedManifest]:
    root = copy_demo_project(tmp_path / "project", parsed_from=parsed_demo)
    with pytest.MonkeyPatch.context() as env:
        for name in ("FLOE_STATE_DIR", "FLOE_MANIFEST", "FLOE_ENV"):
            env.delenv(name, raising=False)
        loaded = load_manifest(root / "manifests" / "manifest.yaml")
        write_profiles(loaded)
        (root / "dbt_project" / "target" / "manifest.json").touch()
        seed_demo(loaded)
        yield loaded


def _tick(defs: Any, instance: Any, cursor: str | None) -> Any:
    sensor = defs.resolve_sensor_def(sensor_name("lakehouse"))
    resources = {"metastore_lakehouse": defs.resources["metastore_lakehouse"]}
    return sensor.evaluate_tick(build_sensor_context(instance=instance, cursor=cursor, resources=resources))


def test_the_sensor_observes_through_the_feed_and_a_commit_is_seen_on_the_next_tick(
    seeded: LoadedManifest,
) -> None:
    defs = build_definitions(seeded.path)
    with instance_for_test() as instance:
        first = _tick(defs, instance, None)
        assert len(first.asset_events) == 3
        state = decode_feed_state(first.cursor)
        assert state.position and state.reconciled_at  # the metadata locations, read before the scan
        quiet = _tick(defs, instance, first.cursor)
        assert quiet.asset_events == []
        assert decode_feed_state(quiet.cursor).reconciled_at == state.reconciled_at  # no scan since

        catalog = build_catalog(seeded, "lakehouse")
        identifier = next(i for i in catalog.list_tables(("raw",)))
        table = catalog.load_table(identifier)
        table.append(table.scan().to_arrow().slice(0, 1))
        changed = _tick(defs, instance, quiet.cursor)
        assert [e.asset_key.path[-1] for e in changed.asset_events] == [identifier[-1]]
        assert changed.asset_events[0].tags["dagster/data_version"] == str(
            table.refresh().current_snapshot().snapshot_id
        )


def test_change_feed_disabled_scans_every_tick(seeded: LoadedManifest) -> None:
    text = seeded.path.read_text()
    anchor = '    include: ["raw.*"]\n'
    assert anchor in text
    seeded.path.write_text(text.replace(anchor, anchor + "    change_feed: {enabled: false}\n", 1))
    assert not load_manifest(seeded.path).manifest.metastores["lakehouse"].change_feed.enabled
    defs = build_definitions(seeded.path)
    with instance_for_test() as instance:
        first = _tick(defs, instance, None)
        second = _tick(defs, instance, first.cursor)
        assert second.asset_events == []
        assert json.loads(second.cursor)["f"] == {"p": None, "r": None}
