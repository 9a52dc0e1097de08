"""Incremental ingest of S3 tables into Iceberg: one asset per table an ``s3`` metastore discovers.

Opt-in per metastore (``config.ingest.enabled``). Each discovered table ``T`` of metastore
``M`` gets the asset ``<catalog>/<ingest namespace>/T`` (the Iceberg table it writes, in
``ingest.catalog`` or the manifest's ``transforms.catalog``), downstream of the source asset
``M/<namespace>/T``.

The cursor: an object is new when its ``LastModified`` is later than the cursor, or equal to
it and its key is not among the keys already taken at that instant (S3 lists ``LastModified``
to the second, so many objects share one). The cursor (RFC 3339 with nanoseconds) and those
keys are Iceberg table properties, written in the *same* Iceberg commit as the data they
cover: a run that dies half way has committed a prefix of the new objects (in
``LastModified``, key order) together with the cursor that covers exactly that prefix, so the
next run neither loses nor duplicates an object. The materialisation metadata shows the
cursor too (``floe/cursor``), read from the table, not from Dagster's event log, which is
written after the commit and could lag it.

The pipeline (``ingest_table``): objects are downloaded in parallel (``concurrency``), then,
in cursor order on the calling thread, each is decoded whole into Arrow record batches of
``rows_per_record`` rows and handed to a writer thread (``IcebergAppender``), which joins
consecutive batches into Parquet row groups of an open data file while the next objects are
downloaded and decoded, and commits the files written so far with the cursor every
``commit_mb`` of Arrow data and at the end. Memory: the downloads in flight, one decoded
object, at most ``WRITE_QUEUE_BYTES`` handed to the writer and one row group.

Objects that are gone between listing and reading, replaced since listing (read on the next
run), or malformed are logged as warnings with their key and skipped; the cursor moves past
them. A file whose schema differs from the table's (or, CSV/JSON, a value that does not fit
its column's type) stops that table after committing what came before it.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, NoReturn

from dagster import (
    AssetKey,
    AssetSpec,
    DataVersion,
    Failure,
    MaterializeResult,
    MetadataValue,
    multi_asset,
)

from floe_dagster.core.compat import (
    check_pyarrow_schema_compatible,
    dataframe_to_data_files,
    pyarrow_to_schema_without_ids,
    to_requested_schema,
)
from floe_dagster.core.errors import ConfigurationError, ConflictError, FloeError, NotFoundError
from floe_dagster.core.parallel import ordered_parallel
from floe_dagster.dagster_stage.names import UNSCOPED, DefinitionNames
from floe_dagster.dagster_stage.sources import SourceKeys, source_asset_key
from floe_dagster.metastores.s3 import (
    ObjectData,
    ObjectSkipped,
    S3MetastoreConnector,
    S3Object,
    SchemaMismatchError,
    ValueConversionError,
    column_differences,
)
from floe_dagster.plugins.catalog import CatalogPlugin

logger = logging.getLogger("floe_dagster.ingest")

CURSOR_PROPERTY = "floe.s3.cursor"
CURSOR_KEYS_PROPERTY = "floe.s3.cursor-keys"
SCHEMA_SOURCE_PROPERTY = "floe.s3.schema-source"
SOURCE_PROPERTY = "floe.s3.source"
LEVEL_PROPERTY = "write.parquet.compression-level"
MB = 1024 * 1024
# Arrow data read but not yet written that the reading side may run ahead of the writer by.
WRITE_QUEUE_BYTES = 64 * MB
# A row group holds at most this much Arrow data (and write.parquet.row-group-limit rows).
ROW_GROUP_BYTES = 128 * MB


# --- the cursor ------------------------------------------------------------------------------------


def format_rfc3339_nanos(moment: datetime) -> str:
    """``2026-01-02T03:04:05.123456000Z`` (UTC, nine fractional digits)."""
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond:06d}000Z"


def parse_rfc3339_nanos(text: str) -> datetime:
    """The instant of an RFC 3339 timestamp (fractions beyond microseconds are dropped)."""
    head, _, rest = text.strip().replace("z", "Z").partition(".")
    fraction, zone = "", "Z"
    if rest:
        digits = len(rest) - len(rest.lstrip("0123456789"))
        fraction, zone = rest[:digits], rest[digits:] or "Z"
    elif head.endswith("Z"):
        head = head[:-1]
    elif len(head) > 19:
        head, zone = head[:19], head[19:]
    micro = (fraction + "000000")[:6]
    zone = "+00:00" if zone == "Z" else zone
    return datetime.fromisoformat(f"{head}.{micro}{zone}").astimezone(UTC)


@dataclass(frozen=True)
class Cursor:
    """Everything up to ``last_modified``, plus the ``keys`` taken at exactly that instant."""

    last_modified: datetime | None = None
    keys: frozenset[str] = frozenset()

    def is_new(self, obj: S3Object) -> bool:
        if self.last_modified is None or obj.last_modified > self.last_modified:
            return True
        return obj.last_modified == self.last_modified and obj.key not in self.keys

    def past(self, obj: S3Object, taken: bool = True) -> Cursor:
        """The cursor once ``obj`` (no earlier than any object before it) is done.

        ``taken`` False: the object was not consumed (changed since listing); the cursor reaches
        its instant but does not mark its key, so a newer version at the same instant is read.
        """
        if self.last_modified is not None and obj.last_modified < self.last_modified:
            return self
        keys = self.keys if obj.last_modified == self.last_modified else frozenset()
        return Cursor(obj.last_modified, keys | {obj.key} if taken else keys)

    @property
    def text(self) -> str:
        return format_rfc3339_nanos(self.last_modified) if self.last_modified else ""

    def properties(self) -> dict[str, str]:
        return {CURSOR_PROPERTY: self.text, CURSOR_KEYS_PROPERTY: json.dumps(sorted(self.keys))}

    @classmethod
    def from_properties(cls, properties: Mapping[str, str]) -> Cursor:
        text = properties.get(CURSOR_PROPERTY)
        if not text:
            return cls()
        keys = json.loads(properties.get(CURSOR_KEYS_PROPERTY) or "[]")
        return cls(parse_rfc3339_nanos(text), frozenset(keys))


def new_objects(objects: Iterable[S3Object], cursor: Cursor) -> list[S3Object]:
    """The objects after ``cursor``, oldest first (ties by key): the order they are committed in."""
    return sorted((o for o in objects if cursor.is_new(o)), key=lambda o: (o.last_modified, o.key))


# --- ingesting one table ---------------------------------------------------------------------------


@dataclass
class IngestReport:
    table: str
    identifier: tuple[str, str]
    listed: int = 0
    new: int = 0
    read: int = 0
    rows: int = 0
    bytes: int = 0
    commits: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)
    cursor: Cursor = field(default_factory=Cursor)
    snapshot_id: int | None = None
    total_rows: int | None = None
    seconds: float = 0.0
    batches: int = 0  # Arrow record batches handed to the writer (rows_per_record rows each)
    # Seconds per stage (this thread waiting for downloads, decoding, waiting for the writer;
    # the writer thread's busy time): where a run's time went.
    timings: dict[str, float] = field(default_factory=dict)


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


class _Log:
    """Logs to floe's logger and, in Dagster, to the run's log."""

    def __init__(self, sink: Any = None) -> None:
        self.sink = sink

    def info(self, message: str) -> None:
        logger.info(message)
        if self.sink is not None:
            self.sink.info(message)

    def warning(self, message: str) -> None:
        logger.warning(message)
        if self.sink is not None:
            self.sink.warning(message)


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


# --- writing: data files as the batches come, one commit per commit_mb ----------------------------


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


class _WriterThread:
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


# --- ingesting one table ---------------------------------------------------------------------------


def ingest_table(
    connector: S3MetastoreConnector,
    catalog: CatalogPlugin,
    table: str,
    objects: Sequence[S3Object],
    *,
    namespace: str,
    commit_bytes: int,
    log: Any = None,
) -> IngestReport:
    """Append the objects of ``table`` newer than its cursor to ``<namespace>.<table>``.

    Three stages overlap: downloads in parallel (at most ``connector.config.concurrency`` in
    flight), decoding into ``rows_per_record`` batches in cursor order (this thread), and
    writing on a writer thread (``IcebergAppender``); each commit carries the cursor that
    covers exactly what it holds.
    """
    run = _TableIngest(connector, catalog, table, namespace, commit_bytes, _Log(log))
    return run.ingest(objects)


class _TableIngest:
    """One run of ``ingest_table`` (see there); its steps as methods."""

    def __init__(
        self,
        connector: S3MetastoreConnector,
        catalog: CatalogPlugin,
        table: str,
        namespace: str,
        commit_bytes: int,
        out: _Log,
    ) -> None:
        self.connector, self.catalog, self.table, self.out = connector, catalog, table, out
        self.identifier = (namespace, table)
        self.commit_bytes = commit_bytes
        self.report = IngestReport(table=table, identifier=self.identifier)
        self.iceberg = _load_or_none(catalog, self.identifier)
        properties = dict(self.iceberg.properties) if self.iceberg is not None else {}
        self.cursor = Cursor.from_properties(properties)
        # The first file's columns (or the table's): every later file must have the same.
        self.reference: tuple[str, dict[str, str]] | None = None
        if self.iceberg is not None:
            source = properties.get(SCHEMA_SOURCE_PROPERTY) or f"iceberg table {namespace}.{table}"
            self.reference = (source, {f.name: str(f.field_type) for f in self.iceberg.schema().fields})
        # Codec, level, dictionary limit...: set on the table at creation, and brought in line
        # with the manifest in the first commit of a run on a table created with other values.
        self.write_properties = connector.config.ingest.write_properties()
        self.stale_properties = {
            k: v
            for k, v in self.write_properties.items()
            if self.iceberg is not None and properties.get(k) != v
        }
        # A level left from another codec (snappy, lz4 take none): PyIceberg would fail on it.
        self.stale_removals = [
            k for k in (LEVEL_PROPERTY,) if k in properties and k not in self.write_properties
        ]
        self.text_schema: Any = None
        self.appender: IcebergAppender | None = None
        self.writer = _WriterThread(WRITE_QUEUE_BYTES)
        self.position = self.requested = self.cursor
        self.buffered = 0  # Arrow bytes handed to the writer since the last commit

    @property
    def name(self) -> str:
        return f"{self.catalog.name}.{self.identifier[0]}.{self.table}"

    def ingest(self, objects: Sequence[S3Object]) -> IngestReport:
        started = time.monotonic()
        pending = new_objects(objects, self.cursor)
        self.report.listed, self.report.new, self.report.cursor = len(objects), len(pending), self.cursor
        self.out.info(
            f"floe ingest {self.table}: {len(objects)} object(s) listed, {len(pending)} new since cursor"
            f" {self.cursor.text or '(none)'} -> {self.name}"
        )
        if pending:
            self.text_schema = self._text_schema(pending)
            self._run(pending)
        return self._finish(started)

    def _text_schema(self, pending: Sequence[S3Object]) -> Any:
        """CSV/JSON: the types every file decodes to (the table's, or for a new table those of
        all new files widened together), rather than what a file's first block suggests."""
        if self.connector.config.file_type == "parquet":
            return None
        if self.iceberg is not None:
            return self.iceberg.schema().as_arrow()
        return self.connector.table_schema(self.table, pending, "ingest")[0]

    def _run(self, pending: Sequence[S3Object]) -> None:
        timings = self.report.timings
        results = ordered_parallel(pending, self._read, self.connector.config.max_in_flight)
        try:
            with contextlib.closing(results):  # a stop cancels the downloads not yet started
                while True:
                    with _timed(timings, "waiting for downloads"):
                        item = next(results, None)
                    if item is None:
                        break
                    obj, result = item
                    if isinstance(result, ObjectSkipped):
                        self._skip(obj, result)
                    elif isinstance(result, ValueConversionError):
                        self._stop(obj, [result.detail])
                    else:
                        self._take(obj, result)
            self._commit(self.position)
            with _timed(timings, "waiting for the writer"):
                self.writer.drain()
        except BaseException:
            self.writer.drain_quietly()  # the commits asked for before the failure finish whole
            raise
        finally:
            self.writer.shutdown()
            if self.appender is not None:
                self.report.commits = self.appender.commits
                self.report.cursor = self.appender.committed or self.cursor
                timings["writing (writer thread)"] = self.appender.busy

    def _read(self, obj: S3Object) -> tuple[S3Object, ObjectData | ObjectSkipped | ValueConversionError]:
        try:
            return obj, self.connector.read_object(obj, self.text_schema)
        except (ObjectSkipped, ValueConversionError) as failed:
            return obj, failed

    def _skip(self, obj: S3Object, skipped: ObjectSkipped) -> None:
        self.out.warning(
            f"floe ingest {self.table}: skipped {self.connector.location(obj.key)}: {skipped.reason}"
        )
        self.report.skipped.append((obj.key, skipped.reason))
        self.position = self.position.past(obj, taken=not skipped.changed)

    def _take(self, obj: S3Object, data: ObjectData) -> None:
        """Check one object's schema, decode it whole and hand its batches to the writer."""
        import pyarrow as pa

        schema = iceberg_arrow_schema(data.schema)
        self._check_columns(obj, iceberg_columns(schema))
        try:
            with _timed(self.report.timings, "decoding"):
                # Whole before any of it is handed on, so a file found malformed part way is
                # skipped whole.
                batches = list(data.batches())
        except ObjectSkipped as skipped:
            self._skip(obj, skipped)
            return
        rows = sum(batch.num_rows for batch in batches)
        # Buffers shared by slices of one decoded chunk count once (batch.nbytes would not).
        size = pa.Table.from_batches(batches).get_total_buffer_size() if batches else 0
        self.out.info(
            f"floe ingest {self.table}: read {self.connector.location(obj.key)}"
            f" size={obj.size} rows={rows} batches={len(batches)}"
        )
        self.report.read += 1
        self.report.rows += rows
        self.report.batches += len(batches)
        self.report.bytes += obj.size
        appender = self.appender or self._start(schema)
        with _timed(self.report.timings, "waiting for the writer"):
            self.writer.submit(functools.partial(appender.write, batches, size), size)
        self.position = self.position.past(obj)
        self.buffered += size
        if self.buffered >= self.commit_bytes:
            self._commit(self.position)

    def _check_columns(self, obj: S3Object, columns: dict[str, str]) -> None:
        if self.reference is None:
            self.reference = (self.connector.location(obj.key), columns)
        differences = column_differences(self.reference[1], columns)
        if differences:
            self._stop(obj, differences)

    def _stop(self, obj: S3Object, differences: list[str]) -> NoReturn:
        """Commit everything before ``obj``, then stop the table: ``obj`` does not fit it."""
        self._commit(self.position)
        self.writer.drain()
        raise SchemaMismatchError(
            self.table,
            self.reference[0] if self.reference else "the types of the table's files",
            self.connector.location(obj.key),
            differences,
            provider=self.connector.type_name,
            operation="ingest",
        )

    def _start(self, first_schema: Any) -> IcebergAppender:
        """The writer of the table, created (schema from the first file) when it does not exist."""
        if self.iceberg is None:
            assert self.reference is not None
            self.iceberg = _create(
                self.catalog,
                self.identifier,
                first_schema,
                self.reference[0],
                self.connector,
                self.write_properties,
            )
        self.appender = IcebergAppender(
            self.catalog, self.iceberg, self.write_properties, self.stale_removals
        )
        return self.appender

    def _commit(self, upto: Cursor) -> None:
        if upto == self.requested and not self.buffered:
            return
        if self.appender is None and self.iceberg is None:
            return  # nothing read yet (every new object skipped): no table to keep a cursor in
        appender = self.appender or self._start(None)
        restate, unset = dict(self.stale_properties), list(self.stale_removals)
        self.stale_properties.clear()
        self.stale_removals.clear()
        self.writer.submit(functools.partial(appender.commit, upto, restate, unset))
        self.requested, self.buffered = upto, 0

    def _finish(self, started: float) -> IngestReport:
        report = self.report
        if self.iceberg is not None:
            snapshot = self.iceberg.current_snapshot()
            report.snapshot_id = snapshot.snapshot_id if snapshot is not None else None
            summary = snapshot.summary if snapshot is not None else None
            total = summary.get("total-records") if summary else None
            report.total_rows = int(total) if total is not None else 0
        report.seconds = time.monotonic() - started
        self.out.info(
            f"floe ingest {self.table}: {report.read} object(s) read, {len(report.skipped)} skipped,"
            f" {report.rows} row(s) in {report.batches} batch(es), {report.bytes} byte(s),"
            f" {report.commits} commit(s) in {report.seconds:.2f} s;"
            f" cursor {report.cursor.text or '(none)'}"
        )
        return report


@contextlib.contextmanager
def _timed(timings: dict[str, float], what: str) -> Iterator[None]:
    started = time.perf_counter()
    try:
        yield
    finally:
        timings[what] = timings.get(what, 0.0) + time.perf_counter() - started


def _load_or_none(catalog: CatalogPlugin, identifier: tuple[str, str]) -> Any:
    try:
        return catalog.load_table(identifier)
    except NotFoundError:
        return None


def _create(
    catalog: CatalogPlugin,
    identifier: tuple[str, str],
    arrow_schema: Any,
    schema_source: str,
    connector: S3MetastoreConnector,
    write_properties: Mapping[str, str],
) -> Any:
    with contextlib.suppress(ConflictError):  # it exists already
        catalog.create_namespace(identifier[:1])
    properties = {
        **write_properties,
        SCHEMA_SOURCE_PROPERTY: schema_source,
        SOURCE_PROPERTY: connector.location(connector.config.path_prefix),
    }
    try:
        return catalog.create_table(identifier, arrow_schema, properties=properties)
    except ConflictError:  # created by a concurrent run since we looked
        return catalog.load_table(identifier)


# --- Dagster --------------------------------------------------------------------------------------


def ingest_catalog(loaded: Any, metastore: str) -> str:
    """The catalog an ``s3`` metastore ingests into: ``ingest.catalog``, else ``transforms.catalog``."""
    config = loaded.plugin_config("metastores", metastore)
    name = config.ingest.catalog or loaded.manifest.transforms.catalog
    if not name or name not in loaded.manifest.catalogs:
        raise ConfigurationError(
            f"metastores.{metastore}.config.ingest: catalog '{name}' is not a catalog of the manifest"
            f" [{', '.join(sorted(loaded.manifest.catalogs))}]; set ingest.catalog or transforms.catalog",
            provider="s3",
            operation="configure",
        )
    return str(name)


def ingest_enabled(loaded: Any, metastore: str) -> bool:
    entry = loaded.manifest.metastores[metastore]
    if entry.type != S3MetastoreConnector.type_name:
        return False
    return bool(loaded.plugin_config("metastores", metastore).ingest.enabled)


def ingest_asset_key(catalog: str, namespace: str, table: str) -> AssetKey:
    return AssetKey([catalog, namespace, table])


def ingest_assets(
    loaded: Any,
    metastore: str,
    tables: Iterable[Mapping[str, Any]],
    taken: Iterable[Any] = (),
    names: DefinitionNames = UNSCOPED,
    source_keys: Mapping[tuple[str, str], AssetKey] | None = None,
) -> Any:
    """One multi-asset (subsettable) with an ingest asset per table of ``metastore``, or None.

    ``tables`` are the defs-state records of the metastore (no S3 call while loading);
    ``taken`` are asset keys already defined, which an ingest key must not repeat; ``names``
    names the op and the resources (defs/names.py); ``source_keys``: (namespace, table) -> the
    key of its source asset as translated (dagster_stage/translator.py), else the manifest's.
    """

    if not ingest_enabled(loaded, metastore):
        return None
    config = loaded.plugin_config("metastores", metastore)
    catalog = ingest_catalog(loaded, metastore)
    namespace = config.ingest.namespace
    taken_keys = set(taken)
    manifest_keys = SourceKeys.of(loaded, metastore)  # the manifest's asset_key_prefix / asset_keys
    specs = []
    for record in tables:
        key = ingest_asset_key(catalog, namespace, record["name"])
        if key in taken_keys:
            raise ConfigurationError(
                f"metastores.{metastore}: the ingest asset {key.to_user_string()} is already an asset;"
                f" set ingest.namespace to a namespace no metastore lists, or exclude it there",
                provider="s3",
                operation="configure",
            )
        specs.append(
            AssetSpec(
                key,
                deps=[
                    (source_keys or {}).get((record["namespace"], record["name"]))
                    or source_asset_key(metastore, record["namespace"], record["name"], manifest_keys)
                ],
                group_name=metastore,
                kinds={"s3", "iceberg"},
                description=(
                    f"Incremental ingest of S3 table {record['name']} ({record['location']}) into"
                    f" {catalog}.{namespace}.{record['name']}"
                ),
                metadata={"floe/source": record["location"]},
            )
        )
    if not specs:
        return None
    catalog_resource = names.catalog_resource(catalog)
    metastore_resource = names.metastore_resource(metastore)
    commit_bytes = max(1, int(config.ingest.commit_mb * MB))

    @multi_asset(
        specs=specs,
        name=names.ingest_op(metastore),
        can_subset=True,
        required_resource_keys={metastore_resource, catalog_resource},
    )
    def ingest(context):  # type: ignore[no-untyped-def]  # annotated, dagster rejects it (string annotations)
        connector = getattr(context.resources, metastore_resource).connector()
        plugin = getattr(context.resources, catalog_resource).plugin()
        try:
            discovered = connector.discover()
        except FloeError as exc:
            raise Failure(description=f"floe ingest: {connector.redact(str(exc))}") from exc
        failed: dict[str, str] = {}
        for key in sorted(context.selected_asset_keys, key=lambda k: k.path):
            table = key.path[-1]
            try:
                report = ingest_table(
                    connector,
                    plugin,
                    table,
                    discovered.get(table, []),
                    namespace=namespace,
                    commit_bytes=commit_bytes,
                    log=context.log,
                )
            except FloeError as exc:
                message = connector.redact(str(exc))
                context.log.error(f"floe ingest {table}: {message}")
                failed[table] = message
                continue
            yield materialize_result(key, report, plugin.name)
        if failed:
            raise Failure(
                description="floe ingest failed for "
                + "; ".join(f"{table}: {message}" for table, message in sorted(failed.items())),
                metadata={"failed_tables": sorted(failed)},
            )

    return ingest


def materialize_result(key: AssetKey, report: IngestReport, catalog: str) -> MaterializeResult[Any]:
    metadata: dict[str, Any] = {
        "floe/cursor": report.cursor.text or "(none)",
        "floe/objects_listed": report.listed,
        "floe/objects_new": report.new,
        "floe/objects_read": report.read,
        "floe/objects_skipped": len(report.skipped),
        "floe/rows_ingested": report.rows,
        "floe/batches": report.batches,
        "floe/bytes_read": report.bytes,
        "floe/commits": report.commits,
        "floe/iceberg_table": f"{catalog}.{report.identifier[0]}.{report.identifier[1]}",
        "floe/seconds": MetadataValue.float(round(report.seconds, 3)),
        "floe/timings": MetadataValue.json({k: round(v, 3) for k, v in report.timings.items()}),
    }
    if report.skipped:
        metadata["floe/skipped"] = MetadataValue.json({k: r for k, r in report.skipped})
    if report.total_rows is not None:
        metadata["dagster/row_count"] = report.total_rows
    version = DataVersion(str(report.snapshot_id)) if report.snapshot_id is not None else None
    return MaterializeResult(asset_key=key, metadata=metadata, data_version=version)
