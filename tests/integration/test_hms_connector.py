"""The Hive Metastore connector against a real Hive Metastore (Hive 2.3 from the pyspark jars).

The session metastore is seeded once (``seeded_hive_metastore``): a Parquet table with 300
partitions, ORC, CSV, JSON, Avro and Iceberg tables in ``floe_seed``; a table with an unsupported
serde and a view (no location) in ``floe_bad``. Data files are real, so DuckDB reads them.
Tests that change tables work in databases of their own.
"""

from __future__ import annotations

import dataclasses
import io
import logging
import math
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest

from floe_dagster.core.errors import (
    ConfigurationError,
    InvalidFieldError,
    NotFoundError,
    NotSupportedError,
    UnavailableError,
)
from floe_dagster.metastores.hive import HiveMetastoreConnector, MetastoreUnavailableError, storage_format
from floe_dagster.plugins.factory import connect_metastore, metastore_config
from floe_dagster.plugins.table_model import (
    Column,
    Partition,
    PartitionPredicate,
    StorageDescriptor,
    Table,
    TableFilter,
    parse_partition_name,
)
from floe_dagster.readers.duckdb_scan import duckdb_path, relation_sql, required_extensions
from tests.contract.contracts import MetastoreContract, unique
from tests.fixtures.hive_metastore import (
    PARQUET,
    HiveMetastore,
    SeededMetastore,
    create_database,
    running_hive_metastore,
    thrift_partition,
    thrift_table,
)

pytestmark = pytest.mark.server


def connector(uri: str, **options: Any) -> HiveMetastoreConnector:
    built = connect_metastore("lake", "hive", {"uri": uri, **options}, environ={})
    assert isinstance(built, HiveMetastoreConnector)
    return built


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def hms(seeded_hive_metastore: SeededMetastore) -> Iterator[HiveMetastoreConnector]:
    with connector(seeded_hive_metastore.metastore.uri, max_parts=100) as built:
        yield built


class TestHiveMetastoreConnector(MetastoreContract):
    @pytest.fixture
    def metastore(self, seeded_hive_metastore: SeededMetastore) -> Iterator[HiveMetastoreConnector]:
        with connector(seeded_hive_metastore.metastore.uri) as built:
            yield built

    @pytest.fixture
    def existing_table(self, seeded_hive_metastore: SeededMetastore) -> tuple[str, str]:
        return seeded_hive_metastore.db, "orders_orc"


# --- listing, batches, mapping -------------------------------------------------------------------


def test_lists_databases_and_tables(
    hms: HiveMetastoreConnector, seeded_hive_metastore: SeededMetastore
) -> None:
    seeded = seeded_hive_metastore
    assert {seeded.db, seeded.bad_db} <= set(hms.list_namespaces())
    assert hms.list_tables(seeded.db) == list(seeded.tables)
    assert hms.list_tables(seeded.bad_db) == ["legacy_seq", "recent_view"]
    assert hms.call_counts == {"get_all_databases": 1, "get_all_tables": 2}


def test_batch_get_is_one_call_per_batch(seeded_hive_metastore: SeededMetastore) -> None:
    seeded = seeded_hive_metastore
    names = ["clicks_json", "logs_avro", "orders_orc", "people_csv", "ice_customers"]
    with connector(seeded.metastore.uri, batch_size=2) as hms:
        tables = hms.get_tables(seeded.db, names)
        assert [t.name for t in tables] == names
        assert hms.call_counts == {"get_table_objects_by_name": math.ceil(len(names) / 2)}
        with pytest.raises(NotFoundError) as info:
            hms.get_tables(seeded.db, ["orders_orc", "not_there"])
        assert (info.value.provider, info.value.operation, info.value.retryable) == (
            "hive",
            "get_tables",
            False,
        )


def test_storage_descriptors_map_to_formats(
    hms: HiveMetastoreConnector, seeded_hive_metastore: SeededMetastore
) -> None:
    seeded = seeded_hive_metastore
    tables = {t.name: t for t in hms.get_tables(seeded.db, list(seeded.tables))}
    assert {name: t.storage.format for name, t in tables.items()} == {
        "clicks_json": "json",
        "events": "parquet",
        "ice_customers": "iceberg",
        "logs_avro": "avro",
        "orders_orc": "orc",
        "people_csv": "csv",
    }
    events = tables["events"]
    assert [c.name for c in events.storage.columns] == ["id", "amount"]
    assert [(f.name, f.type) for f in events.partition_spec.fields] == [("ds", "string"), ("bucket", "int")]
    assert events.stats.partition_count == seeded.partition_count
    assert events.stats.file_count == seeded.partition_count
    assert events.storage.location.endswith(f"/{seeded.db}.db/events")
    csv = tables["people_csv"].storage
    assert csv.options["delimiter"] == "|" and csv.options["null"] == "\\N"
    assert csv.serde == "org.apache.hadoop.hive.serde2.lazy.LazySimpleSerDe"
    assert csv.input_format == "org.apache.hadoop.mapred.TextInputFormat"
    iceberg = tables["ice_customers"]
    assert iceberg.table_type == "ICEBERG"
    assert iceberg.storage.options["metadata_location"].endswith(".metadata.json")
    assert iceberg.data_version == str(seeded.iceberg_snapshot_id)
    for table in tables.values():
        assert table.validate() is table


def test_text_serde_delimiters_follow_hive() -> None:
    lazy = "org.apache.hadoop.hive.serde2.lazy.LazySimpleSerDe"
    text = "org.apache.hadoop.mapred.TextInputFormat"
    assert storage_format("t", lazy, text, {}, {})[1]["delimiter"] == "\x01"  # Hive's default
    assert storage_format("t", lazy, text, {"serialization.format": "1"}, {})[1]["delimiter"] == "\x01"
    assert storage_format("t", lazy, text, {"field.delim": "9"}, {})[1]["delimiter"] == "\t"
    fmt, options = storage_format(
        "t", "org.apache.hadoop.hive.serde2.OpenCSVSerde", text, {}, {"skip.header.line.count": "1"}
    )
    assert (fmt, options["delimiter"], options["header"]) == ("csv", ",", "1")


def test_unsupported_serde_is_a_table_that_cannot_be_read(
    hms: HiveMetastoreConnector, seeded_hive_metastore: SeededMetastore
) -> None:
    table = hms.get_table(seeded_hive_metastore.bad_db, "legacy_seq")
    assert not table.readable and table.storage.format == "unknown" and table.data_version.startswith("hive:")
    with pytest.raises(NotSupportedError) as info:
        table.validate()
    assert (info.value.operation, info.value.retryable) == ("read", False)
    assert "LazyBinarySerDe" in str(info.value) and "SequenceFileInputFormat" in str(info.value)


def test_a_view_is_a_table_that_cannot_be_read_and_a_missing_format_is_rejected_by_field(
    hms: HiveMetastoreConnector, seeded_hive_metastore: SeededMetastore
) -> None:
    view = hms.get_table(seeded_hive_metastore.bad_db, "recent_view")
    assert view.storage.format == "view" and "view" in (view.unreadable_reason or "")
    no_format = Table("db", "t", StorageDescriptor(location="file:/x", format=""), data_version="v")
    with pytest.raises(InvalidFieldError) as formats:
        no_format.validate()
    assert formats.value.field == "storage.format"


def test_scan_prunes_by_name_before_any_table_call_and_skips_unreadable_tables(
    hms: HiveMetastoreConnector, seeded_hive_metastore: SeededMetastore
) -> None:
    seeded = seeded_hive_metastore
    narrow = list(hms.scan(TableFilter(include=(f"{seeded.db}.*",), exclude=("*.events", "*.ice_*"))))
    assert [t.name for t in narrow] == ["clicks_json", "logs_avro", "orders_orc", "people_csv"]
    # one listing of databases, one of the only matching database, one batch; no partition call
    assert hms.call_counts == {"get_all_databases": 1, "get_all_tables": 1, "get_table_objects_by_name": 1}

    hms.call_counts.clear()
    everything = {
        t.qualified_name for t in hms.scan(TableFilter(include=(f"{seeded.db}.*", f"{seeded.bad_db}.*")))
    }
    # the view and the unknown serde stay tables (assets), marked unreadable
    unreadable = {f"{seeded.bad_db}.legacy_seq", f"{seeded.bad_db}.recent_view"}
    assert everything == {f"{seeded.db}.{t}" for t in seeded.tables} | unreadable
    assert hms.scan_problems == []


# --- partitions ----------------------------------------------------------------------------------


def test_partitions_are_listed_in_bounded_pages(
    hms: HiveMetastoreConnector, seeded_hive_metastore: SeededMetastore
) -> None:
    seeded = seeded_hive_metastore
    partitions = hms.list_partitions(seeded.db, "events")
    assert len(partitions) == seeded.partition_count
    assert partitions[0].values == (seeded.days[0], "0")
    assert partitions[-1].values == (seeded.days[-1], "1")
    assert partitions[0].location and partitions[0].location.endswith(f"ds={seeded.days[0]}/bucket=0")
    assert "transient_lastDdlTime" in partitions[0].parameters
    # max_parts=100: a full first page, then the names and 3 pages of 100
    assert hms.call_counts == {"get_partitions": 1, "get_partition_names": 1, "get_partitions_by_names": 3}
    assert hms.list_partitions(seeded.db, "orders_orc") == []


def test_partition_pruning_fetches_only_matching_partitions(
    hms: HiveMetastoreConnector, seeded_hive_metastore: SeededMetastore
) -> None:
    seeded = seeded_hive_metastore
    predicates = [PartitionPredicate("ds", ">=", "2024-05-01"), PartitionPredicate("bucket", "=", "1")]
    expected = [(d, "1") for d in seeded.days if d >= "2024-05-01"]
    partitions = hms.list_partitions(seeded.db, "events", predicates)
    assert [p.values for p in partitions] == expected
    assert hms.call_counts == {"get_table": 1, "get_partition_names": 1, "get_partitions_by_names": 1}
    # typed comparison: bucket is an int column
    assert (
        len(hms.list_partitions(seeded.db, "events", [PartitionPredicate("bucket", "<", "10")]))
        == seeded.partition_count
    )


def test_pruning_without_a_partition_schema_falls_back_and_logs(
    hms: HiveMetastoreConnector, seeded_hive_metastore: SeededMetastore, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="floe_dagster.metastores"):
        scan = hms.describe_scan(seeded_hive_metastore.db, "orders_orc", [PartitionPredicate("id", "=", "1")])
    assert scan.partitions is None and not scan.pruned
    assert "no explicit partition schema" in caplog.text


# --- data versions -------------------------------------------------------------------------------


def test_data_versions_are_stable_and_change_only_for_the_changed_table(
    hive_metastore: HiveMetastore,
) -> None:
    client = hive_metastore.client()
    db = unique("versions")
    root = create_database(client, db, hive_metastore.warehouse)
    tables = {}
    for name in ("a", "b"):
        table = thrift_table(
            db, name, [("id", "bigint")], PARQUET, f"file://{root / name}", partition_keys=[("ds", "string")]
        )
        client.create_table(table)
        client.add_partitions(
            [thrift_partition(table, ["2024-01-01"], f"file://{root / name / 'ds=2024-01-01'}")]
        )
        tables[name] = table
    client.create_table(thrift_table(db, "plain", [("id", "bigint")], PARQUET, f"file://{root / 'plain'}"))

    with connector(hive_metastore.uri) as hms:
        names = hms.list_tables(db)

        def versions() -> dict[str, str]:
            return {t.name: t.data_version for t in hms.get_tables(db, names)}

        first = versions()
        assert versions() == first  # unchanged -> equal
        assert len(set(first.values())) == 3

        client.add_partitions(
            [thrift_partition(tables["a"], ["2024-01-02"], f"file://{root / 'a' / 'ds=2024-01-02'}")]
        )
        second = versions()
        assert second["a"] != first["a"]
        assert second["b"] == first["b"] and second["plain"] == first["plain"]
        assert versions() == second


def test_metadata_only_edits_keep_the_version_and_new_data_changes_it(hive_metastore: HiveMetastore) -> None:
    """Comment, owner and column comments are not data; statistics, partitions and location are."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    client = hive_metastore.client()
    db = unique("edits")
    root = create_database(client, db, hive_metastore.warehouse)
    (root / "t").mkdir()
    pq.write_table(pa.table({"id": [1, 2]}), root / "t" / "000000_0")
    client.create_table(
        thrift_table(db, "t", [("id", "bigint")], PARQUET, f"file://{root / 't'}", params={"numRows": "2"})
    )
    with connector(hive_metastore.uri) as hms:
        first = hms.get_table(db, "t").data_version

        table = client.get_table(db, "t")
        table.parameters["comment"] = "orders as the shop sees them"
        table.owner = "someone-else"
        table.sd.cols[0].comment = "the order id"
        client.alter_table(db, "t", table)
        edited = client.get_table(db, "t")
        assert (
            edited.parameters["comment"] == "orders as the shop sees them" and edited.owner == "someone-else"
        )
        assert hms.get_table(db, "t").data_version == first

        # as the Hive CLI and Spark alter a comment: without the DDL time, which the metastore resets
        time.sleep(1.1)
        table = client.get_table(db, "t")
        ddl_time = table.parameters.pop("transient_lastDdlTime")
        table.parameters["comment"] = "a new comment"
        client.alter_table(db, "t", table)
        assert client.get_table(db, "t").parameters["transient_lastDdlTime"] != ddl_time
        assert hms.get_table(db, "t").data_version == first

        # a load: a new file and the statistics the writer records with it
        pq.write_table(pa.table({"id": [3]}), root / "t" / "000001_0")
        table = client.get_table(db, "t")
        table.parameters["numRows"] = "3"
        client.alter_table(db, "t", table)
        loaded = hms.get_table(db, "t").data_version
        assert loaded != first
        assert hms.get_table(db, "t").data_version == loaded  # and stable again


def test_table_stats_come_from_the_parameters_and_partitions(
    hms: HiveMetastoreConnector, seeded_hive_metastore: SeededMetastore, hive_metastore: HiveMetastore
) -> None:
    seeded = seeded_hive_metastore
    events = hms.table_stats(seeded.db, seeded.partitioned)
    assert events.partition_count == seeded.partition_count
    assert events.file_count == seeded.partition_count  # one file per partition (fast stats)
    assert events.size_bytes is not None and events.size_bytes > 0
    assert events.last_modified is not None

    client = hive_metastore.client()
    db = unique("stats")
    root = create_database(client, db, hive_metastore.warehouse)
    client.create_table(
        thrift_table(
            db,
            "counted",
            [("id", "bigint")],
            PARQUET,
            f"file://{root / 'counted'}",
            params={"numRows": "42", "transient_lastDdlTime": "1700000000"},
        )
    )
    stats = hms.table_stats(db, "counted")
    assert stats.row_count == 42 and stats.partition_count == 0
    assert stats.last_modified is not None and stats.last_modified.timestamp() == 1700000000
    with pytest.raises(NotFoundError) as info:
        hms.table_stats(db, "missing")
    assert (info.value.provider, info.value.operation) == ("hive", "table_stats")


def test_tables_are_in_the_catalog_named_like_the_metastore(
    hms: HiveMetastoreConnector, seeded_hive_metastore: SeededMetastore
) -> None:
    tables = hms.get_tables(seeded_hive_metastore.db, ["events", "ice_customers"])
    assert {t.catalog for t in tables} == {"lake"}  # the manifest's name, not the provider


# --- DuckDB reads a Hive table through its location ----------------------------------------------


def test_duckdb_reads_a_partitioned_hive_table_with_pruning(
    hms: HiveMetastoreConnector, seeded_hive_metastore: SeededMetastore
) -> None:
    seeded = seeded_hive_metastore
    predicates = [
        PartitionPredicate("ds", "in", ("2024-02-01", "2024-02-02")),
        PartitionPredicate("bucket", "=", "0"),
    ]
    scan = hms.describe_scan(seeded.db, "events", predicates)
    assert scan.pruned and scan.partitions is not None and len(scan.partitions) == 2
    relation = relation_sql(scan)
    # only the two matching partition folders are listed
    assert relation.count("ds=") == 2 and "bucket=1" not in relation and "hive_partitioning=true" in relation
    con = duckdb.connect()
    rows = con.sql(f"SELECT ds, bucket, count(*) FROM {relation} GROUP BY ALL ORDER BY ALL").fetchall()
    assert rows == [("2024-02-01", 0, 2), ("2024-02-02", 0, 2)]

    everything = hms.describe_scan(seeded.db, "events")
    assert not everything.pruned
    total = con.sql(f"SELECT count(*), count(DISTINCT ds) FROM {relation_sql(everything)}").fetchone()
    assert total == (seeded.partition_count * seeded.rows_per_partition, len(seeded.days))

    nothing = hms.describe_scan(seeded.db, "events", [PartitionPredicate("ds", "<", "2000-01-01")])
    assert con.sql(f"SELECT count(*) FROM {relation_sql(nothing)}").fetchone() == (0,)


def test_duckdb_reads_csv_json_and_relocated_partitions(
    hms: HiveMetastoreConnector, seeded_hive_metastore: SeededMetastore, tmp_path: Path
) -> None:
    seeded = seeded_hive_metastore
    con = duckdb.connect()
    people = con.sql(
        f"SELECT * FROM {relation_sql(hms.describe_scan(seeded.db, 'people_csv'))} ORDER BY id"
    ).fetchall()
    assert [tuple(map(str, r)) for r in people] == [("1", "ann", "2024-01-01"), ("2", "bob", "None")]
    clicks = con.sql(
        f"SELECT * FROM {relation_sql(hms.describe_scan(seeded.db, 'clicks_json'))} ORDER BY id"
    ).fetchall()
    assert clicks == [(1, "/a"), (2, "/b")]
    # partitions outside k=v folders: each read with its values as constant columns
    events = hms.describe_scan(seeded.db, "events", [PartitionPredicate("ds", "=", seeded.days[0])])
    assert events.partitions is not None and len(events.partitions) == 2
    moved = []
    for partition in events.partitions:
        assert partition.location is not None
        elsewhere = tmp_path / f"elsewhere_{partition.values[1]}"
        shutil.copytree(duckdb_path(partition.location), elsewhere)
        moved.append(Partition(partition.values, f"file://{elsewhere}"))
    relocated = dataclasses.replace(events, partitions=tuple(moved))
    assert "UNION ALL BY NAME" in relation_sql(relocated)
    rows = con.sql(f"SELECT ds, bucket, count(*) FROM {relation_sql(relocated)} GROUP BY ALL ORDER BY ALL")
    assert rows.fetchall() == [(seeded.days[0], 0, 2), (seeded.days[0], 1, 2)]
    with pytest.raises(NotSupportedError) as info:
        relation_sql(hms.describe_scan(seeded.db, "orders_orc"))
    assert (info.value.provider, info.value.operation) == ("duckdb", "read_orc")


def test_duckdb_reads_the_iceberg_table_through_its_metadata(
    hms: HiveMetastoreConnector, seeded_hive_metastore: SeededMetastore
) -> None:
    from duckdb_extensions import import_extension

    scan = hms.describe_scan(seeded_hive_metastore.db, "ice_customers")
    assert (
        scan.format == "iceberg" and scan.metadata_location == seeded_hive_metastore.iceberg_metadata_location
    )
    con = duckdb.connect(config={"autoinstall_known_extensions": False})
    for extension in required_extensions(scan):
        import_extension(extension, con=con)
        con.sql(f"LOAD {extension}")
    assert con.sql(f"SELECT count(*) FROM {relation_sql(scan)}").fetchone() == (2,)


# --- failures ------------------------------------------------------------------------------------


def warm_up_thrift_imports() -> None:
    """Import what the connector imports lazily on its first call (metastores/hive.py)."""
    import importlib

    for module in (
        "hive_metastore.ThriftHiveMetastore",
        "hive_metastore.ttypes",
        "thrift.protocol.TBinaryProtocol",
        "thrift.transport.TSocket",
        "thrift.transport.TTransport",
        "thrift.Thrift",
    ):
        importlib.import_module(module)


def test_the_timed_part_of_the_unreachable_uri_test_holds_only_the_call() -> None:
    """Issue 17, item 15: the Thrift bindings are imported before the clock starts."""
    import ast
    import inspect
    import sys

    source = inspect.getsource(test_an_unreachable_uri_fails_fast_with_a_clear_retryable_error)
    body = ast.parse(source.strip()).body[0]
    calls = [ast.unparse(n) for n in ast.walk(body) if isinstance(n, ast.Call)]
    assert calls.index("warm_up_thrift_imports()") < calls.index("time.monotonic()")
    warm_up_thrift_imports()
    assert "hive_metastore.ThriftHiveMetastore" in sys.modules


def test_an_unreachable_uri_fails_fast_with_a_clear_retryable_error() -> None:
    port = free_port()
    hms = connector(f"thrift://127.0.0.1:{port}", retries=2, backoff_s=0.05, connect_timeout_s=1)
    warm_up_thrift_imports()  # the first import of the Thrift bindings is slow under load: not timed
    with pytest.raises(UnavailableError) as info:
        started = time.monotonic()
        try:
            hms.list_namespaces()  # only the call is timed
        finally:
            elapsed = time.monotonic() - started
    assert elapsed < 3, f"3 refused connections took {elapsed:.2f} s"
    error = info.value
    assert isinstance(error, MetastoreUnavailableError) and error.retryable
    assert (error.provider, error.operation) == ("hive", "list_namespaces")
    assert (
        f"127.0.0.1:{port}" in str(error)
        and "connection refused" in str(error)
        and "3 attempt(s)" in str(error)
    )
    assert error.attempts == 3 and error.tags()["attempts"] == "3"  # counted, as data
    assert hms.call_counts == {}  # no call was sent


class HangUpServer:
    """Accepts Thrift connections and closes each at once: every call fails with a transport error."""

    def __init__(self) -> None:
        self.server = socket.socket()
        self.server.bind(("127.0.0.1", 0))
        self.server.listen()
        self.accepted = 0
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    @property
    def uri(self) -> str:
        return f"thrift://127.0.0.1:{self.server.getsockname()[1]}"

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.server.accept()
            except OSError:
                return
            self.accepted += 1
            conn.close()

    def close(self) -> None:
        self.server.close()


def test_transport_errors_are_retried_and_the_attempts_counted() -> None:
    server = HangUpServer()
    try:
        hms = connector(server.uri, retries=3, backoff_s=0.01, backoff_max_s=0.02)
        with pytest.raises(MetastoreUnavailableError) as info:
            hms.list_namespaces()
        # four attempts really reached the server: a new connection each (a failed one is never reused)
        assert server.accepted == 4 and info.value.attempts == 4
        assert hms.call_counts == {"get_all_databases": 4}
        assert info.value.tags() == {
            "provider": "hive",
            "operation": "list_namespaces",
            "retryable": "true",
            "attempts": "4",
        }
        quiet = connector(server.uri, retries=0)
        with pytest.raises(MetastoreUnavailableError) as once:
            quiet.list_namespaces()
        assert once.value.attempts == 1 and server.accepted == 5
    finally:
        server.close()


def test_the_pool_reuses_connections_and_never_opens_more_than_its_size(
    seeded_hive_metastore: SeededMetastore,
) -> None:
    seeded = seeded_hive_metastore
    with connector(seeded.metastore.uri, pool_size=1) as hms:
        for _ in range(10):
            hms.list_tables(seeded.db)
        assert hms.pool.opened == 1 and hms.call_counts == {"get_all_tables": 10}

    with connector(seeded.metastore.uri, pool_size=2) as hms:
        start = threading.Barrier(8)
        errors: list[BaseException] = []

        def burst() -> None:
            try:
                start.wait()
                for _ in range(5):
                    hms.get_tables(seeded.db, list(seeded.tables))
            except BaseException as exc:  # surfaced below
                errors.append(exc)

        threads = [threading.Thread(target=burst) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        assert errors == []
        assert hms.pool.peak_in_use == 2  # eight threads, never more than two connections in use
        assert hms.pool.opened == 2  # and those two were reused for all 40 batches
        assert hms.pool.open_connections == 2


def test_failover_to_the_next_uri(hive_metastore: HiveMetastore) -> None:
    with connector(f"thrift://127.0.0.1:{free_port()},{hive_metastore.uri}", retries=0) as hms:
        assert "default" in hms.list_namespaces()


def test_a_silent_server_times_out_on_read() -> None:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    accepted: list[socket.socket] = []
    thread = threading.Thread(target=lambda: accepted.append(server.accept()[0]), daemon=True)
    thread.start()
    try:
        hms = connector(f"thrift://127.0.0.1:{server.getsockname()[1]}", retries=0, read_timeout_s=0.5)
        started = time.monotonic()
        with pytest.raises(MetastoreUnavailableError) as info:
            hms.list_namespaces()
        assert time.monotonic() - started < 3 and "timed out" in str(info.value)
    finally:
        for conn in accepted:
            conn.close()
        server.close()


@pytest.fixture(scope="module")
def private_metastore(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A metastore of its own (file-backed Derby, fixed port) that a test may stop and start again."""
    workdir = tmp_path_factory.mktemp("hms_private")
    stack: dict[str, Any] = {"workdir": workdir}
    context = running_hive_metastore(workdir, persistent=True)
    stack["metastore"] = context.__enter__()
    stack["context"] = context
    try:
        yield stack
    finally:
        stack["context"].__exit__(None, None, None)


def test_metastore_stopped_mid_observation_then_recovers(private_metastore: dict[str, Any]) -> None:
    metastore: HiveMetastore = private_metastore["metastore"]
    client = metastore.client()
    for db in ("obs_a", "obs_b"):
        create_database(client, db, metastore.warehouse)
        for i in range(3):
            client.create_table(
                thrift_table(
                    db, f"t{i}", [("id", "bigint")], PARQUET, f"file://{metastore.warehouse}/{db}.db/t{i}"
                )
            )
    metastore.close_clients()

    hms = connector(metastore.uri, retries=2, backoff_s=0.05, pool_size=2)
    obs = TableFilter(include=("obs_*",))
    before = {t.qualified_name: t.data_version for t in hms.scan(obs, batch_size=1)}
    assert len(before) == 6

    observation = iter(hms.scan(obs, batch_size=1))  # six batches, at most two in flight
    seen = [next(observation) for _ in range(3)]
    assert [t.namespace for t in seen] == ["obs_a"] * 3
    private_metastore["context"].__exit__(None, None, None)  # the metastore stops
    started = time.monotonic()
    with pytest.raises(UnavailableError) as info:
        seen += list(observation)
    assert len(seen) < 6
    assert info.value.retryable and info.value.provider == "hive"
    assert time.monotonic() - started < 5

    # the same metastore (same port, same Derby database) comes back: the next observation works
    context = running_hive_metastore(private_metastore["workdir"], port=metastore.port, persistent=True)
    private_metastore["metastore"], private_metastore["context"] = context.__enter__(), context
    after = {
        t.qualified_name: t.data_version for t in hms.scan(TableFilter(include=("obs_*",)), batch_size=3)
    }
    assert after == before
    hms.close()


# --- the chokepoint and the debug output ----------------------------------------------------------


def test_config_comes_from_options_or_environment_through_one_chokepoint(
    hive_metastore: HiveMetastore,
) -> None:
    with pytest.raises(InvalidFieldError) as inferred:
        metastore_config("lake", None, {"uri": "http://nowhere"}, environ={})
    assert inferred.value.field == "type"
    provider, config = metastore_config("lake", None, {"uri": hive_metastore.uri}, environ={})
    assert provider == "hive" and getattr(config, "uri") == hive_metastore.uri  # noqa: B009
    from_env = connect_metastore("lake", "hive", {}, environ={"HIVE_METASTORE_URIS": hive_metastore.uri})
    assert "default" in from_env.list_namespaces()
    with pytest.raises(InvalidFieldError) as missing:
        metastore_config("lake", "hive", {}, environ={})
    error = missing.value
    assert (error.provider, error.operation, error.field) == ("hive", "configure", "uri")
    assert "FLOE_METASTORE_LAKE_URI" in str(error) and "HIVE_METASTORE_URIS" in str(error)
    with pytest.raises(InvalidFieldError) as password:
        metastore_config(
            "lake", "hive", {"uri": hive_metastore.uri, "auth": "plain", "user": "floe"}, environ={}
        )
    assert password.value.field == "password"


def test_debug_output_is_redacted_and_deterministic(hive_metastore: HiveMetastore) -> None:
    canary = "canary-" + unique("s3cr3t")
    environ = {
        "FLOE_METASTORE_LAKE_URI": hive_metastore.uri,
        "FLOE_METASTORE_LAKE_PASSWORD": canary,
        "FLOE_METASTORE_DEBUG": "1",
    }
    outputs = []
    for _ in range(2):
        stream = io.StringIO()
        built = connect_metastore(
            "lake", "hive", {"auth": "plain", "user": "floe"}, environ=environ, stream=stream
        )
        outputs.append(stream.getvalue())
    report = outputs[0]
    assert outputs[0] == outputs[1]
    assert canary not in report
    assert "provider = hive" in report and f"endpoint = {hive_metastore.uri}" in report
    assert (
        "auth = plain (SASL PLAIN, user floe, password set)" in report and "config.password = ***" in report
    )
    assert canary not in repr(built.config) and canary not in str(built.describe())
    # SASL PLAIN against this metastore (which speaks no SASL): without a SASL library a clear
    # configuration error, with one (pure-sasl, installed beside PyHive) the server hangs up and the
    # call fails as unavailable; neither carries the password
    with pytest.raises((ConfigurationError, MetastoreUnavailableError)) as info:
        built.list_namespaces()
    assert canary not in str(info.value) and canary not in repr(info.value)

    quiet = io.StringIO()
    connect_metastore("lake", "hive", {"uri": hive_metastore.uri}, environ={}, stream=quiet)
    assert quiet.getvalue() == ""


def test_column_model_is_provider_neutral() -> None:
    fields = set(Table.__dataclass_fields__)
    assert "provider" not in fields and "provider" not in set(StorageDescriptor.__dataclass_fields__)
    assert Column("a", "int") == Column("a", "int")


def test_table_filter_skips_namespaces_no_pattern_can_match() -> None:
    assert not TableFilter(include=("obs_*",)).may_match_namespace("default")
    assert TableFilter(include=("obs_*",)).may_match_namespace("obs_01")
    assert not TableFilter(include=("raw.*",)).may_match_namespace("raw2")
    assert TableFilter(include=("*.orders",)).may_match_namespace("anything")
    assert not TableFilter(include=("*",), exclude=("raw.*",)).may_match_namespace("raw")


def test_partition_predicates_compare_by_column_type_and_names_round_trip() -> None:
    assert PartitionPredicate("bucket", "<", "10").matches("9", "int")
    assert not PartitionPredicate("bucket", "<", "10").matches("9", "string")  # '9' > '10' as text
    assert PartitionPredicate("ds", "in", ("a", "b")).matches("b")
    assert not PartitionPredicate("ds", "!=", "x").matches("__HIVE_DEFAULT_PARTITION__")
    odd = Partition(("2024/01/01", "a=b"), None)
    name = odd.name(["ds", "k"])
    assert name == "ds=2024%2F01%2F01/k=a%3Db"
    assert parse_partition_name(name) == {"ds": "2024/01/01", "k": "a=b"}
