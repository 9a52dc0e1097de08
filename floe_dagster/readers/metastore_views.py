"""dbt sources backed by metastore tables, as DuckDB views (what floe's dbt-duckdb plugin creates).

A dbt source linked to a metastore that is not an Iceberg catalog (``hive``, ``glue``,
``dataproc``, ``s3``; ``meta: {floe: {metastore: NAME}}``, see ``defs/source_refs.py``) compiles
to ``"<database>"."<schema>"."<identifier>"``. For each such source floe creates a view of that
name over the table's storage location, built from the connector's scan description
(``computes/duckdb_scan.py``: ``read_parquet``/``read_csv``/``read_json``/``read_avro`` with
Hive partitioning, or ``iceberg_scan`` of its metadata file). Sources of ``iceberg`` metastores
are read through the catalogs attached to the connection instead.

Cost: resolved once per dbt invocation, with one batched ``describe_scans`` call per metastore
namespace (HMS: ``get_table_objects_by_name`` per ``batch_size`` tables; Glue: one ``GetTables``
per chunk of names), plus one partition listing per partitioned table (HMS ``get_partitions``
in bounded pages, Glue ``GetPartitions``): a view reads what the metastore registers, each
partition's registered folder (outside the table folder too), never a folder nobody registered;
DuckDB still skips the partitions a filter on a partition column rules out. Creating a view over
a partitioned table lists its folder once (a recursive ``glob``) to leave out empty partitions.

Credentials: each metastore's connector receives them from the metastore chokepoint
(``plugins/metastore_auth.py``); the DuckDB secret for its S3 files is scoped to the buckets of
its tables. A table (or metastore) that cannot be described becomes a view that fails with the
reason when a model reads it, so models that do not read it still run.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from floe_dagster.core.errors import FloeError
from floe_dagster.manifest.loader import LoadedManifest
from floe_dagster.plan.builders import build_metastore
from floe_dagster.plan.source_refs import SourceRelation, dbt_source_relations
from floe_dagster.plugins.registry import get_plugin_class
from floe_dagster.plugins.table_model import ScanDescription
from floe_dagster.readers.duckdb_scan import (
    partitions_with_files,
    quote_ident,
    quote_literal,
    storage_filesystem,
    storage_secret_sql,
)
from floe_dagster.readers.formats import (
    VERSIONED,
    check_readable,
    create_view,
    needs_storage,
    pin_current,
    pinned,
    reader_for,
    storage_properties,
)

logger = logging.getLogger("floe_dagster.dbt")


@dataclass(frozen=True)
class SourceView:
    """One view to create: ``database.schema.name`` over ``scan``, or failing with ``error``."""

    relation: SourceRelation
    scan: ScanDescription | None
    error: str | None = None

    @property
    def qualified(self) -> str:
        parts = [p for p in (self.relation.database, self.relation.schema, self.relation.identifier) if p]
        return ".".join(parts)


@dataclass
class ResolvedViews:
    views: list[SourceView] = field(default_factory=list)
    secrets: list[str] = field(default_factory=list, repr=False)  # hold credentials: never log
    api_calls: dict[str, int] = field(default_factory=dict)  # metastore -> calls made to resolve
    # metastore -> s3.* properties for the formats read in Python (ORC, Hudi): hold credentials
    storage: dict[str, dict[str, str]] = field(default_factory=dict, repr=False)
    registered: dict[str, Any] = field(default_factory=dict, repr=False)  # Arrow datasets of views
    # fsspec filesystems DuckDB reads a store through where no extension of its own serves the
    # credentials (GCS without HMAC keys: gcsfs), each with the metastore it belongs to
    filesystems: list[tuple[str, Any]] = field(default_factory=list, repr=False)
    versions: dict[str, str] = field(default_factory=dict)  # dbt source unique_id -> version read


def reads_through_views(loaded: LoadedManifest, metastore: str) -> bool:
    """Whether a metastore's tables are read through views (not through an attached catalog)."""

    plugin = get_plugin_class("metastores", loaded.manifest.metastores[metastore].type)
    return not getattr(plugin, "needs_catalog", False)


def resolve_source_views(loaded: LoadedManifest, dbt_manifest: Mapping[str, Any]) -> ResolvedViews:
    """The views for every dbt source over a view-read metastore (one batched call per namespace)."""

    by_metastore: dict[str, dict[str, list[SourceRelation]]] = defaultdict(lambda: defaultdict(list))
    for relation in dbt_source_relations(loaded, dbt_manifest):
        if reads_through_views(loaded, relation.ref.metastore):
            by_metastore[relation.ref.metastore][relation.ref.namespace].append(relation)
    resolved = ResolvedViews()
    for metastore, namespaces in sorted(by_metastore.items()):
        try:
            connector = build_metastore(loaded, metastore)
        except FloeError as exc:
            resolved.views += _failing(namespaces, metastore, exc)
            continue
        scans: list[ScanDescription] = []
        for namespace, relations in sorted(namespaces.items()):
            names = sorted({r.ref.table for r in relations})
            try:
                described = dict(zip(names, connector.describe_scans(namespace, names), strict=True))
            except FloeError as exc:
                resolved.views += _failing({namespace: relations}, metastore, exc)
                continue
            for relation in relations:
                result = readable(pinned(described[relation.ref.table], dbt_manifest, relation.unique_id))
                if isinstance(result, ScanDescription):
                    scans.append(result)
                    resolved.views.append(SourceView(relation, result))
                else:
                    resolved.views.append(SourceView(relation, None, _reason(metastore, relation, result)))
        secret = storage_secret_sql(connector.credentials, f"floe_metastore_{metastore}", scans)
        if secret is not None:
            resolved.secrets.append(secret)
        filesystem = storage_filesystem(connector.credentials, scans)
        if filesystem is not None:
            resolved.filesystems.append((metastore, filesystem))
        if any(needs_storage(scan) or scan.format in VERSIONED for scan in scans):
            resolved.storage[metastore] = storage_properties(connector.credentials)
        resolved.views = pin_versions_read(resolved, metastore)
        resolved.api_calls[metastore] = connector.api_calls
        close = getattr(connector, "close", None)
        if callable(close):
            close()
    return resolved


def pin_versions_read(resolved: ResolvedViews, metastore: str) -> list[SourceView]:
    """The views of ``metastore``'s Iceberg/Delta/Hudi tables pinned to the version they read,
    recorded in ``resolved.versions`` (a table whose version cannot be read becomes a failing view)."""
    views = []
    for view in resolved.views:
        if view.scan is None or view.relation.ref.metastore != metastore or view.scan.format not in VERSIONED:
            views.append(view)
            continue
        try:
            scan, version = pin_current(view.scan, resolved.storage.get(metastore, {}))
        except FloeError as exc:
            views.append(SourceView(view.relation, None, _reason(metastore, view.relation, exc)))
            continue
        if version is not None:
            resolved.versions[view.relation.unique_id] = version
        views.append(SourceView(view.relation, scan))
    return views


def readable(result: ScanDescription | FloeError) -> ScanDescription | FloeError:
    """The scan if DuckDB can read it (``readers/formats.py``; not HDFS), else the refusal."""
    if isinstance(result, ScanDescription):
        try:
            check_readable(result)
        except FloeError as exc:
            return exc
    return result


def create_source_views(con: Any, resolved: ResolvedViews) -> None:
    """Register the stores' filesystems and set the storage secrets, then create every view (a
    failing one for each unreadable table)."""
    register_filesystems(con, resolved.filesystems)
    for secret in resolved.secrets:
        con.execute(secret)
    for view in resolved.views:
        relation = view.relation
        if view.scan is not None:
            # registered partitions without a data file dropped (DuckDB fails on an empty pattern);
            # the formats read as Arrow or through their log find their own files
            scan = view.scan if reader_for(view.scan.format) else partitions_with_files(con, view.scan)
            storage = resolved.storage.get(relation.ref.metastore, {})
            create_view(
                con,
                relation.identifier,
                scan,
                relation.schema,
                relation.database,
                storage,
                resolved.registered,
            )
            continue
        qualifier = ".".join(quote_ident(p) for p in (relation.database, relation.schema) if p)
        con.execute(f"CREATE SCHEMA IF NOT EXISTS {qualifier}")
        con.execute(
            f"CREATE OR REPLACE VIEW {qualifier}.{quote_ident(relation.identifier)} AS"
            f" SELECT error({quote_literal(view.error or 'floe: unreadable metastore table')}) AS unavailable"
        )
    if resolved.views:
        logger.info(
            "floe: %d view(s) over metastore tables (%s)",
            len(resolved.views),
            ", ".join(f"{m}: {n} call(s)" for m, n in sorted(resolved.api_calls.items())) or "no call",
        )


def register_filesystems(con: Any, filesystems: list[tuple[str, Any]]) -> None:
    """Register each metastore's fsspec filesystem on ``con`` (DuckDB serves a scheme through the
    filesystem registered for it before its own extensions, on every cursor of the database).
    One filesystem per scheme: a second metastore on the same store with other credentials is
    read through the first one's, and a warning says so."""
    registered: dict[str, tuple[str, Any]] = {}
    for metastore, filesystem in filesystems:
        protocols = filesystem.protocol if isinstance(filesystem.protocol, tuple) else (filesystem.protocol,)
        name = protocols[0]  # DuckDB registers a filesystem under its first protocol
        if name in registered:
            first, taken = registered[name]
            if taken is not filesystem:  # fsspec gives one instance for the same arguments
                logger.warning(
                    "floe: metastore '%s' reads %s:// through metastore '%s''s filesystem (DuckDB takes"
                    " one per scheme); give both the same credentials, or HMAC keys (a DuckDB secret"
                    " per bucket)",
                    metastore,
                    name,
                    first,
                )
            continue
        registered[name] = (metastore, filesystem)
        if not con.filesystem_is_registered(name):  # e.g. by a catalog whose warehouse is there
            con.register_filesystem(filesystem)


def _reason(metastore: str, relation: SourceRelation, error: FloeError) -> str:
    return (
        f"floe: dbt source {relation.unique_id} reads {relation.ref.namespace}.{relation.ref.table} of"
        f" metastore '{metastore}', which cannot be read: {error}"
    )


def _failing(
    namespaces: Mapping[str, list[SourceRelation]], metastore: str, error: FloeError
) -> list[SourceView]:
    logger.warning("floe: metastore '%s' could not describe its dbt sources: %s", metastore, error)
    return [
        SourceView(relation, None, _reason(metastore, relation, error))
        for relations in namespaces.values()
        for relation in relations
    ]
