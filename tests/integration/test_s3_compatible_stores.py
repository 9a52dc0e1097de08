"""S3-compatible stores: DuckDB reads the ``s3`` source's tables on both S3 servers (moto and
s3rver) with the secret the metastore chokepoint makes, virtual-hosted addressing end to end on
s3rver, and the friendly errors a real refusal or a wrong endpoint give (no traceback: the
error's text says what to fix)."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from floe_dagster.catalogs.sql import SqlCatalogPlugin
from floe_dagster.core.errors import AuthenticationError, UnavailableError
from floe_dagster.ingest.table import ingest_table
from floe_dagster.metastores.s3 import S3MetastoreConnector
from floe_dagster.plugins.factory import connect_metastore
from floe_dagster.readers.duckdb_scan import scan_connection, select_sql
from tests.fixtures.moto_server import MotoServer
from tests.fixtures.s3rver_server import S3rverServer, free_port, resolve_localhost_subdomains

pytestmark = pytest.mark.server

CANARY_SECRET = "CANARY-s3compat-secret-Zt55-do-not-leak"


def parquet_bytes(ids: range) -> bytes:
    buffer = io.BytesIO()
    pq.write_table(pa.table({"id": pa.array(list(ids), pa.int64()), "tag": [f"t{i}" for i in ids]}), buffer)
    return buffer.getvalue()


def connector(server: MotoServer | S3rverServer, bucket: str, **overrides: Any) -> S3MetastoreConnector:
    options = {
        "bucket": bucket,
        "region": server.region,
        "endpoint": server.endpoint,
        "access_key_id": server.access_key_id,
        "secret_access_key": server.secret_access_key,
        "max_attempts": 2,
        **overrides,
    }
    made = connect_metastore("lake", "s3", options, environ={})
    assert isinstance(made, S3MetastoreConnector)
    return made


def test_duckdb_reads_the_s3_source_tables_with_the_chokepoint_secret(
    s3_store: MotoServer | S3rverServer,
) -> None:
    bucket = s3_store.create_bucket()
    s3 = s3_store.client("s3")
    s3.put_object(Bucket=bucket, Key="orders/part-0.parquet", Body=parquet_bytes(range(0, 4)))
    s3.put_object(Bucket=bucket, Key="orders/part-1.parquet", Body=parquet_bytes(range(4, 9)))
    conn = connector(s3_store, bucket, secret_access_key=s3_store.secret_access_key)
    scan = conn.describe_scan(conn.config.table_namespace, "orders")
    assert scan.location == f"s3://{bucket}/orders/*.parquet"
    con = scan_connection([scan], conn.credentials)
    rows = con.sql(f"SELECT count(*), sum(id), min(tag) FROM ({select_sql(scan)})").fetchall()
    assert rows == [(9, sum(range(9)), "t0")]
    secrets = con.sql("SELECT name, scope FROM duckdb_secrets()").fetchall()
    assert secrets == [("floe_scan", [f"s3://{bucket}"])]  # scoped to the bucket only


def test_virtual_hosted_addressing_lists_reads_and_ingests_on_s3rver(
    s3rver_server: S3rverServer, tmp_path: Path
) -> None:
    bucket = s3rver_server.create_bucket()
    s3 = s3rver_server.client("s3")
    for part in range(3):
        s3.put_object(
            Bucket=bucket, Key=f"events/p{part}.parquet", Body=parquet_bytes(range(part * 5, part * 5 + 5))
        )
    conn = connector(
        s3rver_server, bucket, endpoint=s3rver_server.virtual_endpoint, addressing_style="virtual"
    )
    hosts: list[str] = []
    paths: list[str] = []

    def record(request: Any, **_: Any) -> None:
        from urllib.parse import urlsplit

        parts = urlsplit(request.url)
        hosts.append(parts.netloc)
        paths.append(parts.path)

    catalog = SqlCatalogPlugin(
        "lake",
        SqlCatalogPlugin.config_model.model_validate(
            {"uri": f"sqlite:///{tmp_path}/catalog.db", "warehouse": str(tmp_path / "warehouse")}
        ),
    )
    with resolve_localhost_subdomains():
        conn.client().meta.events.register("before-send.s3", record)
        table = conn.get_table(conn.config.table_namespace, "events")
        report = ingest_table(
            conn, catalog, "events", conn.discover()["events"], namespace="raw_s3", commit_bytes=1 << 30
        )
    assert table.stats.row_count == 15 and report.read == 3
    assert hosts and set(hosts) == {f"{bucket}.s3.localhost:{s3rver_server.port}"}
    assert not any(path.startswith(f"/{bucket}") for path in paths)  # the bucket is in the host only
    loaded = catalog.load_table(("raw_s3", "events"))
    assert sorted(loaded.scan().to_arrow().column("id").to_pylist()) == list(range(15))


def test_an_unknown_access_key_is_refused_for_real_and_says_what_to_check(
    s3rver_server: S3rverServer,
) -> None:
    bucket = s3rver_server.create_bucket()
    conn = connector(s3rver_server, bucket, access_key_id="NOT-A-KEY", secret_access_key=CANARY_SECRET)
    with pytest.raises(AuthenticationError) as caught:
        conn.discover()
    text = str(caught.value)
    assert "access denied (InvalidAccessKeyId)" in text
    assert "check the credentials (mode: static)" in text and f"arn:aws:s3:::{bucket}" in text
    assert caught.value.provider == "s3" and caught.value.operation == "list_tables"
    assert CANARY_SECRET not in text and caught.value.__cause__ is None


def test_a_wrong_endpoint_is_unavailable_and_names_the_endpoint(s3rver_server: S3rverServer) -> None:
    nowhere = f"http://127.0.0.1:{free_port()}"
    conn = connector(s3rver_server, "some-bucket", endpoint=nowhere, max_attempts=1)
    with pytest.raises(UnavailableError) as caught:
        conn.discover()
    text = str(caught.value)
    assert f"S3 at {nowhere} is unavailable" in text and "check the endpoint and the network" in text
    assert caught.value.retryable and caught.value.__cause__ is None
