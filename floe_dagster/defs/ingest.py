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

Objects that are gone between listing and reading, replaced since listing (read on the next
run), or malformed are logged as warnings with their key and skipped; the cursor moves past
them. A file whose schema differs from the table's stops that table after committing what
came before it.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from dagster import (
    AssetKey,
    AssetSpec,
    DataVersion,
    Failure,
    MaterializeResult,
    MetadataValue,
    multi_asset,
)

from floe_dagster.metastores.s3 import (
    ObjectData,
    ObjectSkipped,
    S3MetastoreConnector,
    S3Object,
    SchemaMismatchError,
    column_differences,
    ordered_parallel,
)
from floe_dagster.plugins.catalog import CatalogPlugin
from floe_dagster.plugins.errors import ConfigurationError, ConflictError, FloeError, NotFoundError

logger = logging.getLogger("floe_dagster.ingest")

CURSOR_PROPERTY = "floe.s3.cursor"
CURSOR_KEYS_PROPERTY = "floe.s3.cursor-keys"
SCHEMA_SOURCE_PROPERTY = "floe.s3.schema-source"
SOURCE_PROPERTY = "floe.s3.source"
LEVEL_PROPERTY = "write.parquet.compression-level"
MB = 1024 * 1024


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


def arrow_for_iceberg(table: Any) -> Any:
    """Nanosecond timestamps (which Iceberg v2 cannot hold) as microseconds; the rest unchanged."""
    import pyarrow as pa

    fields = []
    changed = False
    for item in table.schema:
        if pa.types.is_timestamp(item.type) and item.type.unit == "ns":
            fields.append(pa.field(item.name, pa.timestamp("us", tz=item.type.tz), item.nullable))
            changed = True
        else:
            fields.append(item)
    return table.cast(pa.schema(fields), safe=False) if changed else table


def iceberg_columns(arrow_schema: Any) -> dict[str, str]:
    """Column -> Iceberg type of an Arrow schema (what the table would hold), for comparison."""
    from pyiceberg.io.pyarrow import _pyarrow_to_schema_without_ids

    return {f.name: str(f.field_type) for f in _pyarrow_to_schema_without_ids(arrow_schema).fields}


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

    Reads run in parallel (at most ``connector.config.concurrency`` in flight) and are committed
    in cursor order; every commit carries the cursor that covers exactly what it holds.
    """
    started = time.monotonic()
    out = _Log(log)
    identifier = (namespace, table)
    report = IngestReport(table=table, identifier=identifier, listed=len(objects))
    iceberg = _load_or_none(catalog, identifier)
    properties = dict(iceberg.properties) if iceberg is not None else {}
    cursor = Cursor.from_properties(properties)
    pending = new_objects(objects, cursor)
    report.new, report.cursor = len(pending), cursor
    out.info(
        f"floe ingest {table}: {len(objects)} object(s) listed, {len(pending)} new since cursor"
        f" {cursor.text or '(none)'} -> {catalog.name}.{namespace}.{table}"
    )
    reference: tuple[str, dict[str, str]] | None = None
    if iceberg is not None:
        source = properties.get(SCHEMA_SOURCE_PROPERTY) or f"iceberg table {namespace}.{table}"
        reference = (source, {f.name: str(f.field_type) for f in iceberg.schema().fields})
    buffer: list[Any] = []
    buffered = 0
    committed = cursor
    # Codec, level, dictionary limit...: set on the table at creation, and brought in line with the
    # manifest in the first commit of a run on a table created with other values.
    write_properties = connector.config.ingest.write_properties()
    stale_properties = {
        k: v for k, v in write_properties.items() if iceberg is not None and properties.get(k) != v
    }
    # A level left from another codec (snappy, lz4 take none): PyIceberg would fail on it.
    stale_removals = [k for k in (LEVEL_PROPERTY,) if k in properties and k not in write_properties]

    def read(obj: S3Object) -> tuple[S3Object, ObjectData | ObjectSkipped]:
        try:
            return obj, connector.read_object(obj)
        except ObjectSkipped as skipped:
            return obj, skipped

    # One commit at a time runs on a writer thread while reads go on; commits stay in order.
    writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="floe-ingest-commit")
    in_flight: Future[None] | None = None
    requested = cursor

    def settle() -> None:
        """Wait for the commit in flight; its error, if any, is raised here."""
        nonlocal in_flight
        if in_flight is not None:
            done, in_flight = in_flight, None
            done.result()

    def commit(upto: Cursor) -> None:
        nonlocal iceberg, buffer, buffered, requested, in_flight
        if upto == requested and not buffer:
            return
        if iceberg is None:
            if not buffer or reference is None:
                return  # nothing read yet (every new object skipped): no table to keep a cursor in
            iceberg = _create(
                catalog, identifier, buffer[0].schema, reference[0], connector, write_properties
            )
        pending_data, table_ref = buffer, iceberg
        restate, unset = dict(stale_properties), list(stale_removals)
        stale_properties.clear()
        stale_removals.clear()

        def write() -> None:
            nonlocal committed
            import pyarrow as pa

            def transaction() -> None:
                with table_ref.transaction() as tx:
                    if unset:
                        tx.remove_properties(*unset)
                    if restate:  # before the append, so that its files are written with them
                        tx.set_properties(restate)
                    if pending_data:
                        # Zero-copy: one chunk per row group of each object.
                        tx.append(pa.concat_tables(pending_data))
                    tx.set_properties(upto.properties())

            _mapped(catalog, "append", f"{namespace}.{table}", transaction)
            report.commits += 1
            committed = upto
            out.info(
                f"floe ingest {table}: committed to Iceberg; cursor {upto.text}"
                f" ({len(upto.keys)} key(s) at it)"
            )

        settle()
        in_flight = writer.submit(write)
        requested, buffer, buffered = upto, [], 0

    position = cursor
    try:
        for obj, result in ordered_parallel(pending, read, connector.config.max_in_flight):
            if isinstance(result, ObjectSkipped):
                out.warning(f"floe ingest {table}: skipped {connector.location(obj.key)}: {result.reason}")
                report.skipped.append((obj.key, result.reason))
                position = position.past(obj, taken=not result.changed)
                continue
            # What is written: the rows as decoded (result.table holds the same rows in batches of
            # rows_per_record, zero-copy slices of it), so no copy into one contiguous table.
            data = arrow_for_iceberg(result.decoded if result.decoded is not None else result.table)
            columns = iceberg_columns(data.schema)
            if reference is None:
                reference = (connector.location(obj.key), columns)
            differences = column_differences(reference[1], columns)
            if differences:
                commit(position)  # keep everything before the mismatching file
                raise SchemaMismatchError(
                    table,
                    reference[0],
                    connector.location(obj.key),
                    differences,
                    provider=connector.type_name,
                    operation="ingest",
                )
            out.info(
                f"floe ingest {table}: read {connector.location(obj.key)}"
                f" size={obj.size} rows={data.num_rows}"
            )
            report.read += 1
            report.rows += data.num_rows
            report.bytes += obj.size
            buffer.append(data)
            buffered += data.nbytes
            position = position.past(obj)
            if buffered >= commit_bytes:
                commit(position)
        commit(position)
        settle()
    finally:
        try:
            settle()  # a failing run still leaves its last commit whole
        finally:
            writer.shutdown(wait=True)
    report.cursor = committed
    if iceberg is not None:
        snapshot = iceberg.current_snapshot()
        report.snapshot_id = snapshot.snapshot_id if snapshot is not None else None
        total = snapshot.summary.get("total-records") if snapshot is not None and snapshot.summary else None
        report.total_rows = int(total) if total is not None else 0
    report.seconds = time.monotonic() - started
    out.info(
        f"floe ingest {table}: {report.read} object(s) read, {len(report.skipped)} skipped,"
        f" {report.rows} row(s), {report.bytes} byte(s), {report.commits} commit(s)"
        f" in {report.seconds:.2f} s;"
        f" cursor {report.cursor.text or '(none)'}"
    )
    return report


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
    loaded: Any, metastore: str, tables: Iterable[Mapping[str, Any]], taken: Iterable[Any] = ()
) -> Any:
    """One multi-asset (subsettable) with an ingest asset per table of ``metastore``, or None.

    ``tables`` are the defs-state records of the metastore (no S3 call while loading);
    ``taken`` are asset keys already defined, which an ingest key must not repeat.
    """
    from floe_dagster.defs.sources import metastore_resource_key, source_asset_key

    if not ingest_enabled(loaded, metastore):
        return None
    config = loaded.plugin_config("metastores", metastore)
    catalog = ingest_catalog(loaded, metastore)
    namespace = config.ingest.namespace
    taken_keys = set(taken)
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
                deps=[source_asset_key(metastore, record["namespace"], record["name"])],
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
    catalog_resource = f"catalog_{catalog}"
    commit_bytes = max(1, int(config.ingest.commit_mb * MB))

    @multi_asset(
        specs=specs,
        name=f"ingest_{metastore}",
        can_subset=True,
        required_resource_keys={metastore_resource_key(metastore), catalog_resource},
    )
    def ingest(context):  # annotated, dagster rejects it under `from __future__ import annotations`
        connector = getattr(context.resources, metastore_resource_key(metastore)).connector()
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


def materialize_result(key: AssetKey, report: IngestReport, catalog: str) -> MaterializeResult:
    metadata: dict[str, Any] = {
        "floe/cursor": report.cursor.text or "(none)",
        "floe/objects_listed": report.listed,
        "floe/objects_new": report.new,
        "floe/objects_read": report.read,
        "floe/objects_skipped": len(report.skipped),
        "floe/rows_ingested": report.rows,
        "floe/bytes_read": report.bytes,
        "floe/commits": report.commits,
        "floe/iceberg_table": f"{catalog}.{report.identifier[0]}.{report.identifier[1]}",
        "floe/seconds": MetadataValue.float(round(report.seconds, 3)),
    }
    if report.skipped:
        metadata["floe/skipped"] = MetadataValue.json({k: r for k, r in report.skipped})
    if report.total_rows is not None:
        metadata["dagster/row_count"] = report.total_rows
    version = DataVersion(str(report.snapshot_id)) if report.snapshot_id is not None else None
    return MaterializeResult(asset_key=key, metadata=metadata, data_version=version)
