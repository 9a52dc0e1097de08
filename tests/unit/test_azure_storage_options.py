"""What the Rust readers (delta-rs, hudi-rs: the object_store crate) and PyArrow get for a table on
Azure Blob / ADLS: the metastore's own credentials, its emulator endpoint (pure: no network)."""

from __future__ import annotations

from typing import Any

import pyarrow.fs as pafs
import pytest

from floe_dagster.core.errors import NotSupportedError
from floe_dagster.plugins.factory import connect_metastore
from floe_dagster.readers.formats import storage_properties
from floe_dagster.readers.storage import filesystem, object_store_options

KEY = "a2V5LWNhbmFyeQ=="


def azure_storage(**config: Any) -> dict[str, str]:
    options = {"container": "lake", "account_name": "acct", **config}
    return storage_properties(connect_metastore("az", "azure", options, environ={}).credentials)


def test_an_account_key_on_azure_itself_gives_no_endpoint() -> None:
    storage = azure_storage(account_key=KEY)
    assert object_store_options("az://lake/sales/eu", storage) == {
        "azure_storage_account_name": "acct",
        "azure_storage_account_key": KEY,
    }


def test_an_emulator_endpoint_is_the_path_style_endpoint_with_the_account() -> None:
    storage = azure_storage(
        account_name="devstoreaccount1", account_key=KEY, endpoint="http://127.0.0.1:10123/devstoreaccount1"
    )
    options = object_store_options("abfss://lake@devstoreaccount1.dfs.core.windows.net/x", storage)
    assert options["azure_storage_endpoint"] == "http://127.0.0.1:10123/devstoreaccount1"
    assert options["azure_allow_http"] == "true"


def test_a_sas_token_and_a_service_principal_are_passed_as_their_own_keys() -> None:
    sas = object_store_options(
        "az://lake/t", azure_storage(sas_token="?sv=2024-01-01&se=2099-01-01T00%3A00%3A00Z&sig=abc")
    )
    assert (
        sas["azure_storage_sas_token"].startswith("sv=2024-01-01&se=")
        and "azure_storage_account_key" not in sas
    )
    principal = object_store_options(
        "az://lake/t", azure_storage(client_id="c", client_secret="s3cret", tenant_id="t")
    )
    assert (principal["azure_client_id"], principal["azure_client_secret"], principal["azure_tenant_id"]) == (
        "c",
        "s3cret",
        "t",
    )


def test_pyarrow_opens_the_container_path_and_without_an_account_azure_is_refused_naming_the_table() -> None:
    fs, path = filesystem("abfss://lake@acct.dfs.core.windows.net/sales/eu/", azure_storage(account_key=KEY))
    assert isinstance(fs, pafs.AzureFileSystem) and path == "lake/sales/eu"
    with pytest.raises(NotSupportedError) as refused:
        filesystem("az://lake/sales", {}, "lake.sales")
    message = str(refused.value)
    assert "lake.sales" in message and "az://" in message and "no Azure storage account" in message
