"""Metastore tables -> observable source assets, one multi-asset observation per metastore."""

import logging
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from dagster import (
    AssetExecutionContext,
    AssetKey,
    AssetsDefinition,
    AssetSpec,
    DataVersion,
    MetadataValue,
    ObserveResult,
    TableColumn,
    TableSchema,
    multi_observable_source_asset,
)

from floe_dagster.manifest.loader import LoadedManifest
from floe_dagster.plugins.errors import FloeError, NotFoundError
from floe_dagster.plugins.factory import build_metastore, table_filter
from floe_dagster.plugins.metastore import Table

logger = logging.getLogger("floe_dagster")

TableRef = tuple[str, str, str]  # metastore, namespace, table


def source_asset_key(metastore: str, namespace: str, table: str) -> AssetKey:
    return AssetKey([metastore, *namespace.split("."), table])


def metastore_resource_key(metastore: str) -> str:
    return f"metastore_{metastore}"


def dbt_source_refs(loaded: LoadedManifest, dbt_manifest: Mapping[str, Any]) -> dict[str, TableRef]:
    """dbt source unique_id -> the metastore table it reads.

    A source names its metastore with ``meta: {floe: {metastore: NAME}}``; otherwise a source
    whose ``database`` is a catalog belongs to the Iceberg metastore over that catalog.
    """
    by_catalog = {
        getattr(loaded.plugin_config("metastores", name), "catalog", None): name
        for name in loaded.manifest.metastores
    }
    refs: dict[str, TableRef] = {}
    for unique_id, source in dbt_manifest.get("sources", {}).items():
        meta = {**(source.get("source_meta") or {}), **(source.get("meta") or {})}
        metastore = (meta.get("floe") or {}).get("metastore") or by_catalog.get(source.get("database"))
        if metastore in loaded.manifest.metastores:
            refs[unique_id] = (metastore, source["schema"], source.get("identifier") or source["name"])
    return refs


def list_metastore_tables(loaded: LoadedManifest, metastore: str) -> list[Table]:
    """The tables a metastore has now; an unreachable metastore logs and yields none."""
    try:
        connector = build_metastore(loaded, metastore)
        batch = loaded.manifest.metastores[metastore].batch_size
        return list(connector.scan(table_filter(loaded, metastore), batch_size=batch))
    except FloeError as exc:
        logger.warning(
            "floe: could not list metastore '%s' (%s); its sources load without metadata", metastore, exc
        )
        return []


def table_schema(table: Table) -> TableSchema:
    return TableSchema(
        columns=[TableColumn(name=c.name, type=c.type, description=c.comment) for c in table.storage.columns]
    )


def table_metadata(table: Table) -> dict[str, Any]:
    metadata: dict[str, Any] = {
        "dagster/column_schema": table_schema(table),
        "floe/location": MetadataValue.path(table.storage.location),
        "floe/format": table.storage.format,
        "floe/partition_keys": ", ".join(c.name for c in table.partition_keys) or "(none)",
    }
    if table.stats.row_count is not None:
        metadata["dagster/row_count"] = table.stats.row_count
    if table.stats.last_modified is not None:
        metadata["floe/last_updated"] = MetadataValue.timestamp(table.stats.last_modified)
    return metadata


def observable_sources(
    loaded: LoadedManifest, metastore: str, tables: Iterable[Table], extra_refs: Iterable[TableRef] = ()
) -> AssetsDefinition | None:
    """One multi-asset whose single observation covers every table of ``metastore``."""
    provider = loaded.manifest.metastores[metastore].type
    specs: dict[AssetKey, AssetSpec] = {}
    for table in tables:
        key = source_asset_key(metastore, table.namespace, table.name)
        specs[key] = AssetSpec(
            key,
            group_name=metastore,
            kinds={provider, table.storage.format},
            description=f"{table.qualified_name} in metastore '{metastore}'",
            metadata=table_metadata(table),
        )
    for _, namespace, name in extra_refs:
        key = source_asset_key(metastore, namespace, name)
        specs.setdefault(
            key,
            AssetSpec(
                key,
                group_name=metastore,
                kinds={provider},
                description=f"{namespace}.{name} in metastore '{metastore}' (read by dbt)",
            ),
        )
    if not specs:
        return None

    @multi_observable_source_asset(
        specs=list(specs.values()),
        name=f"observe_{metastore}",
        can_subset=True,
        required_resource_keys={metastore_resource_key(metastore)},
    )
    def observe(context: AssetExecutionContext) -> Iterator[ObserveResult]:
        resource = getattr(context.resources, metastore_resource_key(metastore))
        yield from observe_tables(
            context, resource.connector(), metastore, context.selected_asset_keys, resource.batch_size()
        )

    return observe


def observe_tables(
    context: AssetExecutionContext, connector: Any, metastore: str, keys: Iterable[AssetKey], batch_size: int
) -> Iterator[ObserveResult]:
    wanted: dict[str, list[str]] = defaultdict(list)
    for key in keys:
        *namespace_parts, table_name = key.path[1:]
        wanted[".".join(namespace_parts)].append(table_name)
    seen = 0
    for namespace, names in sorted(wanted.items()):
        for start in range(0, len(names), batch_size):
            batch = sorted(names)[start : start + batch_size]
            for table in _get_tables_skipping_missing(context, connector, namespace, batch):
                seen += 1
                yield ObserveResult(
                    asset_key=source_asset_key(metastore, table.namespace, table.name),
                    data_version=DataVersion(table.data_version),
                    metadata=table_metadata(table),
                )
            context.log.info(f"floe: observed {seen} table(s) of metastore '{metastore}'")


def _get_tables_skipping_missing(
    context: AssetExecutionContext, connector: Any, namespace: str, names: list[str]
) -> list[Table]:
    """A batch, or, when one of its tables is gone, every table of it that is still there."""
    try:
        return list(connector.get_tables(namespace, names))
    except NotFoundError:
        found = []
        for name in names:
            try:
                found.append(connector.get_table(namespace, name))
            except NotFoundError:
                context.log.warning(
                    f"floe: table {namespace}.{name} is not in its metastore (yet); not observed"
                )
        return found
