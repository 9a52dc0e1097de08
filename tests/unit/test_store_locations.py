"""Metastore table locations on every store map to the right reader; HDFS/Ozone are explicit
``NotSupportedError`` naming the scheme and the table (plugins/locations.py, readers/duckdb_scan.py)."""

from __future__ import annotations

import pytest

from floe_dagster.core.errors import NotSupportedError
from floe_dagster.plugins.locations import reader_path, store_of
from floe_dagster.plugins.table_model import ScanDescription
from floe_dagster.readers.duckdb_scan import duckdb_path, relation_sql, required_extensions


@pytest.mark.parametrize(
    ("location", "store", "path", "extension"),
    [
        ("s3://b/k", "s3", "s3://b/k", "httpfs"),
        ("s3a://b/k/", "s3", "s3://b/k", "httpfs"),
        ("oss://raw-data/events", "s3", "s3://raw-data/events", "httpfs"),
        ("cosn://raw-1250000000/events", "s3", "s3://raw-1250000000/events", "httpfs"),
        ("gs://lake/events", "gcs", "gs://lake/events", "httpfs"),
        ("gcs://lake/events", "gcs", "gs://lake/events", "httpfs"),
        (
            "abfss://raw@mylake.dfs.core.windows.net/events",
            "azure",
            "abfss://mylake.dfs.core.windows.net/raw/events",
            "azure",
        ),
        (
            "wasbs://raw@mylake.blob.core.windows.net/events",
            "azure",
            "az://mylake.blob.core.windows.net/raw/events",
            "azure",
        ),
        ("az://raw/events", "azure", "az://raw/events", "azure"),
        ("file:///tmp/x/", "local", "/tmp/x", None),
        ("/tmp/x", "local", "/tmp/x", None),
    ],
)
def test_each_store_s_location_maps_to_its_reader(
    location: str, store: str, path: str, extension: str | None
) -> None:
    assert store_of(location, "db.t") == store
    assert reader_path(location) == path == duckdb_path(location, "db.t")
    scan = ScanDescription(table="db.t", location=location, format="parquet")
    assert required_extensions(scan) == ((extension,) if extension else ())
    assert f"'{path}/[!_.]*'" in relation_sql(scan)


@pytest.mark.parametrize("scheme", ["hdfs", "o3fs", "ofs"])
def test_hdfs_and_ozone_are_not_supported_naming_the_scheme_and_the_table(scheme: str) -> None:
    location = f"{scheme}://cluster:8020/warehouse/sales.db/orders"
    scan = ScanDescription(table="sales.orders", location=location, format="parquet")
    with pytest.raises(NotSupportedError) as caught:
        relation_sql(scan)
    text = str(caught.value)
    assert f"table sales.orders: {scheme}:// (HDFS / Ozone) locations are not supported yet" in text
    assert "abfss://" in text and "gs://" in text  # what is supported
    assert caught.value.retryable is False and caught.value.__cause__ is None


def test_an_unknown_scheme_is_not_supported_either() -> None:
    with pytest.raises(NotSupportedError) as caught:
        store_of("ftp://host/x", "db.t")
    assert "table db.t: ftp:// locations are not supported" in str(caught.value)


def test_a_table_with_more_locations_is_read_from_each_by_duckdb_and_spark() -> None:
    """An object-store table whose files one glob cannot name (``MORE_LOCATIONS``): DuckDB reads
    the list of globs in one call, Spark one read per glob (the rows themselves are checked on
    every store by tests/object_source_checks.py)."""
    from floe_dagster.plugins.table_model import MORE_LOCATIONS, Column
    from floe_dagster.readers.spark_scan import select_sql

    scan = ScanDescription(
        table="raw.mixed",
        format="json",
        location="s3a://b/mixed/*.json",
        columns=(Column("id", "bigint"),),
        options={MORE_LOCATIONS: "s3a://b/mixed/*.ndjson\ns3a://b/mixed_two/*.json"},
    )
    assert scan.locations == ("s3a://b/mixed/*.json", "s3a://b/mixed/*.ndjson", "s3a://b/mixed_two/*.json")
    assert "['s3://b/mixed/*.json', 's3://b/mixed/*.ndjson', 's3://b/mixed_two/*.json']" in relation_sql(scan)
    spark = select_sql(scan, schemes=("s3a",))
    assert spark.count(" UNION ALL ") == 2
    for glob in ("mixed/*.json", "mixed/*.ndjson", "mixed_two/*.json"):
        assert f"b/{glob}`" in spark or f"b/{glob}'" in spark, spark
