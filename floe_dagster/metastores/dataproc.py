"""Google Dataproc Metastore (``type: dataproc``): the service resolved through its API, then Thrift.

* Resolve: ``GetService`` of the Dataproc Metastore API (``google-cloud-dataproc-metastore``,
  REST transport) for ``projects/<project>/locations/<location>/services/<service>`` gives the
  service's Thrift ``endpointUri`` (once per connector). A service that is not ``ACTIVE`` is a
  retryable ``UnavailableError``; a gRPC-protocol service, a ``NotSupportedError``. Project,
  location (a region such as ``us-central1``: the form of the regional endpoint
  ``<region>-metastore.googleapis.com``) and service id are validated before any call; a bad
  one is an ``InvalidFieldError`` with the endpoint hint.
* Credentials (through the metastore chokepoint, ``plugins/factory.py`` and
  ``plugins/metastore_auth.py``, which hands the connector ``GoogleCredentials``): a
  service-account key (``key_file`` path or ``key_json`` secret), Application Default
  Credentials otherwise; ``anonymous: true`` only for a local emulator of the API.
* Tables: list namespaces, list tables, get table(s) and scans go through the Hive Metastore
  connector's Thrift path (``metastores/hive.py``, composed, not copied): the same mapping,
  batching, retries and data versions, under this provider's name (errors tagged and worded
  ``dataproc``, tables in the catalog named like the metastore): nothing user-visible says hive.
* Baseline: partition listing and table statistics are not supported: ``list_partitions`` and
  ``table_stats`` raise ``NotSupportedError(provider=dataproc, operation=...)``, never an empty
  answer; tables carry no statistics; scans read the whole table location.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, ClassVar, Literal, TypeVar

from pydantic import ConfigDict, Field, SecretStr, field_validator, model_validator

from floe_dagster.core.errors import (
    AuthenticationError,
    FloeError,
    InvalidFieldError,
    MetastoreError,
    NotFoundError,
    NotSupportedError,
    UnavailableError,
)
from floe_dagster.core.retry import retry_policy
from floe_dagster.metastores.hive import HiveMetastoreConfig, HiveMetastoreConnector
from floe_dagster.plugins.base import PluginConfig
from floe_dagster.plugins.metastore import Capability, MetastoreConnector, MetastoreUnavailableError
from floe_dagster.plugins.table_model import (
    Partition,
    PartitionPredicate,
    ScanDescription,
    Table,
    TableFilter,
    TableStats,
)

__all__ = [
    "DataprocMetastoreConfig",
    "DataprocMetastoreConnector",
]

logger = logging.getLogger("floe_dagster.metastores.dataproc")

PROVIDER = "dataproc"
API_HOST = "metastore.googleapis.com"
PERMISSION = "metastore.services.get"
_PROJECT = re.compile(r"^[a-z][a-z0-9-]{4,28}[a-z0-9]$")
_REGION = re.compile(r"^[a-z]+-[a-z]+\d+$")
_SERVICE = re.compile(r"^[a-z][a-z0-9-]{0,61}[a-z0-9]$")
_REGIONAL_HOST = re.compile(r"^(?:https?://)?([a-z0-9-]+)-metastore\.googleapis\.com(?::\d+)?/?$")
T = TypeVar("T")


def endpoint_hint(project: str, location: str, service: str) -> str:
    return (
        f"expected location = a region such as us-central1 or europe-west1 (regional endpoint"
        f" https://<region>-{API_HOST}), service = the service id (letters, digits, hyphens); the API"
        f" resource is https://{API_HOST}/v1/projects/{project or '<project>'}/locations/"
        f"{location or '<region>'}/services/{service or '<service>'}"
    )


class DataprocMetastoreConfig(PluginConfig):
    credential_kind: ClassVar[Literal["thrift", "aws", "google"] | None] = "google"
    model_config = ConfigDict(hide_input_in_errors=True)

    project: str | None = Field(None, description="Google Cloud project id (or GOOGLE_CLOUD_PROJECT).")
    location: str | None = Field(None, description="Region of the service, e.g. us-central1.")
    service: str | None = Field(None, description="Dataproc Metastore service id.")
    api_endpoint: str | None = Field(
        None,
        description=f"Dataproc Metastore API endpoint override (default https://{API_HOST}; a regional"
        " endpoint must name the same region as location).",
    )
    key_file: str | None = Field(None, description="Service-account key file (JSON). Unset: ADC.")
    key_json: SecretStr | None = Field(None, description="Service-account key JSON itself (a secret).")
    anonymous: bool = Field(False, description="No credentials: only for a local emulator of the API.")
    api_timeout_s: float = Field(30.0, gt=0, le=600, description="Seconds for one GetService call.")
    api_max_attempts: int = Field(4, ge=1, le=10, description="GetService attempts (5xx/429 retried).")
    backoff_s: float = Field(0.2, ge=0, le=60, description="Base of the exponential backoff (seconds).")
    backoff_max_s: float = Field(5.0, ge=0, le=300, description="Longest wait between two attempts.")
    # The Thrift side: as the hive connector's fields of the same name.
    connect_timeout_s: float = Field(5.0, gt=0, le=300)
    read_timeout_s: float = Field(60.0, gt=0, le=3600)
    retries: int = Field(3, ge=0, le=10)
    pool_size: int = Field(4, ge=1, le=64)
    batch_size: int = Field(500, ge=1, le=5000)
    iceberg_version: Literal["snapshot", "metadata_location"] = Field(
        "metadata_location",
        description="Data version of Iceberg tables; snapshot needs io_properties that reach gs://.",
    )
    io_properties: dict[str, SecretStr] = Field(default_factory=dict)
    debug: bool = Field(False, description="Print redacted diagnostics when the connector is built.")

    @model_validator(mode="after")
    def _check_names(self) -> DataprocMetastoreConfig:
        project, location, service = self.project or "", self.location or "", self.service or ""
        problems = []
        if self.project is not None and not _PROJECT.match(project):
            problems.append(f"project '{project}' is not a project id (6-30 lowercase letters, digits, -)")
        if self.location is not None and not _REGION.match(location):
            problems.append(f"location '{location}' is not a region")
        if self.service is not None and not _SERVICE.match(service):
            problems.append(f"service '{service}' is not a service id")
        if self.api_endpoint and self.location:
            regional = _REGIONAL_HOST.match(self.api_endpoint)
            if regional and regional.group(1) != self.location:
                problems.append(
                    f"api_endpoint is the regional endpoint of {regional.group(1)},"
                    f" not of location {location}"
                )
        if problems:
            raise ValueError("; ".join(problems) + "; " + endpoint_hint(project, location, service))
        if self.key_file is not None and self.key_json is not None:
            raise ValueError("set key_file or key_json, not both")
        if self.anonymous and (self.key_file or self.key_json):
            raise ValueError("anonymous excludes key_file and key_json")
        return self

    @field_validator("key_file")
    @classmethod
    def _key_file_exists(cls, value: str | None) -> str | None:
        if value is not None and not Path(value).expanduser().is_file():
            raise ValueError("is not a readable service-account key file")
        return value

    @property
    def service_name(self) -> str:
        return f"projects/{self.project}/locations/{self.location}/services/{self.service}"


def _transient(exc: BaseException) -> bool:
    from google.api_core import exceptions as gexc

    return isinstance(
        exc,
        gexc.ServiceUnavailable
        | gexc.InternalServerError
        | gexc.TooManyRequests
        | gexc.DeadlineExceeded
        | gexc.BadGateway
        | gexc.GatewayTimeout,
    ) or (isinstance(exc, OSError) or type(exc).__name__ in ("ConnectionError", "Timeout"))


class DataprocMetastoreConnector(MetastoreConnector):
    type_name: ClassVar[str] = PROVIDER
    config_model = DataprocMetastoreConfig
    config: DataprocMetastoreConfig
    capabilities = frozenset(
        {Capability.LIST_NAMESPACES, Capability.LIST_TABLES, Capability.GET_TABLE, Capability.GET_TABLES}
    )
    env_options: ClassVar[dict[str, tuple[str, ...]]] = {
        "project": ("GOOGLE_CLOUD_PROJECT",),
    }
    required_options: ClassVar[tuple[str, ...]] = ("project", "location", "service")

    def __init__(self, name: str, config: PluginConfig) -> None:
        super().__init__(name, config)
        for field in self.required_options:
            if not getattr(self.config, field):
                raise InvalidFieldError(
                    f"metastore '{name}' (provider dataproc), operation configure: missing required field"
                    f" '{field}'; {endpoint_hint('', '', '')}",
                    field=field,
                    provider=PROVIDER,
                    operation="configure",
                )
        self._lock = threading.Lock()
        self._hive: HiveMetastoreConnector | None = None
        self.endpoint_uri: str | None = None

    # -- the API: GetService -> Thrift endpoint ---------------------------------------------------

    def google_credentials(self) -> Any:
        """The google-auth credentials of the configured mode (no token is fetched here)."""
        return self.credentials.google_auth(self.name, PROVIDER)

    def api_client(self) -> Any:
        from google.api_core.client_options import ClientOptions
        from google.cloud import metastore_v1

        options = ClientOptions(api_endpoint=self.config.api_endpoint) if self.config.api_endpoint else None
        return metastore_v1.DataprocMetastoreClient(
            credentials=self.google_credentials(), transport="rest", client_options=options
        )

    def resolve_endpoint(self) -> str:
        """The service's Thrift endpoint URI (``GetService``, retried on 5xx/429 with jitter)."""
        if self.endpoint_uri is not None:
            return self.endpoint_uri
        client = self.api_client()
        name = self.config.service_name
        attempts = 0

        def once() -> Any:
            nonlocal attempts
            attempts += 1
            with self._lock:
                self.call_counts["GetService"] += 1
            return client.get_service(name=name, timeout=self.config.api_timeout_s, retry=None)

        retrying = retry_policy(
            attempts=self.config.api_max_attempts,
            retry_on=_transient,
            backoff_s=self.config.backoff_s,
            backoff_max_s=self.config.backoff_max_s,
        )
        try:
            service = retrying(once)
        except FloeError:
            raise
        except Exception as exc:
            raise self._map_api_error(exc, attempts) from None
        state = service.State(service.state).name
        if state != "ACTIVE":
            raise UnavailableError(
                f"dataproc metastore service {name} is {state}, not ACTIVE; retry when it is",
                provider=PROVIDER,
                operation="resolve_service",
                retryable=True,
            )
        protocol = service.hive_metastore_config.endpoint_protocol
        if getattr(protocol, "name", str(protocol)) == "GRPC":
            raise NotSupportedError(
                f"dataproc metastore service {name} uses the gRPC endpoint protocol; this connector speaks"
                " Thrift (create the service with endpoint protocol THRIFT)",
                provider=PROVIDER,
                operation="resolve_service",
            )
        uri = service.endpoint_uri
        if not uri.startswith("thrift://"):
            raise MetastoreError(
                f"dataproc metastore service {name} answered endpoint {uri!r}, not a thrift:// URI",
                provider=PROVIDER,
                operation="resolve_service",
                retryable=False,
            )
        self.endpoint_uri = uri
        logger.debug("metastore '%s': %s -> %s", self.name, name, uri)
        return str(uri)

    def _map_api_error(self, exc: Exception, attempts: int) -> FloeError:
        from google.api_core import exceptions as gexc

        name = self.config.service_name
        tags: dict[str, Any] = {"provider": PROVIDER, "operation": "resolve_service"}
        if isinstance(exc, gexc.NotFound):
            return NotFoundError(
                f"dataproc metastore service {name} not found; "
                + endpoint_hint(
                    self.config.project or "", self.config.location or "", self.config.service or ""
                ),
                retryable=False,
                **tags,
            )
        if isinstance(exc, gexc.PermissionDenied | gexc.Unauthenticated | gexc.Forbidden | gexc.Unauthorized):
            return AuthenticationError(
                f"dataproc metastore service {name}: access denied ({type(exc).__name__}); the credentials"
                f" ({self.credentials.mode}) need the IAM permission {PERMISSION}",
                retryable=False,
                **tags,
            )
        if isinstance(exc, gexc.InvalidArgument | gexc.BadRequest):
            return InvalidFieldError(
                f"dataproc metastore service {name} rejected: {exc.message}; "
                + endpoint_hint(
                    self.config.project or "", self.config.location or "", self.config.service or ""
                ),
                field="location",
                provider=PROVIDER,
                operation="resolve_service",
            )
        if _transient(exc):
            return MetastoreUnavailableError(
                f"dataproc metastore API at {self.config.api_endpoint or API_HOST} unavailable for {name}"
                f" after {attempts} attempt(s) ({type(exc).__name__})",
                attempts=attempts,
                **tags,
            )
        text = getattr(exc, "message", None) or str(exc)
        return MetastoreError(
            self.redact(f"dataproc metastore service {name}: {type(exc).__name__}: {text}"),
            retryable=False,
            **tags,
        )

    def hive(self) -> HiveMetastoreConnector:
        """The Thrift connector on the resolved endpoint (built once)."""
        if self._hive is None:
            uri = self.resolve_endpoint()
            config = HiveMetastoreConfig.model_validate(
                {
                    "uri": uri,
                    **{
                        field: getattr(self.config, field)
                        for field in (
                            "connect_timeout_s",
                            "read_timeout_s",
                            "retries",
                            "backoff_s",
                            "backoff_max_s",
                            "pool_size",
                            "batch_size",
                            "iceberg_version",
                            "io_properties",
                        )
                    },
                }
            )
            self._hive = _DataprocThrift(self.name, config)
            self._hive.call_counts = self.call_counts  # one counter: API and Thrift calls
            self._hive.data_version_policy = self.data_version_policy  # the manifest's data_version
        return self._hive

    def _tagged(self, call: Callable[[], T]) -> T:
        try:
            return call()
        except FloeError as exc:
            raise _retag(exc) from None

    # -- the contract (baseline) ------------------------------------------------------------------

    def list_namespaces(self) -> list[str]:
        return self._tagged(lambda: self.hive().list_namespaces())

    def list_tables(self, namespace: str) -> list[str]:
        return self._tagged(lambda: self.hive().list_tables(namespace))

    def get_table(self, namespace: str, table: str) -> Table:
        return _baseline(self._tagged(lambda: self.hive().get_table(namespace, table)))

    def get_tables(self, namespace: str, names: Sequence[str]) -> list[Table]:
        return [_baseline(t) for t in self._tagged(lambda: self.hive().get_tables(namespace, names))]

    def get_tables_or_errors(self, namespace: str, names: Sequence[str]) -> list[Table | FloeError]:
        results = self._tagged(lambda: self.hive().get_tables_or_errors(namespace, names))
        return [_baseline(r) if isinstance(r, Table) else _retag(r) for r in results]

    def describe_scans(self, namespace: str, names: Sequence[str]) -> list[ScanDescription | FloeError]:
        results = self._tagged(lambda: self.hive().describe_scans(namespace, names))
        return [_retag(r) if isinstance(r, FloeError) else r for r in results]

    def scan(self, table_filter: TableFilter, batch_size: int = 100) -> Iterable[Table]:
        hive = self._tagged(self.hive)
        try:
            for table in hive.scan(table_filter, batch_size):
                yield _baseline(table)
        except FloeError as exc:
            raise _retag(exc) from None
        finally:
            self.scan_problems = [_retag(p) for p in hive.scan_problems]

    def list_partitions(
        self, namespace: str, table: str, predicates: Sequence[PartitionPredicate] = ()
    ) -> list[Partition]:
        raise self.not_supported("list_partitions", " in the Dataproc Metastore baseline")

    def table_stats(self, namespace: str, table: str) -> TableStats:
        raise self.not_supported("table_stats", " in the Dataproc Metastore baseline")

    def close(self) -> None:
        if self._hive is not None:
            self._hive.close()

    def __enter__(self) -> DataprocMetastoreConnector:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- diagnostics ------------------------------------------------------------------------------

    def endpoint(self) -> str:
        api = self.config.api_endpoint or f"https://{API_HOST}"
        resolved = f" -> {self.endpoint_uri}" if self.endpoint_uri else ""
        return f"{api}/v1/{self.config.service_name}{resolved}"

    def auth_strategy(self) -> str:
        return str(self.credentials.mode)

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "service": self.config.service_name}


class _DataprocThrift(HiveMetastoreConnector):
    """The Hive Metastore Thrift path under the dataproc provider name (errors, messages)."""

    type_name: ClassVar[str] = PROVIDER


def _retag(exc: FloeError) -> FloeError:
    exc.provider = PROVIDER
    return exc


def _baseline(table: Table) -> Table:
    """The table without statistics (unsupported in the baseline)."""
    return replace(table, stats=TableStats())
