"""How the DuckDB compute reads an Iceberg table on ADLS: through the Blob endpoint (``az://``),
re-rooted with ``allow_moved_paths``; and the azure secret's connection string stays masked."""

from __future__ import annotations

import duckdb
import pytest

from floe_dagster.computes.duckdb import iceberg_scan_arguments, redact_sql, scrub_secrets
from floe_dagster.plugins.azure import blob_path


@pytest.mark.parametrize(
    ("location", "expected"),
    [
        ("abfss://wh/iceberg/raw/t", "az://wh/iceberg/raw/t"),
        ("abfss://wh@lake.dfs.core.windows.net/iceberg/t", "az://wh/iceberg/t"),
        ("wasbs://wh@lake.blob.core.windows.net/t", "az://wh/t"),
        ("gs://bucket/t", None),
        ("/local/warehouse/t", None),
    ],
)
def test_blob_path(location: str, expected: str | None) -> None:
    assert blob_path(location) == expected


def test_an_adls_table_is_scanned_from_its_blob_root_at_its_metadata_version() -> None:
    args = iceberg_scan_arguments(
        "abfss://wh/iceberg/raw/t/metadata/00002-ab12.metadata.json", "abfss://wh/iceberg/raw/t"
    )
    assert args == "'az://wh/iceberg/raw/t', allow_moved_paths = true, version = '00002-ab12'"
    # everything else is scanned from its metadata file as written
    local = "/w/raw/t/metadata/00001-x.metadata.json"
    assert iceberg_scan_arguments(local, "/w/raw/t") == f"'{local}'"
    gz = "abfss://wh/t/metadata/00001-x.gz.metadata.json"
    assert iceberg_scan_arguments(gz, "abfss://wh/t") == f"'{gz}'"


def test_the_arguments_parse_as_duckdb_sql() -> None:
    args = iceberg_scan_arguments("abfss://wh/t/metadata/00001-x.metadata.json", "abfss://wh/t")
    duckdb.connect().extract_statements(f"SELECT * FROM iceberg_scan({args})")  # raises on bad SQL


def test_a_connection_string_is_masked_in_statements_and_errors() -> None:
    canary = "AccountKey=canary-7f3a9c"
    statement = f"CREATE OR REPLACE SECRET s (TYPE azure, PROVIDER config, CONNECTION_STRING '{canary}')"
    assert canary not in redact_sql(statement)
    assert canary not in scrub_secrets(f"failed near {canary}", [statement])
