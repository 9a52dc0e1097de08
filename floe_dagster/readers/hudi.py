"""Apache Hudi copy-on-write tables on DuckDB, through hudi-rs (the ``hudi`` package).

* Snapshot reads: hudi-rs resolves the table's timeline and file groups and gives the latest
  file slice of each; a copy-on-write slice is one Parquet base file, so the view is DuckDB's
  ``read_parquet`` over exactly those base files (DuckDB pushes projections and filters into
  them; older versions of a file group, files of failed or pending commits are never read).
* Time travel: a scan whose options carry ``as_of`` (an instant ``yyyyMMddHHmmssSSS`` or a
  timestamp hudi-rs accepts) reads the slices as of that instant.
* Incremental reads: ``read_incremental(location, storage, start, end)`` gives, as Arrow, the
  records committed in ``(start, end]`` (hudi-rs's incremental query).
* Data version: the latest completed instant of the timeline (``.hoodie/<instant>.commit``,
  ``.replacecommit``, ``.deltacommit``; ``.hoodie/timeline/<instant>_<completion>.commit`` in
  table version 8), from one listing of the timeline folder.

Merge-on-read tables are refused with a ``NotSupportedError`` naming the table: their log files
would need merging that a base-file read would silently skip.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any, ClassVar
from urllib.parse import urlsplit

from floe_dagster.core.errors import NotSupportedError
from floe_dagster.plugins.table_model import ScanDescription
from floe_dagster.readers.formats import FormatReader
from floe_dagster.readers.storage import GCS_SCHEMES, filesystem, object_store_options, uri

_COMPLETED = re.compile(r"^(\d{14,17})(?:_\d{14,17})?\.(commit|deltacommit|replacecommit)$")


def version_from_timeline_keys(keys: Iterable[str]) -> str | None:
    """The latest completed instant among the paths of a ``.hoodie`` folder's files."""
    instants = [m.group(1) for key in keys if (m := _COMPLETED.match(key.rsplit("/", 1)[-1]))]
    return max(instants) if instants else None


def open_table(location: str, storage: Mapping[str, str], table: str = "") -> Any:
    from hudi import HudiTableBuilder

    try:
        return (
            HudiTableBuilder.from_base_uri(uri(location))
            .with_storage_options(object_store_options(location, storage, table))
            .build()
        )
    except Exception as exc:  # hudi-rs raises its own error types
        raise NotSupportedError(
            f"table {table}: hudi-rs cannot open the Hudi table at {location}: {exc}",
            provider="hudi",
            operation="read_hudi",
            retryable=False,
        ) from None


def read_incremental(location: str, storage: Mapping[str, str], start: str, end: str) -> Any:
    """The records committed after instant ``start`` up to ``end`` (inclusive), as an Arrow table."""
    import pyarrow as pa
    from hudi import HudiQueryType, HudiReadOptions

    table = open_table(location, storage)
    options = (
        HudiReadOptions()
        .with_query_type(HudiQueryType.Incremental)
        .with_start_timestamp(start)
        .with_end_timestamp(end)
    )
    batches = table.read(options)
    return pa.Table.from_batches(batches) if batches else table.get_schema_with_meta_fields().empty_table()


class HudiReader(FormatReader):
    name: ClassVar[str] = "hudi"
    log_folder: ClassVar[str | None] = ".hoodie"

    def check(self, scan: ScanDescription) -> None:
        location = scan.options.get("path") or scan.location
        if urlsplit(location).scheme in GCS_SCHEMES:
            raise NotSupportedError(
                f"table {scan.table}: a Hudi table on Google Cloud Storage ({location}) is discovered"
                " and versioned, but not read on DuckDB: hudi-rs reaches gs:// through GCS's XML API"
                " (the object_store crate), which floe cannot test here",
                provider="hudi",
                operation="read_hudi",
                retryable=False,
            )
        if scan.options.get("hudi_query_type") == "realtime":
            raise NotSupportedError(
                f"table {scan.table}: a Hudi merge-on-read (realtime) table; floe reads copy-on-write"
                " tables only (their base files are the data)",
                provider="hudi",
                operation="read_hudi",
                retryable=False,
            )

    def relation_sql(self, scan: ScanDescription, storage: Mapping[str, str]) -> str | None:
        from hudi import HudiReadOptions

        # lazy: duckdb_scan imports the format registry, which loads this module
        from floe_dagster.readers.duckdb_scan import duckdb_path, quote_literal

        location = scan.options.get("path") or scan.location
        table = open_table(location, storage, scan.table)
        if table.is_mor:
            raise NotSupportedError(
                f"table {scan.table}: a Hudi merge-on-read table; floe reads copy-on-write tables only",
                provider="hudi",
                operation="read_hudi",
                retryable=False,
            )
        options = HudiReadOptions()
        if scan.options.get("as_of"):
            options = options.with_as_of_timestamp(str(scan.options["as_of"]))
        base = duckdb_path(location, scan.table)
        files = [f"{base}/{s.base_file_relative_path()}" for s in table.get_file_slices(options)]
        if not files:
            columns = ", ".join(
                f'CAST(NULL AS VARCHAR) AS "{f.name}"' for f in table.get_schema_with_meta_fields()
            )
            return f"(SELECT {columns} WHERE false)"
        listed = ", ".join(quote_literal(f) for f in sorted(files))
        return f"read_parquet([{listed}], union_by_name=true, hive_partitioning=false)"

    def version_from_keys(self, keys: Iterable[str]) -> str | None:
        return version_from_timeline_keys(keys)

    def data_version(self, location: str, storage: Mapping[str, str], table: str = "") -> str:
        import pyarrow.fs as pafs

        fs, root = filesystem(location, storage, table)
        selector = pafs.FileSelector(f"{root}/.hoodie", recursive=False, allow_not_found=True)
        keys = [i.path for i in fs.get_file_info(selector)]
        keys += [
            i.path
            for i in fs.get_file_info(pafs.FileSelector(f"{root}/.hoodie/timeline", allow_not_found=True))
        ]
        version = version_from_timeline_keys(keys)
        if version is None:
            raise NotSupportedError(
                f"table {table}: {location} is registered as a Hudi table but its timeline"
                " (.hoodie/) has no completed commit",
                provider="hudi",
                operation="data_version",
                retryable=False,
            )
        return version

    def arrow_schema(self, location: str, storage: Mapping[str, str]) -> Any:
        return open_table(location, storage).get_schema()


READER = HudiReader()
__all__ = ["READER", "HudiReader", "open_table", "read_incremental", "version_from_timeline_keys"]
