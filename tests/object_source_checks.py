"""Behaviour every object-store source must show the same way, as checks each store's test module
runs against its own server (S3 on moto and s3rver, Azure Blob on Azurite, GCS on
gcp-storage-emulator): one text per case instead of a copy per store.

A :class:`Store` is what a check needs of a store: ``put`` and ``delete`` an object, a
``connector`` factory (keyword overrides of the metastore config), the Iceberg ``catalog`` and
``namespace`` it ingests into, and ``root``, the URL of the bucket/container as locations and
errors spell it (``s3://bucket``, ``gs://bucket``, ``az://container``).

A store's test module runs every check by subclassing :class:`ObjectSourceChecks` (the class's
name starting with ``Test``) beside its own ``store`` fixture.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from floe_dagster.catalogs.sql import SqlCatalogPlugin
from floe_dagster.metastores.object_tables import SchemaMismatchError
from floe_dagster.metastores.s3 import S3MetastoreConnector
from floe_dagster.plugins.table_model import TableFilter
from tests.object_sources import ingest_discovered, parquet_bytes


@dataclass(frozen=True)
class Store:
    put: Callable[[str, bytes], None]
    delete: Callable[[str], None]
    connector: Callable[..., S3MetastoreConnector]
    catalog: SqlCatalogPlugin
    namespace: str
    root: str  # gs://<bucket>, az://<container>

    def ingest(self, table: str, commit_bytes: int = 1 << 30, **overrides: Any) -> Any:
        conn = self.connector(**overrides)
        return ingest_discovered(conn, self.catalog, table, self.namespace, commit_bytes)

    def rows(self, table: str) -> list[dict[str, Any]]:
        rows = self.catalog.load_table((self.namespace, table)).scan().to_arrow().to_pylist()
        return sorted(rows, key=lambda row: row["id"])

    def ids(self, table: str) -> list[int]:
        return [row["id"] for row in self.rows(table)]


def count_downloads_in_flight(
    monkeypatch: pytest.MonkeyPatch, conn: S3MetastoreConnector, hold: float, gather: int = 0
) -> dict[str, int]:
    """Count the connector's own downloads (``_get``, each held ``hold`` s before the real
    request) running at once on this one connector; returns the counters (``max``, ``calls``).

    ``gather``: the first ``gather`` downloads also wait (10 s at most) until that many are in
    flight, so a loaded machine that starts threads slowly still shows the bound it allows.
    """
    lock = threading.Condition()
    seen = {"now": 0, "max": 0, "calls": 0}
    real = conn._get

    def counted(obj: Any, byte_range: str | None = None) -> bytes:
        with lock:
            seen["now"] += 1
            seen["calls"] += 1
            seen["max"] = max(seen["max"], seen["now"])
            lock.notify_all()
            lock.wait_for(lambda: seen["calls"] > gather or seen["now"] >= gather, timeout=10)
        try:
            time.sleep(hold)
            return real(obj, byte_range)
        finally:
            with lock:
                seen["now"] -= 1

    monkeypatch.setattr(conn, "_get", counted)
    return seen


def an_object_written_in_the_same_second_as_the_cursor_is_not_missed(store: Store) -> None:
    store.put("fast/a.parquet", parquet_bytes(range(0, 5)))
    first = store.ingest("fast")
    store.put("fast/b.parquet", parquet_bytes(range(5, 10)))  # very likely the same second
    second = store.ingest("fast")
    assert (first.read, second.read) == (1, 1)
    assert store.ids("fast") == list(range(10))
    assert store.ingest("fast").read == 0  # and neither is read twice


def skipped_objects_are_behind_the_cursor(store: Store) -> None:
    store.put("skips/0-good.parquet", parquet_bytes(range(0, 5)))
    store.put("skips/1-broken.parquet", b"PAR1 this is not parquet at all PAR1")
    report = store.ingest("skips")
    assert report.read == 1 and [key for key, _ in report.skipped] == ["skips/1-broken.parquet"]
    again = store.connector()
    rerun = ingest_discovered(again, store.catalog, "skips", store.namespace, 1 << 30)
    assert (rerun.new, rerun.read) == (0, 0) and again.call_counts["get_object"] == 0
    assert store.ids("skips") == list(range(5))


def a_file_with_another_schema_stops_the_table_after_committing_what_came_before(store: Store) -> None:
    for part in range(5):
        body = parquet_bytes(range(part * 10, part * 10 + 10), extra="oops" if part == 2 else None)
        store.put(f"drift/part-{part}.parquet", body)
    with pytest.raises(SchemaMismatchError) as caught:
        store.ingest("drift")
    message = str(caught.value)
    assert f"{store.root}/drift/part-0.parquet" in message
    assert f"{store.root}/drift/part-2.parquet" in message and "column 'oops' only in the second" in message
    assert store.ids("drift") == list(range(20))
    with pytest.raises(SchemaMismatchError):  # the same run again stops there, commits nothing twice
        store.ingest("drift")
    assert store.ids("drift") == list(range(20))
    store.put("drift/part-2.parquet", parquet_bytes(range(20, 30)))  # fixed
    store.ingest("drift")
    assert store.ids("drift") == list(range(50))


def csv_tables_infer_and_widen_types_and_ingest_with_the_tables_types(store: Store) -> None:
    store.put("people.csv", b"id,name\n1,ada\n2,grace\n")
    store.put("sales/eu-west/a.csv", b"id,amount,label\n1,2,x\n2,3,y\n")  # amount: integers ...
    store.put("sales/eu-west/b.csv", b"id,amount,label\n3,2.5,z\n")  # ... and a decimal
    store.put("sales/eu-west/ignored.parquet", parquet_bytes(range(2)))  # not a CSV
    tables = {t.name: t for t in store.connector(file_type="csv").scan(TableFilter())}
    assert sorted(tables) == ["people", "sales_eu_west"]
    sales = tables["sales_eu_west"]
    # int64 in one file and double in the other is one double column, not a schema mismatch
    assert [(c.name, c.type) for c in sales.storage.columns] == [
        ("id", "int64"),
        ("amount", "double"),
        ("label", "string"),
    ]
    assert sales.storage.format == "csv" and sales.stats.row_count is None and sales.stats.file_count == 2
    assert sales.storage.location == f"{store.root}/sales/eu-west/*.csv"
    people = tables["people"]
    assert [(c.name, c.type) for c in people.storage.columns] == [("id", "int64"), ("name", "string")]
    version = sales.data_version
    relisted = store.connector(file_type="csv").get_table(sales.namespace, "sales_eu_west")
    assert relisted.data_version == version

    first = store.ingest("sales_eu_west", file_type="csv")
    assert (first.read, first.rows) == (2, 3)
    loaded = store.catalog.load_table((store.namespace, "sales_eu_west"))
    assert {f.name: str(f.field_type) for f in loaded.schema().fields} == {
        "id": "long",
        "amount": "double",
        "label": "string",
    }
    assert [(r["id"], r["amount"]) for r in store.rows("sales_eu_west")] == [(1, 2.0), (2, 3.0), (3, 2.5)]

    time.sleep(1.1)
    store.put("sales/eu-west/c.csv", b"id,amount,label\n4,7,w\n")  # integers again: the table's double
    conn = store.connector(file_type="csv")
    assert conn.get_table(sales.namespace, "sales_eu_west").data_version != version
    second = ingest_discovered(conn, store.catalog, "sales_eu_west", store.namespace, 1 << 30)
    assert (second.new, second.rows) == (1, 1)
    assert [r["amount"] for r in store.rows("sales_eu_west")] == [2.0, 3.0, 2.5, 7.0]

    time.sleep(1.1)
    store.put("sales/eu-west/d.csv", b"id,amount,label\n5,lots,v\n")  # a value no double holds
    with pytest.raises(SchemaMismatchError) as caught:
        store.ingest("sales_eu_west", file_type="csv")
    message = str(caught.value)
    assert f"{store.root}/sales/eu-west/d.csv" in message and "conversion error to double" in message
    assert len(store.rows("sales_eu_west")) == 4  # nothing of d.csv, nothing lost


def json_lines_tables_are_discovered_and_ingested(store: Store) -> None:
    store.put(
        "events/2026/a.json",
        b'{"id": 1, "score": 1, "kind": "click"}\n{"id": 2, "score": 4, "kind": "view"}\n',
    )
    store.put("events/2026/b.ndjson", b'{"id": 3, "score": 2.5, "kind": "click"}\n')
    store.put("events/2026/notes.txt", b"not a table file")
    (events,) = store.connector(file_type="json").scan(TableFilter())
    assert events.name == "events_2026" and events.stats.file_count == 2
    assert [(c.name, c.type) for c in events.storage.columns] == [
        ("id", "int64"),
        ("score", "double"),
        ("kind", "string"),
    ]
    report = store.ingest("events_2026", file_type="json", rows_per_record=2)
    assert (report.read, report.rows, report.batches) == (2, 3, 2)  # a: one batch of 2, b: one of 1
    assert [(r["id"], r["score"], r["kind"]) for r in store.rows("events_2026")] == [
        (1, 1.0, "click"),
        (2, 4.0, "view"),
        (3, 2.5, "click"),
    ]

    store.put("events/2026/c.json", b'{"id": 4, "score": 1, "kind": "view"')  # cut off
    time.sleep(1.1)
    store.put("events/2026/d.json", b'{"id": 5, "score": 3, "kind": "view"}\n')
    report = store.ingest("events_2026", file_type="json")
    assert report.read == 1 and [key for key, _ in report.skipped] == ["events/2026/c.json"]
    assert store.ids("events_2026") == [1, 2, 3, 5]


def data_versions_follow_added_replaced_and_removed_objects(store: Store) -> None:
    store.put("one/a.parquet", parquet_bytes(range(2)))
    store.put("one/b.parquet", parquet_bytes(range(2, 7)))

    def version() -> str | None:
        conn = store.connector()  # a fresh listing each time
        return conn.get_table(conn.config.table_namespace, "one").data_version

    first = version()
    assert first is not None and version() == first  # stable while nothing changes
    store.put("one/c.parquet", parquet_bytes(range(7, 9)))
    added = version()
    assert added != first
    store.put("one/c.parquet", parquet_bytes(range(7, 10)))
    assert version() not in (first, added)  # replaced
    store.delete("one/c.parquet")
    assert version() == first  # removed: the objects of the first listing again


def a_schema_mismatch_stops_that_table_only_naming_both_files_and_columns(store: Store) -> None:
    store.put("good/a.parquet", parquet_bytes(range(2)))
    store.put("mixed/a.parquet", parquet_bytes(range(2)))
    store.put("mixed/b.parquet", parquet_bytes(range(2), extra="score", int_labels=True))
    conn = store.connector()
    with pytest.raises(SchemaMismatchError) as caught:
        conn.get_table(conn.config.table_namespace, "mixed")
    message = str(caught.value)
    assert f"{store.root}/mixed/a.parquet" in message and f"{store.root}/mixed/b.parquet" in message
    assert "column 'score' only in the second" in message
    assert "column 'label' is string in the first and int64 in the second" in message
    assert [t.name for t in conn.scan(TableFilter())] == ["good"]
    assert [type(p) for p in conn.scan_problems] == [SchemaMismatchError]


def spy_on_writer(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The row count of every batch the Iceberg writer receives, in order."""
    # lazy: the writer spied on, only here
    from floe_dagster.writers.iceberg import IcebergAppender

    received: list[int] = []
    real = IcebergAppender.write

    def write(self: IcebergAppender, batches: Any, size: int) -> None:
        received.extend(batch.num_rows for batch in batches)
        real(self, batches, size)

    monkeypatch.setattr(IcebergAppender, "write", write)
    return received


def rows_per_record_is_the_batch_size_the_iceberg_writer_receives(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    import io

    import pyarrow as pa
    import pyarrow.parquet as pq

    received = spy_on_writer(monkeypatch)
    # 1000 rows in row groups of 256: the batches run across row groups
    buffer = io.BytesIO()
    pq.write_table(pa.table({"id": pa.array(range(1000), pa.int64())}), buffer, row_group_size=256)
    store.put("batches/a.parquet", buffer.getvalue())
    report = store.ingest("batches", rows_per_record=300)
    assert received == [300, 300, 300, 100] and report.batches == 4
    assert store.ids("batches") == list(range(1000))


def reads_in_flight_never_exceed_concurrency(
    store: Store,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    case: tuple[int, int, float, int],
) -> None:
    """``case``: (concurrency, objects, seconds each download is held, reads in flight expected)."""
    import logging

    concurrency, objects, hold, expected = case
    for part in range(objects):
        store.put(f"many/part-{part:02d}.parquet", parquet_bytes(range(part * 2, part * 2 + 2)))
    conn = store.connector(concurrency=concurrency)
    seen = count_downloads_in_flight(monkeypatch, conn, hold, gather=expected)
    caplog.set_level(logging.WARNING, logger="urllib3.connectionpool")
    report = ingest_discovered(conn, store.catalog, "many", store.namespace, 1 << 30)
    assert seen["max"] == expected
    assert seen["calls"] == objects == conn.call_counts["get_object"]  # whole objects, one each
    assert report.read == objects and store.ids("many") == list(range(objects * 2))
    assert not [r for r in caplog.records if "pool is full" in r.getMessage()]


CONCURRENCY_CASES = [
    (1, 10, 0.02, 1),
    (3, 10, 0.02, 3),
    (50, 60, 0.5, 50),  # the default: 50 of the 60 downloads at once, never more
    (-1, 60, 0.5, 60),  # no limit: every new object at once
]


def concurrency_bounds_footer_reads_of_discovery_too(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    for part in range(8):
        store.put(f"footers/part-{part}.parquet", parquet_bytes(range(part * 3, part * 3 + 3)))
    conn = store.connector(concurrency=2)
    seen = count_downloads_in_flight(monkeypatch, conn, 0.05, gather=2)
    table = conn.get_table(conn.config.table_namespace, "footers")
    assert table.stats.row_count == 24
    assert seen["max"] == 2 and seen["calls"] == 8 == conn.call_counts["get_object_range"]


def bytes_received_for(caplog: pytest.LogCaptureFixture, name: str) -> list[int]:
    """The Content-Length of every answer to a GET naming ``name``, as urllib3 (the transport of
    the Azure and Google SDKs) logs each at DEBUG: what the server sent, not floe's counters.
    The test sets ``caplog`` to DEBUG for ``urllib3.connectionpool`` before the requests."""
    sizes = []
    for record in caplog.records:
        if record.name != "urllib3.connectionpool":
            continue
        line = record.getMessage()
        if '"GET ' in line and name in line:
            status, length = line.rsplit(" ", 2)[-2:]
            assert status in ("200", "206") and length.isdigit(), line
            sizes.append(int(length))
    return sizes


def footers_are_read_with_ranged_requests_of_a_fraction_of_the_object(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    import io
    import logging

    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = 200_000  # about 3 MB of incompressible values, far more than the 64 KiB probe
    generator = np.random.default_rng(7)
    big = pa.table({"id": pa.array(np.arange(rows)), "value": pa.array(generator.random(rows))})
    buffer = io.BytesIO()
    pq.write_table(big, buffer, compression="none")
    body = buffer.getvalue()
    assert len(body) > 3_000_000
    store.put("large/big.parquet", body)
    conn = store.connector()
    caplog.set_level(logging.DEBUG, logger="urllib3.connectionpool")
    caplog.clear()
    table = conn.get_table(conn.config.table_namespace, "large")
    assert table.stats.row_count == rows
    assert [(c.name, c.type) for c in table.storage.columns] == [("id", "int64"), ("value", "double")]
    assert bytes_received_for(caplog, "big.parquet") == [64 * 1024] and len(body) // 40 > 64 * 1024


def a_footer_larger_than_the_probe_takes_one_more_ranged_request(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    import io
    import logging

    import pyarrow as pa
    import pyarrow.parquet as pq

    columns = {f"column_with_a_long_name_{i:04d}": pa.array([i] * 50, pa.int64()) for i in range(1500)}
    buffer = io.BytesIO()
    pq.write_table(pa.table(columns), buffer)
    body = buffer.getvalue()
    footer = int.from_bytes(body[-8:-4], "little")
    assert footer > 64 * 1024
    store.put("wide/cols.parquet", body)
    conn = store.connector()
    caplog.set_level(logging.DEBUG, logger="urllib3.connectionpool")
    caplog.clear()
    table = conn.get_table(conn.config.table_namespace, "wide")
    assert len(table.storage.columns) == 1500 and table.stats.row_count == 50
    received = bytes_received_for(caplog, "cols.parquet")
    assert received == [64 * 1024, footer + 8] and sum(received) < len(body)  # the probe, then the footer


def duckdb_reads_every_file_of_a_json_lines_table(store: Store) -> None:
    """A table of ``.ndjson`` (or ``.jsonl``) files is located by its files' own extension."""
    # lazy: the DuckDB reader, only here
    from floe_dagster.readers.duckdb_scan import scan_connection, select_sql

    store.put("clicks/a.ndjson", b'{"id": 1, "kind": "click"}\n{"id": 2, "kind": "view"}\n')
    store.put("clicks/b.ndjson", b'{"id": 3, "kind": "click"}\n')
    store.put("views/a.jsonl", b'{"id": 4, "kind": "view"}\n')
    conn = store.connector(file_type="json")
    tables = {t.name: t for t in conn.scan(TableFilter())}
    assert tables["clicks"].storage.location == f"{store.root}/clicks/*.ndjson"
    assert tables["views"].storage.location == f"{store.root}/views/*.jsonl"
    scans = [conn.describe_scan(conn.config.table_namespace, name) for name in ("clicks", "views")]
    con = scan_connection(scans, conn.credentials)
    counts = [con.sql(f"SELECT count(*), sum(id) FROM ({select_sql(scan)})").fetchall() for scan in scans]
    assert counts == [[(3, 6)], [(1, 4)]]
    # the columns as discovery typed them (int64 is a BIGINT, not text)
    types = con.sql(f"SELECT typeof(id), typeof(kind) FROM ({select_sql(scans[0])}) LIMIT 1").fetchall()
    assert types == [("BIGINT", "VARCHAR")]

    # one folder of .json and .ndjson files, and two folders whose names make one table: no single
    # glob names every file, so the table carries one per extension and folder
    store.put("mixed/a.json", b'{"id": 10, "kind": "click"}\n')
    store.put("mixed/b.ndjson", b'{"id": 20, "kind": "view"}\n{"id": 30, "kind": "view"}\n')
    store.put("pair/one/a.jsonl", b'{"id": 100, "kind": "click"}\n')
    store.put("pair_one/b.jsonl", b'{"id": 200, "kind": "click"}\n')
    conn = store.connector(file_type="json")
    tables = {t.name: t for t in conn.scan(TableFilter())}
    assert tables["mixed"].stats.file_count == 2 and tables["pair_one"].stats.file_count == 2
    scans = [conn.describe_scan(conn.config.table_namespace, name) for name in ("mixed", "pair_one")]
    assert [len(scan.locations) for scan in scans] == [2, 2]
    con = scan_connection(scans, conn.credentials)
    counts = [con.sql(f"SELECT count(*), sum(id) FROM ({select_sql(scan)})").fetchall() for scan in scans]
    assert counts == [[(3, 60)], [(2, 300)]]


def duckdb_reads_orc_tables_on_the_store(store: Store) -> None:
    """ORC has no DuckDB reader: its view is a PyArrow dataset over the store's files, opened with
    the source's credentials (``readers/stores/``); every glob of a table is read."""
    # lazy: the DuckDB readers, only here
    from floe_dagster.readers.duckdb_scan import scan_connection
    from floe_dagster.readers.formats import create_view, storage_properties
    from tests.fixtures.format_tables import orc_bytes

    store.put("events/a.orc", orc_bytes(range(1, 3)))
    store.put("events/b.orc", orc_bytes(range(3, 4)))
    store.put("pair/one/a.orc", orc_bytes(range(100, 101)))  # two folders that make one table
    store.put("pair_one/b.orc", orc_bytes(range(200, 202)))
    conn = store.connector(file_type="orc")
    scans = [conn.describe_scan(conn.config.table_namespace, name) for name in ("events", "pair_one")]
    assert scans[0].location == f"{store.root}/events/*.orc" and len(scans[1].locations) == 2
    con = scan_connection(scans, conn.credentials)
    storage = storage_properties(conn.credentials)
    for name, scan in zip(("events", "pair_one"), scans, strict=True):
        create_view(con, name, scan, None, None, storage, {})
    counts = [
        con.sql(f"SELECT count(*), sum(id), min(label) FROM {t}").fetchall() for t in ("events", "pair_one")
    ]
    assert counts == [[(3, 6, "l1")], [(3, 501, "l100")]]


def tables_are_named_after_their_prefix_at_every_depth(store: Store) -> None:
    store.put("root-file.v1.parquet", parquet_bytes(range(3)))
    store.put("one/a.parquet", parquet_bytes(range(2)))
    store.put("two/levels/x.parquet", parquet_bytes(range(4)))
    store.put("three/level-s/deep.er/x.parquet", parquet_bytes(range(1)))
    store.put("Mixed-Case/sub.dir/x.parquet", parquet_bytes(range(1)))
    store.put("one/notes.txt", b"not a table file")
    tables = {t.name: t for t in store.connector().scan(TableFilter())}
    assert sorted(tables) == [
        "Mixed_Case_sub_dir",
        "one",
        "root_file_v1",
        "three_level_s_deep_er",
        "two_levels",
    ]
    assert tables["root_file_v1"].storage.location == f"{store.root}/root-file.v1.parquet"
    assert tables["three_level_s_deep_er"].storage.location == f"{store.root}/three/level-s/deep.er/*.parquet"
    assert tables["three_level_s_deep_er"].stats.row_count == 1


def each_run_with_new_objects_commits_one_snapshot_and_a_run_without_none(store: Store) -> None:
    for run, parts in enumerate(((0, 1, 2), (3, 4), (5,))):
        if run:
            time.sleep(1.1)  # a later second than the cursor's
        for part in parts:
            store.put(f"runs/part-{part}.parquet", parquet_bytes(range(part * 10, part * 10 + 10)))
        report = store.ingest("runs")
        assert (report.new, report.read, report.commits) == (len(parts), len(parts), 1)
    unchanged = store.ingest("runs")
    assert (unchanged.new, unchanged.read, unchanged.commits, unchanged.total_rows) == (0, 0, 0, 60)
    assert len(store.catalog.load_table((store.namespace, "runs")).snapshots()) == 3
    assert store.ids("runs") == list(range(60))


class ObjectSourceChecks:
    """Every check of this module as a test: a store's test module subclasses it as
    ``class TestObjectSourceChecks(ObjectSourceChecks)`` beside its ``store`` fixture."""

    def test_an_object_written_in_the_same_second_as_the_cursor_is_not_missed(self, store: Store) -> None:
        an_object_written_in_the_same_second_as_the_cursor_is_not_missed(store)

    def test_skipped_objects_are_behind_the_cursor(self, store: Store) -> None:
        skipped_objects_are_behind_the_cursor(store)

    def test_a_file_with_another_schema_stops_the_table_after_committing_what_came_before(
        self, store: Store
    ) -> None:
        a_file_with_another_schema_stops_the_table_after_committing_what_came_before(store)

    def test_csv_tables_infer_and_widen_types_and_ingest_with_the_tables_types(self, store: Store) -> None:
        csv_tables_infer_and_widen_types_and_ingest_with_the_tables_types(store)

    def test_json_lines_tables_are_discovered_and_ingested(self, store: Store) -> None:
        json_lines_tables_are_discovered_and_ingested(store)

    def test_data_versions_follow_added_replaced_and_removed_objects(self, store: Store) -> None:
        data_versions_follow_added_replaced_and_removed_objects(store)

    def test_a_schema_mismatch_stops_that_table_only_naming_both_files_and_columns(
        self, store: Store
    ) -> None:
        a_schema_mismatch_stops_that_table_only_naming_both_files_and_columns(store)

    def test_rows_per_record_is_the_batch_size_the_iceberg_writer_receives(
        self, store: Store, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        rows_per_record_is_the_batch_size_the_iceberg_writer_receives(store, monkeypatch)

    def test_footers_are_read_with_ranged_requests_of_a_fraction_of_the_object(
        self, store: Store, caplog: pytest.LogCaptureFixture
    ) -> None:
        footers_are_read_with_ranged_requests_of_a_fraction_of_the_object(store, caplog)

    def test_a_footer_larger_than_the_probe_takes_one_more_ranged_request(
        self, store: Store, caplog: pytest.LogCaptureFixture
    ) -> None:
        a_footer_larger_than_the_probe_takes_one_more_ranged_request(store, caplog)

    def test_duckdb_reads_every_file_of_a_json_lines_table(self, store: Store) -> None:
        duckdb_reads_every_file_of_a_json_lines_table(store)

    def test_duckdb_reads_orc_tables_on_the_store(self, store: Store) -> None:
        duckdb_reads_orc_tables_on_the_store(store)

    def test_tables_are_named_after_their_prefix_at_every_depth(self, store: Store) -> None:
        tables_are_named_after_their_prefix_at_every_depth(store)

    def test_each_run_with_new_objects_commits_one_snapshot_and_a_run_without_none(
        self, store: Store
    ) -> None:
        each_run_with_new_objects_commits_one_snapshot_and_a_run_without_none(store)

    @pytest.mark.parametrize("case", CONCURRENCY_CASES, ids=lambda c: f"concurrency={c[0]}")
    def test_reads_in_flight_never_exceed_concurrency(
        self,
        store: Store,
        monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture,
        case: tuple[int, int, float, int],
    ) -> None:
        reads_in_flight_never_exceed_concurrency(store, monkeypatch, caplog, case)

    def test_concurrency_bounds_footer_reads_of_discovery_too(
        self, store: Store, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        concurrency_bounds_footer_reads_of_discovery_too(store, monkeypatch)
