"""The files under a prefix of an Azure Blob Storage / ADLS Gen2 container as a metastore
(``type: azure``): the object-store source of ``metastores/s3.py`` on Azure.

Discovery, table naming, schema detection and mismatch, data versions, batching, concurrency,
skip-and-warn and the incremental ingest with its crash-safe cursor are the S3 source's
(``S3MetastoreConnector``, with ``metastores/object_tables.py``); this module supplies only what
is Azure's: listing blobs (``list_blobs`` by page), ranged downloads guarded by the listed ETag
(``If-Match``: a blob replaced since listing is skipped and read on the next run), locations
(``az://<container>/<key>``) and Azure's errors as floe's, saying what to fix.

Credentials (``plugins/azure.py``, through the metastore chokepoint): a connection string, an
account key, a SAS token, a service principal (``AZURE_CLIENT_ID`` / ``AZURE_CLIENT_SECRET`` /
``AZURE_TENANT_ID``) or the default chain. ADLS Gen2 accounts (hierarchical namespace) answer the
same Blob API, so ``abfss://`` data is read here too.
"""

from __future__ import annotations

import logging
import re
import threading
from datetime import UTC, datetime
from typing import Any, ClassVar

from pydantic import Field, field_validator

from floe_dagster.core.errors import (
    AuthenticationError,
    ConfigurationError,
    FloeError,
    MetastoreError,
    NotFoundError,
    UnavailableError,
)
from floe_dagster.core.parallel import UNLIMITED_THREADS
from floe_dagster.metastores.object_tables import ObjectSkipped, S3Object
from floe_dagster.metastores.s3 import ObjectSourceConfig, S3MetastoreConnector
from floe_dagster.plugins.azure import (
    AZURE_ENV,
    AzureCredentialsConfig,
    azure_error_class,
    azure_error_code,
)
from floe_dagster.plugins.base import PluginConfig
from floe_dagster.plugins.redaction import MASK

logger = logging.getLogger("floe_dagster.metastores.azure_blob")

_CONTAINER = re.compile(r"^(?=.{3,63}$)[a-z0-9]+(-[a-z0-9]+)*$")
_RANGE = re.compile(r"^bytes=(\d+)-(\d+)$")
# What Azure says when a SAS token has expired or is not yet valid.
_SAS_TIME = ("signed expiry time", "not valid in the specified time", "expired")

__all__ = ["AzureBlobMetastoreConfig", "AzureBlobMetastoreConnector"]


class AzureBlobMetastoreConfig(AzureCredentialsConfig, ObjectSourceConfig):
    """A container prefix of Azure Blob Storage / ADLS Gen2 as a metastore."""

    container: str = Field(..., description="Container (ADLS Gen2: file system) name, no az:// and no path.")

    @field_validator("container")
    @classmethod
    def _check_container(cls, value: str) -> str:
        if "/" in value or "://" in value:
            raise ValueError("must be a container name only; put the path in path_prefix")
        if not _CONTAINER.match(value):
            raise ValueError(
                "must be 3-63 characters of lowercase letters, digits and single hyphens (Azure's rule)"
            )
        return value

    @property
    def store_root(self) -> str:
        return self.container


class AzureBlobMetastoreConnector(S3MetastoreConnector):
    """Tables discovered from blob prefixes of one container (the S3 source's rules)."""

    type_name: ClassVar[str] = "azure"
    config_model = AzureBlobMetastoreConfig  # type: ignore[assignment]
    config: AzureBlobMetastoreConfig  # type: ignore[assignment]
    required_options: ClassVar[tuple[str, ...]] = ()
    env_options: ClassVar[dict[str, tuple[str, ...]]] = AZURE_ENV

    def __init__(self, name: str, config: PluginConfig) -> None:
        super().__init__(name, config)
        self._service_lock = threading.Lock()

    # -- client and errors --

    def _new_client(self) -> Any:
        """The container client, with the chokepoint's credentials (``self.credentials``)."""
        mask_sas_signatures_in_request_logs()
        pool = self.config.max_in_flight or UNLIMITED_THREADS
        try:
            service = self.credentials.blob_service(pool=max(10, pool))
            return service.get_container_client(self.config.container)
        except FloeError:
            raise
        except Exception as exc:  # a malformed connection string, azure-identity set-up
            raise self.map_error(exc, "connect", "credentials") from None

    def endpoint(self) -> str:
        return str(self.config.account_url())

    def auth_strategy(self) -> str:
        return str(self.config.mode)

    def location(self, key: str = "") -> str:
        return f"az://{self.config.container}/{key}"

    def map_error(
        self, exc: Exception, operation: str, subject: str = "", listing: bool = False
    ) -> FloeError:
        """An Azure failure as floe's error, saying what to check; never a secret."""
        where = self.location(subject if subject != "credentials" else self.config.path_prefix)
        code = azure_error_code(exc)
        target = azure_error_class(exc) or MetastoreError
        mode = self.config.mode
        field = f"metastores.{self.name}.config"
        text = str(getattr(exc, "message", "") or exc).lower()
        if code == "ContainerNotFound" or (target is NotFoundError and listing):
            return NotFoundError(
                f"metastore '{self.name}': container '{self.config.container}' does not exist in"
                f" storage account '{self.config.account()}' at {self.endpoint()}; check"
                f" {field}.container and account_name",
                provider=self.type_name,
                operation=operation,
                retryable=False,
            )
        if code in ("AccountNotFound", "InvalidResourceName") or (
            target is UnavailableError and "name or service not known" in text
        ):
            return NotFoundError(
                f"metastore '{self.name}': storage account '{self.config.account()}' was not found at"
                f" {self.endpoint()}; check {field}.account_name (and endpoint)",
                provider=self.type_name,
                operation=operation,
                retryable=False,
            )
        if target is AuthenticationError:
            expiry = self.config.sas_expiry()
            if expiry is not None and expiry <= datetime.now(UTC):
                hint = (
                    f"the SAS token has expired (at {expiry.isoformat()}): issue a new one and set"
                    f" {field}.{mode}"
                )
            elif mode == "sas_token" and any(marker in text for marker in _SAS_TIME):
                hint = (
                    "the SAS token has expired (or is not valid yet): issue a new one and set"
                    f" {field}.sas_token"
                )
            elif code == "AuthorizationPermissionMismatch":
                hint = (
                    f"the credentials (mode: {mode}) lack a permission: allow list (l) and read (r) on"
                    f" container '{self.config.container}'"
                )
            elif mode == "sas_token":
                hint = (
                    f"check {field}.sas_token: it must be for account '{self.config.account()}', unexpired,"
                    " and allow list (l) and read (r) on the container"
                )
            elif mode in ("account_key", "connection_string"):
                hint = (
                    f"check {field}.{mode}: the key must be one of account '{self.config.account()}''s"
                    " access keys (a wrong account or a rotated key fails here)"
                )
            else:
                hint = (
                    f"check the credentials (mode: {mode}) and that the identity has the Storage Blob"
                    f" Data Reader role on container '{self.config.container}'"
                )
            return AuthenticationError(
                f"metastore '{self.name}': access denied ({code or type(exc).__name__}) on {where} during"
                f" {operation}; {hint}",
                provider=self.type_name,
                operation=operation,
            )
        if target is ConfigurationError:
            return ConfigurationError(
                f"metastore '{self.name}': no usable Azure credentials ({type(exc).__name__}); set"
                " connection_string, account_key, sas_token, or a service principal (client_id,"
                " client_secret, tenant_id / AZURE_CLIENT_ID, AZURE_CLIENT_SECRET, AZURE_TENANT_ID)",
                provider=self.type_name,
                operation=operation,
            )
        if issubclass(target, UnavailableError):
            return UnavailableError(
                f"metastore '{self.name}': Azure Blob Storage at {self.endpoint()} is unavailable during"
                f" {operation} on {where} ({code or type(exc).__name__}, after {self.config.max_attempts}"
                f" attempt(s)); check {field}.endpoint / account_name and the network",
                provider=self.type_name,
                operation=operation,
            )
        message = f"metastore '{self.name}': {operation} on {where} failed: {code or type(exc).__name__}"
        return target(self.redact(message), provider=self.type_name, operation=operation)

    # -- discovery --

    def list_objects(self, operation: str = "list_objects") -> list[S3Object]:
        """Every blob under ``path_prefix`` that makes a table (``_listed``; paged)."""
        found: list[S3Object] = []
        try:
            pages = (
                self.client()
                .list_blobs(
                    name_starts_with=self.config.path_prefix or None,
                    results_per_page=self.page_size,
                )
                .by_page()
            )
            for page in pages:
                self._count("list_objects")
                for blob in page:
                    key = str(blob.name)
                    if not self._listed(key):
                        continue
                    found.append(
                        S3Object(
                            key=key,
                            size=int(blob.size),
                            etag=str(blob.etag or "").strip('"'),
                            last_modified=blob.last_modified.astimezone(UTC),
                        )
                    )
        except FloeError:
            raise
        except Exception as exc:
            raise self.map_error(exc, operation, self.config.path_prefix, listing=True) from None
        return found

    # -- reading objects --

    def _get(self, obj: S3Object, byte_range: str | None = None) -> bytes:
        """The blob's bytes (or a range); ``ObjectSkipped`` when it is gone or changed since listing."""
        from azure.core import MatchConditions
        from azure.core.exceptions import ResourceModifiedError, ResourceNotFoundError

        options: dict[str, Any] = {}
        if obj.etag:
            options.update(etag=f'"{obj.etag}"', match_condition=MatchConditions.IfNotModified)
        if byte_range:
            found = _RANGE.match(byte_range)
            assert found is not None, byte_range
            first, last = int(found.group(1)), int(found.group(2))
            options.update(offset=first, length=last - first + 1)
        self._count("get_object_range" if byte_range else "get_object")
        try:
            return bytes(self.client().download_blob(obj.key, **options).readall())
        except ResourceNotFoundError as exc:
            if azure_error_code(exc) in ("ContainerNotFound",):
                raise self.map_error(exc, "read_object", obj.key) from None
            raise ObjectSkipped(obj.key, "deleted since it was listed", provider=self.type_name) from None
        except ResourceModifiedError:
            raise self._changed(obj) from None
        except FloeError:
            raise
        except Exception as exc:
            if azure_error_code(exc) == "ConditionNotMet":
                raise self._changed(obj) from None
            raise self.map_error(exc, "read_object", obj.key) from None

    def _changed(self, obj: S3Object) -> ObjectSkipped:
        """The ETag no longer matches (412): the blob was replaced, or deleted (Azure answers a
        conditional read of a deleted blob with 412 too; one properties call tells them apart)."""
        from azure.core.exceptions import ResourceNotFoundError

        try:
            self.client().get_blob_client(obj.key).get_blob_properties()
        except ResourceNotFoundError:
            return ObjectSkipped(obj.key, "deleted since it was listed", provider=self.type_name)
        except Exception:  # the skip stands; only its reason is less precise
            pass
        return ObjectSkipped(
            obj.key,
            "replaced since it was listed; read on the next run",
            changed=True,
            provider=self.type_name,
        )

    def describe(self) -> dict[str, Any]:
        return {
            **super(S3MetastoreConnector, self).describe(),  # not the S3 source's bucket
            "account": self.config.account(),
            "container": self.config.container,
            "path_prefix": self.config.path_prefix,
            "file_type": self.config.file_type,
        }


# urllib3 (the Azure SDK's transport) logs every request line at DEBUG, query string included: a
# SAS token's signature (``sig=``) would be in the log of every listing and download.
_SAS_SIGNATURE = re.compile(r"([?&]sig=)[^&\s\"']+", re.IGNORECASE)
_REQUEST_LOGGERS = ("urllib3.connectionpool",)


class _SasSignatureMask(logging.Filter):
    """Masks SAS signatures in request URLs of urllib3's DEBUG records before any handler sees them."""

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        masked = _SAS_SIGNATURE.sub(rf"\g<1>{MASK}", text)
        if masked != text:
            record.msg, record.args = masked, None
        return True


def mask_sas_signatures_in_request_logs() -> None:
    """Idempotent; called before any blob client is built."""
    for name in _REQUEST_LOGGERS:
        target = logging.getLogger(name)
        if not any(isinstance(f, _SasSignatureMask) for f in target.filters):
            target.addFilter(_SasSignatureMask())
