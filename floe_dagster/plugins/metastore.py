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
import logging
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from enum import Enum
from typing import Any, ClassVar, TypeVar

from pydantic import SecretStr

from floe_dagster.core.errors import (
    FloeError,
    MetastoreError,
    NotFoundError,
    NotSupportedError,
    UnavailableError,
)
from floe_dagster.plugins.base import Plugin, PluginConfig
from floe_dagster.plugins.change_feed import ChangeFeed
from floe_dagster.plugins.data_versions import DataVersionPolicy
from floe_dagster.plugins.metastore_auth import metastore_credentials
from floe_dagster.plugins.table_model import (
    Partition,
    PartitionPredicate,
    ScanDescription,
    Table,
    TableFilter,
    TableStats,
)

__all__ = [
    "Capability",
    "MetastoreConnector",
    "MetastoreUnavailableError",
    "redacted_config",
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
    CHANGE_FEED = "change_feed"


class MetastoreUnavailableError(MetastoreError, UnavailableError):
    """The metastore could not be reached, or kept failing, through every attempt floe made.

    Connectors always pass ``attempts``: the attempts really made, the first one included.
    Retrying later can help.
    """


# --- filters -------------------------------------------------------------------------------------


# --- scan description ------------------------------------------------------------------------------


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
        # What Hive/Glue data versions follow (the manifest's data_version; plugins/data_versions.py).
        self.data_version_policy = DataVersionPolicy()

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

    def change_feed(self) -> ChangeFeed | None:
        """The connector's change feed (plugins/change_feed.py), or None: observed by full scans.

        Connectors that declare ``Capability.CHANGE_FEED`` return one when configured for it (an
        ``s3`` metastore needs its ``notification_queue_url``), None otherwise.
        """
        return None

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
