"""Metastore tables -> observable source assets, one multi-asset observation per metastore.

The asset specs are built from the defs state (``defs/state.py``), never from a live listing;
the observation (the "Observe" button, the ``floe_observe_sources`` job) asks the metastore for
the selected tables in batches and records each one's data version.

Each spec comes from the source translator (``dagster_stage/translator.py``), given a
``SourceTable`` (``source_tables``); by default its key is ``<metastore>/<namespace
parts>/<table>`` unless the manifest maps it (``asset_key_prefix``, ``asset_keys``;
``plan/source_refs.py``). The observation reports the translated keys.
"""

from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from dagster import (
    AssetExecutionContext,
    AssetKey,
    AssetsDefinition,
    BetaWarning,
    DataVersion,
    Failure,
    MetadataValue,
    ObserveResult,
    TableColumn,
    TableSchema,
    multi_observable_source_asset,
)

from floe_dagster.core.errors import FloeError, NotFoundError
from floe_dagster.dagster_stage.dagster_warnings import calling_on_purpose
from floe_dagster.dagster_stage.freshness import source_policy
from floe_dagster.dagster_stage.names import TABLE_METADATA, UNSCOPED, DefinitionNames
from floe_dagster.dagster_stage.translator import (
    FloeSourceTranslator,
    SourceTable,
    TranslatedSources,
    translate_sources,
)
from floe_dagster.manifest.loader import LoadedManifest
from floe_dagster.metastores.state import (
    TableRecord,
    known_partition_count,
    last_ddl_time,
    unreachable_message,
)
from floe_dagster.plan.source_refs import SourceKeys, TableRef, dbt_source_refs
from floe_dagster.plugins.table_model import Table

__all__ = [
    "SourceKeys",
    "TableRef",
    "dbt_source_refs",
    "observable_source_assets",
    "observable_sources",
    "source_asset_key",
    "source_tables",
]

# a table no reader can read (a view, an unknown serde ...) is still an asset; these say so and why
READABLE = "floe/readable"
UNREADABLE_REASON = "floe/unreadable_reason"
# read by Dagster's last-update freshness checks (floe_dagster/dagster_stage/freshness.py)
LAST_UPDATED_TIMESTAMP = "dagster/last_updated_timestamp"


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
        READABLE: table.readable,
    }
    if table.unreadable_reason is not None:
        metadata[UNREADABLE_REASON] = table.unreadable_reason
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
    if record.get("unreadable_reason"):
        metadata[READABLE] = False
        metadata[UNREADABLE_REASON] = record.get("unreadable_reason")
    return metadata


def source_tables(
    loaded: LoadedManifest,
    metastore: str,
    tables: Iterable[TableRecord],
    extra_refs: Iterable[TableRef] = (),
    dbt_sources: Mapping[tuple[str, str], Mapping[str, Any]] | None = None,
) -> list[SourceTable]:
    """What the translator is given for each table of ``metastore``: the defs state's ``tables``,
    then the ``extra_refs`` dbt sources read that the state does not list (yet).

    ``dbt_sources``: (namespace, table) -> the dbt source node that reads it.
    """
    provider = loaded.manifest.metastores[metastore].type
    keys = SourceKeys.of(loaded, metastore)
    dbt_sources = dbt_sources or {}
    found: dict[tuple[str, str], SourceTable] = {}
    for record in tables:
        namespace, name = record["namespace"], record["name"]
        found[(namespace, name)] = SourceTable(
            metastore,
            namespace,
            name,
            metastore_type=provider,
            manifest_key=keys.path(namespace, name),
            record=record,
            dbt_source=dbt_sources.get((namespace, name)),
            metadata=record_metadata(record),
            freshness_policy=source_policy(loaded, metastore, namespace),
        )
    for ref in extra_refs:
        namespace, name = ref.namespace, ref.table
        if (namespace, name) not in found:
            found[(namespace, name)] = SourceTable(
                metastore,
                namespace,
                name,
                metastore_type=provider,
                manifest_key=keys.path(namespace, name),
                dbt_source=dbt_sources.get((namespace, name)),
                metadata={TABLE_METADATA: f"{namespace}.{name}"},
                freshness_policy=source_policy(loaded, metastore, namespace),
            )
    return list(found.values())


def observable_sources(
    loaded: LoadedManifest,
    metastore: str,
    tables: Iterable[TableRecord],
    extra_refs: Iterable[TableRef] = (),
    names: DefinitionNames = UNSCOPED,
    translator: FloeSourceTranslator | None = None,
    translated: TranslatedSources | None = None,
    op_name: str | None = None,
) -> AssetsDefinition | None:
    """One multi-asset whose single observation covers every table of ``metastore``.

    ``tables`` come from the defs state (``defs/state.py``); building makes no metastore call.
    ``names`` gives the op and the metastore resource their names (defs/names.py). Each spec
    comes from ``translator`` (dagster_stage/translator.py), or is ``translated`` already.
    """
    if translated is None:
        translated = translate_sources(
            metastore, source_tables(loaded, metastore, tables, extra_refs), translator
        )
    specs = translated.specs
    tables_by_key = {key: (t.namespace, t.name) for key, t in translated.tables.items()}
    if not specs:
        return None
    resource_key = names.metastore_resource(metastore)

    with calling_on_purpose(BetaWarning, "multi_observable_source_asset"):
        observable = multi_observable_source_asset(
            specs=list(specs.values()),
            name=op_name or names.observe_op(metastore),
            can_subset=True,
            required_resource_keys={resource_key},
        )

    @observable  # type: ignore[misc]  # dagster's decorator is untyped
    def observe(context: AssetExecutionContext) -> Iterator[ObserveResult]:
        resource = getattr(context.resources, resource_key)
        try:
            yield from observe_tables(
                context,
                resource.connector(),
                {k: tables_by_key[k] for k in context.selected_asset_keys},
                resource.batch_size(),
            )
        except FloeError as exc:
            raise observation_failure(metastore, exc) from exc

    assets: AssetsDefinition = observe
    return assets


def observable_source_assets(
    loaded: LoadedManifest,
    metastore: str,
    translated: TranslatedSources,
    names: DefinitionNames = UNSCOPED,
) -> list[AssetsDefinition]:
    """The observable source assets of ``metastore``: one multi-asset, or two when dbt models read
    some of its tables and not all: the tables they read (op ``observe_<metastore>_dbt_sources``)
    apart from the others (op ``observe_<metastore>``).

    A job of the dbt models (``floe_main``) carries the tables they read as its inputs; Dagster
    cuts a multi-asset that holds them into what the job reads and the rest, so with one
    multi-asset of 10,000 tables every load copied all 10,000 specs twice for three tables
    (benchmarks/load_scale.py). Observing, the two are one job (``floe_observe_sources``), one
    sensor and the same data versions.
    """
    read = {key for key, table in translated.tables.items() if table.dbt_source is not None}
    if not read or len(read) == len(translated.specs):
        single = observable_sources(loaded, metastore, (), names=names, translated=translated)
        return [single] if single is not None else []
    parts = [
        (
            names.observe_op(metastore),
            TranslatedSources(
                metastore,
                {k: v for k, v in translated.specs.items() if k not in read},
                {k: v for k, v in translated.tables.items() if k not in read},
            ),
        ),
        (
            f"{names.observe_op(metastore)}_dbt_sources",
            TranslatedSources(
                metastore,
                {k: v for k, v in translated.specs.items() if k in read},
                {k: v for k, v in translated.tables.items() if k in read},
            ),
        ),
    ]
    return [
        asset
        for op_name, part in parts
        if (asset := observable_sources(loaded, metastore, (), names=names, translated=part, op_name=op_name))
        is not None
    ]


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
    selected: Mapping[AssetKey, tuple[str, str]],
    batch_size: int,
) -> Iterator[ObserveResult]:
    """Observe the ``selected`` tables (asset key -> namespace, table) in batches per namespace."""
    metastore = connector.name
    key_of = {table: key for key, table in selected.items()}  # the translated keys
    wanted: dict[str, list[str]] = defaultdict(list)
    for namespace, table_name in selected.values():
        wanted[namespace].append(table_name)
    seen = 0
    for namespace, unsorted in sorted(wanted.items()):
        names = sorted(unsorted)
        for start in range(0, len(names), batch_size):
            batch = names[start : start + batch_size]
            for name, table in _tables_or_errors(context, connector, namespace, batch):
                seen += 1
                if isinstance(table, FloeError):  # this table only: the others are still observed
                    yield ObserveResult(
                        asset_key=key_of[(namespace, name)],
                        metadata={READABLE: False, UNREADABLE_REASON: str(table)},
                    )
                    continue
                key = key_of.get((table.namespace, table.name))
                if key is None:  # the metastore answered with another name than it listed
                    context.log.warning(f"floe: {table.qualified_name} was not asked for; not observed")
                    continue
                yield ObserveResult(
                    asset_key=key,
                    data_version=DataVersion(table.data_version),
                    metadata=table_metadata(table),
                )
            context.log.info(f"floe: observed {seen} table(s) of metastore '{metastore}'")


def _tables_or_errors(
    context: AssetExecutionContext, connector: Any, namespace: str, names: list[str]
) -> list[tuple[str, Table | FloeError]]:
    """A batch, each table described or its own (non-retryable) error: one table that cannot be
    described never fails the observation of another. A table that is gone is left out (logged);
    a retryable error (the metastore is unavailable) fails the observation."""
    results = connector.get_tables_or_errors(namespace, names)
    found: list[tuple[str, Table | FloeError]] = []
    for name, result in zip(names, results, strict=True):
        if isinstance(result, NotFoundError):
            context.log.warning(f"floe: table {namespace}.{name} is not in its metastore (yet); not observed")
        elif isinstance(result, FloeError):
            context.log.warning(f"floe: table {namespace}.{name} could not be described: {result}")
            found.append((name, result))
        else:
            found.append((name, result))
    return found
