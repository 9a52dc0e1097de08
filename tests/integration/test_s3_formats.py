"""The ``s3`` source with ``file_type: orc`` and ``file_type: avro`` against moto's S3 server.

Real ORC (PyArrow) and Avro (fastavro) objects: discovery reads each file's schema from its tail
(ORC) or header (Avro) with ranged requests, the data version follows the objects, the tables
are readable through the source views (``readers/formats.py``) and ingest into Iceberg like
Parquet, incrementally.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import duckdb
import pytest

from floe_dagster.catalogs.sql import SqlCatalogPlugin
from floe_dagster.computes.duckdb_extensions import connect_with_extensions
from floe_dagster.ingest.table import ingest_table
from floe_dagster.metastores.s3 import S3MetastoreConnector
from floe_dagster.plugins.factory import connect_metastore
from floe_dagster.plugins.table_model import Column, ScanDescription, TableFilter
from floe_dagster.readers.duckdb_scan import default_extension_dir
from floe_dagster.readers.formats import create_view, storage_properties
from tests.fixtures.format_tables import avro_bytes, orc_bytes
from tests.fixtures.moto_server import MotoServer

pytestmark = pytest.mark.server


def connector(server: MotoServer, bucket: str, **overrides: Any) -> S3MetastoreConnector:
    options = {
        "bucket": bucket,
        "region": server.region,
        "endpoint": server.endpoint,
        "access_key_id": server.access_key_id,
        "secret_access_key": server.secret_access_key,
        **overrides,
    }
    made = connect_metastore("s3lake", "s3", options, environ={})
    assert isinstance(made, S3MetastoreConnector)
    return made


@pytest.fixture
def catalog(tmp_path: Path) -> SqlCatalogPlugin:
    config = SqlCatalogPlugin.config_model.model_validate(
        {"uri": f"sqlite:///{tmp_path}/catalog.db", "warehouse": str(tmp_path / "warehouse")}
    )
    return SqlCatalogPlugin("lake", config)


def iceberg_ids(catalog: SqlCatalogPlugin, table: str) -> list[int]:
    loaded = catalog.load_table(("raw_s3", table))
    return sorted(loaded.scan(selected_fields=("id",)).to_arrow().column("id").to_pylist())


def ingest(conn: S3MetastoreConnector, catalog: SqlCatalogPlugin, table: str) -> Any:
    objects = conn.discover(refresh=True).get(table, [])
    return ingest_table(conn, catalog, table, objects, namespace="raw_s3", commit_bytes=1 << 30)


@pytest.mark.parametrize(("file_type", "writer"), [("orc", orc_bytes), ("avro", avro_bytes)])
def test_orc_and_avro_objects_are_discovered_read_and_ingested_like_parquet(
    moto_server: MotoServer, moto_bucket: str, catalog: SqlCatalogPlugin, file_type: str, writer: Any
) -> None:
    s3 = moto_server.client("s3")
    s3.put_object(Bucket=moto_bucket, Key=f"sales/eu/a.{file_type}", Body=writer(range(0, 3)))
    s3.put_object(Bucket=moto_bucket, Key=f"sales/eu/b.{file_type}", Body=writer(range(3, 7)))
    s3.put_object(Bucket=moto_bucket, Key="sales/eu/notes.parquet", Body=b"another type: not listed")
    conn = connector(moto_server, moto_bucket, file_type=file_type)
    (table,) = conn.scan(TableFilter())
    assert table.name == "sales_eu" and table.storage.format == file_type
    assert [(c.name, c.type) for c in table.storage.columns] == [("id", "int64"), ("label", "string")]
    assert table.stats.file_count == 2
    assert table.stats.row_count == (7 if file_type == "orc" else None)  # ORC's tail counts rows
    assert conn.call_counts["get_object"] == 0  # schemas from ranged reads only

    con = connect_with_extensions(":memory:", default_extension_dir(), ["httpfs"])
    secret = conn.credentials.duckdb_secret_sql("s3src", scopes=[f"s3://{moto_bucket}"])
    con.execute(secret)
    create_view(
        con, "sales", ScanDescription.from_table(table), None, None, storage_properties(conn.credentials), {}
    )
    assert con.sql("SELECT count(*), sum(id) FROM sales").fetchone() == (7, 21)

    first = ingest(conn, catalog, "sales_eu")
    assert (first.read, first.rows) == (2, 7)
    assert iceberg_ids(catalog, "sales_eu") == list(range(7))
    version = conn.get_table(table.namespace, "sales_eu").data_version
    assert (
        connector(moto_server, moto_bucket, file_type=file_type)
        .get_table(table.namespace, "sales_eu")
        .data_version
        == version
    )

    time.sleep(1.1)  # the cursor is the objects' modification time
    s3.put_object(Bucket=moto_bucket, Key=f"sales/eu/c.{file_type}", Body=writer(range(7, 9)))
    again = connector(moto_server, moto_bucket, file_type=file_type)
    assert again.get_table(table.namespace, "sales_eu").data_version != version  # changes on append
    second = ingest(again, catalog, "sales_eu")
    assert (second.read, second.rows) == (1, 2)  # only the new object
    assert iceberg_ids(catalog, "sales_eu") == list(range(9))


@pytest.mark.parametrize("scheme", ["oss", "cosn", "s3a"])
def test_an_orc_table_at_an_s3_compatible_stores_scheme_is_read_at_the_metastores_endpoint(
    moto_server: MotoServer, moto_bucket: str, scheme: str
) -> None:
    """A Hive or Glue table on Alibaba OSS (``oss://``), Tencent COS (``cosn://``) or Hadoop's
    ``s3a://``: the S3 API at the metastore's endpoint (moto's here), through PyArrow's S3
    filesystem (``readers/stores/s3.py``), with the metastore's keys."""
    s3 = moto_server.client("s3")
    s3.put_object(Bucket=moto_bucket, Key=f"warehouse/{scheme}_sales/000000_0", Body=orc_bytes(range(0, 4)))
    s3.put_object(Bucket=moto_bucket, Key=f"warehouse/{scheme}_sales/000001_0", Body=orc_bytes(range(4, 6)))
    s3.put_object(Bucket=moto_bucket, Key=f"warehouse/{scheme}_sales/_SUCCESS", Body=b"")
    storage = storage_properties(connector(moto_server, moto_bucket).credentials)
    scan = ScanDescription(
        table="hive.sales",
        format="orc",
        location=f"{scheme}://{moto_bucket}/warehouse/{scheme}_sales",
        columns=(Column("id", "bigint"), Column("label", "string")),
    )
    con = connect_with_extensions(":memory:", default_extension_dir(), ["httpfs"])
    create_view(con, "sales", scan, None, None, storage, {})
    assert con.sql("SELECT count(*), sum(id), max(label) FROM sales").fetchone() == (6, 15, "l5")


def test_a_corrupt_orc_object_is_skipped_with_a_reason(moto_server: MotoServer, moto_bucket: str) -> None:
    s3 = moto_server.client("s3")
    s3.put_object(Bucket=moto_bucket, Key="logs/a.orc", Body=orc_bytes(range(3)))
    s3.put_object(Bucket=moto_bucket, Key="logs/b.orc", Body=b"ORC? no: just some bytes")
    (table,) = connector(moto_server, moto_bucket, file_type="orc").scan(TableFilter())
    assert table.stats.row_count == 3 and table.stats.file_count == 2


def test_file_type_names_the_formats_it_accepts(moto_server: MotoServer, moto_bucket: str) -> None:
    from floe_dagster.core.errors import FloeError

    with pytest.raises((FloeError, ValueError)) as info:
        connector(moto_server, moto_bucket, file_type="xlsx")
    message = str(info.value)
    assert "file_type" in message and "orc" in message and "avro" in message
    assert duckdb  # DuckDB reads the views above
