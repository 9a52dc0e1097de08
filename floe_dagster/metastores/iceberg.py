"""The tables of an Iceberg catalog (any catalog plugin) as a metastore.

Data version = the table's current snapshot id: Iceberg creates a new snapshot exactly when
data is committed, and never otherwise.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, ClassVar, TypeVar

from pydantic import Field

from floe_dagster.core.errors import ConfigurationError, FloeError
from floe_dagster.metastores.iceberg_feed import IcebergMetadataFeed
from floe_dagster.plugins.base import PluginConfig
from floe_dagster.plugins.catalog import CatalogPlugin
from floe_dagster.plugins.metastore import Capability, MetastoreConnector
from floe_dagster.plugins.table_model import (
    Column,
    Partition,
    PartitionField,
    PartitionPredicate,
    PartitionSpec,
    StorageDescriptor,
    Table,
    TableStats,
    prune_partitions,
)

if TYPE_CHECKING:
    from pyiceberg.table import Table as IcebergTable

__all__ = [
    "IcebergMetastoreConfig",
    "IcebergMetastoreConnector",
]

NO_SNAPSHOT_VERSION = "no-snapshot"


T = TypeVar("T")


class IcebergMetastoreConfig(PluginConfig):
    catalog: str = Field(description="Name of a catalog in the manifest's `catalogs` section.")


class IcebergMetastoreConnector(MetastoreConnector):
    type_name: ClassVar[str] = "iceberg"
    config_model = IcebergMetastoreConfig
    config: IcebergMetastoreConfig
    needs_catalog: ClassVar[bool] = True
    capabilities = frozenset(
        {
            Capability.LIST_NAMESPACES,
            Capability.LIST_TABLES,
            Capability.GET_TABLE,
            Capability.GET_TABLES,
            Capability.LIST_PARTITIONS,
            Capability.TABLE_STATS,
            Capability.CHANGE_FEED,
        }
    )

    def __init__(self, name: str, config: PluginConfig, catalog: CatalogPlugin | None = None) -> None:
        super().__init__(name, config)
        if catalog is None:
            raise ConfigurationError(
                f"metastore '{name}' (iceberg) needs the catalog '{self.config.catalog}'",
                provider=self.type_name,
                operation="connect",
            )
        self.catalog = catalog

    def list_namespaces(self) -> list[str]:
        return [".".join(ns) for ns in self._tagged("list_namespaces", self.catalog.list_namespaces)]

    def list_tables(self, namespace: str) -> list[str]:
        tables = self._tagged("list_tables", lambda: self.catalog.list_tables(tuple(namespace.split("."))))
        return [ident[-1] for ident in tables]

    def get_table(self, namespace: str, table: str) -> Table:
        loaded = self._load(namespace, table)
        return to_neutral_table(namespace, table, loaded, catalog=self.name)

    def change_feed(self) -> IcebergMetadataFeed:
        """Each table's metadata location, compared tick to tick (metastores/iceberg_feed.py)."""
        return IcebergMetadataFeed(self)

    def table_stats(self, namespace: str, table: str) -> TableStats:
        """From the current snapshot's summary (``total-records``, ``total-files-size``,
        ``total-data-files``) and the metadata's ``last-updated-ms``."""
        loaded = self._tagged("table_stats", lambda: self.catalog.load_table((*namespace.split("."), table)))
        return to_neutral_table(namespace, table, loaded, catalog=self.name).stats

    def list_partitions(
        self, namespace: str, table: str, predicates: Sequence[PartitionPredicate] = ()
    ) -> list[Partition]:
        loaded = self._load(namespace, table)
        if loaded.spec().is_unpartitioned():
            return []
        rows = self._tagged("list_partitions", lambda: loaded.inspect.partitions().to_pylist())
        partitions = [
            Partition(
                values=tuple(str(v) for v in (row.get("partition") or {}).values()),
                location=None,
                parameters={
                    "record_count": str(row.get("record_count")),
                    "file_count": str(row.get("file_count")),
                },
            )
            for row in rows
        ]
        if not predicates:
            return partitions
        return prune_partitions(
            to_neutral_table(namespace, table, loaded, catalog=self.name), partitions, predicates
        )

    def _load(self, namespace: str, table: str) -> IcebergTable:
        identifier = (*namespace.split("."), table)
        return self._tagged("get_table", lambda: self.catalog.load_table(identifier))

    def _tagged(self, operation: str, call: Callable[[], T]) -> T:
        """Re-tag catalog errors with this metastore's provider and the metastore operation."""
        try:
            return call()
        except FloeError as exc:
            exc.provider, exc.operation = self.type_name, operation
            raise

    def describe(self) -> dict[str, str]:
        return {**super().describe(), "catalog": self.config.catalog}


def to_neutral_table(namespace: str, name: str, table: IcebergTable, catalog: str | None = None) -> Table:
    metadata = table.metadata
    snapshot = table.current_snapshot()
    summary = snapshot.summary if snapshot is not None else None

    def summary_int(key: str) -> int | None:
        value = summary.get(key) if summary is not None else None
        return int(value) if value is not None else None

    spec = table.spec()
    schema = table.schema()
    partition_keys = tuple(
        Column(name=field.name, type=str(schema.find_field(field.source_id).field_type))
        for field in spec.fields
    )
    partition_spec = PartitionSpec(
        tuple(
            PartitionField(
                name=field.name,
                type=str(schema.find_field(field.source_id).field_type),
                transform=str(field.transform),
                source=schema.find_field(field.source_id).name,
            )
            for field in spec.fields
        )
    )
    return Table(
        namespace=namespace,
        name=name,
        storage=StorageDescriptor(
            location=metadata.location,
            format="iceberg",
            columns=tuple(Column(name=f.name, type=str(f.field_type), comment=f.doc) for f in schema.fields),
            options={"metadata_location": table.metadata_location},
        ),
        data_version=str(snapshot.snapshot_id) if snapshot is not None else NO_SNAPSHOT_VERSION,
        partition_keys=partition_keys,
        partition_spec=partition_spec,
        properties=dict(metadata.properties),
        stats=TableStats(
            row_count=summary_int("total-records"),
            size_bytes=summary_int("total-files-size"),
            file_count=summary_int("total-data-files"),
            last_modified=datetime.fromtimestamp(metadata.last_updated_ms / 1000, tz=UTC),
            partition_count=0 if spec.is_unpartitioned() else None,
        ),
        table_type="ICEBERG",
        catalog=catalog,
    )
