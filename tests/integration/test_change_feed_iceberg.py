"""An Iceberg catalog's metadata locations as the change feed (a real SQLite-backed SqlCatalog)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa

from floe_dagster.catalogs.sql import SqlCatalogPlugin
from floe_dagster.dagster_stage.sensors import decode_cursor, observe_changes, observe_through_feed
from floe_dagster.manifest.schema import ChangeFeedOptions
from floe_dagster.metastores.iceberg import IcebergMetastoreConfig, IcebergMetastoreConnector
from floe_dagster.plugins.table_model import TableFilter

SCHEMA = pa.schema([("id", pa.int64())])
OPTIONS = ChangeFeedOptions.model_validate({})


def _rows(n: int) -> pa.Table:
    return pa.table({"id": list(range(n))}, schema=SCHEMA)


def test_a_tick_reads_metadata_locations_and_loads_only_the_tables_that_moved(tmp_path: Path) -> None:
    config = SqlCatalogPlugin.config_model.model_validate(
        {"uri": f"sqlite:///{tmp_path}/catalog.db", "warehouse": str(tmp_path / "warehouse")}
    )
    catalog = SqlCatalogPlugin("lake", config)
    catalog.ensure_namespace(("raw",))
    catalog.ensure_namespace(("ops",))
    tables: dict[str, Any] = {}
    for ns, name in (("raw", "a"), ("raw", "b"), ("raw", "c"), ("ops", "d")):
        tables[name] = catalog.create_table((ns, name), schema=SCHEMA)
        tables[name].append(_rows(2))

    def connector() -> IcebergMetastoreConnector:
        return IcebergMetastoreConnector("lake", IcebergMetastoreConfig(catalog="lake"), catalog=catalog)

    cursor: str | None = None
    versions: dict[str, str] = {}

    def tick() -> tuple[Any, Any, IcebergMetastoreConnector]:
        nonlocal cursor, versions
        feed_connector = connector()
        observed, feed, cursor = observe_through_feed(
            feed_connector, TableFilter(), 100, "lake", cursor, OPTIONS
        )
        scanned = observe_changes(connector(), TableFilter(), 100, "lake", versions)
        versions = scanned.versions
        assert observed.versions == scanned.versions == decode_cursor(cursor)
        assert {e.asset_key for e in observed.events} == {e.asset_key for e in scanned.events}
        return observed, feed, feed_connector

    first, feed, _ = tick()
    assert feed.mode == "scan" and len(first.events) == 4

    quiet, feed, used = tick()
    assert feed.mode == "feed" and quiet.events == [] and feed.tables == []
    # one SELECT of metadata locations per namespace, and no table loaded
    assert used.call_counts["select_metadata_locations"] == 2 and used.call_counts["load_table"] == 0

    tables["b"].append(_rows(3))  # a commit: a new snapshot, a new metadata location
    with tables["c"].transaction() as tx:  # a property change: a new location, the same snapshot
        tx.set_properties({"owner": "ops"})
    catalog.drop_table(("ops", "d"))
    changed, feed, used = tick()
    assert feed.mode == "feed"
    assert sorted(t.name for t in feed.tables) == ["b", "c"] and feed.gone == {("ops", "d")}
    assert {e.asset_key.path[-1] for e in changed.events} == {"b"}
    assert "ops.d" not in decode_cursor(cursor)
