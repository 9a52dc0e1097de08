"""A metastore whose tables dbt reads only in part: the tables the models read are observed by a
multi-asset of their own, so the models' job (``floe_main``) carries them whole instead of
cutting the metastore's one multi-asset of every table in two at every load (issue 15,
benchmarks/load_scale.py). Observing stays one job, one sensor, the same keys and versions.

Real Dagster definitions over the demo (its SQLite-backed Iceberg catalog) with one more table in
``raw`` that no dbt model reads.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pytest
from dagster import AssetKey, Definitions, build_sensor_context, instance_for_test

from floe_dagster import load_manifest
from floe_dagster.dagster_stage.definitions import MAIN_JOB, OBSERVE_JOB, definitions_from_plan
from floe_dagster.dagster_stage.sensors import sensor_name
from floe_dagster.demo import seed_demo
from floe_dagster.manifest.loader import LoadedManifest
from floe_dagster.metastores.state import write_state
from floe_dagster.plan.builders import build_catalog
from floe_dagster.plan.compile import compile_plan
from floe_dagster.plan.dbt_project import read_dbt_manifest
from floe_dagster.transforms.profiles import write_profiles
from tests.helpers import copy_demo_project

READ = {AssetKey(["lakehouse", "raw", t]) for t in ("customers", "orders", "payments")}
UNREAD = AssetKey(["lakehouse", "raw", "refunds"])


@pytest.fixture(scope="module")
def loaded(parsed_demo: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LoadedManifest]:
    root = copy_demo_project(tmp_path_factory.mktemp("split") / "project", parsed_from=parsed_demo)
    with pytest.MonkeyPatch.context() as env:
        for name in ("FLOE_STATE_DIR", "FLOE_MANIFEST", "FLOE_ENV"):
            env.delenv(name, raising=False)
        env.setenv("DAGSTER_HOME", str(tmp_path_factory.mktemp("dagster_home")))
        loaded = load_manifest(root / "manifests" / "manifest.yaml")
        write_profiles(loaded)
        (root / "dbt_project" / "target" / "manifest.json").touch()
        seed_demo(loaded)
        refunds = pa.table({"id": [1, 2], "amount": [5, 7]})
        catalog = build_catalog(loaded, loaded.manifest.transforms.catalog or "lakehouse")
        catalog.create_table(("raw", "refunds"), schema=refunds.schema).append(refunds)
        yield loaded


def definitions(loaded: LoadedManifest) -> Definitions:
    state = write_state(loaded, metastores=["lakehouse"]).state
    dbt_manifest = read_dbt_manifest(loaded)
    assert dbt_manifest is not None
    return definitions_from_plan(compile_plan(loaded, dbt_manifest), dbt_manifest, state)


def test_the_tables_dbt_reads_are_observed_apart_and_observing_is_one_job(loaded: LoadedManifest) -> None:
    defs = definitions(loaded)
    graph = defs.resolve_asset_graph()
    observable = {
        assets_def.node_def.name: set(assets_def.keys)
        for assets_def in graph.assets_defs
        if assets_def.is_observable
    }
    assert observable == {"observe_lakehouse": {UNREAD}, "observe_lakehouse_dbt_sources": READ}

    # the models' job holds the tables they read as one whole definition, and none of the rest
    job_graph = defs.resolve_job_def(MAIN_JOB).asset_layer.asset_graph
    assert [set(a.keys) for a in job_graph.assets_defs if a.keys & {*READ, UNREAD}] == [READ]

    # one job and one sensor observe every table, read or not
    with instance_for_test() as instance:
        result = defs.resolve_job_def(OBSERVE_JOB).execute_in_process(instance=instance)
        assert result.success
        assert {e.asset_key for e in result.get_asset_observation_events()} == {*READ, UNREAD}
        sensor = defs.resolve_sensor_def(sensor_name("lakehouse"))
        resources = {"metastore_lakehouse": defs.resources["metastore_lakehouse"]}  # type: ignore[index]
        tick = sensor.evaluate_tick(build_sensor_context(instance=instance, resources=resources))
        assert {e.asset_key for e in tick.asset_events} == {*READ, UNREAD}
