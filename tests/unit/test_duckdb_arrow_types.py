"""DuckDB reads an object-store source's CSV/JSON columns with the types discovery gave them.

The S3/Azure/GCS sources name column types as Arrow does (``int64``, ``date32[day]``,
``timestamp[s, tz=UTC]``); ``duckdb_type`` must map them as DuckDB itself maps those Arrow types,
not to VARCHAR (a table's ids read back as text).
"""

from __future__ import annotations

import duckdb
import pyarrow as pa
import pytest

from floe_dagster.readers.duckdb_scan import duckdb_type

ARROW_TYPES = [
    pa.int8(),
    pa.int16(),
    pa.int32(),
    pa.int64(),
    pa.float32(),
    pa.float64(),
    pa.bool_(),
    pa.string(),
    pa.large_string(),
    pa.date32(),
    pa.timestamp("s"),
    pa.timestamp("us"),
    pa.timestamp("s", tz="UTC"),
]


@pytest.mark.parametrize("arrow_type", ARROW_TYPES, ids=str)
def test_an_arrow_type_name_maps_to_the_type_duckdb_gives_that_arrow_type(arrow_type: pa.DataType) -> None:
    con = duckdb.connect()
    con.register("t", pa.table({"c": pa.array([], arrow_type)}))
    duckdb_own = str(con.sql("SELECT c FROM t").types[0])
    mapped = str(con.sql(f"SELECT CAST(NULL AS {duckdb_type(str(arrow_type))}) AS c").types[0])
    # a text file's timestamps of any unit are read into one TIMESTAMP column
    assert mapped == duckdb_own.replace("TIMESTAMP_S", "TIMESTAMP")


def test_hive_type_names_map_as_before() -> None:
    assert [
        duckdb_type(t) for t in ("bigint", "int", "string", "decimal(10,2)", "varchar(5)", "map<a,b>")
    ] == [
        "BIGINT",
        "INTEGER",
        "VARCHAR",
        "DECIMAL(10,2)",
        "VARCHAR",
        "VARCHAR",
    ]
