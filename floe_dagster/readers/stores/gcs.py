"""Google Cloud Storage for the Python readers (``readers/stores/__init__.py``), through gcsfs
(the fsspec filesystem DuckDB is given for gs:// too), wrapped as a PyArrow filesystem.

Properties: ``plugins/metastore_auth.py`` ``GoogleCredentials.storage_properties``: PyIceberg's
``gcs.project-id`` and ``gcs.service.host`` (the endpoint: an emulator), and the credentials
of the mode (a service account's key inline or as a file, anonymous; none: application default
credentials).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from floe_dagster.plugins.metastore_auth import (
    GCS_ANONYMOUS,
    GCS_ENDPOINT,
    GCS_KEY_FILE,
    GCS_KEY_JSON,
    GCS_PROJECT,
    GCS_SCHEMES,
)
from floe_dagster.readers.stores.store import ReaderStore, bucket_path

SCHEMES = GCS_SCHEMES


def gcsfs_filesystem(storage: Mapping[str, str]) -> Any:
    """A gcsfs filesystem with the credentials of ``storage``."""
    # not gcsfs's default class (ExtendedGcsFileSystem): see GoogleCredentials.duckdb_filesystem
    from gcsfs.core import GCSFileSystem

    token: Any = None  # gcsfs: application default credentials
    if storage.get(GCS_ANONYMOUS, "").lower() == "true":
        token = "anon"
    elif storage.get(GCS_KEY_JSON):
        token = json.loads(storage[GCS_KEY_JSON])
    elif storage.get(GCS_KEY_FILE):
        token = storage[GCS_KEY_FILE]
    options: dict[str, Any] = {"token": token, "project": storage.get(GCS_PROJECT)}
    if storage.get(GCS_ENDPOINT):
        options["endpoint_url"] = storage[GCS_ENDPOINT]
    return GCSFileSystem(**options)


def missing(storage: Mapping[str, str]) -> None:
    """Nothing is required: without keys, the store's default credentials."""
    return None


def filesystem(location: str, storage: Mapping[str, str]) -> tuple[Any, str]:
    """gcsfs as a PyArrow filesystem, and ``bucket/path`` of ``location``."""
    import pyarrow.fs as pafs

    return pafs.PyFileSystem(pafs.FSSpecHandler(gcsfs_filesystem(storage))), bucket_path(location)


def object_store_options(storage: Mapping[str, str]) -> dict[str, str]:
    """The ``object_store`` crate's Google keys (a service account's key, inline or a file)."""
    if storage.get(GCS_KEY_JSON):
        return {"google_service_account_key": storage[GCS_KEY_JSON]}
    if storage.get(GCS_KEY_FILE):
        return {"google_service_account": storage[GCS_KEY_FILE]}
    return {}


def uri(location: str) -> str:
    return f"gs://{bucket_path(location)}"


STORE = ReaderStore(
    "Google Cloud Storage", SCHEMES, missing, filesystem, bucket_path, object_store_options, uri
)
