"""The tables of the AWS Glue Data Catalog as a metastore connector (``type: glue``).

* Calls: ``GetDatabases`` and ``GetTables`` paged (``page_size`` tables a page); a scan never
  asks for one table at a time: it costs ``pages(GetDatabases) + sum(ceil(tables_in_db /
  page_size))`` calls, at most ``1 + databases + ceil(tables / page_size)``. A batched get is a
  ``GetTables`` with an anchored name ``Expression`` per chunk of names. Partitions come from
  ``GetPartitions`` (``ExcludeColumnSchema``): one page for small tables; a table with more than
  one page is listed again in ``partition_segments`` parallel segments. ``catalog_id`` is sent
  with every call (cross-account catalogs).
* Auth: the credential fields pass through the metastore chokepoint (``plugins/factory.py``
  and ``plugins/metastore_auth.py``), which hands the connector ``AwsCredentials`` resolved once
  by the AWS resolver the Glue catalog plugin uses: static keys (+ session token), a named
  profile, role assumption (external id, session name) or boto3's default chain; region and
  endpoint overrides (moto, VPC endpoints). Nothing here maps a secret.
* Retries: botocore's own retries are off; throttling (``ThrottlingException``,
  ``TooManyRequestsException`` ...), 5xx and connection errors are retried by tenacity with
  exponential backoff and full jitter, at most ``max_attempts`` attempts, each counted in
  ``call_counts``. What still fails is a retryable ``GlueUnavailableError`` naming provider,
  operation and ``attempts`` (an attribute and a tag, the attempts really made). Access
  denied (naming the IAM permission) and entity-not-found (naming the database or table) are
  never retried.
* Mapping: storage descriptors map like the Hive Metastore's (the same serdes, the same
  ``ScanDescription``); ``s3a://`` and ``s3n://`` locations are normalised to ``s3://``, any
  other scheme is an ``InvalidFieldError`` on ``storage.location``. Crawled tables whose serde
  is unknown fall back on their ``classification`` parameter. Iceberg tables
  (``table_type=ICEBERG``) resolve to their ``metadata_location``.
* Data version: Iceberg tables: a digest of the metadata location (a new one per commit).
  Other tables: a digest of the location (another location reads other files), the
  statistics parameters (Hive's and the crawler's; the last DDL time only when there are none,
  as for the Hive Metastore) and, for partitioned tables, every partition's values, location,
  creation time (a partition dropped and written again is new data) and statistics.
  ``UpdateTime`` and ``VersionId`` are left out on purpose: Glue changes both on every
  ``UpdateTable``, a new description, owner or comment included, which is not a data change.
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import re
import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any, ClassVar
from urllib.parse import urlsplit

from pydantic import Field, model_validator

from floe_dagster.core.errors import (
    AuthenticationError,
    ConfigurationError,
    FloeError,
    InvalidFieldError,
    MetastoreError,
    NotFoundError,
    NotSupportedError,
)
from floe_dagster.core.retry import retry_policy
from floe_dagster.metastores.hive import (
    DDL_TIME,
    VERSION_KEYS,
    VIEW_TYPES,
    metadata_data_version,
    storage_format,
)
from floe_dagster.metastores.storage_versions import (
    StorageLister,
    StorageRequest,
    take_requests,
    with_storage_versions,
)
from floe_dagster.plugins.aws import (
    PERMISSION_PATTERN,
    THROTTLING_CODES,
    UNAVAILABLE_CODES,
    AwsConfig,
    AwsCredentialsConfig,
    aws_error_class,
)
from floe_dagster.plugins.base import PluginConfig
from floe_dagster.plugins.locations import store_of
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
    prune_partitions,
)
from floe_dagster.readers.formats import LOG_VERSIONED, log_data_version

__all__ = [
    "GlueMetastoreConfig",
    "GlueMetastoreConnector",
    "GlueUnavailableError",
    "normalize_location",
]

logger = logging.getLogger("floe_dagster.metastores.glue")

PROVIDER = "glue"
S3_SCHEMES = ("s3", "s3a", "s3n")
# Statistics parameters whose change means the data changed: Hive's and the Glue crawler's.
STAT_KEYS = (*VERSION_KEYS, "recordCount", "sizeKey", "objectCount")
# The IAM permission each Glue API call needs (named when AWS denies it).
PERMISSIONS = {
    "GetDatabases": "glue:GetDatabases",
    "GetTables": "glue:GetTables",
    "GetTable": "glue:GetTable",
    "GetPartitions": "glue:GetPartitions",
}
_CLASSIFICATIONS = {"parquet", "orc", "avro", "json", "csv"}
_EXPRESSION_LIMIT = 2048  # characters of a GetTables Expression


class GlueUnavailableError(MetastoreUnavailableError):
    """Glue throttled or failed (5xx, connection) through every attempt. Retrying later can help."""


def _catalog_field(name: str) -> Any:
    """A copy of the Glue catalog config's field ``name`` (its checks run through ``aws_config``)."""

    return copy.copy(AwsConfig.model_fields[name])


class GlueMetastoreConfig(AwsCredentialsConfig):
    """The Glue metastore: the shared AWS region and credentials (plugins/aws.py), the Glue
    catalog plugin's endpoint fields, and the connector's paging and retry settings."""

    region: str | None = Field(
        None, description="AWS region of the catalog, e.g. eu-west-1 (or AWS_REGION / AWS_DEFAULT_REGION)."
    )
    # The Glue catalog plugin's own fields (same names, checks and descriptions): one definition.
    catalog_id: str | None = _catalog_field("catalog_id")
    endpoint: str | None = _catalog_field("endpoint")
    s3_endpoint: str | None = _catalog_field("s3_endpoint")
    backoff_s: float = Field(0.2, ge=0, le=60, description="Base of the exponential backoff (seconds).")
    backoff_max_s: float = Field(10.0, ge=0, le=300, description="Longest wait between two attempts.")
    connect_timeout_s: float = Field(5.0, gt=0, le=300, description="Seconds to open a connection.")
    read_timeout_s: float = Field(60.0, gt=0, le=3600, description="Seconds to wait for an answer.")
    page_size: int = Field(100, ge=1, le=100, description="Tables per GetTables page (AWS allows 100).")
    partition_page_size: int = Field(1000, ge=1, le=1000, description="Partitions per GetPartitions page.")
    partition_segments: int = Field(
        4, ge=1, le=10, description="Parallel GetPartitions segments for tables of more than one page."
    )
    partition_versions: bool = Field(
        True,
        description="Include partitions in the data version of partitioned tables (GetPartitions per table).",
    )
    debug: bool = Field(False, description="Print redacted diagnostics when the connector is built.")

    @model_validator(mode="after")
    def _check_client_config(self) -> GlueMetastoreConfig:
        if self.region is not None:
            self.aws_config()  # the catalog plugin's checks of its endpoint and catalog_id fields
        return self

    def aws_config(self) -> AwsConfig:
        """These fields as the AWS client config (plugins/aws.py), resolved by plugins/aws_credentials.py."""

        return self.client_config(
            catalog_id=self.catalog_id, endpoint=self.endpoint, s3_endpoint=self.s3_endpoint
        )


def normalize_location(location: str, qualified: str, operation: str) -> str:
    """``s3a://`` / ``s3n://`` -> ``s3://``; the other object stores' locations (``oss://``,
    ``cosn://``, ``abfss://``, ``wasbs://``, ``gs://``: ``plugins/locations.py``) as they are, for
    their readers; HDFS/Ozone is a ``NotSupportedError`` naming the scheme and the table; no
    scheme at all is an explicit field error."""
    scheme = urlsplit(location).scheme.lower()
    if scheme and scheme not in S3_SCHEMES:
        store_of(location, qualified, PROVIDER, operation)  # NotSupportedError: hdfs, o3fs, ofs, ...
        if scheme not in ("file", "http", "https") and urlsplit(location).netloc:
            return location
    if scheme not in S3_SCHEMES or not urlsplit(location).netloc:
        raise InvalidFieldError(
            f"table {qualified}: storage location {location!r} has scheme '{scheme or '(none)'}';"
            f" Glue tables are read from S3, supported schemes: {', '.join(s + '://' for s in S3_SCHEMES)}",
            field="storage.location",
            provider=PROVIDER,
            operation=operation,
        )
    return "s3://" + location.split("://", 1)[1]


def _is_transient(exc: BaseException) -> bool:
    from botocore import exceptions as bce

    if isinstance(exc, bce.ClientError):
        code = exc.response.get("Error", {}).get("Code", "")
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
        return code in THROTTLING_CODES or code in UNAVAILABLE_CODES or status >= 500
    return isinstance(exc, bce.HTTPClientError | bce.ConnectionError)


def _digest(prefix: str, payload: Any) -> str:
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return prefix + hashlib.sha256(text.encode()).hexdigest()[:32]


def _iso(value: Any) -> str | None:
    return value.isoformat() if isinstance(value, datetime) else (str(value) if value else None)


class GlueMetastoreConnector(MetastoreConnector):
    type_name: ClassVar[str] = PROVIDER
    config_model = GlueMetastoreConfig
    config: GlueMetastoreConfig
    capabilities = frozenset(
        {
            Capability.LIST_NAMESPACES,
            Capability.LIST_TABLES,
            Capability.GET_TABLE,
            Capability.GET_TABLES,
            Capability.LIST_PARTITIONS,
            Capability.TABLE_STATS,
        }
    )
    env_options: ClassVar[dict[str, tuple[str, ...]]] = {"region": ("AWS_REGION", "AWS_DEFAULT_REGION")}
    required_options: ClassVar[tuple[str, ...]] = ("region",)

    def __init__(self, name: str, config: PluginConfig) -> None:
        super().__init__(name, config)
        if not self.config.region:
            raise InvalidFieldError(
                f"metastore '{name}' (provider glue), operation configure: missing required field 'region'",
                field="region",
                provider=PROVIDER,
                operation="configure",
            )
        self._client: Any = None
        self._lock = threading.Lock()
        self._storage_requests: dict[str, StorageRequest] = {}  # tables whose version lists files
        self._storage_lister: StorageLister | None = None

    # -- client and calls -----------------------------------------------------------------------

    @property
    def client(self) -> Any:
        """The boto3 Glue client (built once, credentials resolved once)."""
        with self._lock:
            if self._client is None:
                self._client = self._new_client()
            return self._client

    def _new_client(self) -> Any:
        from botocore.config import Config

        try:
            return self.credentials.client(
                "glue",
                region=self.config.region,
                endpoint=self.config.endpoint,
                config=Config(
                    retries={"total_max_attempts": 1, "mode": "standard"},  # tenacity retries, counted
                    connect_timeout=self.config.connect_timeout_s,
                    read_timeout=self.config.read_timeout_s,
                ),
            )
        except Exception as exc:  # STS AssumeRole, profile resolution
            raise self._map_error(exc, "connect", "AssumeRole", "credentials", 1) from None

    def storage_properties(self) -> dict[str, str]:
        """The ``s3.*`` properties (region, endpoint, resolved keys) for reading the tables' files.

        Credentials are the ones the client was built with (resolved once, role assumed once).
        """
        self.client  # noqa: B018 -- resolves the credentials (errors mapped)
        return dict(self.credentials.storage_properties())

    def duckdb_secret_sql(self, name: str = "floe_glue") -> str:
        """DuckDB's httpfs secret for the tables' files, built by the credential chokepoint.

        The statement holds the secret: run it, never log it.
        """
        self.client  # noqa: B018 -- resolves the credentials (errors mapped)
        return str(self.credentials.duckdb_secret_sql(name, self.config.region or ""))

    def _count(self, api: str) -> None:
        with self._lock:
            self.call_counts[api] += 1

    def _call(self, operation: str, api: str, subject: str = "", **params: Any) -> dict[str, Any]:
        """One Glue API call, retried on throttling/5xx/connection errors with jittered backoff."""
        if self.config.catalog_id:
            params["CatalogId"] = self.config.catalog_id
        client = self.client
        method = getattr(client, re.sub(r"(?<!^)(?=[A-Z])", "_", api).lower())
        attempts = 0

        def once() -> dict[str, Any]:
            nonlocal attempts
            attempts += 1
            self._count(api)
            answer: dict[str, Any] = method(**params)
            return answer

        retrying = retry_policy(
            attempts=self.config.max_attempts,
            retry_on=_is_transient,
            backoff_s=self.config.backoff_s,
            backoff_max_s=self.config.backoff_max_s,
        )
        try:
            return retrying(once)
        except FloeError:
            raise
        except Exception as exc:
            raise self._map_error(exc, operation, api, subject, attempts) from None

    def _map_error(self, exc: Exception, operation: str, api: str, subject: str, attempts: int) -> FloeError:
        tags: dict[str, Any] = {"provider": PROVIDER, "operation": operation}
        what = f" {subject}" if subject else ""
        response = getattr(exc, "response", None)
        error = response.get("Error", {}) if isinstance(response, dict) else {}
        code = str(error.get("Code", "")) or type(exc).__name__
        text = str(error.get("Message", "")) or str(exc)
        if _is_transient(exc):
            return GlueUnavailableError(
                f"glue metastore '{self.name}' at {self.endpoint()}: {api} during {operation}{what} failed"
                f" after {attempts} attempt(s) ({code}); throttled or unavailable, retry later or raise"
                f" max_attempts (now {self.config.max_attempts})",
                attempts=attempts,
                **tags,
            )
        target = aws_error_class(exc)
        if target is AuthenticationError or code in ("AccessDeniedException", "AccessDenied"):
            match = PERMISSION_PATTERN.search(text)
            permission = match.group(1) if match else PERMISSIONS.get(api, f"glue:{api}")
            return AuthenticationError(
                f"glue metastore '{self.name}': access denied ({code}) on {api} during {operation}{what};"
                f" the credentials (mode {self.auth_strategy()}) need the IAM permission {permission}",
                retryable=False,
                **tags,
            )
        if code == "EntityNotFoundException" or target is NotFoundError:
            return NotFoundError(
                f"{subject or 'entity'} not found in glue metastore '{self.name}'"
                f"{' (catalog ' + self.config.catalog_id + ')' if self.config.catalog_id else ''}",
                retryable=False,
                **tags,
            )
        if target is ConfigurationError:
            return ConfigurationError(
                f"glue metastore '{self.name}': no usable AWS credentials or region ({type(exc).__name__});"
                " set access_key_id + secret_access_key, profile or role_arn, or configure the default chain",
                retryable=False,
                **tags,
            )
        return MetastoreError(
            self.redact(
                f"glue metastore '{self.name}': {api} during {operation}{what} failed: {code}: {text}"
            ),
            retryable=False,
            **tags,
        )

    def _pages(self, operation: str, api: str, key: str, subject: str = "", **params: Any) -> Iterator[Any]:
        token: str | None = None
        while True:
            page = self._call(operation, api, subject, **params, **({"NextToken": token} if token else {}))
            yield from page.get(key, [])
            token = page.get("NextToken")
            if not token:
                return

    # -- the contract ---------------------------------------------------------------------------

    def list_namespaces(self) -> list[str]:
        return sorted(d["Name"] for d in self._pages("list_namespaces", "GetDatabases", "DatabaseList"))

    def _raw_tables(self, namespace: str, operation: str, expression: str | None = None) -> list[Any]:
        params: dict[str, Any] = {"DatabaseName": namespace, "MaxResults": self.config.page_size}
        if expression is not None:
            params["Expression"] = expression
        return list(self._pages(operation, "GetTables", "TableList", f"database {namespace}", **params))

    def list_tables(self, namespace: str) -> list[str]:
        return sorted(t["Name"] for t in self._raw_tables(namespace, "list_tables"))

    def get_table(self, namespace: str, table: str) -> Table:
        raw = self._call(
            "get_table", "GetTable", f"table {namespace}.{table}", DatabaseName=namespace, Name=table
        )["Table"]
        (result,) = self._with_storage([self._to_table(namespace, raw, "get_table")])
        if isinstance(result, FloeError):
            raise result
        return result

    def get_tables(self, namespace: str, names: Sequence[str]) -> list[Table]:
        results = self.get_tables_or_errors(namespace, names)
        for result in results:
            if isinstance(result, FloeError):
                raise result
        return [r for r in results if isinstance(r, Table)]

    def _tables_by_name(self, namespace: str, names: Sequence[str], operation: str) -> dict[str, Any]:
        """One ``GetTables`` with an anchored name expression per chunk of names."""
        found: dict[str, Any] = {}
        for chunk in _expression_chunks(names):
            expression = "^(" + "|".join(re.escape(n.lower()) for n in chunk) + ")$"
            for raw in self._raw_tables(namespace, operation, expression):
                found[raw["Name"].lower()] = raw
        return found

    def get_tables_or_errors(self, namespace: str, names: Sequence[str]) -> list[Table | FloeError]:
        """``GetTables`` with an anchored name expression per chunk; a missing table is a NotFoundError."""
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
            self._storage_lister = StorageLister(
                lambda: self.credentials.client(
                    "s3", region=self.config.region, endpoint=self.config.s3_endpoint, config=None
                )
            )
        return with_storage_versions(results, requests, self._storage_lister)

    @property
    def storage_listing_calls(self) -> int:
        """Listing calls (S3 ``ListObjectsV2`` pages) made for storage data versions."""
        return self._storage_lister.calls if self._storage_lister is not None else 0

    def scan(self, table_filter: TableFilter, batch_size: int = 100) -> Iterator[Table]:
        """Every table passing the filter: per database, its ``GetTables`` pages, nothing per table.

        ``batch_size`` is ignored (the page size is ``page_size``); partitioned tables add their
        ``GetPartitions`` pages when ``partition_versions`` is on.
        """
        self.scan_problems = []
        for namespace in self.list_namespaces():
            if not table_filter.may_match_namespace(namespace):
                continue
            raws = [
                raw
                for raw in self._raw_tables(namespace, "list_tables")
                if table_filter.matches(namespace, raw["Name"])
            ]
            converted = [
                self._neutral(namespace, raw, "scan") for raw in sorted(raws, key=lambda r: str(r["Name"]))
            ]
            for result in self._with_storage(converted):
                if isinstance(result, Table):
                    yield result
                else:
                    logger.warning("metastore '%s': skipped a table: %s", self.name, result)
                    self.scan_problems.append(result)

    def list_partitions(
        self, namespace: str, table: str, predicates: Sequence[PartitionPredicate] = ()
    ) -> list[Partition]:
        """The table's partitions in value order; predicates on partition columns prune them."""
        partitions = [
            _neutral_partition(p) for p in self._raw_partitions(namespace, table, "list_partitions")
        ]
        partitions.sort(key=lambda p: p.values)
        if not predicates:
            return partitions
        described = self._to_table(namespace, self._raw_table(namespace, table), "list_partitions", False)
        return prune_partitions(described, partitions, predicates)

    def table_stats(self, namespace: str, table: str) -> TableStats:
        """From the table's parameters (Hive's ``numRows``/``totalSize``/``numFiles`` or the
        crawler's ``recordCount``/``sizeKey``/``objectCount``) and ``UpdateTime`` (else
        ``CreateTime``); partitioned tables sum their partitions' parameters (``GetPartitions``)."""
        raw = self._call(
            "table_stats", "GetTable", f"table {namespace}.{table}", DatabaseName=namespace, Name=table
        )["Table"]
        return self._to_table(namespace, raw, "table_stats").stats

    def describe_scans(self, namespace: str, names: Sequence[str]) -> list[ScanDescription | FloeError]:
        """One ``GetTables`` (anchored name expression) per chunk of names; a partitioned table adds
        its ``GetPartitions`` pages: it is read from its partitions' registered locations."""
        found = self._tables_by_name(namespace, names, "describe_scans")
        return self.results_by_name(
            namespace, names, found, "describe_scans", lambda raw: self._registered_scan(namespace, raw)
        )

    def _registered_scan(self, namespace: str, raw: Any) -> ScanDescription:
        table = self._to_table(namespace, raw, "describe_scans", False).validate()
        if table.storage.format == "iceberg" or not table.partition_spec.is_partitioned:
            return ScanDescription.from_table(table)
        raws = self._raw_partitions(namespace, table.name, "describe_scans")
        return ScanDescription.from_table(
            table, sorted((_neutral_partition(p) for p in raws), key=lambda p: p.values)
        )

    def describe_scan(
        self, namespace: str, table: str, predicates: Sequence[PartitionPredicate] = ()
    ) -> ScanDescription:
        """One ``GetTable``, then (partitioned tables) the partitions once, pruned by ``predicates``."""
        described = self._to_table(namespace, self._raw_table(namespace, table), "describe_scan", False)
        if described.storage.format == "iceberg" or not described.partition_spec.is_partitioned:
            return ScanDescription.from_table(described, None, predicates)
        raws = self._raw_partitions(namespace, table, "list_partitions")
        partitions = sorted((_neutral_partition(p) for p in raws), key=lambda p: p.values)
        return ScanDescription.from_table(described, partitions, predicates)

    def _raw_table(self, namespace: str, table: str) -> Any:
        subject = f"table {namespace}.{table}"
        return self._call("get_table", "GetTable", subject, DatabaseName=namespace, Name=table)["Table"]

    def _raw_partitions(self, namespace: str, table: str, operation: str) -> list[Any]:
        """One page for small tables; more than a page: again in ``partition_segments`` segments."""
        subject = f"table {namespace}.{table}"
        params: dict[str, Any] = {
            "DatabaseName": namespace,
            "TableName": table,
            "MaxResults": self.config.partition_page_size,
            "ExcludeColumnSchema": True,
        }
        first = self._call(operation, "GetPartitions", subject, **params)
        if not first.get("NextToken"):
            return list(first.get("Partitions", []))
        total = self.config.partition_segments
        if total == 1:
            rest = self._pages(
                operation, "GetPartitions", "Partitions", subject, **params, NextToken=first["NextToken"]
            )
            return [*first.get("Partitions", []), *rest]

        def segment(number: int) -> list[Any]:
            seg = {"SegmentNumber": number, "TotalSegments": total}
            return list(self._pages(operation, "GetPartitions", "Partitions", subject, **params, Segment=seg))

        with ThreadPoolExecutor(max_workers=total) as pool:
            pieces = list(pool.map(segment, range(total)))
        unique: dict[tuple[str, ...], Any] = {}
        for piece in pieces:
            for raw in piece:
                unique.setdefault(tuple(raw.get("Values", [])), raw)
        return list(unique.values())

    # -- mapping --------------------------------------------------------------------------------

    def _neutral(self, namespace: str, raw: Any, operation: str) -> Table | FloeError:
        try:
            return self._to_table(namespace, raw, operation)
        except FloeError as exc:
            if exc.retryable:
                raise
            return exc

    def _to_table(self, namespace: str, raw: dict[str, Any], operation: str, versioned: bool = True) -> Table:
        name = raw["Name"]
        qualified = f"{namespace}.{name}"
        params = dict(raw.get("Parameters") or {})
        sd = raw.get("StorageDescriptor") or {}
        serde_info = sd.get("SerdeInfo") or {}
        serde = serde_info.get("SerializationLibrary")
        serde_params = dict(serde_info.get("Parameters") or {})
        columns = tuple(
            Column(c["Name"], c.get("Type", "string"), c.get("Comment")) for c in sd.get("Columns", [])
        )
        partition_keys = tuple(
            Column(c["Name"], c.get("Type", "string"), c.get("Comment")) for c in raw.get("PartitionKeys", [])
        )
        updated = raw.get("UpdateTime") or raw.get("CreateTime")
        last_modified = updated.astimezone(UTC) if isinstance(updated, datetime) else None
        common = {
            "namespace": namespace,
            "name": name,
            "partition_keys": partition_keys,
            "properties": params,
            "catalog": self.name,
        }

        if params.get("table_type", "").upper() == "ICEBERG":
            metadata_location = params.get("metadata_location")
            if not metadata_location:
                raise InvalidFieldError(
                    f"Iceberg table {qualified} has no metadata_location parameter",
                    field="storage.options.metadata_location",
                    provider=PROVIDER,
                    operation=operation,
                )
            metadata_location = normalize_location(metadata_location, qualified, operation)
            location = sd.get("Location") or metadata_location.rsplit("/metadata/", 1)[0]
            return Table(
                storage=StorageDescriptor(
                    location=normalize_location(location, qualified, operation),
                    format="iceberg",
                    columns=columns,
                    options={"metadata_location": metadata_location},
                ),
                data_version=_digest("metadata:", metadata_location),
                stats=TableStats(last_modified=last_modified),
                table_type="ICEBERG",
                **common,
            )

        location = sd.get("Location") or ""
        if (raw.get("TableType") or "").upper() in VIEW_TYPES:
            text = raw.get("ViewExpandedText") or raw.get("ViewOriginalText") or ""
            return Table(
                storage=StorageDescriptor(location=location, format="view", columns=columns),
                data_version=metadata_data_version("glue:", text, params),
                table_type=raw.get("TableType") or "",
                unreadable_reason="a Glue view: its rows are the result of SQL the catalog keeps, not"
                " files floe can read; read the tables it selects from, or materialise it as a table",
                **common,
            )
        if not location:
            raise InvalidFieldError(
                f"table {qualified} ({raw.get('TableType') or 'table'}) has no storage location;"
                " it cannot be read",
                field="storage.location",
                provider=PROVIDER,
                operation=operation,
            )
        location = normalize_location(location, qualified, operation)
        unreadable: str | None = None
        try:
            fmt, options = self._format(
                qualified, serde, sd.get("InputFormat"), serde_params, params, operation
            )
        except NotSupportedError as exc:  # still an asset, versioned from its metadata
            fmt, options, unreadable = "unknown", {}, exc.message
        partitions: list[Any] = []
        listed = bool(partition_keys) and versioned and self.config.partition_versions
        if listed:
            partitions = self._raw_partitions(namespace, name, operation)
            partitions.sort(key=lambda p: tuple(p.get("Values", [])))
        payload = {
            "location": location,
            "stats": glue_version_parameters(params),
            "partitions": [
                [
                    p.get("Values", []),
                    (p.get("StorageDescriptor") or {}).get("Location"),
                    _iso(p.get("CreationTime")),
                    glue_version_parameters(p.get("Parameters")),
                ]
                for p in partitions
            ],
        }
        partition_params = [p.get("Parameters") or {} for p in partitions] if partition_keys else None
        # Delta/Hudi: their log version already changes exactly when their data does
        storage = fmt not in LOG_VERSIONED and self.data_version_policy.lists_storage(
            namespace, params, partition_params
        )
        if versioned and (not partition_keys or listed) and storage:
            locations = tuple(_neutral_partition(p).location or "" for p in partitions)
            self._storage_requests[qualified] = StorageRequest(
                qualified,
                location,
                locations if partition_keys else None,
                required=self.data_version_policy.mode_for(namespace) == "storage",
            )
        return Table(
            storage=StorageDescriptor(
                location=location,
                format=fmt,
                columns=columns,
                serde=serde,
                input_format=sd.get("InputFormat"),
                output_format=sd.get("OutputFormat"),
                options=options,
                serde_parameters=serde_params,
            ),
            data_version=(
                log_data_version(
                    fmt, options.get("path") or location, self.credentials.storage_properties(), qualified
                )
                if versioned and fmt in LOG_VERSIONED  # Delta/Hudi: the table's own log version
                else _digest("glue:", payload)
                if versioned
                else "unversioned"
            ),
            stats=_stats(params, partitions if listed else None, bool(partition_keys), last_modified),
            table_type=raw.get("TableType") or "EXTERNAL_TABLE",
            unreadable_reason=unreadable,
            **common,
        )

    @staticmethod
    def _format(
        qualified: str,
        serde: str | None,
        input_format: str | None,
        serde_params: dict[str, str],
        params: dict[str, str],
        operation: str,
    ) -> tuple[str, dict[str, str]]:
        try:
            return storage_format(qualified, serde, input_format, serde_params, params)
        except NotSupportedError as exc:
            classification = params.get("classification", "").lower()
            if classification in _CLASSIFICATIONS and classification != "csv":
                return classification, {}
            raise NotSupportedError(
                exc.message + (f" (classification {classification})" if classification else ""),
                provider=PROVIDER,
                operation=operation,
                retryable=False,
            ) from None

    # -- diagnostics ----------------------------------------------------------------------------

    def endpoint(self) -> str:
        return self.config.endpoint or f"https://glue.{self.config.region}.amazonaws.com"

    def auth_strategy(self) -> str:
        return str(self.credentials.mode)

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "region": self.config.region, "catalog_id": self.config.catalog_id}


def glue_version_parameters(params: dict[str, str] | None) -> dict[str, str | None]:
    """The statistics parameters of a table or partition (Hive's and the crawler's), else its
    last DDL time: the same rule as ``hive.version_parameters``."""
    params = params or {}
    stats: dict[str, str | None] = {
        k: params[k] for k in STAT_KEYS if k != DDL_TIME and params.get(k) is not None
    }
    return stats or {DDL_TIME: params.get(DDL_TIME)}


def _expression_chunks(names: Sequence[str]) -> Iterator[list[str]]:
    """Names in chunks whose anchored alternation stays within the Expression length limit."""
    chunk: list[str] = []
    length = 4
    for name in names:
        size = len(re.escape(name.lower())) + 1
        if chunk and (length + size > _EXPRESSION_LIMIT or len(chunk) >= 100):
            yield chunk
            chunk, length = [], 4
        chunk.append(name)
        length += size
    if chunk:
        yield chunk


def _int(value: Any) -> int | None:
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def _stats(
    params: dict[str, str], partitions: list[Any] | None, partitioned: bool, last_modified: datetime | None
) -> TableStats:
    """Totals over the listed partitions' parameters (the table's when none were listed)."""

    def total(*keys: str) -> int | None:
        sources = [p.get("Parameters") or {} for p in partitions] if partitions is not None else [params]
        values = [next((_int(s.get(k)) for k in keys if _int(s.get(k)) is not None), None) for s in sources]
        if not values or any(v is None or v < 0 for v in values):
            return None
        return sum(v for v in values if v is not None)

    return TableStats(
        row_count=total("numRows", "recordCount"),
        size_bytes=total("totalSize", "sizeKey"),
        file_count=total("numFiles", "objectCount"),
        last_modified=last_modified,
        partition_count=(len(partitions) if partitions is not None else None) if partitioned else 0,
    )


def _neutral_partition(raw: dict[str, Any]) -> Partition:
    location = (raw.get("StorageDescriptor") or {}).get("Location")
    if location and urlsplit(location).scheme.lower() in ("s3a", "s3n"):
        location = "s3://" + location.split("://", 1)[1]
    return Partition(
        values=tuple(raw.get("Values", [])),
        location=location,
        parameters=dict(raw.get("Parameters") or {}),
    )
