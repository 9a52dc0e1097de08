"""Ingesting one table of an ``s3`` metastore into Iceberg: the pipeline behind each ingest asset
(``dagster_stage/ingest.py``), with its cursor (``ingest/cursor.py``) and writer
(``writers/iceberg.py``).

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
import logging
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NoReturn

from floe_dagster.core.errors import ConflictError, NotFoundError, NotSupportedError
from floe_dagster.core.parallel import ordered_parallel
from floe_dagster.ingest.cursor import Cursor, new_objects
from floe_dagster.metastores.object_tables import (
    ObjectSkipped,
    S3Object,
    SchemaMismatchError,
    ValueConversionError,
    column_differences,
)
from floe_dagster.metastores.s3 import ObjectData, S3MetastoreConnector
from floe_dagster.plugins.catalog import CatalogPlugin
from floe_dagster.writers.iceberg import (
    LEVEL_PROPERTY,
    WRITE_QUEUE_BYTES,
    IcebergAppender,
    WriterThread,
    iceberg_arrow_schema,
    iceberg_columns,
)

logger = logging.getLogger("floe_dagster.ingest")

SCHEMA_SOURCE_PROPERTY = "floe.s3.schema-source"
SOURCE_PROPERTY = "floe.s3.source"
# Arrow data read but not yet written that the reading side may run ahead of the writer by.
# A row group holds at most this much Arrow data (and write.parquet.row-group-limit rows).


# --- the cursor ------------------------------------------------------------------------------------


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


# --- writing: data files as the batches come, one commit per commit_mb ----------------------------


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
    if connector.config.file_type in ("delta", "hudi"):
        raise NotSupportedError(
            f"floe ingest {table}: a {connector.config.file_type} table is read in place (its own log"
            " versions it and keeps its history); ingest copies files of parquet, orc, avro, csv or"
            f" json into Iceberg: set metastores.{connector.name}.config.ingest.enabled: false",
            provider="s3",
            operation="ingest",
            retryable=False,
        )
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
        self.writer = WriterThread(WRITE_QUEUE_BYTES)
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
        if self.connector.config.file_type in ("parquet", "orc", "avro"):  # types declared in each file
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
