"""Files of a table location as Python readers see them: a PyArrow filesystem, object-store options.

The format readers that do not go through DuckDB's own SQL readers (ORC through a PyArrow
dataset, the Delta log listing, Hudi through hudi-rs) reach the table's files with the storage
properties a metastore's chokepoint resolved. Local paths are read here; every object store is a
module of ``readers/stores/`` (S3 and the S3-compatible stores, Azure Blob / ADLS, GCS), picked by
the location's scheme. The dicts returned here hold secrets: never log them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from floe_dagster.core.errors import NotSupportedError
from floe_dagster.readers.stores import BY_SCHEME, STORES, ReaderStore, azure, gcs, s3

S3_SCHEMES = s3.SCHEMES
AZURE_SCHEMES = azure.SCHEMES
GCS_SCHEMES = gcs.SCHEMES


def local_path(location: str) -> str | None:
    """``/x`` for ``file:/x``, ``file:///x`` and ``/x``; None for a remote location."""
    parts = urlsplit(location)
    if parts.scheme in ("", "file"):
        return (parts.path if parts.scheme else location).rstrip("/") or "/"
    return None


def _store(location: str, storage: Mapping[str, str], table: str, check_storage: bool = True) -> ReaderStore:
    """The store module of ``location``'s scheme, ready for ``storage``; else NotSupportedError."""
    scheme = urlsplit(location).scheme
    store = BY_SCHEME.get(scheme)
    reason = store.missing(storage) if store is not None and check_storage else None
    if store is not None and reason is None:
        return store
    readable = "; ".join(f"{s.name} ({', '.join(f'{x}://' for x in s.schemes)})" for s in STORES)
    raise NotSupportedError(
        f"table {table}: floe's Python readers cannot reach {scheme}:// locations ({location})"
        + (f": {reason}" if reason else "")
        + f"; readable: local paths; {readable}",
        provider="storage",
        operation="read",
        retryable=False,
    )


def filesystem(location: str, storage: Mapping[str, str], table: str = "") -> tuple[Any, str]:
    """(PyArrow filesystem, path inside it) for a local or object-store location."""
    import pyarrow.fs as pafs

    path = local_path(location)
    if path is not None:
        return pafs.LocalFileSystem(), path
    return _store(location, storage, table).filesystem(location, storage)


def path_in_store(location: str, table: str = "") -> str:
    """The path ``filesystem`` gives for ``location``, without making the filesystem."""
    local = local_path(location)
    if local is not None:
        return local
    return _store(location, {}, table, check_storage=False).path(location)


def object_store_options(location: str, storage: Mapping[str, str], table: str = "") -> dict[str, str]:
    """Storage options for the Rust readers (delta-rs, hudi-rs: the ``object_store`` crate's keys)."""
    if local_path(location) is not None:
        return {}
    return _store(location, storage, table).object_store_options(storage)


def uri(location: str) -> str:
    """A URI the Rust readers open: ``s3a://``, ``oss://`` ... as ``s3://``, local paths as they are."""
    path = local_path(location)
    if path is not None:
        return path
    store = BY_SCHEME.get(urlsplit(location).scheme)
    return store.uri(location) if store is not None else location.rstrip("/")
