"""Read what the metastore registers (issue 18, item 4), on the real Hive Metastore and moto Glue/S3.

A partitioned table is read from its partitions' registered locations (one registered outside
the table folder, under a name that is not ``k=v``), never from a folder nobody registered (one
sits beside the others, holding rows that must not appear), an empty registered partition reads
as no rows, and partition pruning keeps working: a filter on the partition column never opens a
file of another partition (the files of the partition filtered out are made unreadable to prove
it). dbt models on DuckDB read the source views; the views are also checked on their own.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from floe_dagster.computes.duckdb_extensions import connect_with_extensions
from floe_dagster.manifest.loader import LoadedManifest, load_manifest
from floe_dagster.readers.duckdb_scan import default_extension_dir
from floe_dagster.readers.metastore_views import create_source_views, resolve_source_views
from floe_dagster.transforms.dbt_manifest import run_dbt
from floe_dagster.transforms.profiles import write_profiles
from tests.contract.contracts import unique
from tests.fixtures.glue_seed import PARQUET_SD, glue_options
from tests.fixtures.hive_metastore import (
    PARQUET,
    HiveMetastore,
    create_database,
    thrift_partition,
    thrift_table,
)
from tests.fixtures.metastore_projects import dbt_sources, glue_block, hive_block, write_project
from tests.fixtures.moto_server import MotoServer

pytestmark = pytest.mark.server

MODEL = "select ds, count(*) as n, sum(id) as total from {{ source('src', 'sales') }} group by ds"
# ds -> ids: inside the table folder, registered outside it, registered but empty
INSIDE, OUTSIDE, EMPTY, UNREGISTERED = "2024-01-01", "2024-01-02", "2024-01-03", "2024-01-09"
EXPECTED = [(INSIDE, 2, 3), (OUTSIDE, 2, 21)]


def pages_broken(ids: list[int]) -> bytes:
    """A Parquet file whose footer (the schema a reader may read at bind time) is intact and whose
    data pages are garbage: any reader that scans it fails."""
    data = parquet(ids)
    footer = int.from_bytes(data[-8:-4], "little") + 8
    return data[:4] + b"\xff" * (len(data) - 4 - footer) + data[-footer:]


def parquet(ids: list[int]) -> bytes:
    buffer = io.BytesIO()
    pq.write_table(pa.table({"id": pa.array(ids, pa.int64())}), buffer)
    return buffer.getvalue()


def views(loaded: LoadedManifest) -> Any:
    run_dbt(loaded, ["parse"], write_profiles(loaded))
    resolved = resolve_source_views(
        loaded, json.loads((loaded.dbt_project_dir / "target" / "manifest.json").read_text())
    )
    con = connect_with_extensions(":memory:", default_extension_dir(), ["httpfs"])
    con.execute("ATTACH ':memory:' AS warehouse")
    create_source_views(con, resolved)
    return con, resolved


def by_ds(con: Any, relation: str, where: str = "") -> list[tuple[str, int, int]]:
    sql = f"SELECT ds, count(*), sum(id) FROM {relation} {where} GROUP BY ds ORDER BY ds"
    return [(str(d), int(n), int(t)) for d, n, t in con.sql(sql).fetchall()]


def built(root: Path) -> list[tuple[str, int, int]]:
    with duckdb.connect(str(root / ".floe" / "warehouse.duckdb"), read_only=True) as con:
        return [
            (str(d), int(n), int(t))
            for d, n, t in con.sql("SELECT ds, n, total FROM main.sales_by_day ORDER BY ds").fetchall()
        ]


def test_hive_tables_are_read_from_their_registered_partition_locations(
    hive_metastore: HiveMetastore, tmp_path: Path
) -> None:
    client = hive_metastore.client()
    db = unique("floe_registered")
    root = create_database(client, db, hive_metastore.warehouse)
    table_root = root / "sales"
    outside = hive_metastore.warehouse / f"{db}_elsewhere" / "load_0002"
    folders = {INSIDE: table_root / f"ds={INSIDE}", OUTSIDE: outside, EMPTY: table_root / f"ds={EMPTY}"}
    for folder in [*folders.values(), table_root / f"ds={UNREGISTERED}"]:
        folder.mkdir(parents=True)
    (folders[INSIDE] / "part-0.parquet").write_bytes(parquet([1, 2]))
    (folders[OUTSIDE] / "part-0.parquet").write_bytes(parquet([10, 11]))
    (table_root / f"ds={UNREGISTERED}" / "part-0.parquet").write_bytes(parquet([99]))
    table = thrift_table(
        db, "sales", [("id", "bigint")], PARQUET, f"file://{table_root}", partition_keys=[("ds", "string")]
    )
    client.create_table(table)
    client.add_partitions([thrift_partition(table, [ds], f"file://{f}") for ds, f in folders.items()])
    hive_metastore.close_clients()

    manifest = write_project(
        tmp_path,
        hive_block("legacy", hive_metastore.uri, [f"{db}.*"]),
        dbt_sources("src", db, "legacy", ["sales"]),
        {"sales_by_day": MODEL},
    )
    loaded = load_manifest(manifest)
    run_dbt(loaded, ["build"], write_profiles(loaded))
    assert built(tmp_path) == EXPECTED  # the unregistered folder's row (99) is not read

    con, resolved = views(loaded)
    assert resolved.api_calls == {"legacy": 2}  # the batched get and one partition listing
    relation = f'warehouse."{db}".sales'
    assert by_ds(con, relation) == EXPECTED
    # pruning: the file of the partition filtered out is never opened
    (folders[INSIDE] / "part-0.parquet").write_bytes(pages_broken([7, 8, 9]))
    assert by_ds(con, relation, f"WHERE ds = '{OUTSIDE}'") == [EXPECTED[1]]
    with pytest.raises(duckdb.Error):
        by_ds(con, relation)
    (folders[INSIDE] / "part-0.parquet").write_bytes(parquet([1, 2]))
    (folders[OUTSIDE] / "part-0.parquet").write_bytes(pages_broken([7, 8, 9]))
    assert by_ds(con, relation, f"WHERE ds = '{INSIDE}'") == [EXPECTED[0]]


def test_glue_tables_are_read_from_their_registered_partition_locations(
    moto_server: MotoServer, tmp_path: Path
) -> None:
    glue, s3 = moto_server.client("glue"), moto_server.client("s3")
    bucket = moto_server.create_bucket("registered")
    db = unique("glue_registered")
    glue.create_database(DatabaseInput={"Name": db})
    base = f"s3://{bucket}/{db}/sales"
    keys = {
        INSIDE: f"{db}/sales/ds={INSIDE}",
        OUTSIDE: f"landing/{db}/load_0002",
        EMPTY: f"{db}/sales/ds={EMPTY}",
    }
    s3.put_object(Bucket=bucket, Key=f"{keys[INSIDE]}/part-0.parquet", Body=parquet([1, 2]))
    s3.put_object(Bucket=bucket, Key=f"{keys[OUTSIDE]}/part-0.parquet", Body=parquet([10, 11]))
    s3.put_object(Bucket=bucket, Key=f"{db}/sales/ds={UNREGISTERED}/part-0.parquet", Body=parquet([99]))
    columns = [{"Name": "id", "Type": "bigint"}]
    glue.create_table(
        DatabaseName=db,
        TableInput={
            "Name": "sales",
            "TableType": "EXTERNAL_TABLE",
            "PartitionKeys": [{"Name": "ds", "Type": "string"}],
            "StorageDescriptor": {**PARQUET_SD, "Columns": columns, "Location": base},
        },
    )
    glue.batch_create_partition(
        DatabaseName=db,
        TableName="sales",
        PartitionInputList=[
            {
                "Values": [ds],
                "StorageDescriptor": {**PARQUET_SD, "Columns": columns, "Location": f"s3://{bucket}/{key}"},
            }
            for ds, key in keys.items()
        ],
    )
    manifest = write_project(
        tmp_path,
        glue_block("lake", glue_options(moto_server), [f"{db}.*"]),
        dbt_sources("src", db, "lake", ["sales"]),
        {"sales_by_day": MODEL},
    )
    loaded = load_manifest(manifest)
    run_dbt(loaded, ["build"], write_profiles(loaded))
    assert built(tmp_path) == EXPECTED

    con, resolved = views(loaded)
    assert resolved.api_calls == {"lake": 2}  # one GetTables, one GetPartitions
    relation = f'warehouse."{db}".sales'
    assert by_ds(con, relation) == EXPECTED
    s3.put_object(Bucket=bucket, Key=f"{keys[INSIDE]}/part-0.parquet", Body=pages_broken([7, 8, 9]))
    assert by_ds(con, relation, f"WHERE ds = '{OUTSIDE}'") == [EXPECTED[1]]
    s3.put_object(Bucket=bucket, Key=f"{keys[INSIDE]}/part-0.parquet", Body=parquet([1, 2]))
    s3.put_object(Bucket=bucket, Key=f"{keys[OUTSIDE]}/part-0.parquet", Body=pages_broken([7, 8, 9]))
    assert by_ds(con, relation, f"WHERE ds = '{INSIDE}'") == [EXPECTED[0]]
