"""Freshness from the manifest: durations, where policies land, the source checks, bad input."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from dagster import AssetKey, FreshnessPolicy

from floe_dagster import build_definitions, load_manifest
from floe_dagster.dagster_stage.freshness import FRESHNESS_SENSOR, parse_duration, source_window
from floe_dagster.manifest.errors import ManifestError

RAW = [AssetKey(["lakehouse", "raw", t]) for t in ("customers", "orders", "payments")]
MARTS = [AssetKey(["marts", "customers"]), AssetKey(["marts", "orders"])]
STAGING = [AssetKey(["staging", f"stg_{t}"]) for t in ("customers", "orders", "payments")]

FRESHNESS = """    freshness:
      fail_after: 36h
      warn_after: 1d
      namespaces:
        "sales_*": {fail_after: 2h}
"""
TRANSFORMS = """  freshness:
    - select: "tag:marts"
      fail_after: 1d12h
"""


def with_freshness(manifest: Path, metastore: str = FRESHNESS, transforms: str = TRANSFORMS) -> None:
    text = manifest.read_text()
    text = text.replace('    include: ["raw.*"]\n', '    include: ["raw.*"]\n' + metastore, 1)
    text = text.replace(
        "  catalog: lakehouse\n  assignments:", f"  catalog: lakehouse\n{transforms}  assignments:"
    )
    manifest.write_text(text)


def test_durations() -> None:
    assert parse_duration("36h") == timedelta(hours=36)
    assert parse_duration("1d12h") == timedelta(hours=36)
    assert parse_duration("90m") == timedelta(minutes=90)
    assert parse_duration("1w") == timedelta(days=7)
    for bad in ("36", "36 hours", "h", "", "0h", "-1h"):
        with pytest.raises(ValueError):
            parse_duration(bad)


def test_policies_land_on_the_right_assets(demo_project: Path) -> None:
    manifest = demo_project / "manifests" / "manifest.yaml"
    with_freshness(manifest)
    loaded = load_manifest(manifest)
    assert source_window(loaded, "lakehouse", "raw") == (timedelta(hours=36), timedelta(days=1))
    assert source_window(loaded, "lakehouse", "sales_eu") == (timedelta(hours=2), None)

    defs = build_definitions(manifest)
    graph = defs.resolve_asset_graph()
    sources = FreshnessPolicy.time_window(fail_window=timedelta(hours=36), warn_window=timedelta(days=1))
    marts = FreshnessPolicy.time_window(fail_window=timedelta(hours=36))
    for key in RAW:
        assert graph.get(key).freshness_policy == sources, key
    for key in MARTS:
        assert graph.get(key).freshness_policy == marts, key
    for key in STAGING:
        assert graph.get(key).freshness_policy is None, key

    # the tables are observed, not materialised: a last-update check per table reads the
    # table's own commit time from the observation, evaluated by one sensor
    checked = {check.asset_key for check in graph.asset_check_keys if check.name == "freshness_check"}
    assert checked == set(RAW)
    assert defs.resolve_sensor_def(FRESHNESS_SENSOR) is not None


@pytest.mark.parametrize(
    ("snippet", "where", "message"),
    [
        ("    freshness:\n      fail_after: 36 hours\n", "fail_after", "'36 hours' is not a duration"),
        ("    freshness:\n      fail_after: 1h\n      warn_after: 2h\n", "fail_after", "must be shorter"),
    ],
)
def test_a_bad_duration_is_a_manifest_error_with_its_position(
    tmp_path: Path, parsed_demo: Path, snippet: str, where: str, message: str
) -> None:
    import shutil

    shutil.copytree(parsed_demo / "manifests", tmp_path / "manifests")
    manifest = tmp_path / "manifests" / "manifest.yaml"
    with_freshness(manifest, snippet, "")
    with pytest.raises(ManifestError) as caught:
        load_manifest(manifest)
    text = str(caught.value)
    line = next(
        n for n, row in enumerate(manifest.read_text().splitlines(), 1) if row.strip().startswith(where)
    )
    assert f"manifest.yaml:{line}:" in text, text
    assert message in text, text


def test_a_table_in_a_matching_namespace_gets_the_namespaces_window(demo_project: Path) -> None:
    import pyarrow as pa

    from floe_dagster.demo import seed_demo
    from floe_dagster.plan.builders import build_catalog

    manifest = demo_project / "manifests" / "manifest.yaml"
    with_freshness(manifest, transforms="")
    text = manifest.read_text()
    manifest.write_text(text.replace('include: ["raw.*"]', 'include: ["raw.*", "sales_eu.*", "finance.*"]'))
    loaded = load_manifest(manifest)
    seed_demo(loaded)
    catalog = build_catalog(loaded, "lakehouse")
    for namespace in ("sales_eu", "finance"):  # "sales_*" matches the first only
        catalog.create_namespace((namespace,))
        catalog.create_table((namespace, "orders"), pa.schema([("id", pa.int64())]))

    defs = build_definitions(manifest)
    graph = defs.resolve_asset_graph()
    sales = AssetKey(["lakehouse", "sales_eu", "orders"])
    finance = AssetKey(["lakehouse", "finance", "orders"])
    assert graph.get(sales).freshness_policy == FreshnessPolicy.time_window(fail_window=timedelta(hours=2))
    metastore_window = FreshnessPolicy.time_window(
        fail_window=timedelta(hours=36), warn_window=timedelta(days=1)
    )
    for key in [finance, *RAW]:
        assert graph.get(key).freshness_policy == metastore_window, key

    # the last-update check of each table has its own window (what the sensor evaluates)
    windows = {
        spec.asset_key: spec.metadata["dagster/freshness_params"].value["lower_bound_delta_seconds"]
        for checks in defs.asset_checks or []
        for spec in getattr(checks, "check_specs", [])
        if spec.name == "freshness_check"
    }
    assert windows[sales] == 2 * 3600
    assert windows[finance] == 36 * 3600
    assert all(windows[key] == 36 * 3600 for key in RAW)


def test_mapped_source_keys_keep_their_namespace_s_window(demo_project: Path) -> None:
    """A key the manifest maps (asset_key_prefix, asset_keys) need not contain the namespace:
    the window still follows the table's namespace."""
    import pyarrow as pa

    from floe_dagster.demo import seed_demo
    from floe_dagster.plan.builders import build_catalog

    manifest = demo_project / "manifests" / "manifest.yaml"
    mapping = '    asset_key_prefix: [bronze]\n    asset_keys: {"sales_eu.orders": "eu/orders"}\n'
    with_freshness(manifest, metastore=FRESHNESS + mapping, transforms="")
    text = manifest.read_text()
    manifest.write_text(text.replace('include: ["raw.*"]', 'include: ["raw.*", "sales_eu.*"]'))
    loaded = load_manifest(manifest)
    seed_demo(loaded)
    catalog = build_catalog(loaded, "lakehouse")
    catalog.create_namespace(("sales_eu",))
    catalog.create_table(("sales_eu", "orders"), pa.schema([("id", pa.int64())]))

    defs = build_definitions(manifest)
    graph = defs.resolve_asset_graph()

    eu_orders = graph.get(AssetKey(["eu", "orders"]))
    assert eu_orders.freshness_policy == FreshnessPolicy.time_window(fail_window=timedelta(hours=2))
    raw_orders = graph.get(AssetKey(["bronze", "raw", "orders"]))
    assert raw_orders.freshness_policy == FreshnessPolicy.time_window(
        fail_window=timedelta(hours=36), warn_window=timedelta(days=1)
    )
    windows = {
        spec.asset_key: spec.metadata["dagster/freshness_params"].value["lower_bound_delta_seconds"]
        for checks in defs.asset_checks or []
        for spec in getattr(checks, "check_specs", [])
        if spec.name == "freshness_check"
    }
    assert windows[AssetKey(["eu", "orders"])] == 2 * 3600
    assert windows[AssetKey(["bronze", "raw", "orders"])] == 36 * 3600
