"""Apache Hudi copy-on-write tables read through hudi-rs: registered in a real Hive Metastore (as
Hudi's Hive sync registers them) and in moto's Glue, and under an S3 prefix (``file_type: hudi``).

The tables are written by ``tests/fixtures/hudi_writer.py`` (no Hudi writer installs here; it
follows the Hudi table spec) and read by hudi-rs, an independent reader: snapshot reads see each
record once at its latest version, time travel reads an earlier instant, incremental reads give
the records committed between two instants, and the data version is the latest completed instant.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import duckdb
import pytest

from floe_dagster.computes.duckdb_extensions import connect_with_extensions
from floe_dagster.core.errors import NotSupportedError
from floe_dagster.metastores.s3 import S3MetastoreConnector
from floe_dagster.plugins.factory import connect_metastore
from floe_dagster.plugins.table_model import ScanDescription, TableFilter
from floe_dagster.readers.duckdb_scan import default_extension_dir
from floe_dagster.readers.formats import create_view, detect_table_format, storage_properties
from floe_dagster.readers.hudi import read_incremental
from tests.contract.contracts import unique
from tests.fixtures.glue_seed import glue_options
from tests.fixtures.hive_metastore import (
    PARQUET,
    HiveMetastore,
    create_database,
    thrift_partition,
    thrift_table,
)
from tests.fixtures.hudi_writer import HudiTableWriter
from tests.fixtures.moto_server import MotoServer

pytestmark = pytest.mark.server

HUDI_COW = (PARQUET[0], "org.apache.hudi.hadoop.HoodieParquetInputFormat", PARQUET[2])
FIRST, SECOND, THIRD = "20240101000000000", "20240102000000000", "20240103000000000"


def write_orders(root: Path) -> HudiTableWriter:
    writer = HudiTableWriter(root)
    writer.commit(FIRST, [{"id": i, "label": f"a{i}", "ds": "2024-01-01"} for i in range(3)])
    writer.commit(
        SECOND,
        [{"id": 1, "label": "updated", "ds": "2024-01-01"}, {"id": 10, "label": "b", "ds": "2024-01-02"}],
    )
    return writer


def test_hudi_sync_and_spark_registrations_are_recognised_and_merge_on_read_is_refused() -> None:
    assert detect_table_format({}, PARQUET[0], HUDI_COW[1], {}) == ("hudi", {})
    assert detect_table_format({"spark.sql.sources.provider": "hudi"}, None, None, {}) == ("hudi", {})
    realtime = detect_table_format(
        {}, PARQUET[0], "org.apache.hudi.hadoop.realtime.HoodieParquetRealtimeInputFormat", {}
    )
    assert realtime == ("hudi", {"hudi_query_type": "realtime"})
    scan = ScanDescription(table="lake.orders_rt", format="hudi", location="/x", options=realtime[1])
    with pytest.raises(NotSupportedError) as info:
        create_view(duckdb.connect(), "rt", scan, None, None, {}, {})
    assert "lake.orders_rt" in str(info.value) and "merge-on-read" in str(info.value)


def test_a_hudi_table_in_a_hive_metastore_snapshot_time_travel_incremental_and_versions(
    hive_metastore: HiveMetastore, tmp_path: Path
) -> None:
    client = hive_metastore.client()
    db = unique("hudi")
    create_database(client, db, hive_metastore.warehouse)
    folder = tmp_path / "orders"
    writer = write_orders(folder)
    table = thrift_table(
        db,
        "orders",
        [("id", "bigint"), ("label", "string")],
        HUDI_COW,
        f"file://{folder}",
        partition_keys=[("ds", "string")],
    )
    client.create_table(table)
    client.add_partitions(
        [thrift_partition(table, [d], f"file://{folder}/ds={d}") for d in ("2024-01-01", "2024-01-02")]
    )
    hive_metastore.close_clients()

    hms = connect_metastore("legacy", "hive", {"uri": hive_metastore.uri}, environ={})
    try:
        described = hms.get_table(db, "orders")
        assert described.storage.format == "hudi" and described.data_version == SECOND
        assert hms.get_table(db, "orders").data_version == SECOND  # unchanged without a commit
        writer.commit(THIRD, [{"id": 20, "label": "c", "ds": "2024-01-02"}])
        assert hms.get_table(db, "orders").data_version == THIRD  # the latest completed instant
        (folder / ".hoodie" / "20240104000000000.inflight").write_text("")  # pending: not a version
        assert hms.get_table(db, "orders").data_version == THIRD
        scan = hms.describe_scan(db, "orders")
    finally:
        hms.close()

    con = duckdb.connect()
    create_view(con, "orders", scan, None, None, {}, {})
    rows = con.sql("SELECT id, label FROM orders ORDER BY id").fetchall()
    assert rows == [(0, "a0"), (1, "updated"), (2, "a2"), (10, "b"), (20, "c")]  # each record once
    assert con.sql("SELECT count(*) FROM orders WHERE ds = '2024-01-02'").fetchone() == (2,)
    pinned = ScanDescription(
        table=scan.table, format="hudi", location=scan.location, options={"as_of": FIRST}
    )
    create_view(con, "orders_first", pinned, None, None, {}, {})
    assert con.sql("SELECT id, label FROM orders_first ORDER BY id").fetchall() == [
        (0, "a0"),
        (1, "a1"),
        (2, "a2"),
    ]

    changed = read_incremental(scan.location, {}, FIRST, SECOND)  # (FIRST, SECOND]
    assert sorted(
        zip(changed.column("id").to_pylist(), changed.column("label").to_pylist(), strict=True)
    ) == [
        (1, "updated"),
        (10, "b"),
    ]


def upload(s3: Any, bucket: str, folder: Path, prefix: str) -> None:
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            s3.put_object(Bucket=bucket, Key=f"{prefix}/{path.relative_to(folder)}", Body=path.read_bytes())


def test_hudi_tables_in_glue_and_under_an_s3_prefix_on_moto(moto_server: MotoServer, tmp_path: Path) -> None:
    s3, glue = moto_server.client("s3"), moto_server.client("glue")
    bucket = moto_server.create_bucket("hudi")
    write_orders(tmp_path / "orders")
    upload(s3, bucket, tmp_path / "orders", "lake/orders")
    location = f"s3://{bucket}/lake/orders"

    db = unique("glue_hudi")
    glue.create_database(DatabaseInput={"Name": db})
    sd = {
        "InputFormat": HUDI_COW[1],
        "OutputFormat": HUDI_COW[2],
        "SerdeInfo": {"SerializationLibrary": HUDI_COW[0]},
        "Columns": [{"Name": "id", "Type": "bigint"}, {"Name": "label", "Type": "string"}],
        "Location": location,
    }
    glue.create_table(
        DatabaseName=db, TableInput={"Name": "orders", "TableType": "EXTERNAL_TABLE", "StorageDescriptor": sd}
    )
    lake = connect_metastore("lake", "glue", glue_options(moto_server), environ={})
    table = lake.get_table(db, "orders")
    assert (table.storage.format, table.data_version) == ("hudi", SECOND)

    prefix = connect_metastore(
        "s3lake",
        "s3",
        {
            "bucket": bucket,
            "region": moto_server.region,
            "endpoint": moto_server.endpoint,
            "access_key_id": moto_server.access_key_id,
            "secret_access_key": moto_server.secret_access_key,
            "path_prefix": "lake/",
            "file_type": "hudi",
        },
        environ={},
    )
    assert isinstance(prefix, S3MetastoreConnector)
    (found,) = prefix.scan(TableFilter())
    assert (found.name, found.storage.location, found.data_version) == (
        "lake_orders",
        location,
        SECOND,  # the latest completed instant
    )
    assert [c.name for c in found.storage.columns] == ["id", "label", "ds"]

    con = connect_with_extensions(":memory:", default_extension_dir(), ["httpfs"])
    con.execute(prefix.credentials.duckdb_secret_sql("s3src", scopes=[f"s3://{bucket}"]))
    storage = storage_properties(prefix.credentials)
    create_view(con, "from_prefix", ScanDescription.from_table(found), None, None, storage, {})
    create_view(con, "from_glue", ScanDescription.from_table(table), None, None, storage, {})
    expected = [(0, "a0"), (1, "updated"), (2, "a2"), (10, "b")]
    assert con.sql("SELECT id, label FROM from_prefix ORDER BY id").fetchall() == expected
    assert con.sql("SELECT id, label FROM from_glue ORDER BY id").fetchall() == expected
    assert json.dumps(storage)  # the properties are plain strings (they reach hudi-rs as storage options)
