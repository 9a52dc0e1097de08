"""The source translator (floe_dagster.FloeSourceTranslator): every source asset's spec comes from
it, and every other part of the definitions follows the keys it gives.

Real Dagster definitions over the demo (its SQLite-backed Iceberg catalog, seeded once), plus an
S3 metastore with ingest whose one table is written into the defs state by hand (building the
definitions never calls a metastore).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from dagster import AssetKey, AssetSpec, Definitions, build_sensor_context, instance_for_test

from floe_dagster import FloeSourceTranslator, SourceTable, build_definitions, load_manifest
from floe_dagster.core.errors import ConfigurationError
from floe_dagster.dagster_stage.definitions import OBSERVE_JOB, definitions_from_plan
from floe_dagster.dagster_stage.sensors import sensor_name
from floe_dagster.demo import seed_demo
from floe_dagster.manifest.loader import LoadedManifest
from floe_dagster.metastores.state import MetastoreState, TableRecord, write_state
from floe_dagster.plan.compile import compile_plan
from floe_dagster.plan.dbt_project import read_dbt_manifest
from floe_dagster.transforms.profiles import write_profiles
from tests.helpers import bronze_translator, copy_demo_project

RAW = ("customers", "orders", "payments")
LANDING = """  landing:
    type: s3
    config:
      bucket: landing-bucket
      region: us-east-1
      endpoint: http://127.0.0.1:9
      namespace: landing_zone
      ingest: {enabled: true, namespace: raw_s3}
"""
FRESHNESS = "    freshness: {fail_after: 36h}\n"
EVENTS: TableRecord = {
    "namespace": "landing_zone",
    "name": "events",
    "format": "parquet",
    "location": "s3://landing-bucket/events/",
    "columns": [["id", "bigint", None]],
    "partition_keys": [],
    "partition_count": None,
    "last_ddl_time": None,
    "table_type": "EXTERNAL_TABLE",
}


@pytest.fixture(scope="module")
def seeded(parsed_demo: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LoadedManifest]:
    """The demo with a freshness window on its metastore and an S3 metastore that ingests."""
    root = copy_demo_project(tmp_path_factory.mktemp("translator") / "project", parsed_from=parsed_demo)
    manifest = root / "manifests" / "manifest.yaml"
    text = manifest.read_text().replace('    include: ["raw.*"]\n', '    include: ["raw.*"]\n' + FRESHNESS)
    manifest.write_text(text.replace("\ntransforms:", LANDING + "\ntransforms:"))
    with pytest.MonkeyPatch.context() as env:
        for name in ("FLOE_STATE_DIR", "FLOE_MANIFEST", "FLOE_ENV"):
            env.delenv(name, raising=False)
        env.setenv("DAGSTER_HOME", str(tmp_path_factory.mktemp("dagster_home")))
        loaded = load_manifest(manifest)
        write_profiles(loaded)  # keep the copied dbt manifest current (no dbt parse)
        (root / "dbt_project" / "target" / "manifest.json").touch()
        seed_demo(loaded)
        yield loaded


def definitions(loaded: LoadedManifest, translator: FloeSourceTranslator | None = None) -> Definitions:
    """The definitions of ``loaded``: the demo catalog listed, the S3 metastore's table by hand."""
    state = write_state(loaded, metastores=["lakehouse"]).state
    state.metastores["landing"] = MetastoreState(type="s3", fingerprint="", refreshed_at=0.0, tables=[EVENTS])
    dbt_manifest = read_dbt_manifest(loaded)
    assert dbt_manifest is not None
    plan = compile_plan(loaded, dbt_manifest)
    return definitions_from_plan(plan, dbt_manifest, state, translator=translator)


def test_a_translator_subclass_changes_keys_group_tags_metadata_and_description_everywhere(
    seeded: LoadedManifest,
) -> None:
    defs = definitions(seeded, bronze_translator()())
    graph = defs.resolve_asset_graph()
    bronze = {t: AssetKey(["bronze", "lakehouse", t]) for t in RAW}
    events = AssetKey(["bronze", "landing", "events"])

    # the source assets: every attribute the translator set, no default key left
    observable = {k for k in graph.get_all_asset_keys() if graph.get(k).is_observable}
    assert observable == {*bronze.values(), events}
    orders = graph.get(bronze["orders"])
    assert orders.group_name == "bronze"
    assert orders.tags["layer"] == "bronze"
    assert orders.description == "Bronze copy of raw.orders"
    assert orders.metadata["owner_team"] == "data-eng"
    assert orders.metadata["read_by_dbt"] == "source.floe_demo.raw.orders"  # what it was given
    assert orders.metadata["floe/table"] == "raw.orders"  # floe's own metadata kept (super())
    assert graph.get(events).metadata["read_by_dbt"] == "-"  # no dbt source reads it
    assert not [k for k in graph.get_all_asset_keys() if k.path[0] == "lakehouse" and k.path[1] == "raw"]

    # the dbt models depend on the translated keys
    for table in RAW:
        assert bronze[table] in graph.get(AssetKey(["staging", f"stg_{table}"])).parent_keys

    # the ingest asset depends on its table's translated key
    assert graph.get(AssetKey(["lakehouse", "raw_s3", "events"])).parent_keys == {events}

    # the freshness checks check the translated keys (the manifest's window, kept by super())
    checked = {
        spec.asset_key
        for checks in defs.asset_checks or []
        for spec in getattr(checks, "check_specs", [])
        if spec.name == "freshness_check"
    }
    assert checked == set(bronze.values())
    assert orders.freshness_policy is not None

    # the observation job and the sensor report the translated keys
    job = defs.resolve_job_def(OBSERVE_JOB)
    with instance_for_test() as instance:
        result = job.execute_in_process(instance=instance, asset_selection=list(bronze.values()))
        assert result.success
        assert {e.asset_key for e in result.get_asset_observation_events()} == set(bronze.values())
        sensor = defs.resolve_sensor_def(sensor_name("lakehouse"))
        resources = {"metastore_lakehouse": defs.resources["metastore_lakehouse"]}  # type: ignore[index]
        tick = sensor.evaluate_tick(build_sensor_context(instance=instance, resources=resources))
        assert {e.asset_key for e in tick.asset_events} == set(bronze.values())


def test_build_definitions_takes_a_translator_and_the_default_one_changes_nothing(
    seeded: LoadedManifest,
) -> None:
    def summary(defs: Definitions) -> dict[str, Any]:
        """Every source asset's spec as it is, every asset's upstream keys."""
        graph = defs.resolve_asset_graph()
        nodes = {key.to_user_string(): graph.get(key) for key in graph.get_all_asset_keys()}
        return {
            name: (
                sorted(node.parent_keys),
                node.is_observable
                and (
                    node.group_name,
                    sorted(node.kinds),
                    node.description,
                    dict(node.tags),
                    dict(node.metadata),
                    node.freshness_policy,
                ),
            )
            for name, node in nodes.items()
        }

    assert summary(definitions(seeded, FloeSourceTranslator())) == summary(definitions(seeded))
    defs = build_definitions(seeded.path, translator=bronze_translator()())
    assert AssetKey(["bronze", "lakehouse", "orders"]) in defs.resolve_asset_graph().get_all_asset_keys()


class OneKey(FloeSourceTranslator):
    """Gives every table of the demo's raw namespace the key ``raw/everything``."""

    def get_asset_key(self, table: SourceTable) -> AssetKey:
        return AssetKey(["raw", "everything"]) if table.namespace == "raw" else super().get_asset_key(table)


class StealsAModelKey(FloeSourceTranslator):
    def get_asset_key(self, table: SourceTable) -> AssetKey:
        if table.qualified_name == "raw.orders":
            return AssetKey(["staging", "stg_orders"])
        return super().get_asset_key(table)


class OtherMetastoresKey(FloeSourceTranslator):
    def get_asset_key(self, table: SourceTable) -> AssetKey:
        return AssetKey(["events"]) if table.name in ("events", "payments") else super().get_asset_key(table)


def test_a_key_given_twice_is_a_clear_error_naming_both_tables(seeded: LoadedManifest) -> None:
    with pytest.raises(ConfigurationError) as two_tables:
        definitions(seeded, OneKey())
    message = str(two_tables.value)
    assert "OneKey gives table raw.customers of metastore 'lakehouse'" in message
    assert "table raw.orders of metastore 'lakehouse' the same asset key raw/everything" in message
    assert "give each its own key" in message

    with pytest.raises(ConfigurationError) as across:
        definitions(seeded, OtherMetastoresKey())
    assert "table raw.payments of metastore 'lakehouse'" in str(across.value)
    assert "table landing_zone.events of metastore 'landing'" in str(across.value)

    with pytest.raises(ConfigurationError) as model:
        definitions(seeded, StealsAModelKey())
    assert "table raw.orders of metastore 'lakehouse' and dbt model model.floe_demo.stg_orders" in str(
        model.value
    )


def test_a_translator_must_return_an_asset_spec(seeded: LoadedManifest) -> None:
    class ReturnsAKey(FloeSourceTranslator):
        def get_asset_spec(self, table: SourceTable) -> AssetSpec:
            return self.get_asset_key(table)  # type: ignore[return-value]

    with pytest.raises(ConfigurationError, match="ReturnsAKey.get_asset_spec returned AssetKey for table"):
        definitions(seeded, ReturnsAKey())


def test_the_component_s_translator_and_source_translation_go_through_the_one_translator(
    seeded: LoadedManifest,
) -> None:
    """defs.yaml: ``translator`` (a dotted path) gives the source specs, ``source_translation``
    ({{ table }}) adjusts them, ``translation`` stays per dbt model; the models follow the keys."""
    from dagster.components.testing.utils import create_defs_folder_sandbox

    attributes = {
        "manifest": str(seeded.path),
        "name_scope": "none",
        "translator": "tests.helpers.BronzeTranslator",
        "source_translation": {"tags": {"namespace": "{{ table.namespace }}"}, "owners": ["team:ingest"]},
        "translation": {"key_prefix": "silver"},
    }
    with create_defs_folder_sandbox() as sandbox:
        folder = sandbox.defs_folder_path / "platform"
        folder.mkdir(parents=True)
        (folder / "defs.yaml").write_text(
            json.dumps({"type": "floe_dagster.FloeComponent", "attributes": attributes})
        )
        with sandbox.load_component_and_build_defs(defs_path=folder) as (_component, defs):
            graph = defs.resolve_asset_graph()
    orders = graph.get(AssetKey(["bronze", "lakehouse", "orders"]))  # a dbt source (no state yet)
    assert orders.is_observable and orders.group_name == "bronze"
    assert orders.tags["layer"] == "bronze" and orders.tags["namespace"] == "raw"
    assert orders.owners == ["team:ingest"]
    stg_orders = graph.get(AssetKey(["silver", "staging", "stg_orders"]))  # translation: models only
    assert stg_orders.parent_keys == {AssetKey(["bronze", "lakehouse", "orders"])}
    assert "team:ingest" not in stg_orders.owners


def test_the_component_says_when_its_translator_is_not_one(seeded: LoadedManifest) -> None:
    from floe_dagster import FloeComponent

    component = FloeComponent(manifest=str(seeded.path), translator="tests.helpers.copy_demo_project")
    with pytest.raises(ConfigurationError, match="translator 'tests.helpers.copy_demo_project' of the"):
        component.source_translator()
    component = FloeComponent(manifest=str(seeded.path), translator="no_such_module.Translator")
    with pytest.raises(ConfigurationError, match="ModuleNotFoundError"):
        component.source_translator()


def test_the_default_translator_on_a_table_of_its_own() -> None:
    """A SourceTable needs only where the table is; the default spec follows the manifest's key."""
    translator = FloeSourceTranslator()
    bare = translator.get_asset_spec(SourceTable("hms", "sales.eu", "orders", "hive"))
    assert bare.key == AssetKey(["hms", "sales", "eu", "orders"])
    assert bare.group_name == "hms" and set(bare.kinds) == {"hive"}
    mapped = SourceTable(
        "hms",
        "sales.eu",
        "orders",
        "hive",
        manifest_key=("finance", "orders"),
        record=EVENTS,
        metadata={"floe/table": "sales.eu.orders"},
    )
    spec = translator.get_asset_spec(mapped)
    assert spec.key == AssetKey(["finance", "orders"])
    assert set(spec.kinds) == {"hive", "parquet"}
    assert spec.description == "sales.eu.orders in metastore 'hms'"
    assert spec.metadata == {"floe/table": "sales.eu.orders"}
