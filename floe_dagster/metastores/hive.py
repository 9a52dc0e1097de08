"""The tables of a Hive Metastore (Thrift, Hive 2.3 API) as a metastore connector.

* Calls: ``get_all_databases``, ``get_all_tables``, ``get_table_objects_by_name`` in batches, and
  for partitioned tables ``get_partitions`` bounded by ``max_parts`` (then paged with
  ``get_partition_names`` + ``get_partitions_by_names``). Only calls Hive 2.3 has are used.
  A scan of D databases of T_d unpartitioned tables each costs ``1 + D + sum(ceil(T_d / batch))``
  calls (``1 + D + ceil(T / batch)`` when every database holds a multiple of ``batch``), up to
  ``pool_size`` batches in flight; a partitioned table adds one ``get_partitions`` call, or
  ``2 + ceil(partitions / max_parts)`` when it has ``max_parts`` partitions or more.
* Transport: ``thrift://host:port`` URIs, several comma-separated for failover (each new
  connection tries the last one that answered first), a connect and a read timeout, a small
  pool of open connections, and retries with exponential backoff (tenacity) on transport
  errors only. After the retries the error is a retryable ``MetastoreUnavailableError``.
* Mapping: Parquet, ORC, CSV/text (delimiter from the serde parameters), JSON and Avro serdes;
  ``table_type=ICEBERG`` tables resolve to their metadata location. Any other serde, a view, a
  storage handler or a transactional table is never a guess: a ``Table`` with
  ``unreadable_reason`` (still an asset, versioned from its metadata) that no reader reads.
* Data version (``hive_data_version``), per field:

  - ``numFiles``, ``totalSize``, ``numRows`` of the table and of every partition: Hive and the
    metastore update them whenever files are written (the metastore recomputes the fast stats
    ``numFiles``/``totalSize`` from the location on create and alter);
  - ``transient_lastDdlTime``, only for a table (or partition) that has none of those statistics:
    it is then the one signal a load leaves, but the Hive CLI and Spark also reset it on every
    DDL (a comment included), so it is left out wherever statistics say more;
  - the location: a table moved to another location reads other files;
  - every partition's name: adding or dropping a partition changes what is read.

  Never the comment, description, owner, column comments or any other parameter: editing them
  keeps the version. ``data_version: storage`` (or ``auto`` for tables without statistics, and
  always for transactional tables) adds the fingerprint of the files at the registered
  locations (``metastores/storage_versions.py``, docs/data-versions.md). Iceberg tables use the
  current snapshot id (read from the metadata file, cached per metadata location) or, with
  ``iceberg_version: metadata_location``, the metadata location itself.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import json
import logging
import socket
import threading
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any, ClassVar, Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator

from floe_dagster.core.errors import (
    FloeError,
    InvalidFieldError,
    MetastoreError,
    NotFoundError,
    NotSupportedError,
)
from floe_dagster.core.retry import retry_policy
from floe_dagster.metastores.hive_feed import HiveNotificationFeed
from floe_dagster.metastores.storage_versions import (
    StorageLister,
    StorageRequest,
    take_requests,
    with_storage_versions,
)
from floe_dagster.plugins.base import PluginConfig
from floe_dagster.plugins.factory import connect_metastore
from floe_dagster.plugins.metastore import Capability, MetastoreConnector, MetastoreUnavailableError
from floe_dagster.plugins.table_model import (
    Column,
    Partition,
    PartitionPredicate,
    ScanDescription,
    StorageDescriptor,
    Table,
    TableFilter,
    TableStats,
    parse_partition_name,
    partition_matches,
    partition_predicates_apply,
)
from floe_dagster.plugins.thrift import normalize_thrift_uris
from floe_dagster.readers.formats import LOG_VERSIONED, detect_table_format, log_data_version

logger = logging.getLogger("floe_dagster.metastores.hive")

MAX_PARTS_LIMIT = 32767  # max_parts is an i16 in the Thrift API
NO_SNAPSHOT_VERSION = "no-snapshot"
UNVERSIONED = "unversioned"  # a table described for reading only (describe_scan)

# Statistics that change when a Hive table's (or partition's) data changes.
STATS_KEYS = ("numFiles", "totalSize", "numRows")
DDL_TIME = "transient_lastDdlTime"  # the fallback for tables without statistics
VERSION_KEYS = (DDL_TIME, *STATS_KEYS)

PARQUET_SERDES = {
    "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe",
    "parquet.hive.serde.ParquetHiveSerDe",
}
ORC_SERDES = {"org.apache.hadoop.hive.ql.io.orc.OrcSerde"}
AVRO_SERDES = {"org.apache.hadoop.hive.serde2.avro.AvroSerDe"}
JSON_SERDES = {
    "org.apache.hive.hcatalog.data.JsonSerDe",
    "org.apache.hadoop.hive.serde2.JsonSerDe",
    "org.openx.data.jsonserde.JsonSerDe",
}
OPENCSV_SERDE = "org.apache.hadoop.hive.serde2.OpenCSVSerde"
LAZY_SIMPLE_SERDE = "org.apache.hadoop.hive.serde2.lazy.LazySimpleSerDe"
TEXT_INPUT_FORMATS = {
    "org.apache.hadoop.mapred.TextInputFormat",
    "org.apache.hadoop.mapreduce.lib.input.TextInputFormat",
}
INPUT_FORMATS = {
    "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat": "parquet",
    "parquet.hive.DeprecatedParquetInputFormat": "parquet",
    "org.apache.hadoop.hive.ql.io.orc.OrcInputFormat": "orc",
    "org.apache.hadoop.hive.ql.io.avro.AvroContainerInputFormat": "avro",
}
TRANSACTIONAL_REASON = (
    "a transactional (ACID) Hive table: its rows are base_/delta_/delete_delta_ files that only an"
    " ACID reader merges (DuckDB would read deleted and aborted rows as plain files); read it with Hive"
    " or Spark, or copy it into a non-transactional table"
)
VIEW_TYPES = {"VIRTUAL_VIEW", "MATERIALIZED_VIEW"}
STORAGE_HANDLER = "storage_handler"  # HBase, Kafka, JDBC, Druid ... tables: not files floe reads
SUPPORTED = "Parquet, ORC, Avro, JSON (hcatalog/openx), CSV (OpenCSVSerde, LazySimpleSerDe on text), Iceberg"


__all__ = ["HiveMetastoreConfig", "HiveMetastoreConnector", "MetastoreUnavailableError", "storage_format"]


class HiveMetastoreConfig(PluginConfig):
    credential_kind: ClassVar[Literal["thrift", "aws", "google"] | None] = "thrift"
    uri: str | None = Field(
        None,
        description=(
            "thrift://host:9083; several comma-separated URIs fail over. Or the environment:"
            " FLOE_METASTORE_<NAME>_URI, HIVE_METASTORE_URIS."
        ),
    )
    auth: Literal["none", "kerberos", "plain"] = Field(
        "none",
        description="Thrift auth: none (optional ugi user), kerberos (SASL GSSAPI), plain (SASL PLAIN).",
    )
    user: str | None = Field(None, description="User name: the ugi with auth none, the login with plain.")
    password: SecretStr | None = Field(
        None, description="Password for auth plain (use ${env:NAME} or FLOE_METASTORE_<NAME>_PASSWORD)."
    )
    kerberos_service_name: str = Field("hive", description="Kerberos service name of the metastore.")
    connect_timeout_s: float = Field(5.0, gt=0, le=300, description="Seconds to open a connection.")
    read_timeout_s: float = Field(60.0, gt=0, le=3600, description="Seconds to wait for any one answer.")
    retries: int = Field(3, ge=0, le=10, description="Retries of a call after a transport error.")
    backoff_s: float = Field(0.2, ge=0, le=60, description="First retry delay; doubles each retry.")
    backoff_max_s: float = Field(5.0, ge=0, le=300, description="Longest delay between two retries.")
    pool_size: int = Field(4, ge=1, le=64, description="Open Thrift connections kept for reuse.")
    batch_size: int = Field(
        500, ge=1, le=5000, description="Most tables asked for in one get_table_objects_by_name call."
    )
    max_parts: int = Field(
        1000, ge=1, le=MAX_PARTS_LIMIT, description="Most partitions fetched in one call (bounded pages)."
    )
    iceberg_version: Literal["snapshot", "metadata_location"] = Field(
        "snapshot",
        description=(
            "Data version of Iceberg tables: the current snapshot id (reads the metadata file once per"
            " metadata location) or the metadata location (no file read)."
        ),
    )
    io_properties: dict[str, SecretStr] = Field(
        default_factory=dict,
        description="PyIceberg FileIO properties for reading Iceberg metadata (s3.endpoint, keys ...).",
    )
    debug: bool = Field(False, description="Print redacted diagnostics when the connector is built.")

    @field_validator("uri")
    @classmethod
    def _check_uris(cls, value: str | None) -> str | None:
        return None if value is None else normalize_thrift_uris(value)

    def check_required(self) -> list[str]:
        """Fields the chosen auth needs that are unset (the factory's chokepoint reports them)."""
        missing = []
        if self.auth == "plain":
            missing += [f for f in ("user", "password") if getattr(self, f) is None]
        return missing

    @property
    def uris(self) -> list[str]:
        return self.uri.split(",") if self.uri else []


def _is_transport_error(exc: BaseException) -> bool:
    from thrift.transport.TTransport import TTransportException

    return isinstance(exc, TTransportException | OSError | EOFError)


class _ApplicationError:
    """An error the metastore answered with (not a transport failure): not retried.

    Generated Thrift exceptions are immutable, so they cannot travel through context managers
    (which set ``__traceback__``); they are carried out of the retry loop in this wrapper.
    """

    def __init__(self, exception: Exception) -> None:
        self.exception = exception


def _invoke(client: Any, method: str, args: tuple[Any, ...]) -> Any:
    try:
        return getattr(client, method)(*args)
    except Exception as exc:
        if _is_transport_error(exc):
            raise
        return _ApplicationError(exc)


class _Connection:
    def __init__(self, transport: Any, client: Any, uri: str) -> None:
        self.transport, self.client, self.uri = transport, client, uri

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.transport.close()


class _Pool:
    """At most ``size`` open connections; a connection that failed is closed, never reused."""

    def __init__(self, opener: Any, size: int) -> None:
        self._opener = opener
        self._size = size
        self._idle: list[_Connection] = []
        self._lock = threading.Lock()
        self._slots = threading.BoundedSemaphore(size)
        self.opened = 0  # connections opened so far
        self.in_use = 0
        self.peak_in_use = 0  # most connections in use at once (never above size)

    @contextlib.contextmanager
    def connection(self) -> Iterator[_Connection]:
        with self._slots:
            with self._lock:
                conn = self._idle.pop() if self._idle else None
            if conn is None:
                conn = self._opener()
                with self._lock:
                    self.opened += 1
            with self._lock:
                self.in_use += 1
                self.peak_in_use = max(self.peak_in_use, self.in_use)
            try:
                yield conn
            except BaseException:
                conn.close()
                raise
            finally:
                with self._lock:
                    self.in_use -= 1
            with self._lock:
                self._idle.append(conn)

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()

    @property
    def open_connections(self) -> int:
        return len(self._idle)


class HiveMetastoreConnector(MetastoreConnector):
    type_name: ClassVar[str] = "hive"
    config_model = HiveMetastoreConfig
    config: HiveMetastoreConfig
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
    env_options: ClassVar[dict[str, tuple[str, ...]]] = {
        "uri": ("HIVE_METASTORE_URIS",),
        "user": ("HIVE_METASTORE_USER",),
        "password": ("HIVE_METASTORE_PASSWORD",),
    }
    required_options: ClassVar[tuple[str, ...]] = ("uri",)

    def __init__(self, name: str, config: PluginConfig) -> None:
        super().__init__(name, config)
        if not self.config.uri:
            raise InvalidFieldError(
                f"metastore '{name}' (provider hive), operation configure: missing required field 'uri'",
                field="uri",
                provider=self.type_name,
                operation="configure",
            )
        self._uris = self.config.uris
        self._preferred = 0
        self._pool = _Pool(self._open, self.config.pool_size)
        self._count_lock = threading.Lock()
        self._snapshot_ids: dict[str, str] = {}
        self._storage_requests: dict[str, StorageRequest] = {}  # tables whose version lists files
        self._storage_lister: StorageLister | None = None
        self._write_ids = True  # get_valid_write_ids answered (Hive 3+), until it does not

    @classmethod
    def from_options(
        cls, name: str, options: dict[str, Any], environ: dict[str, str] | None = None
    ) -> HiveMetastoreConnector:
        """Through the factory's chokepoint (environment variables, required fields, debug output)."""

        connector = connect_metastore(name, cls.type_name, options, environ=environ)
        assert isinstance(connector, cls)
        return connector

    # -- transport -------------------------------------------------------------------------------

    def _open(self) -> _Connection:
        from hive_metastore.ThriftHiveMetastore import Client
        from thrift.protocol import TBinaryProtocol
        from thrift.transport import TSocket, TTransport

        order = [*self._uris[self._preferred :], *self._uris[: self._preferred]]
        failures = []
        for uri in order:
            parts = urlsplit(uri)
            sock = TSocket.TSocket(parts.hostname, parts.port)
            sock.setTimeout(self.config.connect_timeout_s * 1000)
            transport = self.credentials.transport(sock, parts.hostname or "", self.type_name, self.name)
            try:
                transport.open()
            except (TTransport.TTransportException, OSError) as exc:
                failures.append(f"{uri}: {_transport_reason(exc)}")
                with contextlib.suppress(Exception):
                    transport.close()
                continue
            sock.setTimeout(self.config.read_timeout_s * 1000)
            self._preferred = self._uris.index(uri)
            protocol = TBinaryProtocol.TBinaryProtocolAccelerated(transport)
            client = Client(protocol)
            if self.config.auth == "none" and self.config.user:
                self._count("set_ugi")
                client.set_ugi(self.config.user, [])
            logger.debug("metastore '%s': connected to %s", self.name, uri)
            return _Connection(transport, client, uri)
        raise TTransport.TTransportException(
            TTransport.TTransportException.NOT_OPEN, "could not connect: " + "; ".join(failures)
        )

    def _count(self, method: str) -> None:
        with self._count_lock:
            self.call_counts[method] += 1

    def _call(self, operation: str, method: str, *args: Any, subject: str = "") -> Any:
        """One Thrift call through the pool, retried with exponential backoff on transport errors."""
        retrying = retry_policy(
            attempts=self.config.retries + 1,
            retry_on=_is_transport_error,
            backoff_s=self.config.backoff_s,
            backoff_max_s=self.config.backoff_max_s,
            jitter="none",
        )
        answer: Any = None
        attempts = 0
        try:
            for attempt in retrying:
                with attempt:
                    attempts += 1  # connecting is part of the attempt: a refused connect counts
                    with self._pool.connection() as conn:
                        self._count(method)
                        answer = _invoke(conn.client, method, args)
        except FloeError:
            raise
        except Exception as exc:
            raise self._map_error(exc, operation, subject, attempts) from None
        if isinstance(answer, _ApplicationError):
            raise self._map_error(answer.exception, operation, subject, attempts) from None
        return answer

    @property
    def pool(self) -> _Pool:
        return self._pool

    def _map_error(self, exc: Exception, operation: str, subject: str, attempts: int) -> FloeError:
        from hive_metastore import ttypes
        from thrift.Thrift import TApplicationException

        what = f" {subject}" if subject else ""
        tags: dict[str, Any] = {"provider": self.type_name, "operation": operation}
        if _is_transport_error(exc):
            return MetastoreUnavailableError(
                f"{self.type_name} metastore '{self.name}' unavailable at {self.config.uri} during"
                f" {operation}{what} after {attempts} attempt(s): {_transport_reason(exc)}",
                attempts=attempts,
                **tags,
            )
        if isinstance(
            exc, ttypes.NoSuchObjectException | ttypes.UnknownDBException | ttypes.UnknownTableException
        ):
            return NotFoundError(f"{subject or 'object'} not found in metastore '{self.name}'", **tags)
        if isinstance(exc, TApplicationException) and exc.type == TApplicationException.UNKNOWN_METHOD:
            return NotSupportedError(
                f"metastore '{self.name}' at {self.config.uri} does not support {operation}: {exc.message}",
                retryable=False,
                **tags,
            )
        message = getattr(exc, "message", None) or str(exc) or type(exc).__name__
        return MetastoreError(
            self.redact(f"metastore '{self.name}' failed {operation}{what}: {type(exc).__name__}: {message}"),
            retryable=False,
            **tags,
        )

    def close(self) -> None:
        self._pool.close()

    def __enter__(self) -> HiveMetastoreConnector:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the contract ----------------------------------------------------------------------------

    def list_namespaces(self) -> list[str]:
        return sorted(self._call("list_namespaces", "get_all_databases"))

    def list_tables(self, namespace: str) -> list[str]:
        return sorted(self._call("list_tables", "get_all_tables", namespace, subject=namespace))

    def get_table(self, namespace: str, table: str) -> Table:
        raw = self._call("get_table", "get_table", namespace, table, subject=f"table {namespace}.{table}")
        (result,) = self._with_storage([self._neutral(namespace, raw, "get_table")])
        if isinstance(result, FloeError):
            raise result
        return result

    def get_tables(self, namespace: str, names: Sequence[str]) -> list[Table]:
        results = self.get_tables_or_errors(namespace, names)
        for result in results:
            if isinstance(result, FloeError):
                raise result
        return [r for r in results if isinstance(r, Table)]

    def scan(self, table_filter: TableFilter, batch_size: int = 100) -> Iterator[Table]:
        """Every table passing the filter, in namespace and name order, batches fetched in parallel.

        Names are filtered before any per-table call; up to ``pool_size`` batches are in flight
        at once over the connection pool (``pool_size: 1`` fetches one batch at a time, lazily).
        Unreadable tables are logged and kept in ``scan_problems``; a retryable error (the
        metastore went away) ends the scan with that error.
        """
        self.scan_problems = []
        batches: list[tuple[str, list[str]]] = []
        for namespace in self.list_namespaces():
            if not table_filter.may_match_namespace(namespace):
                continue
            names = [t for t in self.list_tables(namespace) if table_filter.matches(namespace, t)]
            batches += [(namespace, names[i : i + batch_size]) for i in range(0, len(names), batch_size)]
        for results in self._fetch_in_order(batches):
            for result in results:
                if isinstance(result, Table):
                    yield result
                else:
                    logger.warning("metastore '%s': skipped a table: %s", self.name, result)
                    self.scan_problems.append(result)

    def _fetch_in_order(self, batches: list[tuple[str, list[str]]]) -> Iterator[list[Table | FloeError]]:
        if self.config.pool_size == 1 or len(batches) <= 1:
            for namespace, names in batches:
                yield self.get_tables_or_errors(namespace, names)
            return
        window = self.config.pool_size
        with ThreadPoolExecutor(max_workers=window, thread_name_prefix=f"floe-hms-{self.name}") as pool:
            pending: deque[Future[list[Table | FloeError]]] = deque()
            upcoming = iter(batches)
            try:
                for namespace, names in itertools.islice(upcoming, window):
                    pending.append(pool.submit(self.get_tables_or_errors, namespace, names))
                while pending:
                    results = pending.popleft().result()
                    for namespace, names in itertools.islice(upcoming, 1):
                        pending.append(pool.submit(self.get_tables_or_errors, namespace, names))
                    yield results
            finally:
                for future in pending:
                    future.cancel()

    def _tables_by_name(self, namespace: str, names: Sequence[str], operation: str) -> dict[str, Any]:
        """``get_table_objects_by_name`` per ``batch_size`` names."""
        found: dict[str, Any] = {}
        size = self.config.batch_size
        for start in range(0, len(names), size):
            chunk = list(names[start : start + size])
            raw = self._call(operation, "get_table_objects_by_name", namespace, chunk, subject=namespace)
            found.update((t.tableName.lower(), t) for t in raw or [])
        return found

    def get_tables_or_errors(self, namespace: str, names: Sequence[str]) -> list[Table | FloeError]:
        """``get_table_objects_by_name`` in batches of ``batch_size``; a missing table is a NotFoundError."""
        found = self._tables_by_name(namespace, names, "get_tables")
        return self._with_storage(
            self.results_by_name(
                namespace, names, found, "get_tables", lambda raw: self._neutral(namespace, raw, "get_tables")
            )
        )

    def _with_storage(self, results: list[Table | FloeError]) -> list[Table | FloeError]:
        """The tables whose data version follows their files (``data_version``), extended by
        their storage fingerprint: one batched listing for the whole batch."""
        requests = take_requests(results, self._storage_requests)
        if not requests:
            return results
        if self._storage_lister is None:
            self._storage_lister = StorageLister(self.credentials.s3_client)
        return with_storage_versions(results, requests, self._storage_lister)

    @property
    def storage_listing_calls(self) -> int:
        """Listing calls made for storage data versions (S3 pages, local folder scans)."""
        return self._storage_lister.calls if self._storage_lister is not None else 0

    def _transactional_state(self, namespace: str, table: str) -> dict[str, Any]:
        """What the metastore says of a transactional table's writes: its valid write ids (Hive 3+,
        ``get_valid_write_ids``) and its compactions (``show_compact``); what it cannot answer is left out."""
        from hive_metastore import ttypes

        state: dict[str, Any] = {}
        subject = f"table {namespace}.{table}"
        if self._write_ids:
            try:
                request = ttypes.GetValidWriteIdsRequest(
                    fullTableNames=[f"{namespace}.{table}"], validTxnList=""
                )
                answer = self._call("write_ids", "get_valid_write_ids", request, subject=subject)
                state["write_ids"] = [
                    [w.fullTableName, w.writeIdHighWaterMark, sorted(w.invalidWriteIds or [])]
                    for w in answer.tblValidWriteIds or []
                ]
            except (NotSupportedError, MetastoreError):
                self._write_ids = False  # Hive 2.3: no write ids; its files carry them (base_/delta_)
        try:
            answer = self._call("compactions", "show_compact", ttypes.ShowCompactRequest(), subject=subject)
            state["compactions"] = sorted(
                [c.partitionname or "", c.state or "", c.id or 0]
                for c in answer.compacts or []
                if c.dbname == namespace and (c.tablename or "").lower() == table.lower()
            )
        except (NotSupportedError, MetastoreError):
            pass
        return state

    def list_partitions(
        self, namespace: str, table: str, predicates: Sequence[PartitionPredicate] = ()
    ) -> list[Partition]:
        """The table's partitions in value order; with predicates, only the matching ones are fetched.

        Pruning needs the table's explicit partition keys; without them (or with predicates on
        other columns only) every partition is listed and the fallback is logged.
        """
        if predicates:
            described = self._unversioned_table(namespace, table)
            if partition_predicates_apply(described, predicates):
                return self._pruned_partitions(described, predicates)
        return [_neutral_partition(p) for p in self._all_partitions(namespace, table)]

    def change_feed(self) -> HiveNotificationFeed:
        """The metastore's notification log (metastores/hive_feed.py)."""
        return HiveNotificationFeed(self)

    def table_stats(self, namespace: str, table: str) -> TableStats:
        """From the table's parameters (``numRows``, ``totalSize``, ``numFiles``,
        ``transient_lastDdlTime``), summed over its partitions' parameters when it is partitioned
        (one ``get_table``, plus the partition pages)."""
        subject = f"table {namespace}.{table}"
        raw = self._call("table_stats", "get_table", namespace, table, subject=subject)
        return self._to_table(namespace, raw, "table_stats").stats

    def describe_scans(self, namespace: str, names: Sequence[str]) -> list[ScanDescription | FloeError]:
        """``get_table_objects_by_name`` per ``batch_size`` names; a partitioned table adds its
        partition listing (bounded pages): it is read from its partitions' registered locations.
        Iceberg tables are read through their metadata file (no snapshot read)."""
        found = self._tables_by_name(namespace, names, "describe_scans")
        return self.results_by_name(
            namespace, names, found, "describe_scans", lambda raw: self._registered_scan(namespace, raw)
        )

    def _registered_scan(self, namespace: str, raw: Any) -> ScanDescription:
        table = self._to_table(namespace, raw, "describe_scans", versioned=False).validate()
        if table.storage.format == "iceberg" or not table.partition_spec.is_partitioned:
            return ScanDescription.from_table(table)
        partitions = [_neutral_partition(p) for p in self._all_partitions(namespace, table.name)]
        return ScanDescription.from_table(table, partitions)

    def describe_scan(
        self, namespace: str, table: str, predicates: Sequence[PartitionPredicate] = ()
    ) -> ScanDescription:
        """One ``get_table``, then only the partitions that match ``predicates`` (all without them)."""
        described = self._unversioned_table(namespace, table)
        if described.storage.format == "iceberg" or not described.partition_spec.is_partitioned:
            return ScanDescription.from_table(described, None, predicates)
        if partition_predicates_apply(described, predicates):
            partitions = self._pruned_partitions(described, predicates)
        else:
            partitions = [_neutral_partition(p) for p in self._all_partitions(namespace, table)]
        return ScanDescription.from_table(described, partitions, predicates)

    def _unversioned_table(self, namespace: str, table: str) -> Table:
        """The table's mapping without its data version (no partition listing): for reading it."""
        raw = self._call("get_table", "get_table", namespace, table, subject=f"table {namespace}.{table}")
        return self._to_table(namespace, raw, "get_table", versioned=False)

    # -- partitions ------------------------------------------------------------------------------

    def _all_partitions(self, namespace: str, table: str) -> list[Any]:
        """Every Thrift partition: one call bounded by ``max_parts``, then pages by name if it was full."""
        subject = f"table {namespace}.{table}"
        max_parts = self.config.max_parts
        first = self._call("list_partitions", "get_partitions", namespace, table, max_parts, subject=subject)
        if len(first) < max_parts:
            return sorted(first, key=_by_values)
        names = self._call("list_partitions", "get_partition_names", namespace, table, -1, subject=subject)
        return sorted(self._partitions_by_names(namespace, table, list(names)), key=_by_values)

    def _pruned_partitions(self, table: Table, predicates: Sequence[PartitionPredicate]) -> list[Partition]:
        subject = f"table {table.qualified_name}"
        names = self._call(
            "list_partitions", "get_partition_names", table.namespace, table.name, -1, subject=subject
        )
        wanted = [n for n in names if partition_matches(table, parse_partition_name(n), predicates)]
        logger.debug(
            "metastore '%s': %s: %d of %d partitions match", self.name, subject, len(wanted), len(names)
        )
        found = self._partitions_by_names(table.namespace, table.name, wanted)
        return [_neutral_partition(p) for p in sorted(found, key=_by_values)]

    def _partitions_by_names(self, namespace: str, table: str, names: list[str]) -> list[Any]:
        found: list[Any] = []
        for start in range(0, len(names), self.config.max_parts):
            found += self._call(
                "list_partitions",
                "get_partitions_by_names",
                namespace,
                table,
                names[start : start + self.config.max_parts],
                subject=f"table {namespace}.{table}",
            )
        return found

    # -- mapping ---------------------------------------------------------------------------------

    def _neutral(self, namespace: str, raw: Any, operation: str) -> Table | FloeError:
        """The neutral table for a Thrift table, or the (non-retryable) error that prevents one.

        Retryable errors (the metastore went away while listing partitions) are raised.
        """
        try:
            return self._to_table(namespace, raw, operation)
        except FloeError as exc:
            if exc.retryable:
                raise
            return exc

    def _to_table(self, namespace: str, raw: Any, operation: str, versioned: bool = True) -> Table:
        qualified = f"{namespace}.{raw.tableName}"
        params = dict(raw.parameters or {})
        sd = raw.sd
        location = (sd.location if sd is not None else None) or ""
        if (raw.tableType or "").upper() in VIEW_TYPES:
            return self._view(namespace, raw, params)
        handler = params.get(STORAGE_HANDLER)
        if not location and handler and "iceberg" not in handler.lower():
            return self._view(namespace, raw, params, f"storage handler {handler} (no storage location)")
        if not location:
            raise InvalidFieldError(
                f"table {qualified} ({raw.tableType or 'table'}) has no storage location; it cannot be read",
                field="storage.location",
                provider=self.type_name,
                operation=operation,
            )
        columns = tuple(Column(c.name, c.type, c.comment) for c in (sd.cols or []))
        partition_keys = tuple(Column(c.name, c.type, c.comment) for c in (raw.partitionKeys or []))
        serde_info = sd.serdeInfo
        serde = serde_info.serializationLib if serde_info is not None else None
        serde_params = dict((serde_info.parameters if serde_info is not None else None) or {})
        ddl_time = _int(params.get("transient_lastDdlTime"))
        last_modified = datetime.fromtimestamp(ddl_time, tz=UTC) if ddl_time else None

        if params.get("table_type", "").upper() == "ICEBERG":
            metadata_location = params.get("metadata_location")
            if not metadata_location:
                raise InvalidFieldError(
                    f"Iceberg table {qualified} has no metadata_location parameter",
                    field="storage.options.metadata_location",
                    provider=self.type_name,
                    operation=operation,
                )
            return Table(
                namespace=namespace,
                name=raw.tableName,
                storage=StorageDescriptor(
                    location=location,
                    format="iceberg",
                    columns=columns,
                    serde=serde,
                    input_format=sd.inputFormat,
                    output_format=sd.outputFormat,
                    options={"metadata_location": metadata_location},
                    serde_parameters=serde_params,
                ),
                data_version=self._iceberg_version(qualified, metadata_location, operation)
                if versioned
                else UNVERSIONED,
                partition_keys=partition_keys,
                properties=params,
                stats=TableStats(last_modified=last_modified),
                table_type="ICEBERG",
                catalog=self.name,
            )

        unreadable: str | None = None
        try:
            fmt, options = storage_format(
                qualified, serde, sd.inputFormat, serde_params, params, provider=self.type_name
            )
        except NotSupportedError as exc:  # still an asset, versioned from its metadata (item 5)
            fmt, options, unreadable = "unknown", {}, _unreadable(exc.message, handler)
        partitions: list[tuple[str, Any]] = []
        if partition_keys and versioned:
            key_names = [k.name for k in partition_keys]
            partitions = sorted(
                (
                    (_hive_partition_name(key_names, p.values), p)
                    for p in self._all_partitions(namespace, raw.tableName)
                ),
                key=_by_name,
            )
        partition_count: int | None = 0
        if partition_keys:
            partition_count = len(partitions) if versioned else None
        listed = [p for _, p in partitions] if partition_keys and versioned else None
        stats = _stats(params, listed, partition_count, last_modified)
        transactional = params.get("transactional", "").lower() == "true"
        data_version = (
            log_data_version(
                fmt, options.get("path") or location, self.credentials.file_io_properties(), qualified
            )
            if versioned and fmt in LOG_VERSIONED  # Delta/Hudi: the table's own log version
            else hive_data_version(location, params, partitions)
            if versioned
            else UNVERSIONED
        )
        if transactional:
            unreadable = unreadable or TRANSACTIONAL_REASON
            if versioned:
                state = json.dumps(self._transactional_state(namespace, raw.tableName), sort_keys=True)
                data_version = "hive:" + hashlib.sha256(f"{data_version}|{state}".encode()).hexdigest()[:32]
        partition_params = [p.parameters or {} for _, p in partitions] if partition_keys else None
        policy = self.data_version_policy
        # Delta/Hudi: their log version already changes exactly when their data does
        follows_log = fmt in LOG_VERSIONED
        if (
            versioned
            and not follows_log
            and (transactional or policy.lists_storage(namespace, params, partition_params))
        ):
            self._storage_requests[qualified] = StorageRequest(
                qualified,
                location,
                tuple((p.sd.location if p.sd else None) or f"{location}/{n}" for n, p in partitions)
                if partition_keys
                else None,
                recursive=transactional,
                required=transactional or policy.mode_for(namespace) == "storage",
            )
        return Table(
            namespace=namespace,
            name=raw.tableName,
            storage=StorageDescriptor(
                location=location,
                format=fmt,
                columns=columns,
                serde=serde,
                input_format=sd.inputFormat,
                output_format=sd.outputFormat,
                options=options,
                serde_parameters=serde_params,
            ),
            data_version=data_version,
            partition_keys=partition_keys,
            properties=params,
            stats=stats,
            table_type=raw.tableType or "MANAGED_TABLE",
            catalog=self.name,
            unreadable_reason=unreadable,
        )

    def _view(self, namespace: str, raw: Any, params: dict[str, str], reason: str = "") -> Table:
        """A view (or a table with no files floe can reach): an asset versioned from its definition."""
        sd = raw.sd
        columns = tuple(Column(c.name, c.type, c.comment) for c in ((sd.cols if sd else None) or []))
        text = raw.viewExpandedText or raw.viewOriginalText or ""
        kind = (raw.tableType or "").upper()
        return Table(
            namespace=namespace,
            name=raw.tableName,
            storage=StorageDescriptor(
                location=(sd.location if sd else None) or "", format="view", columns=columns
            ),
            data_version=metadata_data_version("hive:", text, params),
            partition_keys=tuple(Column(c.name, c.type, c.comment) for c in (raw.partitionKeys or [])),
            properties=params,
            table_type=raw.tableType or "",
            catalog=self.name,
            unreadable_reason=reason
            or f"a Hive {'materialized view' if 'MATERIALIZED' in kind else 'view'}: its rows are the"
            " result of SQL the metastore keeps, not files floe can read; read the tables it selects"
            " from, or materialise it as a table",
        )

    def _iceberg_version(self, qualified: str, metadata_location: str, operation: str) -> str:
        if self.config.iceberg_version == "metadata_location":
            return "metadata:" + hashlib.sha256(metadata_location.encode()).hexdigest()[:32]
        cached = self._snapshot_ids.get(metadata_location)
        if cached is not None:
            return cached
        try:
            from pyiceberg.io import load_file_io
            from pyiceberg.serializers import FromInputFile

            io = load_file_io(self.credentials.file_io_properties(), metadata_location)
            metadata = FromInputFile.table_metadata(io.new_input(metadata_location))
        except Exception as exc:
            raise MetastoreError(
                self.redact(
                    f"Iceberg table {qualified}: cannot read its metadata file to find the current"
                    f" snapshot ({type(exc).__name__}: {exc}); give io_properties to reach it, or set"
                    " iceberg_version: metadata_location"
                ),
                provider=self.type_name,
                operation=operation,
                retryable=False,
            ) from None
        snapshot_id = metadata.current_snapshot_id
        version = str(snapshot_id) if snapshot_id is not None else NO_SNAPSHOT_VERSION
        self._snapshot_ids[metadata_location] = version
        return version

    # -- diagnostics -----------------------------------------------------------------------------

    def endpoint(self) -> str:
        return self.config.uri or "-"

    def auth_strategy(self) -> str:
        return str(self.credentials.strategy())

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "uri": self.config.uri}


# --- mapping helpers ------------------------------------------------------------------------------


def storage_format(
    qualified: str,
    serde: str | None,
    input_format: str | None,
    serde_params: dict[str, str],
    table_params: dict[str, str],
    provider: str = "hive",
    operation: str = "map_storage",
) -> tuple[str, dict[str, str]]:
    """(format, reader options) for a Hive serde + input format; NotSupportedError otherwise.

    Delta and Hudi tables, whatever serde the engine that registered them put, are recognised
    first (``readers/formats.py`` ``detect_table_format``)."""
    if detected := detect_table_format(table_params, serde, input_format, serde_params):
        return detected
    serde = serde or ""
    input_format = input_format or ""
    if serde in PARQUET_SERDES or INPUT_FORMATS.get(input_format) == "parquet":
        return "parquet", {}
    if serde in ORC_SERDES or INPUT_FORMATS.get(input_format) == "orc":
        return "orc", {}
    if serde in AVRO_SERDES or INPUT_FORMATS.get(input_format) == "avro":
        return "avro", {}
    text = input_format in TEXT_INPUT_FORMATS
    header = str(_int(table_params.get("skip.header.line.count")) or 0)
    if serde in JSON_SERDES and text:
        return "json", {}
    if serde == OPENCSV_SERDE and text:
        return "csv", {
            "delimiter": serde_params.get("separatorChar", ","),
            "quote": serde_params.get("quoteChar", '"'),
            "escape": serde_params.get("escapeChar", "\\"),
            "header": header,
            "all_varchar": "true",  # OpenCSVSerde reads every column as a string
        }
    if serde == LAZY_SIMPLE_SERDE and text:
        delimiter = _hive_byte(
            serde_params.get("field.delim") or serde_params.get("serialization.format"), "\x01"
        )
        options = {
            "delimiter": delimiter,
            "quote": "",
            "escape": _hive_byte(serde_params.get("escape.delim"), ""),
            "header": header,
            "null": serde_params.get("serialization.null.format", "\\N"),
        }
        return "csv", options
    raise NotSupportedError(
        f"table {qualified}: serde {serde or '(none)'} with input format {input_format or '(none)'}"
        f" is not supported; supported: {SUPPORTED}",
        provider=provider,
        operation=operation,
        retryable=False,
    )


def _unreadable(message: str, handler: str | None) -> str:
    return message + (f" (storage handler {handler})" if handler else "")


def metadata_data_version(prefix: str, definition: str, params: dict[str, str]) -> str:
    """The data version of a table floe cannot read (a view): its definition and what the
    metastore reports of its changes (statistics, else the last DDL time)."""
    payload = {"definition": definition, "table": version_parameters(params)}
    digest = hashlib.sha256(json.dumps(payload, sort_keys=True, separators=(",", ":")).encode())
    return prefix + digest.hexdigest()[:32]


def version_parameters(params: dict[str, str] | None) -> dict[str, str | None]:
    """The parameters of a table or partition that change with its data (see the module docstring).

    Its statistics when it has any, else its last DDL time (the only trace a load leaves then).
    """
    params = params or {}
    stats: dict[str, str | None] = {k: params[k] for k in STATS_KEYS if params.get(k) is not None}
    return stats or {DDL_TIME: params.get(DDL_TIME)}


def hive_data_version(location: str, params: dict[str, str], partitions: list[tuple[str, Any]]) -> str:
    """A digest of the metadata that changes with the data (and nothing else)."""
    payload = {
        "location": location,
        "table": version_parameters(params),
        "partitions": [[name, version_parameters(p.parameters)] for name, p in partitions],
    }
    digest = hashlib.sha256(json.dumps(payload, sort_keys=True, separators=(",", ":")).encode())
    return "hive:" + digest.hexdigest()[:32]


def _stats(
    params: dict[str, str],
    partitions: list[Any] | None,
    partition_count: int | None,
    last_modified: datetime | None,
) -> TableStats:
    """Totals from the partitions' parameters when they were listed, else from the table's."""

    def total(key: str) -> int | None:
        if partitions is None:
            value = _int(params.get(key))
            return value if value is not None and value >= 0 else None
        values = [_int((p.parameters or {}).get(key)) for p in partitions]
        if not values or any(v is None or v < 0 for v in values):
            return None
        return sum(v for v in values if v is not None)

    return TableStats(
        row_count=total("numRows"),
        size_bytes=total("totalSize"),
        file_count=total("numFiles"),
        last_modified=last_modified,
        partition_count=partition_count,
    )


def _neutral_partition(raw: Any) -> Partition:
    return Partition(
        values=tuple(raw.values or ()),
        location=raw.sd.location if raw.sd is not None else None,
        parameters=dict(raw.parameters or {}),
    )


def _hive_partition_name(keys: Sequence[str], values: Sequence[str]) -> str:
    return Partition(tuple(values), None).name(keys)


def _hive_byte(value: str | None, default: str) -> str:
    """Hive's ``LazySerDeParameters.getByte``: a number is a byte ('1' = Ctrl-A), else its first char."""
    if not value:
        return default
    try:
        code = int(value)
    except ValueError:
        return value[0]
    return chr(code % 256) if -128 <= code <= 127 else value[0]


def _by_values(partition: Any) -> tuple[str, ...]:
    return tuple(partition.values or ())


def _by_name(item: tuple[str, Any]) -> str:
    return item[0]


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def _transport_reason(exc: BaseException) -> str:
    inner = getattr(exc, "inner", None)
    if isinstance(inner, socket.timeout | TimeoutError):
        return "timed out"
    if isinstance(inner, ConnectionRefusedError):
        return "connection refused"
    message = getattr(exc, "message", None) or str(exc)
    return message or type(exc).__name__
