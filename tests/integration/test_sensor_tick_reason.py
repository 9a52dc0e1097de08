"""The observation sensor's tick says what it did: Dagster records a tick without a run request as
skipped, and without a reason its daemon logs "Sensor function returned an empty result" even
after the tick recorded observations."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from dagster import build_sensor_context, instance_for_test

from floe_dagster import build_definitions, load_manifest
from floe_dagster.dagster_stage.sensors import sensor_name
from floe_dagster.demo import seed_demo
from floe_dagster.manifest.loader import LoadedManifest
from floe_dagster.transforms.profiles import write_profiles
from tests.helpers import copy_demo_project

EMPTY = "Sensor function returned an empty result"


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


def test_a_tick_that_records_observations_says_so_and_a_quiet_tick_says_nothing_changed(
    seeded: LoadedManifest,
) -> None:
    defs = build_definitions(seeded.path)
    sensor = defs.resolve_sensor_def(sensor_name("lakehouse"))
    resources = {"metastore_lakehouse": defs.resources["metastore_lakehouse"]}  # type: ignore[index]
    with instance_for_test() as instance:
        first = sensor.evaluate_tick(build_sensor_context(instance=instance, resources=resources))
        assert len(first.asset_events) == 3 and first.run_requests == []
        assert first.skip_message == (
            "recorded 3 observation(s): 3 of 3 table(s) of metastore 'lakehouse' changed data version"
            " (observations launch no run)"
        )
        second = sensor.evaluate_tick(
            build_sensor_context(instance=instance, cursor=first.cursor, resources=resources)
        )
        assert second.asset_events == []
        assert second.skip_message == "none of the 3 table(s) of metastore 'lakehouse' changed data version"
        assert EMPTY not in {first.skip_message, second.skip_message}
