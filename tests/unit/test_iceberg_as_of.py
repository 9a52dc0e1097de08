"""An Iceberg source pinned with ``as_of``: the view reads that snapshot (by id, or the snapshot
current at a timestamp), through ``iceberg_scan`` of the table's metadata file. A local SQLite
catalog (PyIceberg) writes two snapshots."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pyarrow as pa

from floe_dagster.plugins.table_model import ScanDescription
from floe_dagster.readers.formats import create_view, pin_current


def test_an_iceberg_table_read_at_its_first_snapshot_by_id_and_by_timestamp(tmp_path: Path) -> None:
    from pyiceberg.catalog.sql import SqlCatalog

    catalog = SqlCatalog("t", uri=f"sqlite:///{tmp_path}/c.db", warehouse=f"file://{tmp_path}/w")
    catalog.create_namespace("n")
    table = catalog.create_table("n.orders", schema=pa.schema([("id", pa.int64())]))
    table.append(pa.table({"id": pa.array([1, 2], pa.int64())}))
    first = catalog.load_table("n.orders").current_snapshot()
    assert first is not None
    table = catalog.load_table("n.orders")
    table.append(pa.table({"id": pa.array([3], pa.int64())}))
    table = catalog.load_table("n.orders")

    def scan(as_of: str | None) -> ScanDescription:
        options = {"as_of": as_of} if as_of is not None else {}
        return ScanDescription(
            table="n.orders",
            format="iceberg",
            location=table.location(),
            metadata_location=table.metadata_location,
            options=options,
        )

    con = duckdb.connect()
    create_view(con, "latest", scan(None), None, None, {}, {})
    create_view(con, "by_id", scan(str(first.snapshot_id)), None, None, {}, {})
    at = datetime.fromtimestamp(first.timestamp_ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    create_view(con, "by_time", scan(at), None, None, {}, {})
    assert con.sql("SELECT count(*) FROM latest").fetchone() == (3,)
    assert con.sql("SELECT count(*) FROM by_id").fetchone() == (2,)
    assert con.sql("SELECT count(*) FROM by_time").fetchone() == (2,)
    # the version a read of the current metadata file records: its current snapshot
    current = table.current_snapshot()
    assert current is not None
    assert pin_current(scan(None), {})[1] == str(current.snapshot_id)
