"""The metastore contract and its provider-neutral model.

A connector lists the tables a metastore knows and describes each one in the neutral model
below: where its data lives and in which format, so any compute can read it, and a data
version that changes exactly when the table's data changes. The model has no provider field:
the provider is the connector's business, not the table's.

The model: a ``Table`` (catalog, namespace, name) has a ``StorageDescriptor`` (location, format,
serde, input/output format, columns, format options), a ``PartitionSpec``, ``Partition``s
(values, location, parameters), properties and ``TableStats``. ``ScanDescription`` is what a
compute needs to read one table (format, location, partition columns, options, the selected
partitions); ``computes/duckdb_scan.py`` turns it into DuckDB SQL.
"""

from __future__ import annotations

import abc
import fnmatch
import logging
import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from typing import Any, ClassVar, Literal, TypeVar

from pydantic import SecretStr

from floe_dagster.core.errors import (
    ConfigurationError,
    FloeError,
    MetastoreError,
    NotFoundError,
    NotSupportedError,
    PartitionMetadataError,
    UnavailableError,
)
from floe_dagster.plugins.base import Plugin, PluginConfig
from floe_dagster.plugins.metastore_auth import metastore_credentials

__all__ = [
    "Capability",
    "Column",
    "InvalidFieldError",
    "MetastoreConnector",
    "MetastoreUnavailableError",
    "Partition",
    "PartitionField",
    "PartitionPredicate",
    "PartitionSpec",
    "ScanDescription",
    "StorageDescriptor",
    "Table",
    "TableFilter",
    "TableStats",
    "parse_partition_name",
    "partition_matches",
    "partition_predicates_apply",
    "prune_partitions",
    "secret_values",
]

R = TypeVar("R")

logger = logging.getLogger("floe_dagster.metastores")

REDACTED = "***"


class Capability(str, Enum):
    LIST_NAMESPACES = "list_namespaces"
    LIST_TABLES = "list_tables"
    GET_TABLE = "get_table"
    GET_TABLES = "get_tables"
    LIST_PARTITIONS = "list_partitions"
    TABLE_STATS = "table_stats"


class InvalidFieldError(ConfigurationError):
    """A value is missing or unusable; ``field`` names it (``storage.location``, ``uri`` ...)."""

    def __init__(
        self,
        message: str,
        *,
        field: str,
        provider: str | None = None,
        operation: str | None = None,
    ) -> None:
        super().__init__(message, provider=provider, operation=operation, retryable=False)
        self.field = field

    def tags(self) -> dict[str, str]:
        return {**super().tags(), "field": self.field}


class MetastoreUnavailableError(MetastoreError, UnavailableError):
    """The metastore could not be reached, or kept failing, through every attempt floe made.

    Connectors always pass ``attempts``: the attempts really made, the first one included.
    Retrying later can help.
    """


@dataclass(frozen=True)
class Column:
    name: str
    type: str
    comment: str | None = None


@dataclass(frozen=True)
class StorageDescriptor:
    """Where a table's files are and how to read them.

    ``format`` is one of ``parquet``, ``orc``, ``csv``, ``json``, ``avro``, ``iceberg`` (or another
    name a connector documents); ``options`` carries what a reader needs beyond the format
    (``delimiter``, ``quote``, ``escape``, ``header`` for CSV; ``metadata_location`` for Iceberg).
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

    def __post_init__(self) -> None:
        if self.partition_keys and not self.partition_spec.fields:
            object.__setattr__(self, "partition_spec", PartitionSpec.from_columns(self.partition_keys))

    @property
    def qualified_name(self) -> str:
        return f"{self.namespace}.{self.name}"

    def validate(self) -> Table:
        """This table, or an ``InvalidFieldError`` naming the first field a reader cannot do without."""
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


# --- filters -------------------------------------------------------------------------------------


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


PredicateOp = Literal["=", "!=", "<", "<=", ">", ">=", "in"]
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


# --- scan description ------------------------------------------------------------------------------


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


# --- diagnostics -----------------------------------------------------------------------------------


def redacted_config(config: PluginConfig) -> dict[str, str]:
    """Every config field as text, secrets as ``***`` (or ``(unset)``), in field order."""
    facts: dict[str, str] = {}
    for name in type(config).model_fields:
        value = getattr(config, name)
        facts[name] = _redacted(value)
    return facts


def _redacted(value: Any) -> str:
    if isinstance(value, SecretStr):
        return REDACTED
    if value is None:
        return "(unset)"
    if isinstance(value, dict):
        inner = ", ".join(f"{k}={_redacted(v)}" for k, v in sorted(value.items()))
        return "{" + inner + "}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_redacted(v) for v in value) + "]"
    return str(value)


def secret_values(config: PluginConfig) -> list[str]:
    """The plain values of every SecretStr in ``config`` (to scrub them from messages)."""
    found: list[str] = []

    def walk(value: Any) -> None:
        if isinstance(value, SecretStr):
            if plain := value.get_secret_value():
                found.append(plain)
        elif isinstance(value, dict):
            for v in value.values():
                walk(v)
        elif isinstance(value, list | tuple):
            for v in value:
                walk(v)

    for name in type(config).model_fields:
        walk(getattr(config, name))
    return sorted(found, key=len, reverse=True)


# --- the connector ---------------------------------------------------------------------------------


class MetastoreConnector(Plugin, abc.ABC):
    """Lists and describes the tables of one metastore.

    Connectors declare ``capabilities``; anything outside them raises ``NotSupportedError``
    tagged with the provider and operation (never an empty answer). ``call_counts`` counts the
    calls made to the metastore's API by operation (for benchmarks and tests).
    """

    capabilities: frozenset[Capability] = frozenset(
        {Capability.LIST_NAMESPACES, Capability.LIST_TABLES, Capability.GET_TABLE, Capability.GET_TABLES}
    )
    # Environment variables the auth chokepoint (plugins/factory.py) reads, per config field.
    env_options: ClassVar[Mapping[str, tuple[str, ...]]] = {}
    # Config fields that must be set once manifest options and environment are merged.
    required_options: ClassVar[tuple[str, ...]] = ()

    def __init__(self, name: str, config: PluginConfig) -> None:
        self.name = name
        self.config = config
        self.call_counts: Counter[str] = Counter()
        self.scan_problems: list[FloeError] = []
        # Typed credentials from the one chokepoint (plugins/metastore_auth.py): connectors use
        # these and never read the environment or unwrap a secret themselves.
        self.credentials: Any = metastore_credentials(config)

    @property
    def api_calls(self) -> int:
        """Calls made to the metastore's API so far (every attempt, retries included)."""
        return sum(self.call_counts.values())

    @abc.abstractmethod
    def list_namespaces(self) -> list[str]: ...

    @abc.abstractmethod
    def list_tables(self, namespace: str) -> list[str]: ...

    @abc.abstractmethod
    def get_table(self, namespace: str, table: str) -> Table: ...

    def get_tables(self, namespace: str, names: Sequence[str]) -> list[Table]:
        """Batched get; connectors whose API batches override this."""
        return [self.get_table(namespace, n) for n in names]

    def get_tables_or_errors(self, namespace: str, names: Sequence[str]) -> list[Table | FloeError]:
        """Like ``get_tables``, but a table that cannot be described is its (non-retryable) error.

        Retryable errors (the metastore is unavailable) are raised: a scan must not report a
        partial metastore as complete.
        """
        try:
            return list(self.get_tables(namespace, names))
        except FloeError as exc:
            if exc.retryable:
                raise
        results: list[Table | FloeError] = []
        for name in names:
            try:
                results.append(self.get_table(namespace, name))
            except FloeError as exc:
                if exc.retryable:
                    raise
                results.append(exc)
        return results

    def list_partitions(
        self, namespace: str, table: str, predicates: Sequence[PartitionPredicate] = ()
    ) -> list[Partition]:
        raise self.not_supported("list_partitions")

    def table_stats(self, namespace: str, table: str) -> TableStats:
        """Row count, size, file count, last change and partition count, as far as the provider knows.

        Optional: connectors that declare ``Capability.TABLE_STATS`` answer it; the others raise
        ``NotSupportedError`` tagged with the provider and ``table_stats``.
        """
        raise self.not_supported("table_stats")

    def not_supported(self, operation: str, detail: str = "") -> NotSupportedError:
        return NotSupportedError(
            f"{self.type_name} metastore '{self.name}' does not support {operation}{detail}",
            provider=self.type_name,
            operation=operation,
            retryable=False,
        )

    def scan(self, table_filter: TableFilter, batch_size: int = 100) -> Iterable[Table]:
        """Every table that passes the filter, fetched in batches of ``batch_size``.

        The filter is applied to names before any per-table call. A table that cannot be
        described (unsupported format, no location, gone) is logged, kept in ``scan_problems``
        and skipped; a retryable error (metastore unavailable) ends the scan with that error.
        """
        self.scan_problems = []
        for namespace in sorted(self.list_namespaces()):
            if not table_filter.may_match_namespace(namespace):
                continue
            names = sorted(t for t in self.list_tables(namespace) if table_filter.matches(namespace, t))
            for start in range(0, len(names), batch_size):
                for result in self.get_tables_or_errors(namespace, names[start : start + batch_size]):
                    if isinstance(result, Table):
                        yield result
                    else:
                        logger.warning("metastore '%s': skipped a table: %s", self.name, result)
                        self.scan_problems.append(result)

    def describe_scan(
        self, namespace: str, table: str, predicates: Sequence[PartitionPredicate] = ()
    ) -> ScanDescription:
        """How to read ``namespace.table``; with ``predicates``, only the matching partitions.

        Partitions are listed (pruned by the connector) only when the table has an explicit
        partition schema and the connector can list partitions; otherwise the whole location is
        read and the fallback is logged.
        """
        described = self.get_table(namespace, table)
        if (
            described.storage.format != "iceberg"
            and described.partition_spec.is_partitioned
            and Capability.LIST_PARTITIONS in self.capabilities
        ):
            partitions = (
                self.list_partitions(namespace, table, predicates)
                if predicates
                else self.list_partitions(namespace, table)
            )
            return ScanDescription.from_table(described, partitions, predicates)
        return ScanDescription.from_table(described, None, predicates)

    def results_by_name(
        self,
        namespace: str,
        names: Sequence[str],
        found: Mapping[str, Any],
        operation: str,
        convert: Callable[[Any], R | FloeError],
    ) -> list[R | FloeError]:
        """One result per name, in order, from a batched fetch (``found``: lower-cased name ->
        the provider's table): ``convert`` of it, its non-retryable error, or a NotFoundError."""
        results: list[R | FloeError] = []
        for name in names:
            raw = found.get(name.lower())
            if raw is None:
                results.append(
                    NotFoundError(
                        f"table {namespace}.{name} not found in metastore '{self.name}'",
                        provider=self.type_name,
                        operation=operation,
                    )
                )
                continue
            try:
                results.append(convert(raw))
            except FloeError as exc:
                if exc.retryable:
                    raise
                results.append(exc)
        return results

    def describe_scans(self, namespace: str, names: Sequence[str]) -> list[ScanDescription | FloeError]:
        """How to read each of ``names`` in one batched pass (for views over many tables at once).

        Partitioned tables are read through their location with Hive partitioning (a glob per
        partition level), so no partition is listed here; the reader prunes partition folders
        from its own filters. A table that cannot be described is its (non-retryable) error.
        """
        results: list[ScanDescription | FloeError] = []
        for result in self.get_tables_or_errors(namespace, names):
            if isinstance(result, FloeError):
                results.append(result)
                continue
            try:
                results.append(ScanDescription.from_table(result))
            except FloeError as exc:
                results.append(exc)
        return results

    def describe(self) -> dict[str, Any]:
        return {"metastore": self.name, "provider": self.type_name}

    # -- diagnostics (never a secret) --

    def endpoint(self) -> str:
        """Where the metastore is, for diagnostics (no credentials)."""
        return "-"

    def auth_strategy(self) -> str:
        return "none"

    def diagnostics(self) -> dict[str, str]:
        """Deterministic facts for debugging: provider, endpoint, auth strategy, redacted config."""
        facts = {
            "metastore": self.name,
            "provider": self.type_name,
            "endpoint": self.endpoint(),
            "auth": self.auth_strategy(),
            "capabilities": ",".join(sorted(c.value for c in self.capabilities)),
        }
        facts.update({f"config.{k}": v for k, v in redacted_config(self.config).items()})
        return facts

    def debug_report(self) -> str:
        lines = [f"floe metastore debug: {self.name}"]
        lines += [f"  {key} = {value}" for key, value in self.diagnostics().items()]
        return self.redact("\n".join(lines)) + "\n"

    def redact(self, text: str) -> str:
        """``text`` with every secret of this connector's config replaced by ``***``."""
        for secret in secret_values(self.config):
            text = text.replace(secret, REDACTED)
        return text
