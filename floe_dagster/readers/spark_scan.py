"""Spark SQL that reads a metastore table through its storage location (the Spark compute's views).

``view_statements(scan, relation, schemes)`` turns a ``ScanDescription`` (plugins/table_model.py)
into the statements that create ``relation`` (``schema.table``) as a Spark view:

* Parquet, ORC, JSON: a view over
  ``<format>.`<location>```. Partitioned tables read their ``k=v`` folders with Spark's partition
  discovery, so a filter on a partition column prunes folders in Spark; the partition columns
  are cast to their declared types (``try_cast``: Hive's ``__HIVE_DEFAULT_PARTITION__`` is NULL).
  When the connector pruned the partitions (``scan.pruned``), or a partition lives outside
  ``<location>/k=v``, only the listed partitions' folders are read,
  each with its values as constant columns (``UNION ALL``); none left gives a typed empty view.
* CSV: lines read with ``text.`<location>``` and parsed with ``from_csv`` (the table's
  delimiter, quote, escape and null string); a header line is refused (no per-file line skip).
* Iceberg: the table's current snapshot through PyIceberg (``computes/spark_views.py``), a view
  over exactly its data files.

A location whose scheme is not in ``schemes`` (the Spark compute's ``readable_schemes``:
``file`` and ``hdfs`` unless the cluster has more Hadoop filesystems) and a format Spark has no
reader for (Avro: the spark-avro module is not in pyspark) raise ``NotSupportedError`` tagged
``spark``, so the view becomes one that fails with the reason when a model reads it
(``source_items``).

``source_items`` resolves every dbt source linked to a metastore the Spark session does not use
as its catalog, with one batched ``describe_scans`` call per metastore namespace (as DuckDB's
views do, ``readers/metastore_views.py``).
"""

from __future__ import annotations

import logging
import tempfile
from collections import defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from floe_dagster.computes.spark_views import quote, snapshot_select
from floe_dagster.core.errors import FloeError, NotFoundError, NotSupportedError
from floe_dagster.manifest.loader import LoadedManifest
from floe_dagster.plan.builders import build_metastore
from floe_dagster.plan.source_refs import SourceRelation, dbt_source_relations
from floe_dagster.plugins.registry import get_plugin_class
from floe_dagster.plugins.table_model import Column, ScanDescription

__all__ = [
    "DEFAULT_SCHEMES",
    "failing_view",
    "reads_through_views",
    "source_items",
    "spark_check_session",
    "spark_path",
    "view_statements",
]

PROVIDER = "spark"
DEFAULT_SCHEMES = ("file", "hdfs")
_FILE_FORMATS = {"parquet": "parquet", "orc": "orc", "json": "json"}
_S3 = ("s3", "s3n", "s3a")
logger = logging.getLogger("floe_dagster.dbt")

_SIMPLE_TYPES = {
    "string": "string",
    "varchar": "string",
    "char": "string",
    "tinyint": "tinyint",
    "smallint": "smallint",
    "int": "int",
    "integer": "int",
    "bigint": "bigint",
    "float": "float",
    "double": "double",
    "double precision": "double",
    "boolean": "boolean",
    "date": "date",
    "timestamp": "timestamp",
    "binary": "binary",
}


def spark_type(hive_type: str) -> str:
    """The Spark SQL type of a Hive column type (decimal kept; complex types as Spark spells them)."""
    text = hive_type.strip().lower()
    if text.startswith("decimal"):
        return text.replace(" ", "")
    base = text.split("(", 1)[0].strip()
    return _SIMPLE_TYPES.get(base, text)


def spark_literal(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def spark_path(location: str, table: str, schemes: Sequence[str] = DEFAULT_SCHEMES) -> str:
    """The location as Spark opens it, or ``NotSupportedError`` naming the scheme and how to allow it.

    ``s3://`` and ``s3n://`` become ``s3a://`` (Hadoop's S3 filesystem) when ``s3a`` is readable."""
    parts = urlsplit(location)
    scheme = parts.scheme or "file"
    path = location.rstrip("/") or "/"
    if scheme in _S3 and "s3a" in schemes:
        return "s3a://" + path.split("://", 1)[1]
    if scheme in schemes:
        return path if parts.scheme else f"file://{path}"
    raise NotSupportedError(
        f"table {table}: the Spark compute cannot read {scheme}:// locations ({location}); readable"
        f" schemes: {', '.join(schemes)}. If the cluster has the Hadoop filesystem for {scheme}"
        f" (e.g. hadoop-aws for s3a), add it to the compute's readable_schemes",
        provider=PROVIDER,
        operation="scan",
        retryable=False,
    )


def view_statements(
    scan: ScanDescription, relation: tuple[str, str], schemes: Sequence[str] = DEFAULT_SCHEMES
) -> list[str]:
    """``CREATE DATABASE`` and ``CREATE OR REPLACE VIEW schema.table`` reading ``scan`` in Spark."""
    schema, table = relation
    return [
        f"CREATE DATABASE IF NOT EXISTS {quote(schema)}",
        f"CREATE OR REPLACE VIEW {quote(schema)}.{quote(table)} AS {select_sql(scan, schemes)}",
    ]


def failing_view(relation: tuple[str, str], reason: str) -> list[str]:
    """A view that fails with ``reason`` when read (models that do not read it still run)."""
    schema, table = relation
    return [
        f"CREATE DATABASE IF NOT EXISTS {quote(schema)}",
        f"CREATE OR REPLACE VIEW {quote(schema)}.{quote(table)} AS"
        f" SELECT raise_error({spark_literal(reason)}) AS unavailable",
    ]


def select_sql(scan: ScanDescription, schemes: Sequence[str] = DEFAULT_SCHEMES) -> str:
    """A Spark SELECT over the table's files: its columns, then its partition columns."""
    if scan.format == "iceberg":
        return _iceberg_select(scan, schemes)
    if scan.format == "csv":
        reader = "text"
    elif scan.format in _FILE_FORMATS:
        reader = _FILE_FORMATS[scan.format]
    elif scan.format == "avro":
        raise NotSupportedError(
            f"table {scan.table}: Avro needs Spark's external spark-avro module, which pyspark does not"
            " ship; read the table on DuckDB, or store it as Parquet",
            provider=PROVIDER,
            operation="read_avro",
            retryable=False,
        )
    else:
        raise NotSupportedError(
            f"table {scan.table}: the Spark compute has no reader for format {scan.format!r}"
            f" (readable: {', '.join(sorted([*_FILE_FORMATS, 'csv', 'iceberg']))})",
            provider=PROVIDER,
            operation=f"read_{scan.format}",
            retryable=False,
        )
    location = spark_path(scan.location, scan.table, schemes)
    keys = scan.partition_columns
    data = _data_columns(scan)
    if not keys or scan.partitions is None or _whole_location(scan, location, schemes):
        typed = [
            *data,
            *(f"try_cast({quote(c.name)} AS {spark_type(c.type)}) AS {quote(c.name)}" for c in keys),
        ]
        # an object-store table may need more than one glob (MORE_LOCATIONS): one read each
        paths = [location, *(spark_path(more, scan.table, schemes) for more in scan.locations[1:])]
        return " UNION ALL ".join(f"SELECT {', '.join(typed)} FROM {_source(scan, reader, p)}" for p in paths)
    if not scan.partitions:
        return _empty(scan)
    selects = []
    for partition in scan.partitions:
        folder = partition.location or f"{location}/{partition.name([c.name for c in keys])}"
        folder = spark_path(folder, scan.table, schemes)
        constants = [
            f"try_cast({spark_literal(value)} AS {spark_type(c.type)}) AS {quote(c.name)}"
            for c, value in partition.pairs(keys)
        ]
        selects.append(f"SELECT {', '.join([*data, *constants])} FROM {_source(scan, reader, folder)}")
    return " UNION ALL ".join(selects)


def _whole_location(scan: ScanDescription, location: str, schemes: Sequence[str]) -> bool:
    """Every partition, each in its ``k=v`` folder under the location: Spark's partition discovery
    reads them (one relation, pruned by Spark), instead of a UNION of one read per partition."""
    if scan.pruned or not scan.partitions:
        return False
    names = [c.name for c in scan.partition_columns]
    for partition in scan.partitions:
        expected = f"{location}/{partition.name(names)}"
        if partition.location and spark_path(partition.location, scan.table, schemes) != expected:
            return False
    return True


def _data_columns(scan: ScanDescription) -> list[str]:
    if scan.format != "csv":
        return [quote(c.name) for c in scan.columns]
    return [f"_floe_row.{quote(c.name)} AS {quote(c.name)}" for c in scan.columns]


def _source(scan: ScanDescription, reader: str, path: str) -> str:
    if scan.format != "csv":
        return f"{reader}.{quote(path)}"
    options = scan.options
    if int(options.get("header") or 0) > 0:
        raise NotSupportedError(
            f"table {scan.table}: a CSV table with header lines (skip.header.line.count) is not read by"
            " the Spark compute's views (no per-file line skip); store it without a header, or as Parquet",
            provider=PROVIDER,
            operation="read_csv",
            retryable=False,
        )
    schema = ", ".join(f"{quote(c.name)} {_csv_type(c, options)}" for c in scan.columns)
    pairs = {"sep": options.get("delimiter", ",")}
    if options.get("quote"):
        pairs["quote"] = options["quote"]
    if options.get("escape"):
        pairs["escape"] = options["escape"]
    if "null" in options:
        pairs["nullValue"] = options["null"]
    spark_options = ", ".join(f"{spark_literal(k)}, {spark_literal(v)}" for k, v in pairs.items())
    return (
        f"(SELECT from_csv(value, {spark_literal(schema)}, map({spark_options})) AS _floe_row, *"
        f" FROM text.{quote(path)})"
    )


def _csv_type(column: Column, options: Mapping[str, str]) -> str:
    return "string" if options.get("all_varchar") == "true" else spark_type(column.type)


def _empty(scan: ScanDescription) -> str:
    columns = [*scan.columns, *scan.partition_columns]
    body = ", ".join(f"CAST(NULL AS {spark_type(c.type)}) AS {quote(c.name)}" for c in columns)
    return f"SELECT {body or 'NULL AS _'} WHERE 1 = 0"


def _iceberg_select(scan: ScanDescription, schemes: Sequence[str]) -> str:
    if not scan.metadata_location:
        raise NotSupportedError(
            f"table {scan.table}: an Iceberg scan needs the metadata location",
            provider=PROVIDER,
            operation="scan",
            retryable=False,
        )
    spark_path(scan.metadata_location, scan.table, schemes)  # the data files' scheme: refused early
    from pyiceberg.table import StaticTable

    try:
        table = StaticTable.from_metadata(scan.metadata_location)
    except Exception as exc:  # not a refusal: the table should be readable, its metadata is not there
        raise NotFoundError(
            f"table {scan.table}: cannot open its Iceberg metadata {scan.metadata_location}:"
            f" {type(exc).__name__}: {exc}",
            provider=PROVIDER,
            operation="scan",
            retryable=False,
        ) from None
    return snapshot_select(table, PROVIDER)


def spark_check_session() -> Any:
    """A local Spark session (one core, in-memory catalog, scratch in a temporary folder) for
    checking views: the active one when there is one, so a process starts at most one JVM."""
    from pyspark.sql import SparkSession

    active = SparkSession.getActiveSession()
    if active is not None:
        return active
    scratch = Path(tempfile.mkdtemp(prefix="floe-spark-check-"))
    builder = SparkSession.builder.appName("floe-conformance")
    conf = {
        "spark.master": "local[1]",
        "spark.sql.catalogImplementation": "in-memory",
        "spark.sql.warehouse.dir": str(scratch / "warehouse"),
        "spark.local.dir": str(scratch / "tmp"),
        "spark.driver.memory": "512m",
        "spark.driver.extraJavaOptions": f"-Dderby.system.home={scratch / 'derby'}",
        "spark.ui.enabled": "false",
        "spark.ui.showConsoleProgress": "false",
        "spark.sql.session.timeZone": "UTC",
        "spark.sql.sources.partitionColumnTypeInference.enabled": "false",
    }
    for key, value in conf.items():
        builder = builder.config(key, value)
    return builder.getOrCreate()


# --- dbt sources -> Spark views ------------------------------------------------------------------


def source_items(
    loaded: LoadedManifest,
    dbt_manifest: Mapping[str, Any],
    session_metastore: str | None = None,
    schemes: Sequence[str] = DEFAULT_SCHEMES,
) -> list[dict[str, Any]]:
    """One attach item (``{"relation", "sql"}``) per dbt source over a view-read metastore.

    Sources of ``session_metastore`` (the Hive Metastore the session uses as its catalog) are
    the real tables and need nothing; sources of Iceberg metastores are read through the
    attached catalogs.
    """
    by_metastore: dict[str, dict[str, list[SourceRelation]]] = defaultdict(lambda: defaultdict(list))
    for relation in dbt_source_relations(loaded, dbt_manifest):
        metastore = relation.ref.metastore
        if metastore == session_metastore or not reads_through_views(loaded, metastore):
            continue
        by_metastore[metastore][relation.ref.namespace].append(relation)
    items: list[dict[str, Any]] = []
    for metastore, namespaces in sorted(by_metastore.items()):
        try:
            connector = build_metastore(loaded, metastore)
        except FloeError as exc:
            items += [_failing(r, metastore, exc) for rs in namespaces.values() for r in rs]
            continue
        try:
            for namespace, relations in sorted(namespaces.items()):
                names = sorted({r.ref.table for r in relations})
                try:
                    described = dict(zip(names, connector.describe_scans(namespace, names), strict=True))
                except FloeError as exc:
                    items += [_failing(r, metastore, exc) for r in relations]
                    continue
                for relation in relations:
                    items.append(_item(relation, metastore, described[relation.ref.table], schemes))
        finally:
            close = getattr(connector, "close", None)
            if callable(close):
                close()
    return items


def _item(
    relation: SourceRelation, metastore: str, scan: ScanDescription | FloeError, schemes: Sequence[str]
) -> dict[str, Any]:
    if isinstance(scan, FloeError):
        return _failing(relation, metastore, scan)
    try:
        sql = view_statements(scan, (relation.schema, relation.identifier), schemes)
    except FloeError as exc:
        return _failing(relation, metastore, exc)
    return {"relation": f"{relation.schema}.{relation.identifier}".lower(), "sql": sql}


def _failing(relation: SourceRelation, metastore: str, error: FloeError) -> dict[str, Any]:
    reason = (
        f"floe: dbt source {relation.unique_id} reads {relation.ref.namespace}.{relation.ref.table} of"
        f" metastore '{metastore}', which Spark cannot read: {error}"
    )
    logger.warning("%s", reason)
    return {
        "relation": f"{relation.schema}.{relation.identifier}".lower(),
        "sql": failing_view((relation.schema, relation.identifier), reason),
    }


def reads_through_views(loaded: LoadedManifest, metastore: str) -> bool:
    """Whether a metastore's tables are read through views (not through an attached catalog)."""
    plugin = get_plugin_class("metastores", loaded.manifest.metastores[metastore].type)
    return not getattr(plugin, "needs_catalog", False)
