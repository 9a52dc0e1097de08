"""S3 and the S3-compatible stores for the Python readers (``readers/stores/__init__.py``).

Properties: PyIceberg's ``s3.*`` keys of a metastore's AWS credentials (``s3.region``,
``s3.endpoint``, ``s3.access-key-id``, ``s3.secret-access-key``, ``s3.session-token``,
``s3.force-virtual-addressing``). Hadoop's ``s3a://``/``s3n://``, Alibaba OSS's ``oss://`` and
Tencent COS's ``cosn://`` are the same API at the store's endpoint (``s3_endpoint`` of the
metastore); OSS takes virtual-hosted requests only (``s3_addressing_style: virtual``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from floe_dagster.readers.stores.store import ReaderStore, bucket_path

SCHEMES = ("s3", "s3a", "s3n", "oss", "cosn")


def _virtual(storage: Mapping[str, str]) -> bool:
    return storage.get("s3.force-virtual-addressing", "").lower() == "true"


def missing(storage: Mapping[str, str]) -> None:
    """Nothing is required: without keys, the store's default credentials."""
    return None


def _keys(storage: Mapping[str, str], names: tuple[str, str, str]) -> dict[str, str]:
    """The static keys (access key id, secret, session token) under ``names``; none without an id."""
    if not storage.get("s3.access-key-id"):
        return {}
    keys = {names[0]: storage["s3.access-key-id"], names[1]: storage.get("s3.secret-access-key", "")}
    if storage.get("s3.session-token"):
        keys[names[2]] = storage["s3.session-token"]
    return keys


def filesystem(location: str, storage: Mapping[str, str]) -> tuple[Any, str]:
    """PyArrow's S3 filesystem with the properties, and ``bucket/key`` of ``location``."""
    import pyarrow.fs as pafs

    options: dict[str, Any] = {"region": storage.get("s3.region") or "us-east-1"}
    options.update(_keys(storage, ("access_key", "secret_key", "session_token")))
    if endpoint := storage.get("s3.endpoint"):
        endpoint_parts = urlsplit(endpoint)
        options["endpoint_override"] = endpoint_parts.netloc
        options["scheme"] = endpoint_parts.scheme or "https"
    if _virtual(storage):
        options["force_virtual_addressing"] = True
    return pafs.S3FileSystem(**options), bucket_path(location)


def object_store_options(storage: Mapping[str, str]) -> dict[str, str]:
    """The ``object_store`` crate's ``AWS_*`` keys."""
    options: dict[str, str] = {}
    if region := storage.get("s3.region"):
        options["AWS_REGION"] = region
    options.update(_keys(storage, ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")))
    if endpoint := storage.get("s3.endpoint"):
        options["AWS_ENDPOINT_URL"] = endpoint
        options["AWS_ALLOW_HTTP"] = "true" if endpoint.startswith("http://") else "false"
        options["AWS_S3_ALLOW_UNSAFE_RENAME"] = "true"
        options["AWS_VIRTUAL_HOSTED_STYLE_REQUEST"] = "true" if _virtual(storage) else "false"
    elif _virtual(storage):
        options["AWS_VIRTUAL_HOSTED_STYLE_REQUEST"] = "true"
    return options


def uri(location: str) -> str:
    """``s3://bucket/key``: the Rust readers know S3's own scheme only."""
    return f"s3://{bucket_path(location)}"


STORE = ReaderStore(
    "S3 (and S3-compatible)", SCHEMES, missing, filesystem, bucket_path, object_store_options, uri
)
