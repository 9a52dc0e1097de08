"""floe's REST catalog plugin against the REST fixture whose warehouse is on GCS (gcp-storage-
emulator): tables are created, written and read through PyIceberg's fsspec FileIO (gcsfs) with
the FileIO properties the server's config sends, and their files are in the bucket."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest

from floe_dagster.catalogs.rest import RestCatalogConfig, RestCatalogPlugin
from floe_dagster.computes.duckdb_extensions import connect_with_extensions
from floe_dagster.transforms.dbt_duckdb_plugin import Plugin as DbtDuckDBPlugin
from tests.fixtures.gcs_emulator import GcsEmulator
from tests.fixtures.iceberg_rest_server import IcebergRestServer

pytestmark = pytest.mark.server


def test_rest_catalog_tables_live_on_gcs(
    iceberg_rest_server_on_gcs: tuple[IcebergRestServer, str], gcs_emulator: GcsEmulator
) -> None:
    server, bucket = iceberg_rest_server_on_gcs
    raw = {
        "uri": server.uri,
        "warehouse": "lake",
        "client_id": server.client_id,
        "client_secret": server.client_secret,
        "request_timeout_s": 10,
    }
    plugin = RestCatalogPlugin("lake", RestCatalogConfig.model_validate(raw))
    plugin.create_namespace(("raw",))
    table = plugin.create_table(("raw", "orders"), pa.schema([("id", pa.int64())]))
    table.append(pa.table({"id": [1, 2, 3]}))
    loaded = plugin.load_table(("raw", "orders"))
    assert loaded.metadata_location.startswith(f"gs://{bucket}/rest/lake/raw/orders/metadata/")
    assert sorted(loaded.scan().to_arrow().column("id").to_pylist()) == [1, 2, 3]
    names = [b.name for b in gcs_emulator.client().list_blobs(bucket)]
    assert any(n.startswith("rest/lake/raw/orders/data/") and n.endswith(".parquet") for n in names)
    assert any(n.startswith("rest/lake/raw/orders/metadata/") for n in names)


def test_duckdb_reads_the_rest_catalog_on_gcs_through_the_dbt_plugin(
    iceberg_rest_server_on_gcs: tuple[IcebergRestServer, str], gcs_emulator: GcsEmulator, tmp_path: Path
) -> None:
    """The floe dbt-duckdb plugin attaches the REST catalog natively and registers the catalog's
    gcsfs filesystem (its ``gcs`` block), so DuckDB reads the gs:// metadata and data files."""
    server, _ = iceberg_rest_server_on_gcs
    gcs = {"project": gcs_emulator.project, "endpoint": gcs_emulator.endpoint, "anonymous": True}
    raw = {
        "uri": server.uri,
        "warehouse": "lake_duckdb",
        "client_id": server.client_id,
        "client_secret": server.client_secret,
        "gcs": gcs,
    }
    catalog = RestCatalogPlugin("lake", RestCatalogConfig.model_validate(raw))
    catalog.create_namespace(("raw",))
    table = catalog.create_table(("raw", "orders"), pa.schema([("id", pa.int64())]))
    table.append(pa.table({"id": [1, 2, 3]}))
    plugin = DbtDuckDBPlugin("floe", {"manifest": "unused.yaml", "catalogs": ["lake"]})
    plugin._catalog = lambda name: catalog  # type: ignore[method-assign]
    plugin._create_source_views = lambda conn: None  # type: ignore[method-assign]  # no manifest here
    con = connect_with_extensions(":memory:", tmp_path / "extensions", ["iceberg", "httpfs"])
    try:
        plugin.configure_connection(con)
        rows = con.execute("SELECT id FROM lake.raw.orders ORDER BY id").fetchall()
    finally:
        con.close()
    assert rows == [(1,), (2,), (3,)]


def test_the_rest_gcs_access_token_stays_secret() -> None:
    canary = "ya29.rest-canary-" + "5e21b0"
    raw = {"uri": "http://127.0.0.1:9", "warehouse": "w", "gcs": {"access_token": canary}}
    plugin = RestCatalogPlugin("lake", RestCatalogConfig.model_validate(raw))
    assert plugin.catalog_properties()["gcs.oauth2.token"] == canary  # handed to PyIceberg only
    texts = [repr(plugin.config), str(plugin.config.model_dump()), str(plugin.describe())]
    assert all(canary not in text for text in texts)
    assert canary not in plugin._scrub(f"GCS refused token {canary}")
