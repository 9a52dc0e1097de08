"""An Iceberg SQL catalog whose warehouse is on ADLS (Azurite), through PyIceberg's FileIO
(PyArrow's AzureFileSystem) with the credentials of the catalog's ``adls`` block, and on GCS
(gcp-storage-emulator), through PyIceberg's fsspec FileIO (gcsfs) with its ``gcs`` block."""

from __future__ import annotations

import logging
from pathlib import Path

import pyarrow as pa
import pytest
from pydantic import ValidationError

from floe_dagster.catalogs.sql import SqlCatalogPlugin
from tests.fixtures.azurite_server import AzuriteServer
from tests.fixtures.gcs_emulator import GcsEmulator

pytestmark = pytest.mark.server


def adls_catalog(
    tmp_path: Path, server: AzuriteServer, container: str, **credentials: str
) -> SqlCatalogPlugin:
    config = SqlCatalogPlugin.config_model.model_validate(
        {
            "uri": f"sqlite:///{tmp_path}/catalog.db",
            "warehouse": f"abfss://{container}/warehouse",
            "adls": {"account_name": server.account_name, "endpoint": server.endpoint, **credentials},
        }
    )
    return SqlCatalogPlugin("lake", config)


@pytest.mark.parametrize("mode", ["account_key", "connection_string"])
def test_tables_are_written_and_read_on_adls(
    azurite_server: AzuriteServer, tmp_path: Path, caplog: pytest.LogCaptureFixture, mode: str
) -> None:
    caplog.set_level(logging.DEBUG, logger="floe_dagster")
    container = azurite_server.create_container("wh")
    if mode == "account_key":
        secret = azurite_server.account_key
        plugin = adls_catalog(tmp_path, azurite_server, container, account_key=secret)
    else:
        secret = azurite_server.connection_string
        plugin = adls_catalog(tmp_path, azurite_server, container, connection_string=secret)
    plugin.create_namespace(("raw",))
    table = plugin.connect().create_table(("raw", "orders"), schema=pa.schema([("id", pa.int64())]))
    table.append(pa.table({"id": [1, 2, 3]}))
    loaded = plugin.load_table(("raw", "orders"))
    assert loaded.metadata_location.startswith(f"abfss://{container}/warehouse/raw/orders/metadata/")
    assert sorted(loaded.scan().to_arrow().column("id").to_pylist()) == [1, 2, 3]
    blobs = [b.name for b in azurite_server.container_client(container).list_blobs()]
    assert any(name.startswith("warehouse/raw/orders/data/") for name in blobs)  # really on the store
    texts = "\n".join(
        [str(plugin.describe()), repr(plugin.config), *(r.getMessage() for r in caplog.records)]
    )
    assert secret not in texts and azurite_server.account_key not in texts


def gcs_catalog(tmp_path: Path, emulator: GcsEmulator, bucket: str, **gcs: object) -> SqlCatalogPlugin:
    config = SqlCatalogPlugin.config_model.model_validate(
        {
            "uri": f"sqlite:///{tmp_path}/catalog.db",
            "warehouse": f"gs://{bucket}/warehouse",
            "gcs": {"project": emulator.project, "endpoint": emulator.endpoint, **gcs},
        }
    )
    return SqlCatalogPlugin("lake", config)


def test_tables_are_written_and_read_on_gcs(gcs_emulator: GcsEmulator, tmp_path: Path) -> None:
    bucket = gcs_emulator.create_bucket("wh")
    plugin = gcs_catalog(tmp_path, gcs_emulator, bucket, anonymous=True)
    plugin.create_namespace(("raw",))
    table = plugin.connect().create_table(("raw", "orders"), schema=pa.schema([("id", pa.int64())]))
    table.append(pa.table({"id": [1, 2, 3]}))
    table.append(pa.table({"id": [4]}))
    loaded = plugin.load_table(("raw", "orders"))
    assert loaded.metadata_location.startswith(f"gs://{bucket}/warehouse/raw/orders/metadata/")
    assert sorted(loaded.scan().to_arrow().column("id").to_pylist()) == [1, 2, 3, 4]
    names = [b.name for b in gcs_emulator.client().list_blobs(bucket)]
    assert sum(name.startswith("warehouse/raw/orders/data/") for name in names) == 2  # on the store


def test_the_gcs_access_token_stays_secret(gcs_emulator: GcsEmulator, tmp_path: Path) -> None:
    canary = "ya29.canary-" + "7f3a9c"  # an OAuth2 access token's shape; the emulator ignores it
    plugin = gcs_catalog(tmp_path, gcs_emulator, gcs_emulator.create_bucket("wh"), access_token=canary)
    assert plugin.catalog_properties()["gcs.oauth2.token"] == canary  # handed to PyIceberg
    plugin.create_namespace(("raw",))
    assert ("raw",) in plugin.connect().list_namespaces()
    texts = [str(plugin.describe()), repr(plugin.config), str(plugin.config.model_dump())]
    assert all(canary not in text for text in texts)


def test_a_gcs_block_with_two_credential_modes_names_the_field(tmp_path: Path) -> None:
    with pytest.raises(ValidationError) as info:
        SqlCatalogPlugin.config_model.model_validate(
            {"warehouse": "gs://b/w", "gcs": {"anonymous": True, "access_token": "t"}}
        )
    (error,) = info.value.errors()
    assert error["loc"] == ("gcs", "access_token") and "conflicts with anonymous" in error["msg"]
