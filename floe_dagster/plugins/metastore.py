"""The metastore contract and its provider-neutral model.

A connector lists the tables a metastore knows and describes each one in the neutral model
below: where its data lives and in which format, so any compute can read it, and a data
version that changes exactly when the table's data changes. The model has no provider field:
the provider is the connector's business, not the table's.
"""

from __future__ import annotations

import abc
import fnmatch
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from typing import Any

from floe_dagster.plugins.base import Plugin, PluginConfig
from floe_dagster.plugins.errors import ConfigurationError, NotSupportedError


class Capability(str, Enum):
    LIST_NAMESPACES = "list_namespaces"
    LIST_TABLES = "list_tables"
    GET_TABLE = "get_table"
    GET_TABLES = "get_tables"
    LIST_PARTITIONS = "list_partitions"
    TABLE_STATS = "table_stats"


@dataclass(frozen=True)
class Column:
    name: str
    type: str
    comment: str | None = None


@dataclass(frozen=True)
class StorageDescriptor:
    location: str
    format: str
    columns: tuple[Column, ...] = ()
    serde: str | None = None
    input_format: str | None = None
    output_format: str | None = None
    options: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class TableStats:
    row_count: int | None = None
    size_bytes: int | None = None
    file_count: int | None = None
    last_modified: datetime | None = None


@dataclass(frozen=True)
class Partition:
    values: tuple[str, ...]
    location: str | None
    parameters: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Table:
    namespace: str
    name: str
    storage: StorageDescriptor
    data_version: str
    partition_keys: tuple[Column, ...] = ()
    properties: dict[str, str] = field(default_factory=dict)
    stats: TableStats = field(default_factory=TableStats)
    table_type: str = "EXTERNAL"

    @property
    def qualified_name(self) -> str:
        return f"{self.namespace}.{self.name}"

    def validate(self) -> Table:
        if not self.storage.location:
            raise ConfigurationError(
                f"table {self.qualified_name}: storage.location is empty;"
                " a table needs a location to be read",
                operation="validate_table",
            )
        if not self.storage.format:
            raise ConfigurationError(
                f"table {self.qualified_name}: storage.format is empty; a table needs a format to be read",
                operation="validate_table",
            )
        return self


@dataclass(frozen=True)
class TableFilter:
    """``include`` / ``exclude`` glob patterns on ``namespace.table``, applied before per-table calls."""

    include: tuple[str, ...] = ("*",)
    exclude: tuple[str, ...] = ()

    def matches(self, namespace: str, table: str) -> bool:
        qualified = f"{namespace}.{table}"
        return any(fnmatch.fnmatchcase(qualified, p) for p in self.include) and not any(
            fnmatch.fnmatchcase(qualified, p) for p in self.exclude
        )

    def may_match_namespace(self, namespace: str) -> bool:
        """False when no include pattern can match a table of this namespace."""
        return any(
            fnmatch.fnmatchcase(namespace, p.split(".", 1)[0]) if "." in p else True for p in self.include
        )


class MetastoreConnector(Plugin, abc.ABC):
    """Lists and describes the tables of one metastore."""

    capabilities: frozenset[Capability] = frozenset(
        {Capability.LIST_NAMESPACES, Capability.LIST_TABLES, Capability.GET_TABLE, Capability.GET_TABLES}
    )

    def __init__(self, name: str, config: PluginConfig) -> None:
        self.name = name
        self.config = config

    @abc.abstractmethod
    def list_namespaces(self) -> list[str]: ...

    @abc.abstractmethod
    def list_tables(self, namespace: str) -> list[str]: ...

    @abc.abstractmethod
    def get_table(self, namespace: str, table: str) -> Table: ...

    def get_tables(self, namespace: str, names: Sequence[str]) -> list[Table]:
        """Batched get; connectors whose API batches override this."""
        return [self.get_table(namespace, n) for n in names]

    def list_partitions(self, namespace: str, table: str) -> list[Partition]:
        raise self.not_supported("list_partitions")

    def not_supported(self, operation: str) -> NotSupportedError:
        return NotSupportedError(
            f"{self.type_name} metastore '{self.name}' does not support {operation}",
            provider=self.type_name,
            operation=operation,
            retryable=False,
        )

    def scan(self, table_filter: TableFilter, batch_size: int = 100) -> Iterable[Table]:
        """Every table that passes the filter, fetched in batches of ``batch_size``."""
        for namespace in sorted(self.list_namespaces()):
            if not table_filter.may_match_namespace(namespace):
                continue
            names = sorted(t for t in self.list_tables(namespace) if table_filter.matches(namespace, t))
            for start in range(0, len(names), batch_size):
                yield from self.get_tables(namespace, names[start : start + batch_size])

    def describe(self) -> dict[str, Any]:
        return {"metastore": self.name, "provider": self.type_name}
