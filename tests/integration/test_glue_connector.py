"""The Glue metastore connector against moto's Glue + S3 server, and (opt-in) against real AWS.

The module seeds one moto database: Parquet tables whose files are real objects in moto's S3
(one unpartitioned, one partitioned by ``ds``), a CSV table, an ``s3a://`` table, an Iceberg
table written by PyIceberg's ``GlueCatalog``, and in a second database a table on ``hdfs://``
and a view (no location). DuckDB reads them back through httpfs from moto.

moto never throttles or denies: those answers are injected with botocore ``before-send`` hooks
on the connector's own client, so the connector's retry loop is what runs.
"""

from __future__ import annotations

import io
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pytest

from floe_dagster.core.errors import (
    AuthenticationError,
    InvalidFieldError,
    NotFoundError,
    NotSupportedError,
    UnavailableError,
)
from floe_dagster.metastores.glue import GlueMetastoreConnector, GlueUnavailableError, normalize_location
from floe_dagster.plugins.factory import connect_metastore
from floe_dagster.plugins.table_model import PartitionPredicate, TableFilter
from floe_dagster.readers.duckdb_scan import relation_sql, required_extensions
from tests.contract.contracts import MetastoreContract, unique
from tests.fixtures.glue_seed import (
    DAYS,
    SeededGlue,
    create_parquet_table,
    glue_connector,
    glue_options,
    moto_glue_catalog_properties,
    seed_glue,
)
from tests.fixtures.lanes import AWS_LANE_ENV, real_aws_settings
from tests.fixtures.moto_server import MotoServer

pytestmark = pytest.mark.server

CANARY = "CANARY-glue-secret-Hx42-do-not-leak"
AWS_ENV = AWS_LANE_ENV  # one set of names for both AWS lanes (tests/fixtures/lanes.py)


@pytest.fixture(scope="module")
def seeded_glue(moto_server: MotoServer) -> SeededGlue:
    return seed_glue(moto_server)


@pytest.fixture
def glue(seeded_glue: SeededGlue) -> GlueMetastoreConnector:
    return glue_connector(seeded_glue.server)


class TestGlueMetastoreConnector(MetastoreContract):
    @pytest.fixture
    def metastore(self, seeded_glue: SeededGlue) -> GlueMetastoreConnector:
        return glue_connector(seeded_glue.server)

    @pytest.fixture
    def existing_table(self, seeded_glue: SeededGlue) -> tuple[str, str]:
        return seeded_glue.db, "orders"


class _Body:
    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self._body


def inject(
    connector: GlueMetastoreConnector, operation: str, code: str, status: int = 400, times: int | None = None
) -> list[int]:
    """Answer ``operation`` with an AWS error ``times`` times (always when None); returns the calls."""
    from botocore.awsrequest import AWSResponse

    calls: list[int] = []

    def before_send(request: Any, **_: Any) -> AWSResponse | None:
        calls.append(len(calls) + 1)
        if times is not None and len(calls) > times:
            return None
        message = "Rate exceeded" if status != 400 or "Throttl" in code else "denied"
        if code == "AccessDeniedException":
            message = "User: arn:aws:iam::123456789012:user/x is not authorized to perform: glue:" + operation
        body = json.dumps({"__type": code, "message": message}).encode()
        headers = {"x-amzn-RequestId": "floe-test", "Content-Type": "application/x-amz-json-1.1"}
        return AWSResponse(request.url, status, headers, _Body(body))

    connector.client.meta.events.register(f"before-send.glue.{operation}", before_send)
    return calls


def record_params(connector: GlueMetastoreConnector, operation: str) -> list[dict[str, Any]]:
    seen: list[dict[str, Any]] = []
    connector.client.meta.events.register(
        f"provide-client-params.glue.{operation}", lambda params, **_: seen.append(dict(params))
    )
    return seen


# --- listing, batches, mapping ------------------------------------------------------------------


def test_lists_databases_and_tables_with_paged_calls(
    glue: GlueMetastoreConnector, seeded_glue: SeededGlue
) -> None:
    sent = record_params(glue, "GetTables")
    assert {seeded_glue.db, seeded_glue.bad_db} <= set(glue.list_namespaces())
    assert glue.list_tables(seeded_glue.db) == seeded_glue.tables
    assert glue.call_counts == {"GetDatabases": 1, "GetTables": 1}
    assert sent[0]["MaxResults"] == 100 and sent[0]["DatabaseName"] == seeded_glue.db


def test_scan_never_gets_one_table_at_a_time(glue: GlueMetastoreConnector, seeded_glue: SeededGlue) -> None:
    tables = list(glue.scan(TableFilter(include=(f"{seeded_glue.db}.*", f"{seeded_glue.bad_db}.*"))))
    assert [t.name for t in tables if t.namespace == seeded_glue.db] == seeded_glue.tables
    (view,) = [t for t in tables if t.namespace == seeded_glue.bad_db]  # a view is an (unreadable) table
    assert view.name == "a_view" and not view.readable and "view" in (view.unreadable_reason or "")
    assert "GetTable" not in glue.call_counts
    # one GetDatabases page, one GetTables page per database, one GetPartitions for `events`
    assert glue.call_counts == {"GetDatabases": 1, "GetTables": 2, "GetPartitions": 1}
    problems = {
        (p.tags()["operation"], type(p).__name__, getattr(p, "field", "")) for p in glue.scan_problems
    }
    # the HDFS table: a NotSupportedError naming the scheme and the table (issue 19)
    assert problems == {("scan", "NotSupportedError", "")}
    assert any("hdfs" in str(p) for p in glue.scan_problems)


def test_batch_get_is_one_get_tables_call_per_chunk(
    glue: GlueMetastoreConnector, seeded_glue: SeededGlue
) -> None:
    names = ["people_csv", "orders", "events"]
    assert [t.name for t in glue.get_tables(seeded_glue.db, names)] == names
    assert glue.call_counts["GetTables"] == 1 and "GetTable" not in glue.call_counts
    with pytest.raises(NotFoundError) as info:
        glue.get_tables(seeded_glue.db, ["orders", "not_there"])
    assert info.value.tags() == {"provider": "glue", "operation": "get_tables", "retryable": "false"}
    assert "not_there" in str(info.value)


def test_storage_descriptors_map_like_hms(glue: GlueMetastoreConnector, seeded_glue: SeededGlue) -> None:
    tables = {t.name: t for t in glue.get_tables(seeded_glue.db, seeded_glue.tables)}
    assert {n: t.storage.format for n, t in tables.items()} == {
        "events": "parquet",
        "ice_orders": "iceberg",
        "legacy_s3a": "parquet",
        "orders": "parquet",
        "people_csv": "csv",
    }
    assert tables["legacy_s3a"].storage.location == f"s3://{seeded_glue.bucket}/{seeded_glue.db}/legacy"
    assert tables["people_csv"].storage.options["delimiter"] == ","
    assert tables["people_csv"].stats.row_count == 2
    assert tables["events"].partition_spec.names == ("ds",) and tables["events"].stats.partition_count == 3
    assert tables["events"].stats.row_count == 12
    ice = tables["ice_orders"]
    assert ice.storage.options["metadata_location"] == seeded_glue.iceberg_metadata_location
    assert ice.data_version.startswith("metadata:")


def test_unsupported_location_scheme_is_an_explicit_error(
    glue: GlueMetastoreConnector, seeded_glue: SeededGlue
) -> None:
    with pytest.raises(NotSupportedError) as info:
        glue.get_table(seeded_glue.bad_db, "on_hdfs")
    assert (info.value.provider, info.value.operation, info.value.retryable) == ("glue", "get_table", False)
    assert "hdfs:// (HDFS / Ozone) locations are not supported yet" in str(info.value)
    assert f"table {seeded_glue.bad_db}.on_hdfs" in str(info.value)
    assert normalize_location("s3n://b/k", "t", "x") == "s3://b/k"
    # the other object stores' locations pass through to their readers
    for location in ("gs://b/k", "abfss://c@a.dfs.core.windows.net/k", "oss://b/k", "cosn://b-1250000000/k"):
        assert normalize_location(location, "t", "x") == location


def test_partitions_and_pruning(glue: GlueMetastoreConnector, seeded_glue: SeededGlue) -> None:
    partitions = glue.list_partitions(seeded_glue.db, "events")
    assert [p.values for p in partitions] == [(d,) for d in DAYS]
    pruned = glue.list_partitions(seeded_glue.db, "events", [PartitionPredicate("ds", ">=", DAYS[1])])
    assert [p.values for p in pruned] == [(d,) for d in DAYS[1:]]
    scan = glue.describe_scan(seeded_glue.db, "events", [PartitionPredicate("ds", "=", DAYS[2])])
    assert scan.pruned and [p.values for p in scan.partitions or ()] == [(DAYS[2],)]


def test_large_tables_are_listed_in_segments(glue: GlueMetastoreConnector, seeded_glue: SeededGlue) -> None:
    """moto answers in one page: the first answer gets a NextToken, so the segmented path runs.

    moto ignores ``Segment`` too (every segment returns every partition): the result is deduplicated.
    """
    sent = record_params(glue, "GetPartitions")
    first: list[bool] = []

    def more_pages(parsed: dict[str, Any], **_: Any) -> None:
        if not first:
            first.append(True)
            parsed["NextToken"] = "more"

    glue.client.meta.events.register("after-call.glue.GetPartitions", more_pages)
    partitions = glue.list_partitions(seeded_glue.db, "events")
    assert [p.values for p in partitions] == [(d,) for d in DAYS]
    assert glue.call_counts == {"GetPartitions": 1 + 4}
    segments = sorted(p["Segment"]["SegmentNumber"] for p in sent if "Segment" in p)
    assert segments == [0, 1, 2, 3] and all(p["Segment"]["TotalSegments"] == 4 for p in sent[1:])
    assert all(p["ExcludeColumnSchema"] for p in sent)


def split_pages(
    connector: GlueMetastoreConnector, operation: str, key: str, page_size: int | None = None
) -> list[dict[str, Any]]:
    """Make moto's one-page answers to ``operation`` real pages of ``MaxResults`` items.

    moto ignores ``MaxResults`` and returns everything at once, so ``_pages`` would never see a
    ``NextToken``. These botocore hooks (the same mechanism as the throttling injection) cut each
    answer to the requested page size and hand out a ``NextToken``; on the next request they take
    the token off before it reaches moto (which would refuse it) and serve the following page.
    ``page_size`` sets ``MaxResults`` on requests that carry none (``GetDatabases``). Returns the
    parameters each request was sent with.
    """
    sent: list[dict[str, Any]] = []

    def before(params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        if page_size is not None:
            params.setdefault("MaxResults", page_size)
        sent.append(dict(params))
        token = params.pop("NextToken", None)
        context["floe_offset"] = int(token.removeprefix("floe-page:")) if token else 0
        context["floe_size"] = params.get("MaxResults")

    def after(parsed: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        offset, size = context.get("floe_offset", 0), context.get("floe_size")
        items = parsed.get(key, [])
        if size is None:
            return
        parsed[key] = items[offset : offset + size]
        parsed.pop("NextToken", None)
        if offset + size < len(items):
            parsed["NextToken"] = f"floe-page:{offset + size}"

    connector.client.meta.events.register(f"provide-client-params.glue.{operation}", before)
    connector.client.meta.events.register(f"after-call.glue.{operation}", after)
    return sent


def test_get_tables_and_get_databases_are_followed_page_by_page(seeded_glue: SeededGlue) -> None:
    server = seeded_glue.server
    aws = server.client("glue")
    db = unique("glue_pages")
    aws.create_database(DatabaseInput={"Name": db})
    names = [f"t{i:02d}" for i in range(7)]
    for name in names:
        create_parquet_table(aws, db, name, f"s3://{seeded_glue.bucket}/{db}/{name}")
    glue = glue_connector(server, page_size=3)
    tables_sent = split_pages(glue, "GetTables", "TableList")
    assert glue.list_tables(db) == names  # every page followed: 3 + 3 + 1
    assert glue.call_counts == {"GetTables": 3}
    assert [p.get("NextToken") for p in tables_sent] == [None, "floe-page:3", "floe-page:6"]
    assert all(p["MaxResults"] == 3 and p["DatabaseName"] == db for p in tables_sent)

    scanned = [t.name for t in glue.scan(TableFilter(include=(f"{db}.*",)))]
    assert scanned == names and glue.call_counts["GetTables"] == 6 and "GetTable" not in glue.call_counts

    every = set(glue_connector(server).list_namespaces())
    databases = glue_connector(server)
    split_pages(databases, "GetDatabases", "DatabaseList", page_size=1)
    assert set(databases.list_namespaces()) == every and len(every) >= 3
    assert databases.call_counts == {"GetDatabases": len(every)}  # one page per database


def test_catalog_id_is_sent_with_every_call(seeded_glue: SeededGlue) -> None:
    glue = glue_connector(seeded_glue.server, catalog_id="123456789012")
    sent = record_params(glue, "GetTables")
    glue.list_tables(seeded_glue.db)
    assert sent[0]["CatalogId"] == "123456789012"


# --- DuckDB reads what the scan description says -------------------------------------------------


@pytest.fixture(scope="module")
def duck() -> Iterator[duckdb.DuckDBPyConnection]:
    from duckdb_extensions import import_extension

    con = duckdb.connect(config={"autoinstall_known_extensions": False})
    for extension in ("httpfs", "avro", "iceberg"):
        import_extension(extension, con=con)
        con.sql(f"LOAD {extension}")
    yield con
    con.close()


def test_duckdb_reads_glue_tables_from_s3(
    glue: GlueMetastoreConnector, seeded_glue: SeededGlue, duck: duckdb.DuckDBPyConnection
) -> None:
    duck.sql(glue.duckdb_secret_sql("glue_moto"))
    count = "SELECT count(*) FROM {}"
    assert duck.sql(count.format(relation_sql(glue.describe_scan(seeded_glue.db, "orders")))).fetchone() == (
        5,
    )
    assert duck.sql(
        count.format(relation_sql(glue.describe_scan(seeded_glue.db, "legacy_s3a")))
    ).fetchone() == (3,)
    people = relation_sql(glue.describe_scan(seeded_glue.db, "people_csv"))
    assert duck.sql(f"SELECT * FROM {people} ORDER BY 1").fetchall() == [(1, "ann"), (2, "bob")]
    events = glue.describe_scan(seeded_glue.db, "events", [PartitionPredicate("ds", ">", DAYS[0])])
    rows = duck.sql(f"SELECT ds, count(*) FROM {relation_sql(events)} GROUP BY ALL ORDER BY ALL").fetchall()
    assert rows == [(DAYS[1], 4), (DAYS[2], 4)]
    ice = glue.describe_scan(seeded_glue.db, "ice_orders")
    assert set(required_extensions(ice)) == {"avro", "iceberg", "httpfs"}  # httpfs: the files are on S3
    assert duck.sql(count.format(relation_sql(ice))).fetchone() == (2,)


# --- data versions ---------------------------------------------------------------------------------


def test_metadata_only_updates_keep_the_version(seeded_glue: SeededGlue) -> None:
    """A new description, owner or column comment (a new Glue table version, a new UpdateTime on
    AWS) is not a data change; new statistics or a new location are."""
    server = seeded_glue.server
    aws = server.client("glue")
    db = unique("glue_edits")
    aws.create_database(DatabaseInput={"Name": db})
    create_parquet_table(aws, db, "t", f"s3://{seeded_glue.bucket}/{db}/t")
    glue = glue_connector(server)
    before = glue.get_table(db, "t").data_version
    table = aws.get_table(DatabaseName=db, Name="t")["Table"]
    storage = table["StorageDescriptor"]
    commented = [{**c, "Comment": "described"} for c in storage["Columns"]]
    aws.update_table(
        DatabaseName=db,
        TableInput={
            "Name": "t",
            "Description": "orders as the shop sees them",
            "Owner": "someone-else",
            "StorageDescriptor": {**storage, "Columns": commented},
            "Parameters": table["Parameters"],
            "TableType": "EXTERNAL_TABLE",
        },
    )
    updated = aws.get_table(DatabaseName=db, Name="t")["Table"]
    assert updated["Description"] == "orders as the shop sees them"
    assert updated["VersionId"] != table["VersionId"]  # Glue made a new table version
    assert glue.get_table(db, "t").data_version == before
    aws.update_table(
        DatabaseName=db,
        TableInput={
            "Name": "t",
            "StorageDescriptor": {**storage, "Location": f"s3://{seeded_glue.bucket}/{db}/t_v2"},
            "Parameters": table["Parameters"],
            "TableType": "EXTERNAL_TABLE",
        },
    )
    assert glue.get_table(db, "t").data_version != before


def test_an_iceberg_commit_changes_the_version(seeded_glue: SeededGlue) -> None:
    from pyiceberg.catalog.glue import GlueCatalog

    server = seeded_glue.server
    catalog = GlueCatalog(
        "commit",
        **moto_glue_catalog_properties(server),
    )
    db = unique("glue_ice")
    catalog.create_namespace(db)
    schema = pa.schema([("id", pa.int64())])
    table = catalog.create_table((db, "events"), schema=schema, location=f"s3://{seeded_glue.bucket}/{db}/ev")
    table.append(pa.table({"id": pa.array([1], pa.int64())}))
    glue = glue_connector(server)
    first = glue.get_table(db, "events").data_version
    assert glue.get_table(db, "events").data_version == first
    catalog.load_table((db, "events")).append(pa.table({"id": pa.array([2], pa.int64())}))
    second = glue.get_table(db, "events").data_version
    assert second != first and glue.get_table(db, "events").data_version == second


def test_table_stats_and_the_catalog_name(glue: GlueMetastoreConnector, seeded_glue: SeededGlue) -> None:
    people = glue.table_stats(seeded_glue.db, "people_csv")
    assert people.row_count == 2 and people.partition_count == 0 and people.last_modified is not None
    events = glue.table_stats(seeded_glue.db, "events")
    assert events.row_count == 12 and events.partition_count == 3
    assert glue.call_counts == {"GetTable": 2, "GetPartitions": 1}
    with pytest.raises(NotFoundError) as info:
        glue.table_stats(seeded_glue.db, "nope")
    assert info.value.tags() == {"provider": "glue", "operation": "table_stats", "retryable": "false"}
    assert glue.get_table(seeded_glue.db, "orders").catalog == "lake"  # the metastore's name


def test_data_version_changes_with_the_data_only(seeded_glue: SeededGlue) -> None:
    server = seeded_glue.server
    aws = server.client("glue")
    db = unique("glue_versions")
    aws.create_database(DatabaseInput={"Name": db})
    create_parquet_table(aws, db, "a", f"s3://{seeded_glue.bucket}/{db}/a")
    create_parquet_table(aws, db, "p", f"s3://{seeded_glue.bucket}/{db}/p", partitioned=True)
    glue = glue_connector(server)

    def versions() -> dict[str, str]:
        return {t.name: t.data_version for t in glue.get_tables(db, ["a", "p"])}

    before = versions()
    assert versions() == before
    table = aws.get_table(DatabaseName=db, Name="a")["Table"]
    aws.update_table(
        DatabaseName=db,
        TableInput={
            "Name": "a",
            "StorageDescriptor": table["StorageDescriptor"],
            "Parameters": {**table["Parameters"], "numRows": "7"},
            "TableType": "EXTERNAL_TABLE",
        },
    )
    after_update = versions()
    assert after_update["a"] != before["a"] and after_update["p"] == before["p"]
    aws.batch_create_partition(
        DatabaseName=db,
        TableName="p",
        PartitionInputList=[{"Values": ["2024-02-01"], "StorageDescriptor": {"Location": "s3://x/p/ds=1"}}],
    )
    after_partition = versions()
    assert after_partition["p"] != before["p"] and after_partition["a"] == after_update["a"]


# --- failures --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "status"),
    [("ThrottlingException", 400), ("TooManyRequestsException", 400), ("InternalServiceException", 500)],
)
def test_throttling_is_retried_then_succeeds(seeded_glue: SeededGlue, code: str, status: int) -> None:
    glue = glue_connector(seeded_glue.server)
    calls = inject(glue, "GetTables", code, status, times=2)
    assert glue.list_tables(seeded_glue.db) == seeded_glue.tables
    assert len(calls) == 3 and glue.call_counts == {"GetTables": 3}


def test_throttling_that_never_ends_is_a_bounded_retryable_error(seeded_glue: SeededGlue) -> None:
    glue = glue_connector(seeded_glue.server, max_attempts=4, backoff_s=0.02, backoff_max_s=0.1)
    calls = inject(glue, "GetTables", "ThrottlingException")
    started = time.monotonic()
    with pytest.raises(UnavailableError) as info:
        glue.list_tables(seeded_glue.db)
    assert time.monotonic() - started < 2  # bounded: 3 waits of at most 0.1 s
    error = info.value
    assert isinstance(error, GlueUnavailableError)
    tags = {"provider": "glue", "operation": "list_tables", "retryable": "true", "attempts": "4"}
    assert error.tags() == tags
    assert error.attempts == 4  # as data, not only in the text
    assert "4 attempt(s)" in str(error) and "ThrottlingException" in str(error) and "GetTables" in str(error)
    assert len(calls) == 4 and glue.call_counts == {"GetTables": 4}


def test_access_denied_is_not_retried_and_names_the_permission(seeded_glue: SeededGlue) -> None:
    glue = glue_connector(seeded_glue.server)
    calls = inject(glue, "GetTables", "AccessDeniedException")
    with pytest.raises(AuthenticationError) as info:
        glue.list_tables(seeded_glue.db)
    assert len(calls) == 1
    assert info.value.tags() == {"provider": "glue", "operation": "list_tables", "retryable": "false"}
    assert "glue:GetTables" in str(info.value) and "static" in str(info.value)
    denied = inject(glue, "GetDatabases", "AccessDeniedException")
    with pytest.raises(AuthenticationError, match="glue:GetDatabases"):
        glue.list_namespaces()
    assert len(denied) == 1


def test_missing_entities_are_not_retried_and_named(
    glue: GlueMetastoreConnector, seeded_glue: SeededGlue
) -> None:
    with pytest.raises(NotFoundError) as info:
        glue.get_table(seeded_glue.db, "nope")
    assert f"table {seeded_glue.db}.nope" in str(info.value) and glue.call_counts == {"GetTable": 1}
    with pytest.raises(NotFoundError, match="database no_such_db"):
        glue.list_tables("no_such_db")


def test_unreachable_endpoint_is_retryable_after_bounded_attempts() -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    glue = connect_metastore(
        "lake",
        "glue",
        {
            "region": "us-east-1",
            "endpoint": f"http://127.0.0.1:{port}",
            "access_key_id": "k",
            "secret_access_key": "s",
            "max_attempts": 2,
            "backoff_s": 0.01,
            "connect_timeout_s": 1,
        },
        environ={},
    )
    with pytest.raises(UnavailableError) as info:
        glue.list_namespaces()
    assert info.value.retryable and "2 attempt(s)" in str(info.value)


# --- auth through the chokepoint -------------------------------------------------------------------


def test_region_comes_from_the_environment_or_is_reported_missing() -> None:
    with pytest.raises(InvalidFieldError) as info:
        connect_metastore("lake", "glue", {}, environ={})
    assert info.value.field == "region" and "AWS_REGION" in str(info.value)
    built = connect_metastore("lake", "glue", {}, environ={"AWS_DEFAULT_REGION": "eu-west-1"})
    assert built.endpoint() == "https://glue.eu-west-1.amazonaws.com"
    assert built.auth_strategy() == "default_chain"


def test_credential_modes_are_validated_like_the_glue_catalog() -> None:
    with pytest.raises(InvalidFieldError) as info:
        connect_metastore("lake", "glue", {"region": "us-east-1", "access_key_id": "AKIA"}, environ={})
    assert "secret_access_key" in str(info.value)
    with pytest.raises(InvalidFieldError) as info:
        connect_metastore(
            "lake",
            "glue",
            {"region": "us-east-1", "profile": "p", "access_key_id": "a", "secret_access_key": CANARY},
            environ={},
        )
    assert CANARY not in str(info.value)


def test_static_keys_with_session_token_and_redacted_debug(seeded_glue: SeededGlue) -> None:
    stream = io.StringIO()
    glue = connect_metastore(
        "lake",
        "glue",
        glue_options(seeded_glue.server, session_token=CANARY),
        environ={},
        debug=True,
        stream=stream,
    )
    assert seeded_glue.db in glue.list_namespaces()
    report = stream.getvalue()
    assert CANARY not in report and seeded_glue.server.secret_access_key not in report
    assert "auth = static" in report and "config.session_token = ***" in report
    assert glue.storage_properties()["s3.session-token"] == CANARY  # handed on, resolved once


def test_named_profile(seeded_glue: SeededGlue, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    server = seeded_glue.server
    credentials = tmp_path / "credentials"
    credentials.write_text(
        f"[floe]\naws_access_key_id = {server.access_key_id}\n"
        f"aws_secret_access_key = {server.secret_access_key}\n"
    )
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(credentials))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    glue = connect_metastore(
        "lake", "glue", {"region": server.region, "endpoint": server.endpoint, "profile": "floe"}, environ={}
    )
    assert seeded_glue.db in glue.list_namespaces() and glue.auth_strategy() == "profile"


def test_role_assumption_with_external_id_and_session_name(seeded_glue: SeededGlue) -> None:
    server = seeded_glue.server
    assumed: list[dict[str, Any]] = []
    glue = glue_connector(
        server,
        role_arn="arn:aws:iam::123456789012:role/floe-reader",
        external_id="floe-ext-1",
        session_name="floe-observe",
        sts_endpoint=server.endpoint,
    )
    import boto3

    original = boto3.session.Session.client

    def spy(self: Any, service: str, *args: Any, **kwargs: Any) -> Any:
        client = original(self, service, *args, **kwargs)
        if service == "sts":
            client.meta.events.register(
                "provide-client-params.sts.AssumeRole", lambda params, **_: assumed.append(params)
            )
        return client

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(boto3.session.Session, "client", spy)
        assert seeded_glue.db in glue.list_namespaces()
    assert assumed[0]["ExternalId"] == "floe-ext-1" and assumed[0]["RoleSessionName"] == "floe-observe"
    props = glue.storage_properties()
    assert props["s3.access-key-id"] != server.access_key_id  # the role's temporary keys
    import boto3 as aws

    identity = aws.client(
        "sts",
        endpoint_url=server.endpoint,
        region_name=server.region,
        aws_access_key_id=props["s3.access-key-id"],
        aws_secret_access_key=props["s3.secret-access-key"],
        aws_session_token=props["s3.session-token"],
    ).get_caller_identity()
    assert "floe-reader/floe-observe" in identity["Arn"]
    assert glue.auth_strategy() == "assume_role"


# --- real AWS (opt-in) ----------------------------------------------------------------------------


def test_real_aws_lane_skips_when_unset_and_fails_fast_when_half_set() -> None:
    with pytest.raises(pytest.skip.Exception) as skipped:
        real_aws_settings({})
    assert "FLOE_TEST_AWS_GLUE_DATABASE" in str(skipped.value)
    with pytest.raises(pytest.fail.Exception) as failed:
        real_aws_settings({"FLOE_TEST_AWS_ACCESS_KEY_ID": "x", "FLOE_TEST_AWS_REGION": "eu-west-1"})
    assert (
        "missing: FLOE_TEST_AWS_SECRET_ACCESS_KEY, FLOE_TEST_AWS_GLUE_DATABASE, FLOE_TEST_AWS_GLUE_WAREHOUSE"
        in str(failed.value)
    )


def test_real_aws_glue() -> None:
    settings = real_aws_settings(os.environ)
    glue = connect_metastore(
        "real",
        "glue",
        {
            "region": settings["FLOE_TEST_AWS_REGION"],
            "access_key_id": settings["FLOE_TEST_AWS_ACCESS_KEY_ID"],
            "secret_access_key": settings["FLOE_TEST_AWS_SECRET_ACCESS_KEY"],
            "session_token": os.environ.get("FLOE_TEST_AWS_SESSION_TOKEN") or None,
            "role_arn": os.environ.get("FLOE_TEST_AWS_ROLE_ARN") or None,
        },
        environ={},
    )
    db = settings["FLOE_TEST_AWS_GLUE_DATABASE"]
    assert db in glue.list_namespaces()
    names = glue.list_tables(db)
    tables = list(glue.scan(TableFilter(include=(f"{db}.*",))))
    assert len(tables) + len(glue.scan_problems) == len(names)
    assert "GetTable" not in glue.call_counts
