"""The files under an S3 prefix as a metastore (``type: s3``): one table per key prefix.

Discovery lists the bucket (``ListObjectsV2`` with pagination, under ``path_prefix``), keeps
the keys of ``file_type`` and groups them into tables by :func:`table_name_for_key`:

* a file at the bucket root is a table named after the file without its extension
  (``orders.parquet`` -> ``orders``);
* a nested key is a table named after its prefix segments joined by ``_``, the file name
  dropped (``sales/eu-west/2024.01/part-0.parquet`` -> ``sales_eu_west_2024_01``), so every
  file under one prefix belongs to the same table;
* hyphens, dots and any other character outside ``[A-Za-z0-9_]`` become ``_``; repeated
  separators collapse to one ``_`` and leading/trailing ones are dropped. Case is kept.

Two prefixes that normalise to the same name (``a-b/`` and ``a_b/``) are one table.

A table's schema comes from its files' Parquet footers, fetched with ranged ``GetObject``
requests (the tail of the object, never the whole object); files of one table whose schemas
differ stop that table with a :class:`SchemaMismatchError` naming both files and the differing
columns. The data version is a digest of the table's objects' keys, sizes and ETags: it changes
exactly when an object is added, replaced or removed.

Credentials: the fields below go through the metastore chokepoint (``plugins/factory.py``
``metastore_config``: manifest, then ``FLOE_METASTORE_<NAME>_<FIELD>``), and are turned into
``AwsCredentials`` (``plugins/metastore_auth.py``), which makes the S3 client from the AWS
resolver (``plugins/aws_credentials.py``, shared with the Glue catalog and metastore): static
keys (+ session token), a named profile, role assumption (refreshed before it expires), or
boto3's default chain.
"""

from __future__ import annotations

import logging
import re
import struct
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar, Literal

from pydantic import Field, field_validator, model_validator

from floe_dagster.core.errors import (
    AuthenticationError,
    ConfigurationError,
    FloeError,
    MetastoreError,
    NotFoundError,
    NotSupportedError,
    UnavailableError,
)
from floe_dagster.core.parallel import UNLIMITED_THREADS, ordered_parallel
from floe_dagster.metastores.object_tables import (
    DECLARED_TYPES,
    EXTENSIONS,
    FileType,
    ObjectSkipped,
    S3Object,
    SchemaMismatchError,
    ValueConversionError,
    arrow_columns,
    column_differences,
    data_version,
    group_objects,
    normalize_name,
    widen_schemas,
)
from floe_dagster.metastores.s3_feed import S3NotificationFeed
from floe_dagster.metastores.s3_log_tables import (
    LOG_FILE_TYPES,
    describe_log_table,
    group_log_tables,
    table_prefix,
)
from floe_dagster.plugins.aws import (
    AwsConfig,
    AwsCredentialsConfig,
    aws_error_class,
)
from floe_dagster.plugins.base import PluginConfig, http_endpoint
from floe_dagster.plugins.metastore import Capability, MetastoreConnector
from floe_dagster.plugins.table_model import MORE_LOCATIONS, Column, StorageDescriptor, Table, TableStats

logger = logging.getLogger("floe_dagster.metastores.s3")

FORMAT_NAMES = {"parquet": "Parquet", "csv": "CSV", "json": "JSON", "orc": "ORC", "avro": "Avro"}
DEFAULT_ROWS_PER_RECORD = 500
DEFAULT_CONCURRENCY = 50
FOOTER_PROBE_BYTES = 64 * 1024
SCHEMA_PROBE_BYTES = 1024 * 1024  # CSV/JSON: types are inferred from the first MiB
DECODE_ROWS = 1024 * 1024  # Parquet rows decoded per call at most (see _open_parquet)
PARQUET_MAGIC = b"PAR1"
# Iceberg write properties of ingested tables unless the manifest says otherwise (see README):
# zstd level 1, and a 256 KiB dictionary page limit instead of PyIceberg's 2 MiB. A column whose
# distinct values outgrow the limit falls back to plain encoding; with 2 MiB the writer hashes up
# to 256k values per column chunk and re-encodes them on fallback, which doubled the cost of
# writing high-cardinality columns (ids, measures, timestamps) for 1-2% of file size.
INGEST_WRITE_DEFAULTS: dict[str, str] = {
    "write.parquet.compression-codec": "zstd",
    "write.parquet.compression-level": "1",
    "write.parquet.dict-size-bytes": str(256 * 1024),
}

_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")


# --- naming (pure) ---------------------------------------------------------------------------------


# --- errors ---------------------------------------------------------------------------------------


# --- config ---------------------------------------------------------------------------------------


class S3IngestConfig(PluginConfig):
    """Opt-in: ingest each discovered table into an Iceberg table (``defs/ingest.py``)."""

    enabled: bool = Field(False, description="Add one incremental ingest asset per discovered table.")
    catalog: str | None = Field(
        None, description="Catalog to write to; default: the manifest's transforms.catalog."
    )
    namespace: str = Field(
        "raw_s3", min_length=1, description="Iceberg namespace of the ingested tables (created if missing)."
    )
    commit_mb: float = Field(
        128,
        gt=0,
        description=(
            "Commit to Iceberg (data and cursor together) whenever this many MB of Arrow data are"
            " buffered, and at the end; bounds memory and the work a crash loses."
        ),
    )
    compression_codec: Literal["zstd", "snappy", "lz4", "gzip", "brotli", "uncompressed"] = Field(
        "zstd",
        description="Parquet codec of the Iceberg data files (write.parquet.compression-codec).",
    )
    compression_level: int | None = Field(
        1,
        description=(
            "Codec level (write.parquet.compression-level); default 1, zstd's fastest, which"
            " compresses about as well as higher levels on typical raw data; null: the codec's default."
        ),
    )
    table_properties: dict[str, str] = Field(
        default_factory=dict,
        description=(
            "Further Iceberg table properties of the ingested tables, over floe's defaults (e.g."
            " write.parquet.dict-size-bytes, write.target-file-size-bytes)."
        ),
    )

    def write_properties(self) -> dict[str, str]:
        """Iceberg write properties of an ingested table: defaults, this config, ``table_properties``."""
        properties = dict(INGEST_WRITE_DEFAULTS)
        properties["write.parquet.compression-codec"] = self.compression_codec
        if self.compression_level is None or self.compression_codec in ("snappy", "lz4", "uncompressed"):
            properties.pop("write.parquet.compression-level", None)
        else:
            properties["write.parquet.compression-level"] = str(self.compression_level)
        properties.update(self.table_properties)
        return properties

    @field_validator("namespace")
    @classmethod
    def _plain_namespace(cls, value: str) -> str:
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", value):
            raise ValueError("must be one identifier of letters, digits and _ (e.g. raw_s3)")
        return value


class ObjectSourceConfig(PluginConfig):
    """What every object-store source shares, whatever the store (S3 here, Azure Blob in
    ``metastores/azure_blob.py``): the prefix, the tables' namespace, the file type, batching,
    concurrency and ingest. A store's config adds its bucket/container, endpoint and credentials
    and names the bucket or container in ``bucket``."""

    path_prefix: str = Field("", description="Only keys under this prefix are listed, e.g. raw/.")
    namespace: str | None = Field(
        None,
        description="Namespace of the discovered tables (asset key <metastore>/<namespace>/<table>);"
        " default: the bucket (container) name normalised like table names.",
    )
    file_type: FileType = Field(
        "parquet",
        description=(
            "parquet, orc, avro (declared types), csv or json (types inferred), delta or hudi (one table"
            " per _delta_log/ or .hoodie/ folder); see docs/formats.md."
        ),
    )
    rows_per_record: int = Field(
        DEFAULT_ROWS_PER_RECORD, ge=1, description="Rows per Arrow record batch when reading."
    )
    concurrency: int = Field(
        DEFAULT_CONCURRENCY,
        description=(
            "Object reads in flight at most; -1: every object at once, on a pool of at most"
            f" {UNLIMITED_THREADS} threads (so at most {UNLIMITED_THREADS} in flight)."
        ),
    )
    ingest: S3IngestConfig = Field(default_factory=lambda: S3IngestConfig.model_validate({}))

    @field_validator("path_prefix")
    @classmethod
    def _check_prefix(cls, value: str) -> str:
        if value.startswith("/") or "://" in value:
            raise ValueError(
                "must be a key prefix relative to the bucket, e.g. raw/ (no leading / or s3://, az://)"
            )
        return value

    @field_validator("namespace")
    @classmethod
    def _check_namespace(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"[A-Za-z0-9_]+", value):
            raise ValueError("must be letters, digits and _ only")
        return value

    @field_validator("concurrency")
    @classmethod
    def _check_concurrency(cls, value: int) -> int:
        if value == 0 or value < -1:
            raise ValueError("must be at least 1, or -1 for no limit")
        return value

    @property
    def store_root(self) -> str:
        """The bucket or container the objects live in (the store config's own field)."""
        raise NotImplementedError

    @property
    def table_namespace(self) -> str:
        return self.namespace or normalize_name(self.store_root)

    @property
    def max_in_flight(self) -> int | None:
        return None if self.concurrency < 0 else self.concurrency


class S3MetastoreConfig(AwsCredentialsConfig, ObjectSourceConfig):
    """An S3 prefix as a metastore: the shared AWS region and credentials (plugins/aws.py), the
    bucket, an S3-compatible endpoint, discovery and ingest settings."""

    bucket: str = Field(..., description="Bucket name (no s3:// and no key).")
    region: str | None = Field(
        None,
        description=(
            "Region of the bucket, e.g. eu-west-1 (or AWS_REGION / AWS_DEFAULT_REGION); with an"
            " endpoint, any region name the store uses (cn-hangzhou, ap-guangzhou, auto)."
        ),
    )
    endpoint: str | None = Field(
        None,
        description=(
            "S3-compatible endpoint (MinIO, Alibaba OSS, Tencent COS, Cloudflare R2, ...),"
            " http(s)://host[:port]. Unset: AWS."
        ),
    )
    addressing_style: Literal["path", "virtual"] | None = Field(
        None,
        description=(
            "path: requests go to <endpoint>/<bucket>/<key> (MinIO, R2); virtual: to"
            " <bucket>.<endpoint host>/<key> (OSS and COS require it). Unset: path with an endpoint,"
            " the AWS SDK's choice on AWS."
        ),
    )
    notification_queue_url: str | None = Field(
        None,
        description=(
            "SQS queue the bucket's event notifications (s3:ObjectCreated:*, s3:ObjectRemoved:*) go"
            " to: the metastore's change feed (docs/change-feeds.md). Unset: every tick lists."
        ),
    )
    sqs_endpoint: str | None = Field(
        None, description="SQS endpoint, http(s)://host[:port]; default: `endpoint` (moto), else AWS."
    )
    notification_visibility_timeout_s: int = Field(
        300,
        ge=1,
        le=43200,
        description=(
            "Seconds a received notification stays hidden; a tick that crashed before its cursor"
            " was committed sees its messages again after this."
        ),
    )

    @field_validator("bucket")
    @classmethod
    def _check_bucket(cls, value: str) -> str:
        if value.startswith("s3://") or "/" in value:
            raise ValueError("must be a bucket name only; put the key prefix in path_prefix")
        if not _BUCKET.match(value) or ".." in value:
            raise ValueError("must be 3-63 characters of lowercase letters, digits, dots and hyphens")
        return value

    @field_validator("endpoint", "sqs_endpoint")
    @classmethod
    def _check_endpoint(cls, value: str | None) -> str | None:
        return http_endpoint(value, "http://127.0.0.1:9000")

    @model_validator(mode="after")
    def _check_client_config(self) -> S3MetastoreConfig:
        self.aws_config()  # the client config's checks (the endpoint as its s3_endpoint)
        return self

    @property
    def store_root(self) -> str:
        return self.bucket

    def aws_config(self) -> AwsConfig:
        """These credentials as the AWS client config (plugins/aws.py), resolved by aws_credentials.py."""

        return self.client_config(
            region=self.region or "us-east-1",
            s3_endpoint=self.endpoint,
            s3_addressing_style=self.addressing_style,
        )

    @property
    def url_style(self) -> Literal["path", "virtual", "auto"]:
        """The addressing the clients use: ``addressing_style``, else path with an endpoint and
        the SDK's own choice (``auto``: virtual for DNS-compatible bucket names) on AWS."""
        if self.addressing_style is not None:
            return self.addressing_style
        return "path" if self.endpoint else "auto"


# --- bounded, ordered parallel reads ---------------------------------------------------------------


# pyarrow's messages for a CSV/JSON value that does not fit its column's type
_TYPE_ERRORS = ("conversion error", "failed to convert json", "changed from")


def _tail_range(size: int, length: int) -> str:
    """The HTTP Range of the last ``length`` bytes of an object of ``size`` bytes."""
    return f"bytes={size - length}-{size - 1}"


def _is_type_error(message: str) -> bool:
    lowered = message.lower()
    return any(marker in lowered for marker in _TYPE_ERRORS)


# --- the connector --------------------------------------------------------------------------------

_FOOTERS: dict[tuple[str, str, str], tuple[Any, int]] = {}  # (bucket, key, etag) -> (schema, rows)
_FOOTERS_LOCK = threading.Lock()
_FOOTERS_MAX = 100_000


@dataclass(frozen=True)
class ObjectData:
    """One downloaded object, opened: its schema now, its rows when ``batches()`` is iterated.

    ``batches()`` gives the rows in Arrow record batches of ``rows_per_record`` rows (the last
    one of an object may be shorter): Parquet decoded as they are asked for (``ObjectSkipped``
    when a page turns out corrupt part way), CSV/JSON decoded when the object was opened.
    """

    obj: S3Object
    schema: Any  # pyarrow.Schema
    batches: Callable[[], Iterator[Any]]
    rows: int | None = None  # from the Parquet footer; None for CSV/JSON


def rebatch(batches: Iterable[Any], rows: int) -> Iterator[Any]:
    """The rows of ``batches`` re-cut into batches of exactly ``rows`` rows (the last: the rest).

    Slices are zero-copy; only a batch made of pieces of two input batches is copied.
    """
    import pyarrow as pa

    pending: list[Any] = []
    held = 0
    for batch in batches:
        offset = 0
        while offset < batch.num_rows:
            take = min(rows - held, batch.num_rows - offset)
            pending.append(batch.slice(offset, take))
            held += take
            offset += take
            if held == rows:
                yield pending[0] if len(pending) == 1 else pa.concat_batches(pending)
                pending, held = [], 0
    if held:
        yield pending[0] if len(pending) == 1 else pa.concat_batches(pending)


class S3MetastoreConnector(MetastoreConnector):
    """Tables discovered from key prefixes of one bucket; see the module docstring for the rules."""

    type_name: ClassVar[str] = "s3"
    config_model = S3MetastoreConfig
    config: S3MetastoreConfig
    required_options: ClassVar[tuple[str, ...]] = ("region",)
    # Keys per ListObjectsV2 page (None: S3's default of 1,000); tests lower it to see pagination.
    page_size: int | None = None
    env_options: ClassVar[dict[str, tuple[str, ...]]] = {"region": ("AWS_REGION", "AWS_DEFAULT_REGION")}
    capabilities = frozenset(
        {
            Capability.LIST_NAMESPACES,
            Capability.LIST_TABLES,
            Capability.GET_TABLE,
            Capability.GET_TABLES,
            Capability.TABLE_STATS,
            Capability.CHANGE_FEED,
        }
    )

    def __init__(self, name: str, config: PluginConfig) -> None:
        super().__init__(name, config)
        self._client: Any = None
        self._client_lock = threading.Lock()
        self._tables: dict[str, list[S3Object]] | None = None
        self._count_lock = threading.Lock()

    # -- client and errors --

    @property
    def extensions(self) -> tuple[str, ...]:
        return EXTENSIONS[self.config.file_type]

    def client(self) -> Any:
        with self._client_lock:
            if self._client is None:
                self._client = self._new_client()
            return self._client

    def _new_client(self) -> Any:
        """The S3 client, with the credentials of the metastore chokepoint (``self.credentials``,
        ``plugins/metastore_auth.py``): an assumed role is refreshed before it expires."""
        from botocore.config import Config

        pool = self.config.max_in_flight or UNLIMITED_THREADS
        try:
            return self.credentials.client(
                "s3",
                region=self.config.region,
                endpoint=self.config.endpoint,
                config=Config(
                    max_pool_connections=max(10, pool),
                    retries={"total_max_attempts": self.config.max_attempts, "mode": "standard"},
                    s3={"addressing_style": self.config.url_style},
                ),
            )
        except Exception as exc:  # STS / profile resolution
            raise self.map_error(exc, "connect", "credentials") from None

    def _count(self, operation: str) -> None:
        with self._count_lock:
            self.call_counts[operation] += 1

    count = _count  # for the change feed (metastores/s3_feed.py)

    def change_feed(self) -> S3NotificationFeed | None:
        """The bucket's event notifications on ``notification_queue_url`` (None without one)."""
        return S3NotificationFeed(self) if getattr(self.config, "notification_queue_url", None) else None

    def seed(self, objects: Sequence[S3Object]) -> None:
        """Use ``objects`` as the bucket's listing (the change feed's object index): no listing."""
        self._tables = self._group(objects)

    def _group(self, objects: Sequence[S3Object]) -> dict[str, list[S3Object]]:
        """Table name -> its objects: by key prefix, or (``delta``/``hudi``) by log folder."""
        if self.config.file_type in LOG_FILE_TYPES:
            return group_log_tables(objects, self.config.file_type)
        return group_objects(objects, self.extensions)

    def table_of(self, key: str) -> str:
        """The table a key belongs to ("" for a key that makes none): ``_group``'s rule for one key
        (the change feed's events name keys, not listings)."""
        if not self._listed(key):
            return ""
        return next(iter(self._group([S3Object(key, 0, "", datetime.fromtimestamp(0, UTC))])), "")

    def endpoint(self) -> str:
        return self.config.endpoint or f"s3.{self.config.region}.amazonaws.com"

    def auth_strategy(self) -> str:
        return str(self.config.aws_config().credential_mode)

    def location(self, key: str = "") -> str:
        return f"s3://{self.config.bucket}/{key}"

    def map_error(
        self, exc: Exception, operation: str, subject: str = "", listing: bool = False
    ) -> FloeError:
        """A boto3/botocore failure as floe's error, with what to check; never a secret.

        ``listing``: the failure is of the bucket listing, where "not found" means no bucket.
        """

        where = self.location(subject if subject != "credentials" else self.config.path_prefix)
        target = aws_error_class(exc) or MetastoreError
        code = ""
        response = getattr(exc, "response", None)
        if isinstance(response, dict):
            code = str(response.get("Error", {}).get("Code", ""))
        mode = self.config.aws_config().credential_mode
        if code in ("NoSuchBucket",) or (target is NotFoundError and listing):
            message = (
                f"metastore '{self.name}': bucket '{self.config.bucket}' does not exist at"
                f" {self.endpoint()}; check metastores.{self.name}.config.bucket, region"
                f" ({self.config.region}) and endpoint"
            )
            return NotFoundError(message, provider=self.type_name, operation=operation, retryable=False)
        if target is AuthenticationError:
            message = (
                f"metastore '{self.name}': access denied ({code or type(exc).__name__}) on {where} during"
                f" {operation}; check the credentials (mode: {mode}) and that they allow s3:ListBucket on"
                f" arn:aws:s3:::{self.config.bucket} and s3:GetObject on"
                f" arn:aws:s3:::{self.config.bucket}/{self.config.path_prefix}*"
            )
            return AuthenticationError(message, provider=self.type_name, operation=operation)
        if target is ConfigurationError:
            message = (
                f"metastore '{self.name}': no usable AWS credentials or region ({type(exc).__name__});"
                " set access_key_id + secret_access_key, profile or role_arn, or configure the default chain"
            )
            return ConfigurationError(message, provider=self.type_name, operation=operation)
        if issubclass(target, UnavailableError):
            message = (
                f"metastore '{self.name}': S3 at {self.endpoint()} is unavailable during {operation} on"
                f" {where} ({code or type(exc).__name__}, after {self.config.max_attempts} attempt(s));"
                " check the endpoint and the network"
            )
            return UnavailableError(message, provider=self.type_name, operation=operation)
        message = f"metastore '{self.name}': {operation} on {where} failed: {code or type(exc).__name__}"
        return target(self.redact(message), provider=self.type_name, operation=operation)

    # -- discovery --

    def _listed(self, key: str) -> bool:
        """Whether a listed key belongs to a table: not a folder marker, and a file with an
        extension of ``file_type``, or (``delta``/``hudi``) a file of a table's log folder.
        The one key filter of every store's listing (S3, Azure Blob, GCS)."""
        if key.endswith("/"):
            return False
        if self.config.file_type in LOG_FILE_TYPES:
            return table_prefix(key, self.config.file_type) is not None
        return key.lower().endswith(self.extensions)

    def list_objects(self, operation: str = "list_objects") -> list[S3Object]:
        """Every object under ``path_prefix`` that makes a table (``_listed``; paginated).

        A failure is tagged with ``operation``: the connector operation the listing serves.
        """
        from botocore.exceptions import BotoCoreError, ClientError

        found: list[S3Object] = []
        try:
            paginator = self.client().get_paginator("list_objects_v2")
            pages = paginator.paginate(
                Bucket=self.config.bucket,
                Prefix=self.config.path_prefix,
                PaginationConfig={"PageSize": self.page_size} if self.page_size else {},
            )
            for page in pages:
                self._count("list_objects")
                for item in page.get("Contents", []):
                    key = item["Key"]
                    if not self._listed(key):
                        continue
                    found.append(
                        S3Object(
                            key=key,
                            size=int(item["Size"]),
                            etag=str(item.get("ETag", "")).strip('"'),
                            last_modified=item["LastModified"].astimezone(UTC),
                        )
                    )
        except (ClientError, BotoCoreError) as exc:
            raise self.map_error(exc, operation, self.config.path_prefix, listing=True) from None
        return found

    def discover(self, refresh: bool = False, operation: str = "list_tables") -> dict[str, list[S3Object]]:
        """Table name -> objects, listed once per connector (``refresh`` lists again)."""
        if self._tables is None or refresh:
            objects = self.list_objects(operation)
            self._tables = self._group(objects)
            logger.info(
                "s3 metastore '%s': %d object(s) in %d table(s) under %s",
                self.name,
                len(objects),
                len(self._tables),
                self.location(self.config.path_prefix),
            )
            for table, objs in self._tables.items():
                logger.info("s3 metastore '%s': table %s: %d object(s)", self.name, table, len(objs))
        return self._tables

    def list_namespaces(self) -> list[str]:
        return [self.config.table_namespace]

    def list_tables(self, namespace: str) -> list[str]:
        self._check_namespace(namespace, "list_tables")
        return list(self.discover(operation="list_tables"))

    def get_table(self, namespace: str, table: str) -> Table:
        self._check_namespace(namespace, "get_table")
        objects = self.discover(operation="get_table").get(table)
        if not objects:
            raise NotFoundError(
                f"metastore '{self.name}': no {self.config.file_type} object makes table '{table}'"
                f" under {self.location(self.config.path_prefix)}",
                provider=self.type_name,
                operation="get_table",
            )
        return self._describe(namespace, table, objects)

    def table_stats(self, namespace: str, table: str) -> TableStats:
        """Object count, total size and newest object of the table (rows from Parquet footers)."""
        return self.get_table(namespace, table).stats

    def get_tables(self, namespace: str, names: Sequence[str]) -> list[Table]:
        self._check_namespace(namespace, "get_tables")
        found = self.discover(operation="get_tables")
        tables = []
        for name in names:
            if name in found:
                tables.append(self._describe(namespace, name, found[name]))
        if len(tables) < len(names):
            missing = sorted(set(names) - set(found))
            raise NotFoundError(
                f"metastore '{self.name}': no table(s) {missing}",
                provider=self.type_name,
                operation="get_tables",
            )
        return tables

    def _check_namespace(self, namespace: str, operation: str) -> None:
        if namespace != self.config.table_namespace:
            raise NotFoundError(
                f"metastore '{self.name}' has one namespace, '{self.config.table_namespace}',"
                f" not '{namespace}'",
                provider=self.type_name,
                operation=operation,
            )

    def table_schema(
        self, table: str, objects: Sequence[S3Object], operation: str = "get_table"
    ) -> tuple[Any, int]:
        """(Arrow schema, row count) of a table's objects; (None, 0) when none could be read.

        Parquet: each footer's schema, which must be equal in every file. CSV/JSON: each file's
        types inferred from its first MiB and widened together (``widen_type``), so a column of
        integers in one file and decimals in another is ``double``. Files that do not agree raise
        :class:`SchemaMismatchError` naming both and the columns. The count is -1 for CSV/JSON.
        """
        schemas = ordered_parallel(objects, self._schema_or_skip, self.config.max_in_flight)
        reference: tuple[S3Object, Any] | None = None
        rows = 0
        for obj, found in zip(objects, schemas, strict=True):
            if found is None:
                continue
            schema, count = found
            rows = rows + count if count >= 0 and rows >= 0 else -1
            if reference is None:
                reference = (obj, schema)
                continue
            if self.config.file_type in DECLARED_TYPES:  # declared types: equal or different
                widened = reference[1]
                differences = column_differences(arrow_columns(widened), arrow_columns(schema))
            else:  # inferred types: widened to fit every file
                widened, differences = widen_schemas(reference[1], schema)
            if differences:
                raise SchemaMismatchError(
                    table,
                    self.location(reference[0].key),
                    self.location(obj.key),
                    differences,
                    provider=self.type_name,
                    operation=operation,
                )
            reference = (reference[0], widened)
        return (reference[1], rows) if reference is not None else (None, 0)

    def _describe(self, namespace: str, table: str, objects: list[S3Object]) -> Table:
        if self.config.file_type in LOG_FILE_TYPES:  # a Delta/Hudi table: its log folder
            return describe_log_table(self, namespace, table, objects)
        schema, rows = self.table_schema(table, objects)
        columns = tuple(Column(n, t) for n, t in arrow_columns(schema).items()) if schema is not None else ()
        prefixes = sorted({o.key.rsplit("/", 1)[0] + "/" if "/" in o.key else o.key for o in objects})
        globs = [self.location(g) for g in self._globs(prefixes, objects)]
        return Table(
            namespace=namespace,
            name=table,
            storage=StorageDescriptor(
                location=globs[0],
                format=self.config.file_type,
                columns=columns,
                options={MORE_LOCATIONS: "\n".join(globs[1:])} if len(globs) > 1 else {},
            ),
            data_version=data_version(objects),
            properties={"floe.s3.prefixes": ",".join(prefixes), "floe.s3.objects": str(len(objects))},
            stats=TableStats(
                row_count=rows if self.config.file_type in ("parquet", "orc") else None,
                size_bytes=sum(o.size for o in objects),
                file_count=len(objects),
                last_modified=max(o.last_modified for o in objects),
                partition_count=0,
            ),
        )

    def _globs(self, prefixes: list[str], objects: list[S3Object]) -> list[str]:
        """Globs naming exactly the table's files: per folder, one per extension its files have
        (a folder of .ndjson files is not *.json; one of .json and .ndjson files needs both), and
        a root file by its key. Two folders make one table when their names normalise alike
        (``a/b/`` and ``a_b/``)."""
        globs: list[str] = []
        for prefix in prefixes:
            if not prefix.endswith("/"):
                globs.append(prefix)
                continue
            here = [o.key.lower() for o in objects if o.key.rpartition("/")[0] + "/" == prefix]
            found = [e for e in self.extensions if any(k.endswith(e) for k in here)]
            globs += [f"{prefix}*{e}" for e in found or self.extensions[:1]]
        return globs

    def _schema_or_skip(self, obj: S3Object) -> tuple[Any, int] | None:
        try:
            return self.read_schema(obj)
        except ObjectSkipped as exc:
            logger.warning("s3 metastore '%s': skipped %s", self.name, self.redact(str(exc)))
            return None

    # -- reading objects --

    def _get(self, obj: S3Object, byte_range: str | None = None) -> bytes:
        """The object's bytes (or a range); ``ObjectSkipped`` when it is gone or changed since listing."""
        from botocore.exceptions import BotoCoreError, ClientError

        request: dict[str, Any] = {"Bucket": self.config.bucket, "Key": obj.key}
        if obj.etag:
            request["IfMatch"] = f'"{obj.etag}"'
        if byte_range:
            request["Range"] = byte_range
        self._count("get_object_range" if byte_range else "get_object")
        try:
            return bytes(self.client().get_object(**request)["Body"].read())
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", ""))
            if code in ("NoSuchKey", "404", "NotFound"):
                raise ObjectSkipped(obj.key, "deleted since it was listed") from None
            if code in ("PreconditionFailed", "412"):
                raise ObjectSkipped(
                    obj.key, "replaced since it was listed; read on the next run", changed=True
                ) from None
            raise self.map_error(exc, "read_object", obj.key) from None
        except BotoCoreError as exc:
            raise self.map_error(exc, "read_object", obj.key) from None

    def read_schema(self, obj: S3Object) -> tuple[Any, int]:
        """(Arrow schema, row count) of one object: Parquet from its footer via ranged reads."""
        cache_key = (self.location(), obj.key, obj.etag)  # the store's bucket/container
        with _FOOTERS_LOCK:
            cached = _FOOTERS.get(cache_key)
        if cached is not None:
            return cached
        if self.config.file_type in ("orc", "avro"):
            result = self._declared_schema(obj)
        else:
            result = (
                self._parquet_footer(obj) if self.config.file_type == "parquet" else self._text_schema(obj)
            )
        with _FOOTERS_LOCK:
            if len(_FOOTERS) >= _FOOTERS_MAX:
                _FOOTERS.clear()
            _FOOTERS[cache_key] = result
        return result

    def _parquet_footer(self, obj: S3Object) -> tuple[Any, int]:
        import pyarrow as pa
        import pyarrow.parquet as pq

        if obj.size < 12:
            raise ObjectSkipped(obj.key, f"malformed Parquet: {obj.size} bytes is too small")
        # explicit first-last ranges from the listed size: some S3-compatible servers (s3rver)
        # read a suffix range (bytes=-N) as the first N bytes
        tail = self._get(obj, _tail_range(obj.size, min(obj.size, FOOTER_PROBE_BYTES)))
        if tail[-4:] != PARQUET_MAGIC:
            raise ObjectSkipped(obj.key, "malformed Parquet: no PAR1 magic at the end")
        footer_length = struct.unpack("<I", tail[-8:-4])[0]
        if footer_length + 8 > obj.size - 4:
            raise ObjectSkipped(obj.key, "malformed Parquet: footer length exceeds the object")
        if footer_length + 8 > len(tail):
            tail = self._get(obj, _tail_range(obj.size, footer_length + 8))
        try:
            metadata = pq.read_metadata(pa.BufferReader(PARQUET_MAGIC + tail[-(footer_length + 8) :]))
            return metadata.schema.to_arrow_schema(), int(metadata.num_rows)
        except (pa.ArrowException, OSError, ValueError) as exc:
            raise ObjectSkipped(obj.key, f"malformed Parquet footer ({type(exc).__name__})") from None

    def _text_schema(self, obj: S3Object) -> tuple[Any, int]:
        """CSV/JSON: the types inferred from the object's first MiB (the row count is not known)."""
        head = self._get(obj, f"bytes=0-{SCHEMA_PROBE_BYTES - 1}") if obj.size else b""
        if obj.size > SCHEMA_PROBE_BYTES:
            head = head[: head.rfind(b"\n") + 1]
        return self._open(obj, head).schema, -1

    def read_object(self, obj: S3Object, schema: Any = None) -> ObjectData:
        """Download one object and open it; its rows are decoded when ``batches()`` is iterated.

        ``schema`` (CSV/JSON only) fixes the types of the columns it names, so every file of a
        table decodes to the table's types rather than to what its own first block suggests;
        a value that does not fit its column's type raises :class:`ValueConversionError`.
        """
        return self._open(obj, self._get(obj), schema)

    def _open(self, obj: S3Object, data: bytes, schema: Any = None) -> ObjectData:
        """``data`` opened as ``file_type``; ``ObjectSkipped`` when it is not readable as such."""
        import pyarrow as pa

        try:
            if self.config.file_type == "parquet":
                return self._open_parquet(obj, data)
            if self.config.file_type in ("orc", "avro"):
                return self._open_declared(obj, data)
            return self._open_text(obj, data, schema)
        except (pa.ArrowException, OSError, ValueError) as exc:
            raise self._malformed(obj, exc) from None

    def _malformed(self, obj: S3Object, exc: Exception) -> ObjectSkipped:
        return ObjectSkipped(
            obj.key, f"malformed {FORMAT_NAMES[self.config.file_type]} ({type(exc).__name__})"
        )

    def _declared_schema(self, obj: S3Object) -> tuple[Any, int]:
        """ORC: schema and rows from the file's tail (ranged reads); Avro: the schema from its
        header (the first 64 KiB). Readers: ``readers/orc.py``, ``readers/avro.py``."""
        import pyarrow as pa

        # lazy: the format readers are loaded only for the file type that needs them
        from floe_dagster.readers.avro import avro_schema
        from floe_dagster.readers.orc import orc_schema

        try:
            if self.config.file_type == "orc":
                return orc_schema(obj.size, lambda start, end: self._get(obj, f"bytes={start}-{end}"))
            return avro_schema(self._get(obj, f"bytes=0-{FOOTER_PROBE_BYTES - 1}") if obj.size else b"")
        except ObjectSkipped:
            raise
        except (pa.ArrowException, OSError, ValueError, EOFError, NotSupportedError) as exc:
            raise self._malformed(obj, exc) from None

    def _open_declared(self, obj: S3Object, data: bytes) -> ObjectData:
        # lazy: the format readers are loaded only for the file type that needs them
        from floe_dagster.readers.avro import avro_batches
        from floe_dagster.readers.orc import orc_batches

        rows = self.config.rows_per_record
        if self.config.file_type == "orc":
            schema, count, batches = orc_batches(data, rows)
            return ObjectData(obj, schema, self._checked(obj, batches), count)
        schema, batches = avro_batches(data, rows)
        return ObjectData(obj, schema, self._checked(obj, batches), None)

    def _open_parquet(self, obj: S3Object, data: bytes) -> ObjectData:
        import pyarrow as pa
        import pyarrow.parquet as pq

        parquet = pq.ParquetFile(pa.BufferReader(data))  # parses the footer only

        rows = self.config.rows_per_record
        # Decoded up to DECODE_ROWS rows (a multiple of rows_per_record) per call, across row
        # groups, and handed on in zero-copy slices of rows_per_record rows: each decoding call
        # releases and retakes the GIL, which with downloads running on other threads costs up
        # to a switch interval per call (500-row calls tripled the decoding time here). The
        # ingest decodes an object whole before writing any of it, so this holds no more.
        chunk = rows * -(-DECODE_ROWS // rows)

        def batches() -> Iterator[Any]:
            import pyarrow as pa

            for decoded in parquet.iter_batches(batch_size=chunk):
                yield from pa.Table.from_batches([decoded]).to_batches(max_chunksize=rows)

        return ObjectData(obj, parquet.schema_arrow, self._checked(obj, batches), parquet.metadata.num_rows)

    def _open_text(self, obj: S3Object, data: bytes, schema: Any) -> ObjectData:
        """CSV/JSON decoded whole, in 1 MiB blocks (the first one gives the types, as in discovery).

        Not pyarrow's streaming readers: an ``open_csv`` that fails on its first block leaves a
        thread behind that aborts the interpreter at exit (pyarrow 22). The object is decoded
        whole before any of it is written in any case (see defs/ingest.py).
        """
        import pyarrow as pa

        try:
            if self.config.file_type == "csv":
                import pyarrow.csv as pcsv

                types = {field.name: field.type for field in schema} if schema is not None else None
                table = pcsv.read_csv(
                    pa.BufferReader(data),
                    read_options=pcsv.ReadOptions(block_size=SCHEMA_PROBE_BYTES),
                    convert_options=pcsv.ConvertOptions(column_types=types),
                )
            else:
                import pyarrow.json as pjson

                parse = (
                    pjson.ParseOptions(explicit_schema=schema, unexpected_field_behavior="infer")
                    if schema is not None
                    else None
                )
                table = pjson.read_json(
                    pa.BufferReader(data),
                    read_options=pjson.ReadOptions(block_size=SCHEMA_PROBE_BYTES),
                    parse_options=parse,
                )
        except (pa.ArrowException, OSError, ValueError) as exc:
            if _is_type_error(str(exc)):
                raise ValueConversionError(obj.key, str(exc), provider=self.type_name) from None
            raise

        def batches() -> Iterator[Any]:
            yield from rebatch(table.to_batches(), self.config.rows_per_record)

        return ObjectData(obj, table.schema, batches, None)

    def _checked(self, obj: S3Object, batches: Callable[[], Iterator[Any]]) -> Callable[[], Iterator[Any]]:
        """``batches`` with a failure part way through (a corrupt page) as ``ObjectSkipped``."""
        import pyarrow as pa

        def checked() -> Iterator[Any]:
            try:
                yield from batches()
            except (pa.ArrowException, OSError, ValueError) as exc:
                raise self._malformed(obj, exc) from None

        return checked

    def describe(self) -> dict[str, Any]:
        return {
            **super().describe(),
            "bucket": self.config.bucket,
            "path_prefix": self.config.path_prefix,
            "file_type": self.config.file_type,
        }


__all__ = [
    "ObjectData",
    "ObjectSourceConfig",
    "S3IngestConfig",
    "S3MetastoreConfig",
    "S3MetastoreConnector",
    "rebatch",
]
