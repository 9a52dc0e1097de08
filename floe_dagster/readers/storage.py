"""Files of a table location as Python readers see them: a PyArrow filesystem, object-store options.

The format readers that do not go through DuckDB's own SQL readers (ORC through a PyArrow
dataset, the Delta log listing, Hudi through hudi-rs) reach the table's files with the storage
properties a metastore's chokepoint resolved (PyIceberg-style ``s3.*`` keys:
``s3.endpoint``, ``s3.region``, ``s3.access-key-id``, ``s3.secret-access-key``,
``s3.session-token``), or for an Azure Blob / ADLS location the ``adls.*`` keys of
``plugins/azure.py`` ``AzureCredentials.file_io_properties`` (account, key or SAS token or service
principal, and the blob endpoint of an emulator). The dicts returned here hold those secrets:
never log them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from floe_dagster.core.errors import NotSupportedError

S3_SCHEMES = ("s3", "s3a", "s3n")
AZURE_SCHEMES = ("az", "azure", "abfs", "abfss", "wasb", "wasbs")


def local_path(location: str) -> str | None:
    """``/x`` for ``file:/x``, ``file:///x`` and ``/x``; None for a remote location."""
    parts = urlsplit(location)
    if parts.scheme in ("", "file"):
        return (parts.path if parts.scheme else location).rstrip("/") or "/"
    return None


def filesystem(location: str, storage: Mapping[str, str], table: str = "") -> tuple[Any, str]:
    """(PyArrow filesystem, path inside it) for a local or S3 location."""
    import pyarrow.fs as pafs

    path = local_path(location)
    if path is not None:
        return pafs.LocalFileSystem(), path
    parts = urlsplit(location)
    if parts.scheme in S3_SCHEMES:
        options: dict[str, Any] = {"region": storage.get("s3.region") or "us-east-1"}
        if storage.get("s3.access-key-id"):
            options["access_key"] = storage["s3.access-key-id"]
            options["secret_key"] = storage.get("s3.secret-access-key", "")
            if storage.get("s3.session-token"):
                options["session_token"] = storage["s3.session-token"]
        if endpoint := storage.get("s3.endpoint"):
            endpoint_parts = urlsplit(endpoint)
            options["endpoint_override"] = endpoint_parts.netloc
            options["scheme"] = endpoint_parts.scheme or "https"
        return pafs.S3FileSystem(**options), f"{parts.netloc}{parts.path}".rstrip("/")
    if parts.scheme in AZURE_SCHEMES and storage.get("adls.account-name"):
        azure: dict[str, Any] = {"account_name": storage["adls.account-name"]}
        for key, argument in (
            ("adls.account-key", "account_key"),
            ("adls.sas-token", "sas_token"),
            ("adls.client-id", "client_id"),
            ("adls.client-secret", "client_secret"),
            ("adls.tenant-id", "tenant_id"),
            ("adls.blob-storage-authority", "blob_storage_authority"),
            ("adls.blob-storage-scheme", "blob_storage_scheme"),
            ("adls.dfs-storage-authority", "dfs_storage_authority"),
            ("adls.dfs-storage-scheme", "dfs_storage_scheme"),
        ):
            if storage.get(key):
                azure[argument] = storage[key]
        return pafs.AzureFileSystem(**azure), f"{azure_container(parts.netloc)}{parts.path}".rstrip("/")
    raise NotSupportedError(
        f"table {table}: floe's Python readers cannot reach {parts.scheme}:// locations ({location});"
        " readable: local paths, s3:// and Azure Blob (az://, abfss://)",
        provider="storage",
        operation="read",
        retryable=False,
    )


def object_store_options(location: str, storage: Mapping[str, str]) -> dict[str, str]:
    """Storage options for the Rust readers (delta-rs, hudi-rs: the ``object_store`` crate's keys)."""
    if local_path(location) is not None:
        return {}
    if urlsplit(location).scheme in AZURE_SCHEMES:
        return azure_object_store_options(storage)
    options: dict[str, str] = {}
    if region := storage.get("s3.region"):
        options["AWS_REGION"] = region
    if storage.get("s3.access-key-id"):
        options["AWS_ACCESS_KEY_ID"] = storage["s3.access-key-id"]
        options["AWS_SECRET_ACCESS_KEY"] = storage.get("s3.secret-access-key", "")
        if storage.get("s3.session-token"):
            options["AWS_SESSION_TOKEN"] = storage["s3.session-token"]
    if endpoint := storage.get("s3.endpoint"):
        options["AWS_ENDPOINT_URL"] = endpoint
        options["AWS_ALLOW_HTTP"] = "true" if endpoint.startswith("http://") else "false"
        options["AWS_S3_ALLOW_UNSAFE_RENAME"] = "true"
        options["AWS_VIRTUAL_HOSTED_STYLE_REQUEST"] = "false"
    return options


def azure_container(netloc: str) -> str:
    """The container of an ``az://container``, ``abfss://container@account.dfs...`` location."""
    return netloc.split("@", 1)[0]


def azure_object_store_options(storage: Mapping[str, str]) -> dict[str, str]:
    """The ``object_store`` crate's Azure keys (delta-rs, hudi-rs) for the ``adls.*`` properties;
    an emulator's blob endpoint (Azurite: path-style, the account in the path) as the endpoint."""
    options: dict[str, str] = {}
    for key, option in (
        ("adls.account-name", "azure_storage_account_name"),
        ("adls.account-key", "azure_storage_account_key"),
        ("adls.sas-token", "azure_storage_sas_token"),
        ("adls.client-id", "azure_client_id"),
        ("adls.client-secret", "azure_client_secret"),
        ("adls.tenant-id", "azure_tenant_id"),
    ):
        if storage.get(key):
            options[option] = storage[key]
    authority = storage.get("adls.blob-storage-authority")
    if authority:
        scheme = storage.get("adls.blob-storage-scheme") or "https"
        options["azure_storage_endpoint"] = f"{scheme}://{authority}/{storage.get('adls.account-name', '')}"
        options["azure_allow_http"] = "true" if scheme == "http" else "false"
    return options


def uri(location: str) -> str:
    """A URI the Rust readers open: ``s3a://``/``s3n://`` as ``s3://``, local paths as they are."""
    path = local_path(location)
    if path is not None:
        return path
    return location.replace("s3a://", "s3://", 1).replace("s3n://", "s3://", 1).rstrip("/")
