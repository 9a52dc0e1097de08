"""The ``s3`` metastore and the incremental ingest into Iceberg, against two S3 servers: every
test that takes ``bucket`` runs once on moto's server and once on s3rver (``s3_store``).

Iceberg is a SQLite-backed ``SqlCatalog`` in a temporary folder. moto never denies, so access
denied is injected with a botocore ``before-send`` hook; a crash half way is an exception
injected into the N-th object read, or a file with another schema.
"""

from __future__ import annotations

import io
import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from floe_dagster.catalogs.sql import SqlCatalogPlugin
from floe_dagster.core.errors import AuthenticationError, NotFoundError
from floe_dagster.ingest.cursor import CURSOR_PROPERTY, Cursor, format_rfc3339_nanos, parse_rfc3339_nanos
from floe_dagster.ingest.table import ingest_table
from floe_dagster.metastores.object_tables import SchemaMismatchError
from floe_dagster.metastores.s3 import S3MetastoreConnector
from floe_dagster.plugins.factory import connect_metastore
from floe_dagster.plugins.table_model import TableFilter
from tests import object_sources
from tests.fixtures.moto_server import MotoServer
from tests.fixtures.s3rver_server import S3rverServer
from tests.object_source_checks import ObjectSourceChecks, Store, count_downloads_in_flight, spy_on_writer
from tests.object_sources import ingest_discovered, parquet_bytes, sql_catalog

pytestmark = pytest.mark.server

CANARY_SECRET = "CANARY-s3-secret-Kq81-do-not-leak"
CANARY_TOKEN = "CANARY-s3-token-Wp27-do-not-leak"

NAMESPACE = "raw_s3"  # where the tests ingest into


class Bucket:
    def __init__(self, server: MotoServer | S3rverServer, name: str) -> None:
        self.server, self.name = server, name
        self.s3 = server.client("s3")

    def put(self, key: str, body: bytes) -> None:
        self.s3.put_object(Bucket=self.name, Key=key, Body=body)

    def delete(self, key: str) -> None:
        self.s3.delete_object(Bucket=self.name, Key=key)


@pytest.fixture
def bucket(s3_store: MotoServer | S3rverServer) -> Bucket:
    """A fresh bucket on each S3 server in turn (moto, s3rver)."""
    return Bucket(s3_store, s3_store.create_bucket())


def connector(where: Bucket, **overrides: Any) -> S3MetastoreConnector:
    bucket = where
    options = {
        "bucket": bucket.name,
        "region": bucket.server.region,
        "endpoint": bucket.server.endpoint,
        "access_key_id": bucket.server.access_key_id,
        "secret_access_key": bucket.server.secret_access_key,
        **overrides,
    }
    made = connect_metastore("s3lake", "s3", options, environ={})
    assert isinstance(made, S3MetastoreConnector)
    return made


@pytest.fixture
def catalog(tmp_path: Path) -> SqlCatalogPlugin:
    return sql_catalog(tmp_path)


def ingest(conn: S3MetastoreConnector, catalog: SqlCatalogPlugin, table: str, commit_bytes: int = 1 << 30):
    return ingest_discovered(conn, catalog, table, NAMESPACE, commit_bytes)


def iceberg_ids(catalog: SqlCatalogPlugin, table: str) -> list[int]:
    return object_sources.iceberg_ids(catalog, NAMESPACE, table)


# --- discovery ------------------------------------------------------------------------------------


def test_tables_at_four_prefix_depths_with_footer_schemas_and_data_versions(bucket: Bucket) -> None:
    bucket.put("root-file.v1.parquet", parquet_bytes(range(3)))
    bucket.put("one/a.parquet", parquet_bytes(range(2)))
    bucket.put("one/b.parquet", parquet_bytes(range(2, 7)))
    bucket.put("two/levels/x.parquet", parquet_bytes(range(4)))
    bucket.put("three/level-s/deep.er/x.parquet", parquet_bytes(range(1)))
    bucket.put("one/notes.txt", b"not a table file")
    conn = connector(bucket)
    conn.page_size = 2
    tables = {t.name: t for t in conn.scan(TableFilter())}
    assert sorted(tables) == ["one", "root_file_v1", "three_level_s_deep_er", "two_levels"]
    assert conn.call_counts["list_objects"] >= 3  # paginated: 6 keys, 2 per page
    one = tables["one"]
    assert one.namespace == conn.config.table_namespace
    assert [(c.name, c.type) for c in one.storage.columns] == [("id", "int64"), ("label", "string")]
    assert one.stats.row_count == 7 and one.stats.file_count == 2
    assert one.storage.location == f"s3://{bucket.name}/one/*.parquet"
    assert tables["root_file_v1"].storage.location == f"s3://{bucket.name}/root-file.v1.parquet"
    # footers only: ranged reads, never a whole object
    assert conn.call_counts["get_object"] == 0 and conn.call_counts["get_object_range"] == 5

    version = one.data_version
    assert connector(bucket).get_table(one.namespace, "one").data_version == version  # stable
    bucket.put("one/c.parquet", parquet_bytes(range(7, 9)))
    added = connector(bucket).get_table(one.namespace, "one").data_version
    assert added != version
    bucket.put("one/c.parquet", parquet_bytes(range(7, 10)))
    assert connector(bucket).get_table(one.namespace, "one").data_version not in (version, added)
    bucket.delete("one/c.parquet")
    assert connector(bucket).get_table(one.namespace, "one").data_version == version


def test_schema_mismatch_stops_that_table_naming_both_files_and_columns(bucket: Bucket) -> None:
    bucket.put("good/a.parquet", parquet_bytes(range(2)))
    bucket.put("mixed/a.parquet", parquet_bytes(range(2)))
    bucket.put("mixed/b.parquet", parquet_bytes(range(2), extra="score", int_labels=True))
    conn = connector(bucket)
    with pytest.raises(SchemaMismatchError) as caught:
        conn.get_table(conn.config.table_namespace, "mixed")
    message = str(caught.value)
    assert (
        f"s3://{bucket.name}/mixed/a.parquet" in message and f"s3://{bucket.name}/mixed/b.parquet" in message
    )
    assert "column 'score' only in the second" in message
    assert "column 'label' is string in the first and int64 in the second" in message
    assert [t.name for t in conn.scan(TableFilter())] == ["good"]
    assert [type(p) for p in conn.scan_problems] == [SchemaMismatchError]


def test_missing_bucket_and_access_denied_say_what_to_check(bucket: Bucket) -> None:
    missing = connector(bucket, bucket="no-such-bucket-floe")
    with pytest.raises(NotFoundError) as caught:
        missing.list_tables(missing.config.table_namespace)
    assert "bucket 'no-such-bucket-floe' does not exist" in str(caught.value)
    assert "check metastores.s3lake.config.bucket" in str(caught.value)

    conn = connector(bucket, path_prefix="raw/")
    from botocore.awsrequest import AWSResponse

    class Raw:
        def stream(self, **_: Any) -> Iterator[bytes]:
            yield b"<Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>"

    def deny(**_: Any) -> AWSResponse:
        return AWSResponse("http://x", 403, {}, Raw())

    conn.client().meta.events.register("before-send.s3.ListObjectsV2", deny)
    with pytest.raises(AuthenticationError) as denied:
        conn.discover()
    text = str(denied.value)
    assert "access denied (AccessDenied)" in text and "check the credentials (mode: static)" in text
    assert f"s3:ListBucket on arn:aws:s3:::{bucket.name}" in text
    assert f"s3:GetObject on arn:aws:s3:::{bucket.name}/raw/*" in text


# --- ingest ---------------------------------------------------------------------------------------


def test_cursor_round_trips_in_rfc3339_with_nanoseconds() -> None:
    from datetime import UTC, datetime

    moment = datetime(2026, 3, 4, 5, 6, 7, 891234, tzinfo=UTC)
    assert format_rfc3339_nanos(moment) == "2026-03-04T05:06:07.891234000Z"
    assert parse_rfc3339_nanos("2026-03-04T05:06:07.891234567Z") == moment
    assert parse_rfc3339_nanos("2026-03-04T07:06:07+02:00") == moment.replace(microsecond=0)
    cursor = Cursor(moment, frozenset({"a", "b"}))
    assert Cursor.from_properties(cursor.properties()) == cursor


def test_incremental_runs_read_only_new_objects_and_a_no_change_run_reads_none(
    bucket: Bucket, catalog: SqlCatalogPlugin
) -> None:
    for part in range(3):
        bucket.put(f"events/part-{part}.parquet", parquet_bytes(range(part * 10, part * 10 + 10)))
    conn = connector(bucket)
    first = ingest(conn, catalog, "events")
    assert (first.read, first.rows, first.total_rows) == (3, 30, 30)
    assert iceberg_ids(catalog, "events") == list(range(30))
    properties = catalog.load_table(("raw_s3", "events")).properties
    assert properties[CURSOR_PROPERTY].endswith("000Z") and len(properties[CURSOR_PROPERTY]) == 30

    time.sleep(1.1)  # S3 keeps LastModified to the second: the new objects are later
    for part in (3, 4):
        bucket.put(f"events/part-{part}.parquet", parquet_bytes(range(part * 10, part * 10 + 10)))
    conn = connector(bucket)
    second = ingest(conn, catalog, "events")
    assert (second.new, second.read, second.rows, second.total_rows) == (2, 2, 20, 50)
    assert conn.call_counts["get_object"] == 2
    assert second.cursor.last_modified is not None and first.cursor.last_modified is not None
    assert second.cursor.last_modified > first.cursor.last_modified
    assert iceberg_ids(catalog, "events") == list(range(50))

    time.sleep(1.1)  # a third run that adds data again
    bucket.put("events/part-5.parquet", parquet_bytes(range(50, 57)))
    conn = connector(bucket)
    third = ingest(conn, catalog, "events")
    assert (third.listed, third.new, third.read, third.rows) == (6, 1, 1, 7)
    assert conn.call_counts["get_object"] == 1
    assert third.cursor.last_modified is not None and third.cursor.last_modified > second.cursor.last_modified
    assert iceberg_ids(catalog, "events") == list(range(57))  # scanned, not the snapshot summary

    conn = connector(bucket)
    unchanged = ingest(conn, catalog, "events")
    assert (unchanged.new, unchanged.read, unchanged.commits, unchanged.total_rows) == (0, 0, 0, 57)
    assert conn.call_counts["get_object"] == 0 and conn.call_counts["get_object_range"] == 0
    assert iceberg_ids(catalog, "events") == list(range(57))
    snapshots = catalog.load_table(("raw_s3", "events")).snapshots()
    assert len(snapshots) == 3  # one commit per run that had data, none for the no-change run


def test_malformed_and_deleted_objects_are_skipped_with_a_warning(
    bucket: Bucket, catalog: SqlCatalogPlugin, caplog: pytest.LogCaptureFixture
) -> None:
    bucket.put("mixed/0-good.parquet", parquet_bytes(range(0, 5)))
    bucket.put("mixed/1-broken.parquet", b"PAR1 this is not parquet at all PAR1")
    bucket.put("mixed/2-gone.parquet", parquet_bytes(range(100, 105)))
    bucket.put("mixed/3-good.parquet", parquet_bytes(range(5, 10)))
    conn = connector(bucket)
    listed = conn.discover()["mixed"]
    bucket.delete("mixed/2-gone.parquet")  # between listing and reading
    caplog.set_level(logging.INFO, logger="floe_dagster")
    report = ingest_table(conn, catalog, "mixed", listed, namespace="raw_s3", commit_bytes=1 << 30)
    assert report.read == 2 and iceberg_ids(catalog, "mixed") == list(range(10))
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("mixed/1-broken.parquet" in w and "malformed Parquet" in w for w in warnings)
    assert any("mixed/2-gone.parquet" in w and "deleted since it was listed" in w for w in warnings)
    infos = [r.getMessage() for r in caplog.records]
    assert any("mixed/3-good.parquet size=" in m and "rows=5" in m for m in infos)
    assert any("4 object(s) listed, 4 new" in m for m in infos)
    # skipped objects are behind the cursor: the next run reads nothing
    again = connector(bucket)
    assert ingest(again, catalog, "mixed").read == 0 and again.call_counts["get_object"] == 0


def test_a_crash_half_way_loses_and_duplicates_nothing(
    bucket: Bucket, catalog: SqlCatalogPlugin, monkeypatch: pytest.MonkeyPatch
) -> None:
    for part in range(8):
        bucket.put(f"crash/part-{part}.parquet", parquet_bytes(range(part * 10, part * 10 + 10)))
    conn = connector(bucket, concurrency=2)
    calls = {"n": 0}
    real = S3MetastoreConnector.read_object

    def dies_on_the_fifth(self: S3MetastoreConnector, obj: Any, *args: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 5:
            raise RuntimeError("injected crash")
        return real(self, obj, *args)

    monkeypatch.setattr(S3MetastoreConnector, "read_object", dies_on_the_fifth)
    with pytest.raises(RuntimeError, match="injected crash"):
        ingest(conn, catalog, "crash", commit_bytes=1)  # commit after every object
    monkeypatch.setattr(S3MetastoreConnector, "read_object", real)
    partial = iceberg_ids(catalog, "crash")
    assert 0 < len(partial) < 80 and len(partial) % 10 == 0
    assert partial == list(range(len(partial)))  # a prefix, in cursor order
    report = ingest(connector(bucket), catalog, "crash", commit_bytes=1)
    assert report.read == 8 - len(partial) // 10
    assert iceberg_ids(catalog, "crash") == list(range(80))


@pytest.mark.parametrize(
    ("concurrency", "threads", "expected"),
    [
        (50, None, 50),  # the default: 50 of the 60 reads at once, never more
        (-1, None, 60),  # no limit: every new object at once
        (-1, 40, 40),  # ... on a pool of UNLIMITED_THREADS threads (256; 40 here)
    ],
)
def test_concurrency_50_and_unlimited_on_the_ingest_path(
    bucket: Bucket,
    catalog: SqlCatalogPlugin,
    monkeypatch: pytest.MonkeyPatch,
    concurrency: int,
    threads: int | None,
    expected: int,
) -> None:
    import floe_dagster.core.parallel as parallel_module
    import floe_dagster.metastores.s3 as s3_module

    if threads is not None:  # the connector's pool and the ordered map's thread cap
        monkeypatch.setattr(s3_module, "UNLIMITED_THREADS", threads)
        monkeypatch.setattr(parallel_module, "UNLIMITED_THREADS", threads)
    for part in range(60):
        bucket.put(f"many/part-{part:02d}.parquet", parquet_bytes(range(part * 2, part * 2 + 2)))
    conn = connector(bucket, concurrency=concurrency)
    seen = count_downloads_in_flight(
        monkeypatch, conn, 0.5, gather=expected
    )  # then held: one more would show
    report = ingest(conn, catalog, "many")
    assert seen["max"] == expected
    assert report.read == 60 and iceberg_ids(catalog, "many") == list(range(120))


@pytest.mark.parametrize(
    ("rows_per_record", "batches"), [(100, [100] * 10), (500, [500, 500]), (300, [300, 300, 300, 100])]
)
def test_rows_per_record_is_the_batch_size_the_iceberg_writer_receives(
    bucket: Bucket,
    catalog: SqlCatalogPlugin,
    monkeypatch: pytest.MonkeyPatch,
    rows_per_record: int,
    batches: list[int],
) -> None:
    # 1000 rows in row groups of 256: the batches run across row groups
    buffer = io.BytesIO()
    pq.write_table(pa.table({"id": pa.array(range(1000), pa.int64())}), buffer, row_group_size=256)
    bucket.put("batches/a.parquet", buffer.getvalue())
    received = spy_on_writer(monkeypatch)
    report = ingest(connector(bucket, rows_per_record=rows_per_record), catalog, "batches")
    assert received == batches
    assert report.batches == len(batches)
    assert iceberg_ids(catalog, "batches") == list(range(1000))
    # the Iceberg file is written in row groups of its own, whatever the batch size
    files = catalog.load_table(("raw_s3", "batches")).inspect.files().column("file_path").to_pylist()
    assert [pq.ParquetFile(f.removeprefix("file://")).metadata.num_row_groups for f in files] == [1]


def data_file_row_groups(catalog: SqlCatalogPlugin, table: str) -> list[list[int]]:
    files = catalog.load_table(("raw_s3", table)).inspect.files().column("file_path").to_pylist()
    groups = []
    for path in sorted(files):
        metadata = pq.ParquetFile(path.removeprefix("file://")).metadata
        groups.append([metadata.row_group(i).num_rows for i in range(metadata.num_row_groups)])
    return groups


@pytest.mark.parametrize(
    ("file_bytes", "expected"),
    [
        (None, [[500, 500, 200]]),  # row groups run across objects and batches
        (8 * 1000, [[500, 500], [200]]),  # a new data file once ~8 kB of Arrow data went in
    ],
)
def test_row_groups_and_data_files_follow_the_tables_write_properties(
    bucket: Bucket, catalog: SqlCatalogPlugin, file_bytes: int | None, expected: list[list[int]]
) -> None:
    for part in range(3):
        ids = range(part * 400, part * 400 + 400)
        bucket.put(f"groups/part-{part}.parquet", pq_ids(ids))
    properties = {"write.parquet.row-group-limit": "500"}
    if file_bytes is not None:
        properties["write.target-file-size-bytes"] = str(file_bytes)
    conn = connector(bucket, rows_per_record=128, ingest={"table_properties": properties})
    report = ingest(conn, catalog, "groups")
    assert report.batches == 12  # 400 rows: 128, 128, 128, 16 per object
    assert data_file_row_groups(catalog, "groups") == expected
    assert iceberg_ids(catalog, "groups") == list(range(1200))


def pq_ids(ids: range) -> bytes:
    buffer = io.BytesIO()
    pq.write_table(pa.table({"id": pa.array(list(ids), pa.int64())}), buffer)
    return buffer.getvalue()


def test_footers_are_read_with_ranged_requests_of_a_fraction_of_the_object(bucket: Bucket) -> None:
    import numpy as np

    rows = 200_000  # about 3 MB of incompressible values, far more than the 64 KiB probe
    generator = np.random.default_rng(7)
    big = pa.table({"id": pa.array(np.arange(rows)), "value": pa.array(generator.random(rows))})
    buffer = io.BytesIO()
    pq.write_table(big, buffer, compression="none")
    body = buffer.getvalue()
    assert len(body) > 3_000_000
    bucket.put("large/big.parquet", body)
    conn = connector(bucket)
    received: list[tuple[int, str]] = []

    def measure(http_response: Any, parsed: Any, **_: Any) -> None:
        # what S3 actually sent: the response's own Content-Length, not floe's counters
        received.append((int(http_response.headers["Content-Length"]), parsed.get("ContentRange", "")))

    conn.client().meta.events.register("after-call.s3.GetObject", measure)
    table = conn.get_table(conn.config.table_namespace, "large")
    assert table.stats.row_count == rows
    assert [(c.name, c.type) for c in table.storage.columns] == [("id", "int64"), ("value", "double")]
    assert len(received) == 1 and received[0][1].startswith(f"bytes {len(body) - 64 * 1024}-")
    assert sum(size for size, _ in received) == 64 * 1024 < len(body) // 40


def test_a_footer_larger_than_the_probe_takes_one_more_ranged_request(bucket: Bucket) -> None:
    columns = {f"column_with_a_long_name_{i:04d}": pa.array([i] * 50, pa.int64()) for i in range(1500)}
    buffer = io.BytesIO()
    pq.write_table(pa.table(columns), buffer)
    body = buffer.getvalue()
    footer = int.from_bytes(body[-8:-4], "little")
    assert footer > 64 * 1024
    bucket.put("wide/cols.parquet", body)
    conn = connector(bucket)
    received: list[int] = []
    conn.client().meta.events.register(
        "after-call.s3.GetObject",
        lambda http_response, **_: received.append(int(http_response.headers["Content-Length"])),
    )
    table = conn.get_table(conn.config.table_namespace, "wide")
    assert len(table.storage.columns) == 1500 and table.stats.row_count == 50
    assert received == [64 * 1024, footer + 8]  # the probe, then exactly the footer
    assert sum(received) < len(body)


def test_ingested_tables_are_written_with_the_configured_codec(
    bucket: Bucket, catalog: SqlCatalogPlugin
) -> None:
    bucket.put("codec/a.parquet", parquet_bytes(range(10)))
    ingest(connector(bucket), catalog, "codec")
    properties = catalog.load_table(("raw_s3", "codec")).properties
    assert properties["write.parquet.compression-codec"] == "zstd"
    assert properties["write.parquet.compression-level"] == "1"
    assert properties["write.parquet.dict-size-bytes"] == str(256 * 1024)

    time.sleep(1.1)
    bucket.put("codec/b.parquet", parquet_bytes(range(10, 20)))
    conn = connector(
        bucket,
        ingest={
            "compression_codec": "snappy",
            "table_properties": {"write.target-file-size-bytes": "1048576"},
        },
    )
    ingest(conn, catalog, "codec")
    loaded = catalog.load_table(("raw_s3", "codec"))
    assert loaded.properties["write.parquet.compression-codec"] == "snappy"
    assert "write.parquet.compression-level" not in loaded.properties  # snappy takes no level
    assert loaded.properties["write.target-file-size-bytes"] == "1048576"
    newest = [f for f in loaded.inspect.files().column("file_path").to_pylist()]
    codecs = {
        pq.ParquetFile(path.removeprefix("file://")).metadata.row_group(0).column(0).compression
        for path in newest
    }
    assert codecs == {"ZSTD", "SNAPPY"}  # the first file zstd, the second written after the change
    assert iceberg_ids(catalog, "codec") == list(range(20))

    with pytest.raises(Exception, match="compression_codec"):
        connector(bucket, ingest={"compression_codec": "lzo"})


# --- CSV and JSON: inferred schemas ---------------------------------------------------------------


def iceberg_rows(catalog: SqlCatalogPlugin, table: str) -> list[dict[str, Any]]:
    rows = catalog.load_table(("raw_s3", table)).scan().to_arrow().to_pylist()
    return sorted(rows, key=lambda row: row["id"])


def test_csv_files_whose_columns_cannot_be_widened_are_a_schema_mismatch(bucket: Bucket) -> None:
    bucket.put("codes/a.csv", b"id,code\n1,10\n")
    bucket.put("codes/b.csv", b"id,code\n2,AB-7\n")
    conn = connector(bucket, file_type="csv")
    with pytest.raises(SchemaMismatchError) as caught:
        conn.get_table(conn.config.table_namespace, "codes")
    message = str(caught.value)
    assert f"s3://{bucket.name}/codes/a.csv" in message and f"s3://{bucket.name}/codes/b.csv" in message
    assert "column 'code' is int64 in the first and string in the second" in message


@pytest.mark.parametrize("file_type", ["csv", "json"])
def test_rows_per_record_cuts_csv_and_json_into_exact_batches(
    bucket: Bucket, catalog: SqlCatalogPlugin, monkeypatch: pytest.MonkeyPatch, file_type: str
) -> None:
    if file_type == "csv":
        body = "id,label\n" + "".join(f"{i},row {i}\n" for i in range(1000))
    else:
        body = "".join(f'{{"id": {i}, "label": "row {i}"}}\n' for i in range(1000))
    bucket.put(f"text/a.{file_type}", body.encode())
    received = spy_on_writer(monkeypatch)
    report = ingest(connector(bucket, file_type=file_type, rows_per_record=300), catalog, "text")
    assert received == [300, 300, 300, 100] and report.batches == 4
    assert iceberg_ids(catalog, "text") == list(range(1000))


def test_canary_secrets_appear_in_no_output(
    bucket: Bucket,
    catalog: SqlCatalogPlugin,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Everything at INFO (what a run shows), floe's own loggers at DEBUG. botocore's DEBUG log
    # prints signed request headers, session token included: keep it off in production.
    caplog.set_level(logging.INFO)
    caplog.set_level(logging.DEBUG, logger="floe_dagster")
    bucket.put("secret/a.parquet", parquet_bytes(range(3)))
    bucket.put("secret/b.parquet", b"broken")
    conn = connector(bucket, secret_access_key=CANARY_SECRET, session_token=CANARY_TOKEN)
    texts = [conn.debug_report(), repr(conn.config), str(conn.diagnostics())]
    report = ingest(conn, catalog, "secret")
    assert report.read == 1
    list(conn.scan(TableFilter()))
    for failing in (connector(bucket, bucket="no-such-bucket-canary", secret_access_key=CANARY_SECRET),):
        with pytest.raises(NotFoundError) as caught:
            failing.discover()
        texts.append(str(caught.value))
    texts += [r.getMessage() for r in caplog.records]
    captured = capsys.readouterr()
    texts += [captured.out, captured.err]
    properties = catalog.load_table(("raw_s3", "secret")).properties
    texts.append(str(properties))
    everything = "\n".join(texts)
    assert "secret/b.parquet" in everything  # the warning is there ...
    assert CANARY_SECRET not in everything and CANARY_TOKEN not in everything  # ... the secrets are not


# --- Dagster: observable sources and ingest assets from a manifest ----------------------------------

MANIFEST = """\
apiVersion: floe.dev/v1
kind: Manifest
metadata: {{name: s3-ingest-test}}
state_dir: .floe
catalogs:
  lake: {{type: sql, config: {{uri: "sqlite:///.floe/catalog.db", warehouse: .floe/warehouse}}}}
computes:
  approved: [duckdb]
  default: duckdb
  targets: {{duckdb: {{type: duckdb, config: {{path: ":memory:"}}}}}}
metastores:
  landing:
    type: s3
    config:
      bucket: {bucket}
      region: {region}
      endpoint: {endpoint}
      access_key_id: {key}
      secret_access_key: ${{env:FLOE_TEST_S3_SECRET}}
      session_token: ${{env:FLOE_TEST_S3_TOKEN}}
      concurrency: 4
      ingest: {{enabled: true, namespace: raw_s3}}
transforms: {{dbt_project: dbt, catalog: lake}}
"""


def test_dagster_observes_s3_tables_and_ingests_them_incrementally(
    bucket: Bucket, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from dagster import AssetKey, AssetSelection, Definitions, define_asset_job, instance_for_test

    from floe_dagster.dagster_stage.definitions import build_resources
    from floe_dagster.dagster_stage.ingest import ingest_assets
    from floe_dagster.dagster_stage.sources import observable_sources
    from floe_dagster.manifest.loader import load_manifest
    from floe_dagster.metastores.state import write_state
    from floe_dagster.plan.dbt_project import profiles_dir

    caplog.set_level(logging.INFO)
    monkeypatch.setenv("FLOE_TEST_S3_SECRET", CANARY_SECRET)
    monkeypatch.setenv("FLOE_TEST_S3_TOKEN", CANARY_TOKEN)
    (tmp_path / "dbt").mkdir()
    (tmp_path / "dbt" / "dbt_project.yml").write_text("name: s3test\nversion: '1'\nprofile: s3test\n")
    manifest = tmp_path / "manifest.yaml"
    server = bucket.server
    manifest.write_text(
        MANIFEST.format(
            bucket=bucket.name, region=server.region, endpoint=server.endpoint, key=server.access_key_id
        )
    )
    bucket.put("orders/2026/01/part-0.parquet", parquet_bytes(range(0, 10)))
    bucket.put("orders/2026/01/part-1.parquet", parquet_bytes(range(10, 20)))
    bucket.put("customers.parquet", parquet_bytes(range(0, 5)))
    loaded = load_manifest(manifest, check_assignments=False)
    profiles_dir(loaded).mkdir(parents=True)  # build_resources' dbt resource wants one (no dbt runs)
    (profiles_dir(loaded) / "profiles.yml").write_text("s3test: {target: x, outputs: {}}\n")
    state = write_state(loaded).state
    namespace = loaded.plugin_config("metastores", "landing").table_namespace  # type: ignore[attr-defined]
    observe = observable_sources(loaded, "landing", state.tables("landing"))
    ingest = ingest_assets(loaded, "landing", state.tables("landing"), observe.keys if observe else ())
    assert observe is not None and ingest is not None
    assert observe.keys == {
        AssetKey(["landing", namespace, "customers"]),
        AssetKey(["landing", namespace, "orders_2026_01"]),
    }
    orders = AssetKey(["lake", "raw_s3", "orders_2026_01"])
    assert ingest.keys == {orders, AssetKey(["lake", "raw_s3", "customers"])}
    assert ingest.asset_deps[orders] == {AssetKey(["landing", namespace, "orders_2026_01"])}
    defs = Definitions(
        assets=[observe, ingest],
        resources=build_resources(loaded),
        jobs=[
            define_asset_job("observe", selection=AssetSelection.assets(observe)),
            define_asset_job("ingest", selection=AssetSelection.assets(ingest)),
        ],
    )
    with instance_for_test() as instance:
        assert defs.resolve_job_def("observe").execute_in_process(instance=instance).success
        record = instance.get_latest_data_version_record(
            AssetKey(["landing", namespace, "orders_2026_01"]), is_source=True
        )
        assert record is not None
        assert defs.resolve_job_def("ingest").execute_in_process(instance=instance).success
        first = instance.get_latest_materialization_event(orders)
        assert first is not None and first.asset_materialization is not None
        metadata = first.asset_materialization.metadata
        assert metadata["floe/objects_read"].value == 2 and metadata["dagster/row_count"].value == 20
        assert metadata["floe/batches"].value == 2  # 10 rows per object, rows_per_record 500
        assert set(metadata["floe/timings"].value) >= {"decoding", "writing (writer thread)"}
        assert str(metadata["floe/cursor"].value).endswith("000Z")

        time.sleep(1.1)
        bucket.put("orders/2026/01/part-2.parquet", parquet_bytes(range(20, 25)))
        result = defs.resolve_job_def("ingest").execute_in_process(
            instance=instance, asset_selection=[orders]
        )
        assert result.success
        second = instance.get_latest_materialization_event(orders)
        assert second is not None and second.asset_materialization is not None
        metadata = second.asset_materialization.metadata
        assert metadata["floe/objects_read"].value == 1 and metadata["dagster/row_count"].value == 25
        assert metadata["floe/cursor"].value > first.asset_materialization.metadata["floe/cursor"].value

        logs = [e.message or "" for e in instance.all_logs(result.run_id)]
        assert any("part-2.parquet size=" in line and "rows=5" in line for line in logs)
        everything = "\n".join(
            [*logs, *[r.getMessage() for r in caplog.records]]
            + [str(e.dagster_event) for e in instance.all_logs(result.run_id)]
        )
        assert CANARY_SECRET not in everything and CANARY_TOKEN not in everything


def test_ingest_assets_depend_on_the_mapped_source_keys(
    bucket: Bucket, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With the manifest's asset_key_prefix / asset_keys, each ingest asset follows its source's key."""
    from dagster import AssetKey

    from floe_dagster.dagster_stage.ingest import ingest_assets
    from floe_dagster.dagster_stage.sources import observable_sources
    from floe_dagster.manifest.loader import load_manifest
    from floe_dagster.metastores.state import write_state

    monkeypatch.setenv("FLOE_TEST_S3_SECRET", CANARY_SECRET)
    monkeypatch.setenv("FLOE_TEST_S3_TOKEN", CANARY_TOKEN)
    (tmp_path / "dbt").mkdir()
    (tmp_path / "dbt" / "dbt_project.yml").write_text("name: s3test\nversion: '1'\nprofile: s3test\n")
    server = bucket.server
    text = MANIFEST.format(
        bucket=bucket.name, region=server.region, endpoint=server.endpoint, key=server.access_key_id
    )
    mapping = '    asset_key_prefix: [bronze]\n    asset_keys: {"%s.customers": "crm/customers"}\n'
    manifest = tmp_path / "manifest.yaml"
    manifest.write_text(text)  # to learn the namespace, then with the mapping
    namespace = load_manifest(manifest, check_assignments=False).plugin_config("metastores", "landing")
    namespace = namespace.table_namespace  # type: ignore[attr-defined]
    manifest.write_text(text.replace("    type: s3\n", "    type: s3\n" + mapping % namespace))
    bucket.put("orders/2026/01/part-0.parquet", parquet_bytes(range(0, 10)))
    bucket.put("customers.parquet", parquet_bytes(range(0, 5)))
    loaded = load_manifest(manifest, check_assignments=False)
    state = write_state(loaded).state

    observe = observable_sources(loaded, "landing", state.tables("landing"))
    ingest = ingest_assets(loaded, "landing", state.tables("landing"), observe.keys if observe else ())

    assert observe is not None and ingest is not None
    orders_source = AssetKey(["bronze", namespace, "orders_2026_01"])
    assert observe.keys == {orders_source, AssetKey(["crm", "customers"])}
    assert ingest.asset_deps[AssetKey(["lake", "raw_s3", "orders_2026_01"])] == {orders_source}
    assert ingest.asset_deps[AssetKey(["lake", "raw_s3", "customers"])] == {AssetKey(["crm", "customers"])}


# --- the object-store source's shared cases (tests/object_source_checks.py) -----------------------


@pytest.fixture
def store(bucket: Bucket, catalog: SqlCatalogPlugin) -> Store:
    return Store(
        put=bucket.put,
        delete=bucket.delete,
        connector=lambda **overrides: connector(bucket, **overrides),
        catalog=catalog,
        namespace=NAMESPACE,
        root=f"s3://{bucket.name}",
    )


class TestObjectSourceChecks(ObjectSourceChecks):
    """Every check of tests/object_source_checks.py on moto and on s3rver."""
