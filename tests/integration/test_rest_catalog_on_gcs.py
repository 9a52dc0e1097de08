"""floe's REST catalog plugin against the REST fixture whose warehouse is on GCS (gcp-storage-
emulator): tables are created, written and read through PyIceberg's fsspec FileIO (gcsfs) with
the FileIO properties the server's config sends, and their files are in the bucket."""

from __future__ import annotations

import pyarrow as pa
import pytest

from floe_dagster.catalogs.rest import RestCatalogConfig, RestCatalogPlugin
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
