"""Metastore tables -> observable source assets, one multi-asset observation per metastore.

The asset specs are built from the defs state (``defs/state.py``), never from a live listing;
the observation (the "Observe" button, the ``floe_observe_sources`` job) asks the metastore for
the selected tables in batches and records each one's data version.
"""

from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from dagster import (
    AssetExecutionContext,
    AssetKey,
    AssetsDefinition,
    AssetSpec,
    DataVersion,
    Failure,
    MetadataValue,
    ObserveResult,
    TableColumn,
    TableSchema,
    multi_observable_source_asset,
)

from floe_dagster.defs.state import TableRecord, last_ddl_time, unreachable_message
from floe_dagster.freshness import source_policy
from floe_dagster.manifest.loader import LoadedManifest
from floe_dagster.plugins.errors import FloeError, NotFoundError
from floe_dagster.plugins.metastore import Table

TableRef = tuple[str, str, str]  # metastore, namespace, table
# read by Dagster's last-update freshness checks (floe_dagster/freshness.py)
LAST_UPDATED_TIMESTAMP = "dagster/last_updated_timestamp"


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


def table_schema(table: Table) -> TableSchema:
    return TableSchema(
        columns=[TableColumn(name=c.name, type=c.type, description=c.comment) for c in table.storage.columns]
    )


def table_metadata(table: Table) -> dict[str, Any]:
    """Metadata of one observation: what the metastore says about the table now."""
    metadata: dict[str, Any] = {
        "dagster/column_schema": table_schema(table),
        "floe/location": MetadataValue.path(table.storage.location),
        "floe/format": table.storage.format,
        "floe/partition_keys": ", ".join(c.name for c in table.partition_keys) or "(none)",
    }
    if table.stats.row_count is not None:
        metadata["dagster/row_count"] = table.stats.row_count
    if table.stats.last_modified is not None:
        # the table's own last commit / DDL time (not the observation's): what freshness reads
        metadata["floe/last_updated"] = MetadataValue.timestamp(table.stats.last_modified)
        metadata[LAST_UPDATED_TIMESTAMP] = MetadataValue.timestamp(table.stats.last_modified)
    ddl_time = last_ddl_time(table)
    if ddl_time is not None:
        metadata["floe/last_ddl_time"] = MetadataValue.timestamp(ddl_time)
    return metadata


def record_metadata(record: TableRecord) -> dict[str, Any]:
    """Definition metadata of one table, from the defs state (no metastore call)."""
    metadata: dict[str, Any] = {
        "dagster/column_schema": TableSchema(
            columns=[TableColumn(name=n or "", type=t or "", description=c) for n, t, c in record["columns"]]
        ),
        "floe/location": MetadataValue.path(record["location"]),
        "floe/format": record["format"],
        "floe/partition_keys": ", ".join(name for name, _ in record["partition_keys"]) or "(none)",
    }
    if record["partition_count"] is not None:
        metadata["floe/partition_count"] = record["partition_count"]
    if record["last_ddl_time"] is not None:
        metadata["floe/last_ddl_time"] = MetadataValue.timestamp(record["last_ddl_time"])
    return metadata


def observable_sources(
    loaded: LoadedManifest,
    metastore: str,
    tables: Iterable[TableRecord],
    extra_refs: Iterable[TableRef] = (),
) -> AssetsDefinition | None:
    """One multi-asset whose single observation covers every table of ``metastore``.

    ``tables`` come from the defs state (``defs/state.py``); building makes no metastore call.
    """
    provider = loaded.manifest.metastores[metastore].type
    specs: dict[AssetKey, AssetSpec] = {}
    for record in tables:
        namespace, name = record["namespace"], record["name"]
        key = source_asset_key(metastore, namespace, name)
        specs[key] = AssetSpec(
            key,
            group_name=metastore,
            kinds={provider, record["format"]},
            description=f"{namespace}.{name} in metastore '{metastore}'",
            metadata=record_metadata(record),
            freshness_policy=source_policy(loaded, metastore, namespace),
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
                freshness_policy=source_policy(loaded, metastore, namespace),
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
        try:
            yield from observe_tables(
                context, resource.connector(), metastore, context.selected_asset_keys, resource.batch_size()
            )
        except FloeError as exc:
            raise observation_failure(metastore, exc) from exc

    return observe


def observation_failure(metastore: str, exc: FloeError) -> Failure:
    """A failed observation that says which metastore, what failed and whether retrying helps."""
    return Failure(
        description=unreachable_message(metastore, exc),
        metadata={
            "metastore": metastore,
            "provider": exc.provider or "-",
            "operation": exc.operation or "-",
            "retryable": exc.retryable,
        },
        allow_retries=exc.retryable,
    )


def observe_tables(
    context: AssetExecutionContext, connector: Any, metastore: str, keys: Iterable[AssetKey], batch_size: int
) -> Iterator[ObserveResult]:
    wanted: dict[str, list[str]] = defaultdict(list)
    for key in keys:
        *namespace_parts, table_name = key.path[1:]
        wanted[".".join(namespace_parts)].append(table_name)
    seen = 0
    for namespace, unsorted in sorted(wanted.items()):
        names = sorted(unsorted)
        for start in range(0, len(names), batch_size):
            batch = names[start : start + batch_size]
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
