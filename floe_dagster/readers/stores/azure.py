"""Azure Blob Storage and ADLS Gen2 for the Python readers (``readers/stores/__init__.py``).

Properties: the ``adls.*`` keys of ``plugins/azure.py`` ``AzureCredentials.file_io_properties``
(account, key or SAS token or service principal, and the blob endpoint of an emulator).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from floe_dagster.plugins.azure import AZURE_SCHEMES
from floe_dagster.readers.stores.store import ReaderStore

SCHEMES = AZURE_SCHEMES

_FILESYSTEM_ARGUMENTS = (
    ("adls.account-key", "account_key"),
    ("adls.sas-token", "sas_token"),
    ("adls.client-id", "client_id"),
    ("adls.client-secret", "client_secret"),
    ("adls.tenant-id", "tenant_id"),
    ("adls.blob-storage-authority", "blob_storage_authority"),
    ("adls.blob-storage-scheme", "blob_storage_scheme"),
    ("adls.dfs-storage-authority", "dfs_storage_authority"),
    ("adls.dfs-storage-scheme", "dfs_storage_scheme"),
)
_OBJECT_STORE_KEYS = (
    ("adls.account-name", "azure_storage_account_name"),
    ("adls.account-key", "azure_storage_account_key"),
    ("adls.sas-token", "azure_storage_sas_token"),
    ("adls.client-id", "azure_client_id"),
    ("adls.client-secret", "azure_client_secret"),
    ("adls.tenant-id", "azure_tenant_id"),
)


def missing(storage: Mapping[str, str]) -> str | None:
    """Why ``storage`` cannot open the account's files, or None."""
    if storage.get("adls.account-name"):
        return None
    return "no Azure storage account among the metastore's storage properties"


def container(netloc: str) -> str:
    """The container of an ``az://container``, ``abfss://container@account.dfs...`` location."""
    return netloc.split("@", 1)[0]


def filesystem(location: str, storage: Mapping[str, str]) -> tuple[Any, str]:
    """PyArrow's Azure filesystem for the account, and ``container/path`` of ``location``."""
    import pyarrow.fs as pafs

    options: dict[str, Any] = {"account_name": storage["adls.account-name"]}
    for key, argument in _FILESYSTEM_ARGUMENTS:
        if storage.get(key):
            options[argument] = storage[key]
    return pafs.AzureFileSystem(**options), path(location)


def path(location: str) -> str:
    """``container/path`` of ``location``: the path inside the filesystem."""
    parts = urlsplit(location)
    return f"{container(parts.netloc)}{parts.path}".rstrip("/")


def object_store_options(storage: Mapping[str, str]) -> dict[str, str]:
    """The ``object_store`` crate's Azure keys; an emulator's blob endpoint (Azurite: path-style,
    the account in the path) as the endpoint."""
    options = {option: storage[key] for key, option in _OBJECT_STORE_KEYS if storage.get(key)}
    authority = storage.get("adls.blob-storage-authority")
    if authority:
        scheme = storage.get("adls.blob-storage-scheme") or "https"
        options["azure_storage_endpoint"] = f"{scheme}://{authority}/{storage.get('adls.account-name', '')}"
        options["azure_allow_http"] = "true" if scheme == "http" else "false"
    return options


def uri(location: str) -> str:
    return location.rstrip("/")


STORE = ReaderStore("Azure Blob / ADLS", SCHEMES, missing, filesystem, path, object_store_options, uri)
