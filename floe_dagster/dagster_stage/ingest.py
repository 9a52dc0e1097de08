"""The S3 ingest as Dagster assets: one asset per table an ``s3`` metastore discovers.

Opt-in per metastore (``config.ingest.enabled``). Each discovered table ``T`` of metastore
``M`` gets the asset ``<catalog>/<ingest namespace>/T`` (the Iceberg table it writes, in
``ingest.catalog`` or the manifest's ``transforms.catalog``), downstream of the source asset
``M/<namespace>/T``. The ingest itself (cursor, pipeline, writer) is ``floe_dagster/ingest/``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from dagster import (
    AssetKey,
    AssetSpec,
    DataVersion,
    Failure,
    MaterializeResult,
    MetadataValue,
    multi_asset,
)

from floe_dagster.core.errors import ConfigurationError, FloeError
from floe_dagster.dagster_stage.names import UNSCOPED, DefinitionNames
from floe_dagster.dagster_stage.sources import SourceKeys, source_asset_key
from floe_dagster.metastores.s3 import S3MetastoreConnector
from floe_dagster.plugins.registry import get_plugin_class

if TYPE_CHECKING:
    from floe_dagster.ingest.table import IngestReport

MB = 1024 * 1024

__all__ = ["ingest_asset_key", "ingest_assets", "ingest_catalog", "ingest_enabled", "materialize_result"]


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
    # every object-store source (s3, azure) is the S3 source's connector or one made from it
    if not issubclass(get_plugin_class("metastores", entry.type), S3MetastoreConnector):
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
        # lazy: the ingest pulls in pyarrow (about 0.6 s); a code location's load does not need it
        from floe_dagster.ingest.table import ingest_table

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
