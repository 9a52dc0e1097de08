"""Metastore tables -> observable source assets, one multi-asset observation per metastore.

The asset specs are built from the defs state (``defs/state.py``), never from a live listing;
the observation (the "Observe" button, the ``floe_observe_sources`` job) asks the metastore for
the selected tables in batches and records each one's data version.

Keys are ``<metastore>/<namespace parts>/<table>`` unless the manifest maps them
(``asset_key_prefix``, ``asset_keys``; ``defs/source_refs.py``); a ``TableRef`` carries its
metastore's ``SourceKeys``, so ``source_asset_key(*ref)`` is the mapped key wherever a dbt
source is linked.
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

from floe_dagster.defs.names import UNSCOPED, DefinitionNames
from floe_dagster.defs.source_refs import SourceKeys, TableRef, dbt_source_refs
from floe_dagster.defs.state import TableRecord, known_partition_count, last_ddl_time, unreachable_message
from floe_dagster.freshness import source_policy
from floe_dagster.manifest.loader import LoadedManifest
from floe_dagster.plugins.errors import FloeError, NotFoundError
from floe_dagster.plugins.metastore import Table

__all__ = ["SourceKeys", "TableRef", "dbt_source_refs", "observable_sources", "source_asset_key"]

# read by Dagster's last-update freshness checks (floe_dagster/freshness.py)
LAST_UPDATED_TIMESTAMP = "dagster/last_updated_timestamp"
TABLE_METADATA = "floe/table"  # <namespace>.<table>: what a (possibly mapped) key stands for


def source_asset_key(metastore: str, namespace: str, table: str, keys: SourceKeys | None = None) -> AssetKey:
    """The asset key of a metastore table: ``keys`` (the manifest's mapping) or the default."""
    if keys is None:
        return AssetKey([metastore, *namespace.split("."), table])
    return AssetKey(list(keys.path(namespace, table)))


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
    partitions = known_partition_count(table)
    if partitions is not None:
        metadata["floe/partition_count"] = partitions
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
    """Definition metadata of one table, from the defs state (no metastore call).

    Only what the UI shows for the table as soon as the code location loads: its full column
    schema (``dagster/column_schema``) comes with each observation (``table_metadata``), which
    the UI shows as the table's columns; building it for every table at every load was most of
    the definitions' cost with thousands of tables (benchmarks/load_scale.py).
    """
    metadata: dict[str, Any] = {
        TABLE_METADATA: f"{record['namespace']}.{record['name']}",
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
    names: DefinitionNames = UNSCOPED,
) -> AssetsDefinition | None:
    """One multi-asset whose single observation covers every table of ``metastore``.

    ``tables`` come from the defs state (``defs/state.py``); building makes no metastore call.
    ``names`` gives the op and the metastore resource their names (defs/names.py).
    """
    provider = loaded.manifest.metastores[metastore].type
    keys = SourceKeys.of(loaded, metastore)
    specs: dict[AssetKey, AssetSpec] = {}
    tables_by_key: dict[AssetKey, tuple[str, str]] = {}
    for record in tables:
        namespace, name = record["namespace"], record["name"]
        key = source_asset_key(metastore, namespace, name, keys)
        tables_by_key[key] = (namespace, name)
        specs[key] = AssetSpec(
            key,
            group_name=metastore,
            kinds={provider, record["format"]},
            description=f"{namespace}.{name} in metastore '{metastore}'",
            metadata=record_metadata(record),
            freshness_policy=source_policy(loaded, metastore, namespace),
        )
    for ref in extra_refs:
        namespace, name = ref.namespace, ref.table
        key = source_asset_key(metastore, namespace, name, keys)
        tables_by_key.setdefault(key, (namespace, name))
        specs.setdefault(
            key,
            AssetSpec(
                key,
                group_name=metastore,
                kinds={provider},
                description=f"{namespace}.{name} in metastore '{metastore}' (read by dbt)",
                metadata={TABLE_METADATA: f"{namespace}.{name}"},
                freshness_policy=source_policy(loaded, metastore, namespace),
            ),
        )
    if not specs:
        return None
    resource_key = names.metastore_resource(metastore)

    @multi_observable_source_asset(
        specs=list(specs.values()),
        name=names.observe_op(metastore),
        can_subset=True,
        required_resource_keys={resource_key},
    )
    def observe(context: AssetExecutionContext) -> Iterator[ObserveResult]:
        resource = getattr(context.resources, resource_key)
        try:
            yield from observe_tables(
                context,
                resource.connector(),
                keys,
                {k: tables_by_key[k] for k in context.selected_asset_keys},
                resource.batch_size(),
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
    context: AssetExecutionContext,
    connector: Any,
    keys: SourceKeys,
    selected: Mapping[AssetKey, tuple[str, str]],
    batch_size: int,
) -> Iterator[ObserveResult]:
    """Observe the ``selected`` tables (asset key -> namespace, table) in batches per namespace."""
    metastore = connector.name
    wanted: dict[str, list[str]] = defaultdict(list)
    for namespace, table_name in selected.values():
        wanted[namespace].append(table_name)
    seen = 0
    for namespace, unsorted in sorted(wanted.items()):
        names = sorted(unsorted)
        for start in range(0, len(names), batch_size):
            batch = names[start : start + batch_size]
            for table in _get_tables_skipping_missing(context, connector, namespace, batch):
                seen += 1
                yield ObserveResult(
                    asset_key=source_asset_key(metastore, table.namespace, table.name, keys),
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
