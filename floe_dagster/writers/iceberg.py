"""The one Iceberg writer: every table floe writes goes through PyIceberg here.

* ``replace_table_from_arrow`` / ``replace_table_from_parquet``: a dbt model's output replaces
  the table's contents (created, or re-created when its schema changed);
* ``IcebergAppender``: the S3 ingest's streaming append, Parquet data files written as the
  batches come and committed with the ingest cursor in one Iceberg transaction.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from floe_dagster.core.compat import (
    check_pyarrow_schema_compatible,
    dataframe_to_data_files,
    pyarrow_to_schema_without_ids,
    to_requested_schema,
)
from floe_dagster.core.errors import FloeError, NotFoundError
from floe_dagster.ingest.cursor import Cursor
from floe_dagster.plugins.catalog import CatalogPlugin, Identifier

__all__ = [
    "LEVEL_PROPERTY",
    "MB",
    "ROW_GROUP_BYTES",
    "WRITE_QUEUE_BYTES",
    "IcebergAppender",
    "WriterThread",
    "arrow_for_iceberg",
    "iceberg_arrow_schema",
    "iceberg_columns",
    "replace_table_from_arrow",
    "replace_table_from_parquet",
]

logger = logging.getLogger("floe_dagster.ingest")

LEVEL_PROPERTY = "write.parquet.compression-level"


MB = 1024 * 1024


WRITE_QUEUE_BYTES = 64 * MB


ROW_GROUP_BYTES = 128 * MB


@functools.lru_cache(maxsize=256)
def iceberg_arrow_schema(schema: Any) -> Any:
    """``schema`` with nanosecond timestamps (which Iceberg v2 cannot hold) as microseconds."""
    import pyarrow as pa

    fields = [
        pa.field(item.name, pa.timestamp("us", tz=item.type.tz), item.nullable, item.metadata)
        if pa.types.is_timestamp(item.type) and item.type.unit == "ns"
        else item
        for item in schema
    ]
    return pa.schema(fields, metadata=schema.metadata)


def arrow_for_iceberg(data: Any) -> Any:
    """A table or record batch with nanosecond timestamps as microseconds; the rest unchanged."""
    target = iceberg_arrow_schema(data.schema)
    return data if target.equals(data.schema) else data.cast(target, safe=False)


@functools.lru_cache(maxsize=256)
def iceberg_columns(arrow_schema: Any) -> dict[str, str]:
    """Column -> Iceberg type of an Arrow schema (what the table would hold), for comparison.

    Cached: the files of a table share their schema, and the conversion is a Python visitor.
    """
    return {f.name: str(f.field_type) for f in pyarrow_to_schema_without_ids(arrow_schema).fields}


def _mapped(catalog: CatalogPlugin, operation: str, subject: str, call: Any) -> Any:
    try:
        return call()
    except FloeError:
        raise
    except Exception as exc:
        mapper = getattr(catalog, "map_error", None)
        if mapper is None:
            raise
        raise mapper(exc, operation, subject) from exc


class IcebergAppender:
    """Appends record batches to an Iceberg table as Parquet data files, committed with the cursor.

    ``write`` takes an object's batches (``rows_per_record`` rows each) and writes them out as
    they come: consecutive batches are joined into one row group (``write.parquet.row-group-limit``
    rows, at most ``ROW_GROUP_BYTES`` of Arrow data), row groups go into an open data file that is
    closed at ``write.target-file-size-bytes`` of Arrow data (PyIceberg's measure) or at the
    commit. ``commit`` adds the files written since the last commit and sets the cursor in one
    Iceberg transaction: until then they belong to no snapshot, so a crash loses only them.
    The pieces are PyIceberg's own (its file format writer, statistics, location provider and
    snapshot producer); what it lacks is a data file kept open across ``append`` calls.

    One thread at a time (the ingest's writer thread).
    """

    def __init__(
        self,
        catalog: CatalogPlugin,
        table: Any,
        write_properties: Mapping[str, str],
        removed: Sequence[str] = (),
    ) -> None:
        import itertools
        import uuid

        from pyiceberg.io.fileformat import FileFormatFactory
        from pyiceberg.manifest import FileFormat
        from pyiceberg.schema import sanitize_column_names
        from pyiceberg.table import TableProperties
        from pyiceberg.utils.properties import property_as_int

        self.catalog, self.table = catalog, table
        merged = {**table.properties, **write_properties}
        # The files are written with the manifest's properties, which the commit then restates.
        self.properties = {k: v for k, v in merged.items() if k not in removed}
        self.row_group_rows: int = property_as_int(  # type: ignore[assignment]  # has a default
            self.properties,
            TableProperties.PARQUET_ROW_GROUP_LIMIT,
            TableProperties.PARQUET_ROW_GROUP_LIMIT_DEFAULT,
        )
        self.target_file_bytes: int = property_as_int(  # type: ignore[assignment]
            self.properties,
            TableProperties.WRITE_TARGET_FILE_SIZE_BYTES,
            TableProperties.WRITE_TARGET_FILE_SIZE_BYTES_DEFAULT,
        )
        schema = table.schema()
        self.table_schema = schema
        self.file_schema = sanitize_column_names(schema)
        self.format = FileFormat.PARQUET
        self.format_model = FileFormatFactory.get(self.format)
        self.write_uuid = uuid.uuid4()
        self.counter = itertools.count()
        self.pending: list[Any] = []
        self.pending_rows = 0
        self.pending_bytes = 0
        self.writer: Any = None
        self.output: Any = None
        self.path = ""
        self.file_bytes = 0
        self.files: list[Any] = []
        self.batches = 0  # batches received
        self.busy = 0.0  # seconds spent writing and committing
        self.commits = 0
        self.committed: Cursor | None = None
        self._task_schemas: list[tuple[Any, Any]] = []

    @property
    def identifier(self) -> str:
        return ".".join(self.table.name()[-2:])

    def write(self, batches: Sequence[Any], size: int) -> None:
        """Take one object's batches (``size``: their Arrow bytes, apportioned by rows)."""
        started = time.perf_counter()
        try:
            self._write(batches, size)
        finally:
            self.busy += time.perf_counter() - started

    def commit(self, cursor: Cursor, restate: Mapping[str, str], unset: Sequence[str]) -> None:
        """Every row written so far, the cursor that covers them and ``restate`` in one commit."""
        started = time.perf_counter()
        try:
            self._commit(cursor, restate, unset)
        finally:
            self.busy += time.perf_counter() - started

    def _write(self, batches: Sequence[Any], size: int) -> None:
        if not batches:
            return
        self.batches += len(batches)
        if self.pending and not batches[0].schema.equals(self.pending[0].schema):
            self._flush()  # an object's batches share its schema; a row group holds one schema
        self.pending.extend(batches)
        self.pending_rows += sum(batch.num_rows for batch in batches)
        self.pending_bytes += size
        if self.pending_rows >= self.row_group_rows or self.pending_bytes >= ROW_GROUP_BYTES:
            self._flush(keep_rest=True)

    def _commit(self, cursor: Cursor, restate: Mapping[str, str], unset: Sequence[str]) -> None:
        from pyiceberg.table import TableProperties
        from pyiceberg.utils.properties import property_as_bool

        self._flush()
        self._close_file()
        files, self.files = self.files, []

        def transaction() -> None:
            with self.table.transaction() as tx:
                if unset:
                    tx.remove_properties(*unset)
                if restate:
                    tx.set_properties(dict(restate))
                if files:
                    snapshot = tx.update_snapshot()
                    merge = property_as_bool(
                        self.table.properties,
                        TableProperties.MANIFEST_MERGE_ENABLED,
                        TableProperties.MANIFEST_MERGE_ENABLED_DEFAULT,
                    )
                    with snapshot.merge_append() if merge else snapshot.fast_append() as append:
                        for data_file in files:
                            append.append_data_file(data_file)
                tx.set_properties(cursor.properties())

        _mapped(self.catalog, "append", self.identifier, transaction)
        self.commits += 1
        self.committed = cursor

    def _task_schema(self, arrow_schema: Any) -> Any:
        """The Iceberg schema of batches of ``arrow_schema`` (checked against the table's once)."""
        from pyiceberg.io.pyarrow import pyarrow_to_schema

        for known, task_schema in self._task_schemas:
            if known.equals(arrow_schema):
                return task_schema
        version = self.table.metadata.format_version
        check_pyarrow_schema_compatible(
            self.table_schema, provided_schema=arrow_schema, format_version=version
        )
        task_schema = pyarrow_to_schema(
            arrow_schema, name_mapping=self.table_schema.name_mapping, format_version=version
        )
        self._task_schemas.append((arrow_schema, task_schema))
        return task_schema

    def _flush(self, keep_rest: bool = False) -> None:
        """The pending batches as full row groups (a copy joins them; PyIceberg converts each
        once); ``keep_rest``: rows short of a full group stay pending, else they are one too."""
        import pyarrow as pa

        if not self.pending:
            return
        joined = pa.concat_batches(self.pending) if len(self.pending) > 1 else self.pending[0]
        per_row = self.pending_bytes / max(1, self.pending_rows)
        group = max(
            1, min(self.row_group_rows, int(ROW_GROUP_BYTES / per_row) if per_row else self.row_group_rows)
        )
        self.pending, self.pending_rows, self.pending_bytes = [], 0, 0
        offset = 0
        while joined.num_rows - offset >= group or (not keep_rest and offset < joined.num_rows):
            self._write_row_group(joined.slice(offset, group))
            offset += group
        if offset < joined.num_rows:
            rest = joined.slice(offset)
            self.pending, self.pending_rows = [rest], rest.num_rows
            self.pending_bytes = int(rest.num_rows * per_row)

    def _write_row_group(self, rows: Any) -> None:
        import pyarrow as pa

        chunk = arrow_for_iceberg(rows)
        if not self.table.metadata.spec().is_unpartitioned():  # PyIceberg splits by partition
            self.files.extend(
                dataframe_to_data_files(
                    table_metadata=self.table.metadata,
                    df=pa.Table.from_batches([chunk]),
                    io=self.table.io,
                    write_uuid=self.write_uuid,
                    counter=self.counter,
                )
            )
            return
        converted = to_requested_schema(
            requested_schema=self.file_schema,
            file_schema=self._task_schema(chunk.schema),
            batch=chunk,
            include_field_ids=True,
            format_model=self.format_model,
        )
        writer = self.writer or self._open_file()
        writer.write(pa.Table.from_batches([converted]))
        self.file_bytes += chunk.nbytes
        if self.file_bytes >= self.target_file_bytes:
            self._close_file()

    def _open_file(self) -> Any:
        from pyiceberg.table.locations import load_location_provider

        metadata = self.table.metadata
        locations = load_location_provider(table_location=metadata.location, table_properties=self.properties)
        name = f"00000-{next(self.counter)}-{self.write_uuid}.{self.format_model.file_extension()}"
        self.path = locations.new_data_location(data_file_name=name)
        self.output = self.table.io.new_output(self.path)
        self.writer = self.format_model.create_writer(self.output, self.file_schema, self.properties)
        self.file_bytes = 0
        return self.writer

    def _close_file(self) -> None:
        from pyiceberg.manifest import DataFile, DataFileContent
        from pyiceberg.typedef import Record

        if self.writer is None:
            return
        writer, self.writer = self.writer, None
        statistics = writer.close()
        self.files.append(
            DataFile.from_args(
                content=DataFileContent.DATA,
                file_path=self.path,
                file_format=self.format,
                partition=Record(),
                file_size_in_bytes=len(self.output),
                sort_order_id=None,
                spec_id=self.table.metadata.default_spec_id,
                equality_ids=None,
                key_metadata=None,
                **statistics.to_serialized_dict(),
            )
        )


class WriterThread:
    """Runs calls one after the other on one thread, at most ``limit`` bytes of them queued.

    After a call fails, the later ones do nothing (a commit must never follow a failed write);
    the failure is raised in the caller when it waits for that call.
    """

    def __init__(self, limit: int) -> None:
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="floe-ingest-write")
        self.queue: deque[tuple[Future[None], int]] = deque()
        self.queued = 0
        self.limit = limit
        self.failed = False

    def submit(self, call: Callable[[], None], size: int = 0) -> None:
        def run() -> None:
            if self.failed:
                raise RuntimeError("an earlier write of this ingest failed")
            try:
                call()
            except BaseException:
                self.failed = True
                raise

        self.queue.append((self.pool.submit(run), size))
        self.queued += size
        while self.queued > self.limit and self.queue:
            self._wait_oldest()

    def _wait_oldest(self) -> None:
        future, size = self.queue.popleft()
        self.queued -= size
        future.result()

    def drain(self) -> None:
        """Wait for every call; the first failure is raised."""
        while self.queue:
            self._wait_oldest()

    def drain_quietly(self) -> None:
        """Wait for every call, failures left to the exception already on its way."""
        while self.queue:
            with contextlib.suppress(BaseException):
                self._wait_oldest()

    def shutdown(self) -> None:
        self.pool.shutdown(wait=True)


def replace_table_from_parquet(catalog: CatalogPlugin, identifier: Identifier, parquet_path: str) -> int:
    """Replace the contents of ``identifier`` with the Parquet file; create or re-create as needed.

    A changed schema re-creates the table: a dbt table model is a full rebuild, and keeping
    old columns alive through schema evolution would surprise its readers.
    """
    return replace_table_from_arrow(catalog, identifier, pq.read_table(parquet_path))


def replace_table_from_arrow(catalog: CatalogPlugin, identifier: Identifier, data: pa.Table) -> int:
    """Replace the contents of ``identifier`` with ``data`` (see :func:`replace_table_from_parquet`)."""
    catalog.ensure_namespace(identifier[:-1])
    try:
        table = catalog.load_table(identifier)
    except NotFoundError:
        table = None
    if table is not None and table.schema().column_names != data.schema.names:
        catalog.drop_table(identifier)
        table = None
    if table is not None:
        try:
            # an empty table has nothing to replace: an overwrite's delete would only warn
            # "Delete operation did not match any records"
            (table.append if holds_no_rows(table) else table.overwrite)(data)
            return int(data.num_rows)
        except ValueError:  # PyIceberg's answer to an incompatible column type
            catalog.drop_table(identifier)
    catalog.create_table(identifier, schema=data.schema).append(data)
    return int(data.num_rows)


def holds_no_rows(table: Any) -> bool:
    """No snapshot yet, or its summary counts 0 records."""
    snapshot = table.current_snapshot()
    if snapshot is None:
        return True
    summary = snapshot.summary
    return summary is not None and summary.get("total-records") == "0"
