"""The Hive Metastore's notification log as the observation sensor's change feed, on real metastores.

``hive_metastore_with_notifications`` fills its log as production metastores do (Hive's message
factory, the metastore's own RawStore: tests/fixtures/hms/FloeNotificationListener.java); the
plain ``hive_metastore`` has no listener, like a production metastore with notifications off.
"""

from __future__ import annotations

import itertools
import logging
import time
from pathlib import Path
from typing import Any

import pytest

from floe_dagster.dagster_stage.sensors import (
    decode_cursor,
    decode_feed_state,
    encode_cursor,
    observe_changes,
    observe_through_feed,
)
from floe_dagster.manifest.schema import ChangeFeedOptions
from floe_dagster.metastores.feed_tick import feed_tick
from floe_dagster.metastores.hive import HiveMetastoreConnector
from floe_dagster.plugins.table_model import TableFilter
from tests.fixtures.hive_metastore import (
    PARQUET,
    HiveMetastore,
    create_database,
    hive_metastore,
    hive_metastore_with_notifications,
    running_hive_metastore,
    thrift_partition,
    thrift_table,
)

pytestmark = pytest.mark.server
__all__ = ["hive_metastore", "hive_metastore_with_notifications"]

OPTIONS = ChangeFeedOptions.model_validate({"page_size": 3})  # small pages: several per tick
COUNTER = itertools.count()


def _connector(metastore: HiveMetastore, batch_size: int = 2) -> HiveMetastoreConnector:
    return HiveMetastoreConnector.from_options(
        "feed", {"uri": metastore.uri, "batch_size": batch_size, "pool_size": 1}, environ={}
    )


def _write_parquet(folder: Path, rows: int) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder.mkdir(parents=True, exist_ok=True)
    ids = list(range(rows))
    pq.write_table(pa.table({"id": ids}), folder / f"part-{next(COUNTER)}.parquet")


def _observed(result: Any) -> set[tuple[str, str]]:
    return {(e.asset_key.to_user_string(), e.tags["dagster/data_version"]) for e in result.events}


class Twins:
    """The same metastore observed two ways: through the change feed, and by full scans."""

    def __init__(self, metastore: HiveMetastore, table_filter: TableFilter) -> None:
        self.metastore = metastore
        self.filter = table_filter
        self.feed_cursor: str | None = None
        self.scan_versions: dict[str, str] = {}
        self.last_observed: Any = None

    def tick(self) -> tuple[Any, Any, Any]:
        """(feed pass, the feed tick, full-scan pass), each from its own previous state."""
        feed_connector = _connector(self.metastore)
        observed, tick, self.feed_cursor = observe_through_feed(
            feed_connector, self.filter, 2, "hms", self.feed_cursor, OPTIONS
        )
        feed_connector.close()
        with _connector(self.metastore) as scan_connector:
            scanned = observe_changes(scan_connector, self.filter, 2, "hms", self.scan_versions)
        self.scan_versions = scanned.versions
        return observed, tick, scanned

    def same_truth(self, step: str) -> Any:
        observed, tick, scanned = self.tick()
        assert observed.versions == scanned.versions, step
        assert decode_cursor(self.feed_cursor) == scanned.versions, step
        assert _observed(observed) == _observed(scanned), step
        self.last_observed = observed
        return tick


def test_feed_ticks_record_what_full_scans_record_through_ddl_appends_partitions_drops_renames(
    hive_metastore_with_notifications: HiveMetastore,
) -> None:
    metastore = hive_metastore_with_notifications
    client = metastore.client()
    root = create_database(client, "cf_sales", metastore.warehouse)
    twins = Twins(metastore, TableFilter(include=("cf_*",), exclude=("cf_sales.skip_*",)))

    def table(name: str, partitioned: bool = False, db: str = "cf_sales", where: Path = root) -> Any:
        folder = where / name
        _write_parquet(folder, 3)
        thrift = thrift_table(
            db,
            name,
            [("id", "bigint")],
            PARQUET,
            f"file://{folder}",
            partition_keys=[("ds", "string")] if partitioned else None,
        )
        client.create_table(thrift)
        return thrift

    for name in ("orders", "customers", "payments", "skip_me"):
        table(name)
    events = table("events", partitioned=True)

    first = twins.same_truth("first tick")
    assert first.mode == "scan" and first.reason == "first tick"
    assert first.state.position is not None and int(first.state.position) > 0

    # nothing changed: the feed tick is one call
    with _connector(metastore) as connector:
        state = decode_feed_state(twins.feed_cursor)
        quiet = feed_tick(connector, twins.filter, 2, state, OPTIONS)
        assert quiet.mode == "feed" and quiet.tables == [] and quiet.events == 0
        assert connector.api_calls == 1
        assert dict(connector.call_counts) == {"get_current_notificationEventId": 1}

    steps: list[tuple[str, Any]] = []

    def append_orders() -> None:  # new data: a file, then the DDL that recomputes its statistics
        _write_parquet(root / "orders", 5)
        current = client.get_table("cf_sales", "orders")
        client.alter_table("cf_sales", "orders", current)

    def comment_only() -> None:  # DDL that changes no data: no observation either way
        current = client.get_table("cf_sales", "customers")
        current.parameters["comment"] = "who buys"
        client.alter_table("cf_sales", "customers", current)

    def add_partitions() -> None:
        for day in ("2024-01-01", "2024-01-02", "2024-01-03"):
            folder = root / "events" / f"ds={day}"
            _write_parquet(folder, 2)
            client.add_partition(thrift_partition(events, [day], f"file://{folder}"))

    def drop_partition() -> None:
        client.drop_partition("cf_sales", "events", ["2024-01-02"], False)

    def drop_table() -> None:
        client.drop_table("cf_sales", "payments", False)

    def rename_table() -> None:
        current = client.get_table("cf_sales", "customers")
        current.tableName = "clients"
        client.alter_table("cf_sales", "customers", current)

    def new_database() -> None:
        other = create_database(client, "cf_ops", metastore.warehouse)
        table("jobs", db="cf_ops", where=other)
        table("runs", db="cf_ops", where=other)

    def append_partition() -> None:  # a load into one partition: its statistics change
        folder = root / "events" / "ds=2024-01-03"
        _write_parquet(folder, 4)
        partition = client.get_partition("cf_sales", "events", ["2024-01-03"])
        files = list(folder.iterdir())
        partition.parameters.update(
            numFiles=str(len(files)), totalSize=str(sum(f.stat().st_size for f in files))
        )
        client.alter_partition("cf_sales", "events", partition)

    def drop_database() -> None:
        client.drop_database("cf_ops", False, True)

    def excluded_and_unrelated() -> None:  # a table the filter excludes, and a database outside it
        current = client.get_table("cf_sales", "skip_me")
        _write_parquet(root / "skip_me", 1)
        client.alter_table("cf_sales", "skip_me", current)
        create_database(client, "elsewhere", metastore.warehouse)

    steps = [
        ("append", append_orders),
        ("comment", comment_only),
        ("add partitions", add_partitions),
        ("drop partition", drop_partition),
        ("drop table", drop_table),
        ("rename table", rename_table),
        ("new database", new_database),
        ("append to a partition", append_partition),
        ("drop database", drop_database),
        ("excluded and unrelated", excluded_and_unrelated),
    ]
    seen_changes = {}
    recorded: dict[str, set[str]] = {}
    for step, change in steps:
        change()
        observed_before = set(decode_cursor(twins.feed_cursor))
        tick = twins.same_truth(step)
        assert tick.mode == "feed", (step, tick.reason)
        assert tick.events > 0, step
        seen_changes[step] = (observed_before, set(decode_cursor(twins.feed_cursor)), tick)
        recorded[step] = {key for key, _ in _observed(twins.last_observed)}

    # what the feed did at each step, beyond agreeing with the scan
    assert recorded["append"] == {"hms/cf_sales/orders"}
    assert [t.name for t in seen_changes["comment"][2].tables] == ["customers"]
    assert recorded["comment"] == set()  # described again, same data version
    assert recorded["add partitions"] == recorded["drop partition"] == {"hms/cf_sales/events"}
    assert recorded["new database"] == {"hms/cf_ops/jobs", "hms/cf_ops/runs"}
    assert recorded["append to a partition"] == {"hms/cf_sales/events"}
    _, after_drop, _ = seen_changes["drop table"]
    assert "cf_sales.payments" not in after_drop
    before_rename, after_rename, _ = seen_changes["rename table"]
    assert "cf_sales.customers" in before_rename and "cf_sales.clients" in after_rename
    assert "cf_sales.customers" not in after_rename
    assert {"cf_ops.jobs", "cf_ops.runs"} <= seen_changes["new database"][1]
    assert not any(k.startswith("cf_ops.") for k in seen_changes["drop database"][1])
    excluded = seen_changes["excluded and unrelated"][2]
    assert excluded.tables == []  # the excluded table's event named it; it was not fetched
    metastore.close_clients()


def test_a_metastore_without_notifications_is_observed_by_full_scans_logged_once(
    hive_metastore: HiveMetastore, caplog: pytest.LogCaptureFixture
) -> None:
    client = hive_metastore.client()
    root = create_database(client, "cf_quiet", hive_metastore.warehouse)
    folder = root / "t"
    _write_parquet(folder, 2)
    client.create_table(thrift_table("cf_quiet", "t", [("id", "bigint")], PARQUET, f"file://{folder}"))
    only = TableFilter(include=("cf_quiet.*",))
    cursor = None
    warnings = []
    for _ in range(3):
        caplog.clear()
        with (
            caplog.at_level(logging.WARNING, logger="floe_dagster.change_feeds"),
            _connector(hive_metastore) as connector,
        ):
            observed, tick, cursor = observe_through_feed(connector, only, 2, "hms", cursor, OPTIONS)
        assert tick.mode == "scan" and "listener" in tick.reason
        assert set(observed.versions) == {"cf_quiet.t"}
        warnings += [r.getMessage() for r in caplog.records]
    assert len(warnings) == 1, warnings
    assert "cannot tell what changed" in warnings[0] and "notification" in warnings[0]
    hive_metastore.close_clients()


def test_reconciliation_scans_when_due_and_a_restarted_log_rescans(
    hive_metastore_with_notifications: HiveMetastore,
) -> None:
    metastore = hive_metastore_with_notifications
    client = metastore.client()
    root = create_database(client, "cf_recon", metastore.warehouse)
    _write_parquet(root / "a", 1)
    client.create_table(thrift_table("cf_recon", "a", [("id", "bigint")], PARQUET, f"file://{root / 'a'}"))
    only = TableFilter(include=("cf_recon.*",))
    options = ChangeFeedOptions.model_validate({"reconcile_interval_seconds": 600})
    with _connector(metastore) as connector:
        first = feed_tick(connector, only, 2, decode_feed_state(None), options, now=lambda: 1000.0)
        assert first.mode == "scan" and first.state.reconciled_at == 1000.0
        soon = feed_tick(connector, only, 2, first.state, options, now=lambda: 1599.0)
        assert soon.mode == "feed"
        due = feed_tick(connector, only, 2, soon.state, options, now=lambda: 1600.0)
        assert due.mode == "scan" and due.reason == "periodic reconciliation"
        assert [t.name for t in due.tables] == ["a"]
        # a cursor ahead of the log (the metastore's database was replaced): a full scan
        ahead = decode_feed_state(encode_cursor({}, due.state))
        ahead.position = str(int(due.state.position or 0) + 1000)
        restarted = feed_tick(connector, only, 2, ahead, options, now=lambda: 1700.0)
        assert restarted.mode == "scan" and "restarted" in restarted.reason
        assert restarted.state.position == due.state.position
    metastore.close_clients()


def test_events_that_expired_before_they_were_read_fall_back_to_a_full_scan(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A metastore whose log keeps events 1 s (the listener's cleaner, as DbNotificationListener's):
    a cursor that fell behind finds a gap, scans everything once, then follows the log again."""
    ttl = {
        "hive.metastore.event.db.listener.timetolive": "1s",
        "hive.metastore.event.db.listener.clean.interval": "1s",
    }
    with running_hive_metastore(tmp_path / "hms", notifications=True, site_properties=ttl) as metastore:
        client = metastore.client()
        root = create_database(client, "cf_gap", metastore.warehouse)
        only = TableFilter(include=("cf_gap.*",))
        with _connector(metastore) as connector:
            first = feed_tick(connector, only, 2, decode_feed_state(None), OPTIONS)
            assert first.mode == "scan"
            for name in ("a", "b"):
                _write_parquet(root / name, 1)
                client.create_table(
                    thrift_table("cf_gap", name, [("id", "bigint")], PARQUET, f"file://{root / name}")
                )
            deadline = time.monotonic() + 30
            while client.get_next_notification(_request(first.state.position)).events:
                assert time.monotonic() < deadline, "the log's cleaner never expired the events"
                time.sleep(0.5)
            _write_parquet(root / "c", 1)
            late = thrift_table("cf_gap", "c", [("id", "bigint")], PARQUET, f"file://{root / 'c'}")
            client.create_table(late)
            with caplog.at_level(logging.WARNING, logger="floe_dagster.change_feeds"):
                gap = feed_tick(connector, only, 2, first.state, OPTIONS)
            assert gap.mode == "scan" and "expired before they were read" in gap.reason
            assert sorted(t.name for t in gap.tables) == ["a", "b", "c"]
            assert "expired before they were read" in caplog.text
            # the next change is read from the log again
            client.drop_table("cf_gap", "a", False)
            after = feed_tick(connector, only, 2, gap.state, OPTIONS)
            assert after.mode == "feed" and after.gone == {("cf_gap", "a")}
        metastore.close_clients()


def _request(position: str | None) -> Any:
    from hive_metastore.ttypes import NotificationEventRequest

    return NotificationEventRequest(lastEvent=int(position or 0), maxEvents=10)


def test_an_iceberg_metastore_on_a_hive_catalog_reads_metadata_locations_in_batches(
    hive_metastore_with_notifications: HiveMetastore,
) -> None:
    """The Iceberg feed on PyIceberg's HiveCatalog: get_table_objects_by_name per namespace."""
    import pyarrow as pa

    from floe_dagster.catalogs.hive import HiveCatalogConfig, HiveCatalogPlugin
    from floe_dagster.metastores.iceberg import IcebergMetastoreConfig, IcebergMetastoreConnector

    metastore = hive_metastore_with_notifications
    config = HiveCatalogConfig.model_validate({"uri": metastore.uri, "warehouse": metastore.warehouse_uri})
    catalog = HiveCatalogPlugin("ice", config)
    catalog.ensure_namespace(("cf_ice",))
    schema = pa.schema([("id", pa.int64())])
    tables = {name: catalog.create_table(("cf_ice", name), schema=schema) for name in ("x", "y")}
    only = TableFilter(include=("cf_ice.*",))

    def connector() -> IcebergMetastoreConnector:
        return IcebergMetastoreConnector("ice", IcebergMetastoreConfig(catalog="ice"), catalog=catalog)

    first = feed_tick(connector(), only, 100, decode_feed_state(None), OPTIONS)
    assert first.mode == "scan" and sorted(t.name for t in first.tables) == ["x", "y"]
    quiet_connector = connector()
    quiet = feed_tick(quiet_connector, only, 100, first.state, OPTIONS)
    assert quiet.mode == "feed" and quiet.tables == []
    assert quiet_connector.call_counts["load_table"] == 0
    assert quiet_connector.call_counts["get_table_objects_by_name"] >= 1
    tables["y"].append(pa.table({"id": [1]}, schema=schema))
    changed = feed_tick(connector(), only, 100, quiet.state, OPTIONS)
    assert changed.mode == "feed" and [t.name for t in changed.tables] == ["y"]
