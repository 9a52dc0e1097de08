"""The files under a prefix of a Google Cloud Storage bucket as a metastore (``type: gcs``): the
object-store source of ``metastores/s3.py`` on GCS.

Discovery, naming, schema detection and mismatch, data versions, batching, concurrency,
skip-and-warn and the incremental ingest with its crash-safe cursor are the S3 source's; this
module supplies what is GCS's: listing (``google-cloud-storage``'s ``list_blobs`` by page),
ranged downloads pinned to the listed generation (``ifGenerationMatch``: an object replaced since
listing is skipped and read on the next run), ``gs://`` locations, and GCS errors as floe's.

An object's version is its generation (it changes on every write, same bytes or not), so the data
version changes exactly when an object is added, replaced or removed.

Credentials (the Google kind of the metastore chokepoint, ``plugins/metastore_auth.py``): a
service-account key (``key_file`` or ``key_json``), application default credentials (nothing
set), or ``anonymous`` (an emulator). ``hmac_access_id`` / ``hmac_secret`` are GCS's HMAC keys
for DuckDB, which reads ``gs://`` through its httpfs (the S3-compatible XML API) only with them;
without them DuckDB reads through a registered gcsfs filesystem with the same credentials.
"""

from __future__ import annotations

import logging
import re
import threading
from datetime import UTC
from typing import Any, ClassVar, Literal, Self

from pydantic import ConfigDict, Field, SecretStr, field_validator, model_validator

from floe_dagster.core.compat import widen_connection_pool
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
from floe_dagster.plugins.base import PluginConfig, located_error
from floe_dagster.plugins.gcs_warehouse import gcs_endpoint

logger = logging.getLogger("floe_dagster.metastores.gcs")

_BUCKET = re.compile(r"^[a-z0-9][a-z0-9._-]{1,220}[a-z0-9]$")
_RANGE = re.compile(r"^bytes=(\d+)-(\d+)$")
DEFAULT_ENDPOINT = "https://storage.googleapis.com"

__all__ = ["GcsMetastoreConfig", "GcsMetastoreConnector"]


class GcsMetastoreConfig(ObjectSourceConfig):
    """A bucket prefix of Google Cloud Storage as a metastore."""

    credential_kind: ClassVar[Literal["thrift", "aws", "google", "azure"] | None] = "google"
    model_config = ConfigDict(hide_input_in_errors=True)

    bucket: str = Field(..., description="Bucket name (no gs:// and no path).")
    project: str | None = Field(
        None, description="Project id billed for requests (or GOOGLE_CLOUD_PROJECT); unset: the key's."
    )
    key_file: str | None = Field(None, description="Service-account key file (JSON). Unset: ADC.")
    key_json: SecretStr | None = Field(None, description="Service-account key JSON itself (use ${env:NAME}).")
    anonymous: bool = Field(False, description="No credentials: public buckets, or a local emulator.")
    hmac_access_id: str | None = Field(
        None, description="HMAC access id, for DuckDB's gs:// reads through the XML API."
    )
    hmac_secret: SecretStr | None = Field(None, description="HMAC secret (use ${env:NAME}).")
    endpoint: str | None = Field(
        None,
        description=(
            f"Storage endpoint override, e.g. an emulator's http://127.0.0.1:9023. Unset: {DEFAULT_ENDPOINT}."
        ),
    )
    max_attempts: int = Field(5, ge=1, le=20, description="Attempts per GCS call in all (5xx, 429 retried).")

    @field_validator("bucket")
    @classmethod
    def _check_bucket(cls, value: str) -> str:
        if "/" in value or "://" in value:
            raise ValueError("must be a bucket name only; put the path in path_prefix")
        if not _BUCKET.match(value) or ".." in value:
            raise ValueError("must be 3-222 characters of lowercase letters, digits, dots, - and _")
        return value

    @field_validator("endpoint")
    @classmethod
    def _check_endpoint(cls, value: str | None) -> str | None:
        return gcs_endpoint(value)

    @model_validator(mode="after")
    def _one_mode(self) -> Self:
        title = type(self).__name__
        if self.key_file is not None and self.key_json is not None:
            raise located_error(title, ("key_json",), "conflicts with key_file: set one of them")
        if self.anonymous and (self.key_file is not None or self.key_json is not None):
            raise located_error(title, ("anonymous",), "conflicts with key_file/key_json")
        if (self.hmac_access_id is None) != (self.hmac_secret is None):
            missing = "hmac_secret" if self.hmac_secret is None else "hmac_access_id"
            raise located_error(title, (missing,), "is required with the other HMAC field")
        return self

    @property
    def store_root(self) -> str:
        return self.bucket

    # what the Google credentials of the chokepoint take for storage
    @property
    def storage_endpoint(self) -> str | None:
        return self.endpoint

    @property
    def storage_project(self) -> str | None:
        return self.project

    @property
    def mode(self) -> str:
        if self.anonymous:
            return "anonymous"
        if self.key_json is not None:
            return "service_account (key_json)"
        if self.key_file is not None:
            return "service_account (key_file)"
        return "application_default"


class GcsMetastoreConnector(S3MetastoreConnector):
    """Tables discovered from object prefixes of one GCS bucket (the S3 source's rules)."""

    type_name: ClassVar[str] = "gcs"
    config_model = GcsMetastoreConfig  # type: ignore[assignment]
    config: GcsMetastoreConfig  # type: ignore[assignment]
    required_options: ClassVar[tuple[str, ...]] = ()
    env_options: ClassVar[dict[str, tuple[str, ...]]] = {
        "project": ("GOOGLE_CLOUD_PROJECT",),
        "key_file": ("GOOGLE_APPLICATION_CREDENTIALS",),
    }

    def __init__(self, name: str, config: PluginConfig) -> None:
        super().__init__(name, config)
        self._bucket_lock = threading.Lock()

    def _new_client(self) -> Any:
        """The bucket handle, with the chokepoint's Google credentials (``self.credentials``)."""
        from google.api_core.client_options import ClientOptions
        from google.cloud import storage

        auth = self.credentials.google_auth(self.name, self.type_name)  # ConfigurationError if unusable
        options = ClientOptions(api_endpoint=self.config.endpoint) if self.config.endpoint else None
        try:
            project = self.config.project or getattr(auth, "project_id", None) or "<none>"
            client = storage.Client(project=project, credentials=auth, client_options=options)
        except Exception as exc:
            raise self.map_error(exc, "connect", "credentials") from None
        # as many pooled connections as downloads in flight (requests keeps 10 and opens, then
        # drops, a new connection for every download past them)
        widen_connection_pool(client, max(10, self.config.max_in_flight or UNLIMITED_THREADS))
        return client.bucket(self.config.bucket)

    def _retry(self) -> Any:
        from google.api_core.retry import Retry

        # transient errors (5xx, 429, connection) retried for about max_attempts attempts
        return Retry(initial=0.2, maximum=2.0, multiplier=2.0, timeout=1.0 * (self.config.max_attempts - 1))

    def endpoint(self) -> str:
        return self.config.endpoint or DEFAULT_ENDPOINT

    def auth_strategy(self) -> str:
        return self.config.mode

    def location(self, key: str = "") -> str:
        return f"gs://{self.config.bucket}/{key}"

    def map_error(
        self, exc: Exception, operation: str, subject: str = "", listing: bool = False
    ) -> FloeError:
        """A GCS failure as floe's error, saying what to check; never a secret."""
        where = self.location(subject if subject != "credentials" else self.config.path_prefix)
        field = f"metastores.{self.name}.config"
        code = int(getattr(exc, "code", 0) or 0)
        name = type(exc).__name__
        if isinstance(exc, FloeError):
            return exc
        if code == 404 and listing:
            return NotFoundError(
                f"metastore '{self.name}': bucket '{self.config.bucket}' does not exist at"
                f" {self.endpoint()}; check {field}.bucket (and project, endpoint)",
                provider=self.type_name,
                operation=operation,
                retryable=False,
            )
        if code in (401, 403) or name in ("RefreshError", "Unauthorized", "Forbidden"):
            return AuthenticationError(
                f"metastore '{self.name}': access denied ({name}) on {where} during {operation}; check the"
                f" credentials (mode: {self.config.mode}) and that they have storage.objects.list and"
                f" storage.objects.get on bucket '{self.config.bucket}' (roles/storage.objectViewer)",
                provider=self.type_name,
                operation=operation,
            )
        if name == "DefaultCredentialsError":
            return ConfigurationError(
                f"metastore '{self.name}': no Google credentials found ({name}); set {field}.key_file or"
                " key_json, or run `gcloud auth application-default login`",
                provider=self.type_name,
                operation=operation,
            )
        if code >= 500 or code == 429 or name in ("ConnectionError", "ServiceUnavailable", "RetryError"):
            return UnavailableError(
                f"metastore '{self.name}': GCS at {self.endpoint()} is unavailable during {operation} on"
                f" {where} ({name}); check {field}.endpoint and the network",
                provider=self.type_name,
                operation=operation,
            )
        if code == 404:
            return NotFoundError(
                f"metastore '{self.name}': {where} not found during {operation}",
                provider=self.type_name,
                operation=operation,
            )
        message = f"metastore '{self.name}': {operation} on {where} failed: {name}"
        return MetastoreError(self.redact(message), provider=self.type_name, operation=operation)

    def list_objects(self, operation: str = "list_objects") -> list[S3Object]:
        """Every object under ``path_prefix`` that makes a table (``_listed``; paged)."""
        found: list[S3Object] = []
        try:
            bucket = self.client()
            iterator = bucket.client.list_blobs(
                bucket,
                prefix=self.config.path_prefix or None,
                page_size=self.page_size,
                retry=self._retry(),
                timeout=60,
            )
            for page in iterator.pages:
                self._count("list_objects")
                for blob in page:
                    key = str(blob.name)
                    if not self._listed(key):
                        continue
                    found.append(
                        S3Object(
                            key=key,
                            size=int(blob.size or 0),
                            etag=str(blob.generation or blob.etag or ""),
                            last_modified=blob.updated.astimezone(UTC),
                        )
                    )
        except FloeError:
            raise
        except Exception as exc:
            raise self.map_error(exc, operation, self.config.path_prefix, listing=True) from None
        return found

    def _get(self, obj: S3Object, byte_range: str | None = None) -> bytes:
        """The object's bytes (or a range) at its listed generation; ``ObjectSkipped`` when it
        is gone or was replaced since listing."""
        options: dict[str, Any] = {"retry": self._retry(), "timeout": 120}
        if obj.etag.isdigit():
            options["if_generation_match"] = int(obj.etag)
        if byte_range:
            found = _RANGE.match(byte_range)
            assert found is not None, byte_range
            options.update(start=int(found.group(1)), end=int(found.group(2)))
        self._count("get_object_range" if byte_range else "get_object")
        try:
            return bytes(self.client().blob(obj.key).download_as_bytes(**options))
        except Exception as exc:
            code = int(getattr(exc, "code", 0) or 0)
            if code == 404:
                raise ObjectSkipped(obj.key, "deleted since it was listed", provider=self.type_name) from None
            if code == 412:
                raise ObjectSkipped(
                    obj.key,
                    "replaced since it was listed; read on the next run",
                    changed=True,
                    provider=self.type_name,
                ) from None
            raise self.map_error(exc, "read_object", obj.key) from None

    def describe(self) -> dict[str, Any]:
        return {
            **super(S3MetastoreConnector, self).describe(),  # not the S3 source's own fields
            "bucket": self.config.bucket,
            "path_prefix": self.config.path_prefix,
            "file_type": self.config.file_type,
        }
