"""Observable sources from defs state, the observation sensor, and an unreachable metastore.

The metastore is the demo's Iceberg catalog (SQLite); "unreachable" is its database file
replaced by a folder, which SQLite cannot open (a retryable CatalogUnavailableError).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from dagster import AssetKey, DagsterInstance, build_sensor_context, instance_for_test
from dagster._core.definitions.data_version import DATA_VERSION_TAG, extract_data_version_from_entry

from floe_dagster import build_definitions, load_manifest
from floe_dagster.dagster_stage.definitions import OBSERVE_JOB
from floe_dagster.dagster_stage.sensors import decode_cursor, sensor_name
from floe_dagster.demo import demo_tables, seed_demo
from floe_dagster.manifest.loader import LoadedManifest
from floe_dagster.metastores import state as state_module
from floe_dagster.metastores.state import default_state_path, read_state, write_state
from floe_dagster.plan.builders import build_catalog
from floe_dagster.transforms.profiles import write_profiles
from tests.helpers import copy_demo_project

RAW = ("customers", "orders", "payments")
RAW_KEYS = [AssetKey(["lakehouse", "raw", t]) for t in RAW]
ORDERS = AssetKey(["lakehouse", "raw", "orders"])


@pytest.fixture(scope="module")
def seeded(parsed_demo: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LoadedManifest]:
    """One seeded copy of the demo for the module (dbt parses once); each test tolerates the others."""
    root = copy_demo_project(tmp_path_factory.mktemp("sources") / "project", parsed_from=parsed_demo)
    with pytest.MonkeyPatch.context() as env:
        for name in ("FLOE_STATE_DIR", "FLOE_MANIFEST", "FLOE_ENV"):
            env.delenv(name, raising=False)
        loaded = load_manifest(root / "manifests" / "manifest.yaml")
        # the copied dbt manifest is current: keep the new profiles.yml from making it look stale
        write_profiles(loaded)
        (root / "dbt_project" / "target" / "manifest.json").touch()
        seed_demo(loaded)
        yield loaded


@contextmanager
def metastore_down(loaded: LoadedManifest) -> Iterator[None]:
    """The catalog database cannot be opened while inside (a folder stands where the file was)."""
    database = loaded.state_dir / "catalog.db"
    aside = database.with_name("catalog.db.away")
    database.rename(aside)
    database.mkdir()
    try:
        yield
    finally:
        shutil.rmtree(database)
        aside.rename(database)


def latest_version(instance: DagsterInstance, key: AssetKey) -> str | None:
    record = instance.get_latest_data_version_record(key, is_source=True)
    version = extract_data_version_from_entry(record.event_log_entry) if record else None
    return version.value if version else None


def test_state_holds_what_specs_need_and_definitions_load_without_the_metastore(
    seeded: LoadedManifest, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = write_state(seeded)
    assert result.failed == {} and result.path == default_state_path(seeded)
    assert result.path.parts[-3:-1] == ("defs_state", "FloeSources__jaffle-lakehouse__dev__")
    state = read_state(result.path)
    assert state is not None
    orders = next(t for t in state.tables("lakehouse") if t["name"] == "orders")
    assert orders["format"] == "iceberg" and orders["location"].endswith("/raw/orders")
    assert [c[0] for c in orders["columns"]] == ["id", "customer_id", "order_date", "status"]
    assert orders["partition_count"] == 0 and orders["last_ddl_time"]

    def no_metastore_calls(*args: object, **kwargs: object) -> None:
        raise AssertionError("loading definitions from state must not call the metastore")

    monkeypatch.setattr(state_module, "build_metastore", no_metastore_calls)
    with metastore_down(seeded):
        defs = build_definitions(seeded.path)
    graph = defs.resolve_asset_graph()
    metadata = graph.get(ORDERS).metadata
    # the full column schema comes with the observation, not the definition (see the next test)
    assert "dagster/column_schema" not in metadata
    assert metadata["floe/format"] == "iceberg"
    assert metadata["floe/partition_count"] == 0
    assert metadata["floe/last_ddl_time"].value == pytest.approx(orders["last_ddl_time"])
    assert str(metadata["floe/location"].value).endswith("/raw/orders")
    # the dbt source of raw.orders is linked to the source asset
    assert ORDERS in graph.get(AssetKey(["staging", "stg_orders"])).parent_keys
    assert defs.resolve_sensor_def(sensor_name("lakehouse")).minimum_interval_seconds == 300


def latest_observation_metadata(instance: DagsterInstance, key: AssetKey) -> dict[str, object]:
    record = instance.get_latest_data_version_record(key, is_source=True)
    assert record is not None
    observation = record.event_log_entry.asset_observation
    assert observation is not None
    return dict(observation.metadata)


def test_column_schema_arrives_with_the_observation(seeded: LoadedManifest) -> None:
    """The definition leaves the column schema out; the observe job and the sensor's
    observations carry it (the UI shows the latest observation's columns)."""
    write_state(seeded)
    defs = build_definitions(seeded.path)
    assert all("dagster/column_schema" not in defs.resolve_asset_graph().get(k).metadata for k in RAW_KEYS)
    expected = ["id", "customer_id", "order_date", "status"]
    with instance_for_test() as instance:
        assert defs.resolve_job_def(OBSERVE_JOB).execute_in_process(instance=instance).success
        schema = latest_observation_metadata(instance, ORDERS)["dagster/column_schema"]
        assert [c.name for c in schema.schema.columns] == expected  # type: ignore[attr-defined]

    sensor = defs.resolve_sensor_def(sensor_name("lakehouse"))
    resources = {"metastore_lakehouse": defs.resources["metastore_lakehouse"]}  # type: ignore[index]
    with instance_for_test() as instance:
        context = build_sensor_context(instance=instance, cursor=None, resources=resources)
        events = {e.asset_key: e for e in sensor.evaluate_tick(context).asset_events}
        schema = events[ORDERS].metadata["dagster/column_schema"]
        assert [c.name for c in schema.schema.columns] == expected  # type: ignore[attr-defined]


def test_unreachable_metastore_fails_the_observation_retryably_then_recovers(
    seeded: LoadedManifest,
) -> None:
    write_state(seeded)
    with instance_for_test() as instance:
        with metastore_down(seeded):
            defs = build_definitions(seeded.path)  # the code location stays up
            observe = defs.resolve_job_def(OBSERVE_JOB)
            failed = observe.execute_in_process(instance=instance, raise_on_error=False)
        assert not failed.success
        failure = next(e for e in failed.all_events if e.is_step_failure)
        message = failure.step_failure_data.error.message  # type: ignore[union-attr]
        assert "metastore 'lakehouse' could not be observed" in message
        assert "retryable: yes" in message
        user_failure = failure.step_failure_data.user_failure_data  # type: ignore[union-attr]
        assert user_failure is not None and user_failure.metadata["retryable"].value is True
        assert all(latest_version(instance, key) is None for key in RAW_KEYS)

        # the metastore is back: the next observation records every version
        assert observe.execute_in_process(instance=instance).success
        assert all(latest_version(instance, key) for key in RAW_KEYS)


def test_sensor_reports_only_changed_versions_without_runs(seeded: LoadedManifest) -> None:
    defs = build_definitions(seeded.path)
    sensor = defs.resolve_sensor_def(sensor_name("lakehouse"))
    resources = {"metastore_lakehouse": defs.resources["metastore_lakehouse"]}  # type: ignore[index]

    with instance_for_test() as instance:

        def tick(cursor: str | None) -> tuple[list[AssetKey], str | None]:
            context = build_sensor_context(instance=instance, cursor=cursor, resources=resources)
            data = sensor.evaluate_tick(context)
            assert data.run_requests == []
            for event in data.asset_events:  # what the sensor daemon does with them
                instance.report_runless_asset_event(event)
            return sorted(e.asset_key for e in data.asset_events), data.cursor

        first, cursor = tick(None)
        assert first == sorted(RAW_KEYS)
        assert set(decode_cursor(cursor)) == {f"raw.{t}" for t in RAW}
        before = latest_version(instance, ORDERS)
        assert before is not None

        second, cursor = tick(cursor)
        assert second == []

        build_catalog(seeded, "lakehouse").load_table(("raw", "orders")).append(
            demo_tables()["orders"].slice(0, 5)
        )
        third, cursor = tick(cursor)
        assert third == [ORDERS]
        after = latest_version(instance, ORDERS)
        assert after is not None and after != before
        record = instance.get_latest_data_version_record(ORDERS, is_source=True)
        assert record is not None and record.event_log_entry.tags[DATA_VERSION_TAG] == after
        assert instance.get_runs() == []

        # metastore down: the tick fails clearly and keeps no new cursor; then it recovers
        with metastore_down(seeded), pytest.raises(Exception, match=r"could not be observed.*retryable: yes"):
            tick(cursor)
        assert tick(cursor)[0] == []


def test_a_changed_metastore_entry_is_listed_again_on_load(seeded: LoadedManifest) -> None:
    path = default_state_path(seeded)
    write_state(seeded)
    state = read_state(path)
    assert state is not None
    state.metastores["lakehouse"].fingerprint = "outdated"
    state.metastores["lakehouse"].tables = []
    state_module.save_state(state, path)

    defs = build_definitions(seeded.path)
    assert defs.resolve_asset_graph().get(ORDERS).metadata["floe/format"] == "iceberg"
    refreshed = read_state(path)
    assert refreshed is not None and len(refreshed.tables("lakehouse")) == 3
    orders = next(t for t in refreshed.tables("lakehouse") if t["name"] == "orders")
    assert len(orders["columns"]) == 4


def test_list_missing_false_never_calls_the_metastore(
    seeded: LoadedManifest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_metastore_calls(*args: object, **kwargs: object) -> None:
        raise AssertionError("list_missing=False must not call the metastore")

    monkeypatch.setattr(state_module, "build_metastore", no_metastore_calls)
    state = state_module.load_sources_state(seeded, tmp_path / "none" / "state", list_missing=False)
    assert state.tables("lakehouse") == []
    assert not (tmp_path / "none").exists()


def test_mapped_asset_keys_reach_the_sources_the_dbt_links_the_observations_and_the_sensor(
    seeded: LoadedManifest,
) -> None:
    """``asset_key_prefix`` and ``asset_keys``: the source assets, the dbt source they link to,
    observations and sensor events all use the mapped keys; nothing keeps the default key."""
    text = seeded.path.read_text().replace("name: jaffle-lakehouse", "name: mapped-sources")
    text = text.replace(
        '    include: ["raw.*"]\n',
        '    include: ["raw.*"]\n    asset_key_prefix: [shop]\n'
        "    asset_keys: {raw.orders: finance/orders}\n",
    )
    manifest = seeded.path.with_name("mapped.yaml")
    manifest.write_text(text)
    write_profiles(load_manifest(manifest))  # the profile names this manifest: keep dbt's parse current
    (seeded.dbt_project_dir / "target" / "manifest.json").touch()

    defs = build_definitions(manifest)
    graph = defs.resolve_asset_graph()
    orders, customers = AssetKey(["finance", "orders"]), AssetKey(["shop", "raw", "customers"])
    source_keys = {k for k in graph.get_all_asset_keys() if graph.get(k).is_observable}
    assert source_keys == {orders, customers, AssetKey(["shop", "raw", "payments"])}
    assert orders in graph.get(AssetKey(["staging", "stg_orders"])).parent_keys
    assert customers in graph.get(AssetKey(["staging", "stg_customers"])).parent_keys
    assert graph.get(orders).metadata["floe/table"] == "raw.orders"

    with instance_for_test() as instance:
        assert defs.resolve_job_def(OBSERVE_JOB).execute_in_process(instance=instance).success
        assert latest_version(instance, orders) and latest_version(instance, customers)
        assert latest_version(instance, ORDERS) is None
        sensor = defs.resolve_sensor_def(sensor_name("lakehouse"))
        resources = {"metastore_lakehouse": defs.resources["metastore_lakehouse"]}  # type: ignore[index]
        data = sensor.evaluate_tick(build_sensor_context(instance=instance, resources=resources))
        assert sorted(e.asset_key for e in data.asset_events) == sorted(source_keys)


def test_a_metastore_with_no_table_yet_has_a_sensor_whose_tick_fills_the_state(
    seeded: LoadedManifest,
) -> None:
    """No table listed and no dbt source: no asset, but the sensor runs, and what its tick lists
    becomes source assets at the next load (without `floe refresh`)."""
    text = seeded.path.read_text().replace("name: jaffle-lakehouse", "name: later-tables")
    text = text.replace(
        "metastores:\n",
        "metastores:\n  later:\n    type: iceberg\n    config: {catalog: lakehouse}\n"
        '    include: ["later.*"]\n',
    )
    manifest = seeded.path.with_name("later.yaml")
    manifest.write_text(text)
    loaded = load_manifest(manifest)
    write_profiles(loaded)  # the profile names this manifest: keep dbt's parse current
    (seeded.dbt_project_dir / "target" / "manifest.json").touch()

    defs = build_definitions(manifest)
    assert not [k for k in defs.resolve_asset_graph().get_all_asset_keys() if k.path[0] == "later"]
    sensor = defs.resolve_sensor_def(sensor_name("later"))

    catalog = build_catalog(loaded, "lakehouse")
    catalog.create_namespace(("later",))
    catalog.create_table(("later", "events"), demo_tables()["orders"].schema)
    resources = {"metastore_later": defs.resources["metastore_later"]}  # type: ignore[index]
    with instance_for_test() as instance:
        data = sensor.evaluate_tick(build_sensor_context(instance=instance, resources=resources))
    assert data.asset_events == [] and data.run_requests == []  # not an asset yet: nothing to record

    state = read_state(default_state_path(loaded))
    assert state is not None and [r["name"] for r in state.tables("later")] == ["events"]
    graph = build_definitions(manifest).resolve_asset_graph()
    assert graph.get(AssetKey(["later", "later", "events"])).is_observable
