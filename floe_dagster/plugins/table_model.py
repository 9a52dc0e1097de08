"""The provider-neutral table model every metastore connector answers in: a table, its storage
(location, format, columns), partitions, statistics, how a compute scans it; and which tables and
partitions a listing keeps (filters, partition predicates, Hive partition path names, pruning)."""

from __future__ import annotations

import fnmatch
import logging
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from floe_dagster.core.errors import (
    InvalidFieldError,
    NotSupportedError,
    PartitionMetadataError,
)

__all__ = [
    "HIVE_DEFAULT_PARTITION",
    "Column",
    "Partition",
    "PartitionField",
    "PartitionPredicate",
    "PartitionSpec",
    "PredicateOp",
    "ScanDescription",
    "StorageDescriptor",
    "Table",
    "TableFilter",
    "TableStats",
    "escape_path_name",
    "parse_partition_name",
    "partition_matches",
    "partition_predicates_apply",
    "prune_partitions",
    "unescape_path_name",
]

logger = logging.getLogger("floe_dagster.metastores")


@dataclass(frozen=True)
class Column:
    name: str
    type: str
    comment: str | None = None


# StorageDescriptor.options key: further globs of the table's files, one per line, read with the
# location's (an object-store table of .json and .ndjson files, or of two folders one name joins)
MORE_LOCATIONS = "more_locations"


@dataclass(frozen=True)
class StorageDescriptor:
    """Where a table's files are and how to read them.

    ``format`` is one of ``parquet``, ``orc``, ``csv``, ``json``, ``avro``, ``iceberg`` (or another
    name a connector documents); ``options`` carries what a reader needs beyond the format
    (``delimiter``, ``quote``, ``escape``, ``header`` for CSV; ``metadata_location`` for Iceberg;
    ``MORE_LOCATIONS`` when one location cannot name every file of the table).
    """

    location: str
    format: str
    columns: tuple[Column, ...] = ()
    serde: str | None = None
    input_format: str | None = None
    output_format: str | None = None
    options: dict[str, str] = field(default_factory=dict)
    serde_parameters: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class TableStats:
    row_count: int | None = None
    size_bytes: int | None = None
    file_count: int | None = None
    last_modified: datetime | None = None
    partition_count: int | None = None


@dataclass(frozen=True)
class Partition:
    values: tuple[str, ...]
    location: str | None
    parameters: dict[str, str] = field(default_factory=dict)

    def name(self, keys: Sequence[str]) -> str:
        """Hive-style name ``k1=v1/k2=v2`` (values escaped like Hive does)."""
        return "/".join(f"{escape_path_name(k)}={escape_path_name(v)}" for k, v in self.pairs(keys))

    def pairs(self, keys: Sequence[Any]) -> list[tuple[Any, str]]:
        """(key, value) for each partition key; a PartitionMetadataError (a floe error, not a
        ValueError) when the metastore gave this partition more or fewer values than keys."""
        if len(keys) != len(self.values):
            shown = ", ".join(repr(v)[:40] for v in self.values[:5])
            shown += ", ..." if len(self.values) > 5 else ""
            raise PartitionMetadataError(
                f"malformed partition metadata: {len(self.values)} value(s) [{shown}] for"
                f" {len(keys)} partition key(s); at {self.location or 'an unknown location'}:"
                " repair the partition in the metastore (e.g. MSCK REPAIR TABLE, or drop and re-add it)",
                operation="partitions",
            )
        return list(zip(keys, self.values, strict=True))


@dataclass(frozen=True)
class PartitionField:
    """One field of a partition spec: ``name`` of type ``type``, ``transform`` of ``source``."""

    name: str
    type: str
    transform: str = "identity"
    source: str | None = None


@dataclass(frozen=True)
class PartitionSpec:
    fields: tuple[PartitionField, ...] = ()

    @property
    def is_partitioned(self) -> bool:
        return bool(self.fields)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields)

    @classmethod
    def from_columns(cls, columns: Iterable[Column]) -> PartitionSpec:
        return cls(tuple(PartitionField(c.name, c.type, "identity", c.name) for c in columns))


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
    partition_spec: PartitionSpec = field(default_factory=PartitionSpec)
    # The catalog as the user knows it: the metastore's name in the manifest (never a provider).
    catalog: str | None = None
    # Why no reader can read it (a view, an unknown serde, a storage handler, a transactional table):
    # it stays an observable asset versioned from its metadata; only reading it fails, with this.
    unreadable_reason: str | None = None

    @property
    def readable(self) -> bool:
        return self.unreadable_reason is None

    def __post_init__(self) -> None:
        if self.partition_keys and not self.partition_spec.fields:
            object.__setattr__(self, "partition_spec", PartitionSpec.from_columns(self.partition_keys))

    @property
    def qualified_name(self) -> str:
        return f"{self.namespace}.{self.name}"

    def validate(self) -> Table:
        """This table, or an ``InvalidFieldError`` naming the first field a reader cannot do without
        (a ``NotSupportedError`` with the reason for a table no reader can read)."""
        if self.unreadable_reason is not None:
            raise NotSupportedError(
                f"table {self.qualified_name} cannot be read: {self.unreadable_reason}",
                operation="read",
                retryable=False,
            )
        if not self.storage.location:
            raise InvalidFieldError(
                f"table {self.qualified_name}: storage.location is empty;"
                " a table needs a location to be read",
                field="storage.location",
                operation="validate_table",
            )
        if not self.storage.format:
            raise InvalidFieldError(
                f"table {self.qualified_name}: storage.format is empty; a table needs a format to be read",
                field="storage.format",
                operation="validate_table",
            )
        if self.storage.format == "iceberg" and not self.storage.options.get("metadata_location"):
            raise InvalidFieldError(
                f"table {self.qualified_name}: an Iceberg table needs storage.options.metadata_location",
                field="storage.options.metadata_location",
                operation="validate_table",
            )
        return self


@dataclass(frozen=True)
class ScanDescription:
    """What a compute needs to read one table through its storage location.

    ``partitions`` is None when every file under ``location`` is read, else exactly the
    partitions to read (after pruning; may be empty). ``pruned`` tells whether predicates
    narrowed the partitions.
    """

    table: str
    format: str
    location: str
    columns: tuple[Column, ...] = ()
    partition_columns: tuple[Column, ...] = ()
    options: dict[str, str] = field(default_factory=dict)
    metadata_location: str | None = None
    partitions: tuple[Partition, ...] | None = None
    pruned: bool = False

    @property
    def locations(self) -> tuple[str, ...]:
        """``location`` and the further globs of ``MORE_LOCATIONS``: every file of an unpartitioned table."""
        more = self.options.get(MORE_LOCATIONS, "")
        return (self.location, *(line for line in more.split("\n") if line))

    @classmethod
    def from_table(
        cls,
        table: Table,
        partitions: Iterable[Partition] | None = None,
        predicates: Sequence[PartitionPredicate] = (),
    ) -> ScanDescription:
        table.validate()
        storage = table.storage
        selected: tuple[Partition, ...] | None = None
        pruned = False
        if storage.format != "iceberg":
            if partitions is not None and table.partition_spec.is_partitioned:
                selected = tuple(prune_partitions(table, partitions, predicates))
                pruned = partition_predicates_apply(table, predicates)
            elif predicates:
                partition_predicates_apply(table, predicates)  # logs the fallback
        options = {k: v for k, v in storage.options.items() if k != "metadata_location"}
        return cls(
            table=table.qualified_name,
            format=storage.format,
            location=storage.location,
            columns=storage.columns,
            partition_columns=tuple(Column(f.name, f.type) for f in table.partition_spec.fields)
            if storage.format != "iceberg"
            else (),
            options=options,
            metadata_location=storage.options.get("metadata_location"),
            partitions=selected,
            pruned=pruned,
        )


PredicateOp = Literal["=", "!=", "<", "<=", ">", ">=", "in"]


# --- filters and partitions -------------------------------------------------------------------


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
        """False when no table of this namespace can pass the filter (so it is not even listed).

        Sound, not exact: a pattern may match ``<namespace>.<table>`` only if its literal prefix
        (before the first wildcard) and ``<namespace>.`` agree on their common length.
        """
        if any(p.endswith(".*") and fnmatch.fnmatchcase(namespace, p[:-2]) for p in self.exclude):
            return False
        qualified = f"{namespace}."
        for pattern in self.include:
            prefix = re.split(r"[*?\[]", pattern, maxsplit=1)[0]
            if qualified.startswith(prefix) or prefix.startswith(qualified):
                return True
        return False


_INTEGER_TYPES = {"tinyint", "smallint", "int", "integer", "bigint"}


_FLOAT_TYPES = {"float", "double", "real"}


HIVE_DEFAULT_PARTITION = "__HIVE_DEFAULT_PARTITION__"


@dataclass(frozen=True)
class PartitionPredicate:
    """``column op value`` on a partition column; values compare by the column's type.

    ``value`` is a string (or a tuple of strings for ``in``); for integer and floating-point
    partition columns both sides compare as numbers, otherwise as strings (ISO dates sort right).
    The null partition (``__HIVE_DEFAULT_PARTITION__``) matches no predicate.
    """

    column: str
    op: PredicateOp
    value: str | tuple[str, ...]

    def matches(self, value: str | None, column_type: str = "string") -> bool:
        if value is None or value == HIVE_DEFAULT_PARTITION:
            return False
        kind = column_type.lower().split("(", 1)[0].strip()
        convert: Any = str
        if kind in _INTEGER_TYPES:
            convert = int
        elif kind in _FLOAT_TYPES or kind == "decimal":
            convert = float
        try:
            left = convert(value)
            if self.op == "in":
                options = (self.value,) if isinstance(self.value, str) else self.value
                return left in {convert(v) for v in options}
            right = convert(self.value if isinstance(self.value, str) else self.value[0])
        except (TypeError, ValueError):
            return False
        return bool(
            {
                "=": left == right,
                "!=": left != right,
                "<": left < right,
                "<=": left <= right,
                ">": left > right,
                ">=": left >= right,
            }[self.op]
        )


def escape_path_name(value: str) -> str:
    """Hive's ``FileUtils.escapePathName``: characters unsafe in a path segment become ``%XX``."""
    unsafe = set("\"#%'*/:=?\\\x7f{[]^")
    return "".join(f"%{ord(c):02X}" if c in unsafe or ord(c) < 0x20 else c for c in value)


def unescape_path_name(value: str) -> str:
    out, i = [], 0
    while i < len(value):
        if value[i] == "%" and _is_hex(value[i + 1 : i + 3]):
            out.append(chr(int(value[i + 1 : i + 3], 16)))
            i += 3
        else:
            out.append(value[i])
            i += 1
    return "".join(out)


def _is_hex(text: str) -> bool:
    return len(text) == 2 and all(c in "0123456789abcdefABCDEF" for c in text)


def parse_partition_name(name: str) -> dict[str, str]:
    """``k1=v1/k2=v2`` -> ``{k1: v1, k2: v2}`` (unescaped)."""
    parsed = {}
    for part in name.split("/"):
        key, _, value = part.partition("=")
        parsed[unescape_path_name(key)] = unescape_path_name(value)
    return parsed


def partition_predicates_apply(table: Table, predicates: Sequence[PartitionPredicate]) -> bool:
    """True when ``predicates`` can prune ``table``'s partitions; logs why not otherwise."""
    if not predicates:
        return False
    if not table.partition_spec.is_partitioned:
        logger.info(
            "table %s has no explicit partition schema; partition pruning skipped, every file is read",
            table.qualified_name,
        )
        return False
    names = set(table.partition_spec.names)
    ignored = sorted({p.column for p in predicates if p.column not in names})
    if ignored:
        logger.info(
            "table %s: predicates on %s are not on partition columns %s; they do not prune",
            table.qualified_name,
            ignored,
            sorted(names),
        )
    return len(ignored) < len(predicates)


def partition_matches(
    table: Table, values: Mapping[str, str], predicates: Sequence[PartitionPredicate]
) -> bool:
    types = {f.name: f.type for f in table.partition_spec.fields}
    return all(p.matches(values.get(p.column), types[p.column]) for p in predicates if p.column in types)


def prune_partitions(
    table: Table, partitions: Iterable[Partition], predicates: Sequence[PartitionPredicate]
) -> list[Partition]:
    """The partitions matching every predicate on a partition column (all of them if none can prune)."""
    partitions = list(partitions)
    if not partition_predicates_apply(table, predicates):
        return partitions
    keys = table.partition_spec.names
    return [
        p for p in partitions if partition_matches(table, dict(zip(keys, p.values, strict=False)), predicates)
    ]
