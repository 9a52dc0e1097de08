"""Delta Lake tables on DuckDB: ``delta_scan`` of DuckDB's delta extension, versioned by the Delta log.

* Reading: ``delta_scan('<table folder>')`` (the ``duckdb-extension-delta`` package, installed
  and loaded offline like the other extensions); DuckDB pushes projections and filters into it,
  partition values included, so a filter on a partition column skips the other partitions'
  files. Files on S3 and Azure Blob (``az://``, ``abfss://``) are read with the DuckDB secret of
  the metastore's credentials. Delta tables on GCS are not read (``check`` says why).
* Time travel: a scan whose options carry ``as_of`` (a Delta version, an integer) reads
  ``delta_scan(..., version => N)``.
* Data version: the table's latest Delta log version, the highest ``NNNNNNNNNNNNNNNNNNNN.json``
  in ``<table>/_delta_log/`` (one listing of that folder, no file read): it changes with every
  commit and only then.

A Delta table registered by Spark keeps its folder in the serde parameter ``path`` (``readers/
formats.py`` ``detect_table_format`` passes it on as the ``path`` option); it wins over the
storage location, which Spark may set to a placeholder.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from typing import Any, ClassVar
from urllib.parse import urlsplit

from floe_dagster.core.errors import NotSupportedError
from floe_dagster.plugins.table_model import ScanDescription
from floe_dagster.readers.formats import FormatReader
from floe_dagster.readers.storage import (
    AZURE_SCHEMES,
    GCS_SCHEMES,
    S3_SCHEMES,
    filesystem,
    object_store_options,
    uri,
)

AZURITE_ACCOUNT = "devstoreaccount1"  # the Azure Storage emulator's well-known account
_COMMIT = re.compile(r"^(\d{20})\.(json|checkpoint\.parquet|checkpoint\.\d+\.\d+\.parquet)$")


def table_folder(scan: ScanDescription) -> str:
    return scan.options.get("path") or scan.location


def delta_version(location: str, storage: Mapping[str, str], table: str = "") -> int:
    """The latest version in the table's ``_delta_log`` folder (one listing)."""
    import pyarrow.fs as pafs

    fs, root = filesystem(location, storage, table)
    try:
        infos = fs.get_file_info(pafs.FileSelector(f"{root}/_delta_log", allow_not_found=True))
    except OSError as exc:
        raise NotSupportedError(
            f"table {table}: cannot list the Delta log at {location}/_delta_log ({type(exc).__name__})",
            provider="delta",
            operation="data_version",
        ) from None
    version = version_from_log_keys(i.path for i in infos)
    if version is None:
        raise NotSupportedError(
            f"table {table}: {location} is registered as a Delta table but has no Delta log"
            " (_delta_log/NNNN.json); write it with a Delta writer or register its real location",
            provider="delta",
            operation="data_version",
            retryable=False,
        )
    return version


def version_from_log_keys(keys: Iterable[str]) -> int | None:
    """The latest version among the paths of a ``_delta_log`` folder's files (None: no commit)."""
    versions = [int(m.group(1)) for key in keys if (m := _COMMIT.match(key.rsplit("/", 1)[-1]))]
    return max(versions) if versions else None


def delta_schema(location: str, storage: Mapping[str, str]) -> Any:
    """The Arrow schema of the table's current version (delta-rs reads the log)."""
    import pyarrow as pa
    from deltalake import DeltaTable

    table = DeltaTable(uri(location), storage_options=object_store_options(location, storage) or None)
    return pa.schema(table.schema().to_arrow())


def point_at_azurite(storage: Mapping[str, str]) -> None:
    """DuckDB's delta extension (delta-kernel's ``object_store``) takes the account and key of the
    azure secret but not its blob endpoint: for the emulator's account (``devstoreaccount1``) it
    goes to ``AZURITE_BLOB_STORAGE_URL``, else http://127.0.0.1:10000. With an emulator's endpoint
    in the metastore (a blob authority other than Azure's), that variable is set to it."""
    authority = storage.get("adls.blob-storage-authority")
    if authority and storage.get("adls.account-name") == AZURITE_ACCOUNT:
        os.environ["AZURITE_BLOB_STORAGE_URL"] = (
            f"{storage.get('adls.blob-storage-scheme') or 'http'}://{authority}"
        )


class DeltaReader(FormatReader):
    name: ClassVar[str] = "delta"
    duckdb_extensions: ClassVar[tuple[str, ...]] = ("delta",)
    log_folder: ClassVar[str | None] = "_delta_log"

    def check(self, scan: ScanDescription) -> None:
        scheme = urlsplit(table_folder(scan)).scheme
        if scheme in GCS_SCHEMES:
            raise NotSupportedError(
                f"table {scan.table}: a Delta table on Google Cloud Storage ({table_folder(scan)}) is"
                " discovered and versioned, but not read on DuckDB: its delta extension reaches gs://"
                " only with a GCS HMAC secret, through GCS's XML API (which floe cannot test here),"
                " and does not use the gcsfs filesystem floe registers for the other modes",
                provider="delta",
                operation="read_delta",
                retryable=False,
            )
        if scheme not in ("", "file", *S3_SCHEMES, *AZURE_SCHEMES):
            raise NotSupportedError(
                f"table {scan.table}: Delta tables are read from local folders, S3 and the"
                " S3-compatible stores (s3://, s3a://, oss://, cosn://) and Azure Blob (az://, abfss://)"
                f" here, not {scheme}:// ({table_folder(scan)})",
                provider="delta",
                operation="read_delta",
                retryable=False,
            )
        as_of = scan.options.get("as_of")
        if as_of is not None and not str(as_of).isdigit():
            raise NotSupportedError(
                f"table {scan.table}: a Delta table is read at a version (a whole number), not {as_of!r}",
                provider="delta",
                operation="read_delta",
                retryable=False,
            )

    def relation_sql(self, scan: ScanDescription, storage: Mapping[str, str]) -> str | None:
        # lazy: duckdb_scan imports the format registry, which loads this module
        from floe_dagster.readers.duckdb_scan import quote_literal

        if urlsplit(table_folder(scan)).scheme in AZURE_SCHEMES:
            point_at_azurite(storage)
        args = [quote_literal(uri(table_folder(scan)))]
        if scan.options.get("as_of") is not None:
            args.append(f"version => {int(scan.options['as_of'])}")
        return f"delta_scan({', '.join(args)})"

    def data_version(self, location: str, storage: Mapping[str, str], table: str = "") -> str:
        return str(delta_version(location, storage, table))

    def version_from_keys(self, keys: Iterable[str]) -> str | None:
        version = version_from_log_keys(keys)
        return None if version is None else str(version)

    def arrow_schema(self, location: str, storage: Mapping[str, str]) -> Any:
        return delta_schema(location, storage)


READER = DeltaReader()
__all__ = ["READER", "DeltaReader", "delta_schema", "delta_version", "table_folder", "version_from_log_keys"]
