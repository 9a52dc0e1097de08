"""The conformance rows per format (``metastores/format_conformance.py``) on a real Hive Metastore
and on S3 prefixes in moto: ORC (partitioned), Avro, Delta and Hudi tables each read, pruned where
they have partitions, versioned the same without a change and differently after an append made
the way each format's writers append (Hive: new file + the statistics Hive writes; Delta:
delta-rs; Hudi: the spec-following test writer; S3: a new object)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from floe_dagster.metastores.conformance import FAIL, PASS
from floe_dagster.metastores.format_conformance import (
    FORMAT_CHECKS,
    NOT_RUN,
    check_formats,
    format_format_report,
    tables_by_format,
)
from floe_dagster.plugins.factory import connect_metastore
from floe_dagster.plugins.metastore import MetastoreConnector
from floe_dagster.plugins.table_model import TableFilter
from tests.contract.contracts import unique
from tests.fixtures.format_tables import (
    COLUMNS,
    avro_bytes,
    delta_append,
    moto_storage_options,
    orc_bytes,
    write_partitioned,
)
from tests.fixtures.hive_metastore import (
    AVRO,
    ORC,
    HiveMetastore,
    create_database,
    thrift_partition,
    thrift_table,
)
from tests.fixtures.hudi_writer import HudiTableWriter
from tests.fixtures.moto_server import MotoServer

pytestmark = pytest.mark.server
HUDI_INPUT = "org.apache.hudi.hadoop.HoodieParquetInputFormat"


def test_a_row_per_format_of_a_hive_metastore(hive_metastore: HiveMetastore, tmp_path: Path) -> None:
    client = hive_metastore.client()
    db = unique("fmtconf")
    root = create_database(client, db, hive_metastore.warehouse)
    events = root / "events_orc"
    write_partitioned(events, {"2024-05-01": range(3), "2024-05-02": range(10, 12)}, orc_bytes)
    orc_table = thrift_table(
        db, "events_orc", COLUMNS, ORC, f"file://{events}", partition_keys=[("ds", "string")]
    )
    client.create_table(orc_table)
    client.add_partitions(
        [
            thrift_partition(orc_table, [d], f"file://{events / f'ds={d}'}")
            for d in ("2024-05-01", "2024-05-02")
        ]
    )
    logs = root / "logs_avro"
    logs.mkdir()
    (logs / "000000_0").write_bytes(avro_bytes(range(4)))
    client.create_table(
        thrift_table(db, "logs_avro", COLUMNS, AVRO, f"file://{logs}", params={"numFiles": "1"})
    )
    delta = tmp_path / "sales_delta"
    delta_append(str(delta), range(3))
    client.create_table(
        thrift_table(
            db,
            "sales_delta",
            [("col", "array<string>")],
            AVRO,
            f"file://{delta}",
            params={"spark.sql.sources.provider": "delta"},
        )
    )
    hudi = HudiTableWriter(tmp_path / "orders_hudi")
    hudi.commit("20240501000000000", [{"id": 1, "label": "a", "ds": "2024-05-01"}])
    client.create_table(
        thrift_table(
            db, "orders_hudi", COLUMNS, (ORC[0], HUDI_INPUT, ORC[2]), f"file://{tmp_path / 'orders_hudi'}"
        )
    )
    hive_metastore.close_clients()

    def append(connector: MetastoreConnector, namespace: str, table: str, fmt: str) -> None:
        """Append as each format's writers do (Hive writes the new file's statistics)."""
        thrift = hive_metastore.client()
        if fmt == "orc":
            (events / "ds=2024-05-01" / "000001_0").write_bytes(orc_bytes(range(100, 102)))
            partition = thrift.get_partition(namespace, table, ["2024-05-01"])
            partition.parameters = {**(partition.parameters or {}), "numFiles": "2", "numRows": "5"}
            thrift.alter_partition(namespace, table, partition)
        elif fmt == "avro":
            (logs / "000001_0").write_bytes(avro_bytes(range(4, 6)))
            raw = thrift.get_table(namespace, table)
            raw.parameters = {**(raw.parameters or {}), "numFiles": "2", "numRows": "6"}
            thrift.alter_table(namespace, table, raw)
        elif fmt == "delta":
            delta_append(str(delta), range(3, 5))
        elif fmt == "hudi":
            hudi.commit("20240502000000000", [{"id": 2, "label": "b", "ds": "2024-05-01"}])
        hive_metastore.close_clients()

    connector = connect_metastore("legacy", "hive", {"uri": hive_metastore.uri}, environ={})
    try:
        tables = tables_by_format(connector, TableFilter(include=(f"{db}.*",)))
        assert sorted(tables) == ["avro", "delta", "hudi", "orc"]
        results = check_formats(connector, tables, append)
    finally:
        connector.close()
    report = format_format_report(results)
    status = {(r.provider, r.check): r.status for r in results}
    assert len(results) == 4 * len(FORMAT_CHECKS)
    assert not [r for r in results if r.status == FAIL], report
    assert status[("hive/avro", "prune")] == NOT_RUN  # not partitioned: said, not passed
    assert all(
        status[(f"hive/{fmt}", check)] == PASS for fmt in ("orc", "delta", "hudi") for check in FORMAT_CHECKS
    ), report
    assert "hive/orc" in report and "VERSION_ON_APPEND" in report


def test_s3_prefixes_of_orc_and_delta_and_a_check_without_a_writer_is_not_a_pass(
    moto_server: MotoServer, moto_bucket: str
) -> None:
    s3 = moto_server.client("s3")
    s3.put_object(Bucket=moto_bucket, Key="orc/sales/a.orc", Body=orc_bytes(range(3)))
    delta_uri = f"s3://{moto_bucket}/delta/sales"
    delta_append(delta_uri, range(3), moto_storage_options(moto_server))

    def connector(file_type: str, prefix: str) -> Any:
        return connect_metastore(
            "s3lake",
            "s3",
            {
                "bucket": moto_bucket,
                "region": moto_server.region,
                "endpoint": moto_server.endpoint,
                "access_key_id": moto_server.access_key_id,
                "secret_access_key": moto_server.secret_access_key,
                "path_prefix": prefix,
                "file_type": file_type,
            },
            environ={},
        )

    def append(conn: MetastoreConnector, namespace: str, table: str, fmt: str) -> None:
        if fmt == "orc":
            s3.put_object(Bucket=moto_bucket, Key="orc/sales/b.orc", Body=orc_bytes(range(3, 5)))
        else:
            delta_append(delta_uri, range(3, 5), moto_storage_options(moto_server))

    results = []
    for file_type, prefix in (("orc", "orc/"), ("delta", "delta/")):
        conn = connector(file_type, prefix)
        results += check_formats(conn, tables_by_format(conn), append)
    status = {(r.provider, r.check): r.status for r in results}
    assert not [r for r in results if r.status == FAIL], format_format_report(results)
    assert (
        status[("s3/orc", "version_on_append")] == PASS and status[("s3/delta", "version_on_append")] == PASS
    )
    assert status[("s3/orc", "prune")] == NOT_RUN and status[("s3/delta", "prune")] == PASS

    conn = connector("delta", "delta/")
    without_writer = check_formats(conn, tables_by_format(conn), None, ["version_on_append"])
    assert [r.status for r in without_writer] == [NOT_RUN]
    assert "needs a writer" in format_format_report(without_writer)
