"""Files of a table location as Python readers see them: a PyArrow filesystem, object-store options.

The format readers that do not go through DuckDB's own SQL readers (ORC through a PyArrow
dataset, the Delta log listing, Hudi through hudi-rs) reach the table's files with the storage
properties a metastore's chokepoint resolved (PyIceberg-style ``s3.*`` keys:
``s3.endpoint``, ``s3.region``, ``s3.access-key-id``, ``s3.secret-access-key``,
``s3.session-token``). The dicts returned here hold those secrets: never log them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from floe_dagster.core.errors import NotSupportedError

S3_SCHEMES = ("s3", "s3a", "s3n")


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
    raise NotSupportedError(
        f"table {table}: floe's Python readers cannot reach {parts.scheme}:// locations ({location});"
        " readable: local paths and s3://",
        provider="storage",
        operation="read",
        retryable=False,
    )


def object_store_options(location: str, storage: Mapping[str, str]) -> dict[str, str]:
    """Storage options for the Rust readers (delta-rs, hudi-rs: the ``object_store`` crate's keys)."""
    if local_path(location) is not None:
        return {}
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


def uri(location: str) -> str:
    """A URI the Rust readers open: ``s3a://``/``s3n://`` as ``s3://``, local paths as they are."""
    path = local_path(location)
    if path is not None:
        return path
    return location.replace("s3a://", "s3://", 1).replace("s3n://", "s3://", 1).rstrip("/")
