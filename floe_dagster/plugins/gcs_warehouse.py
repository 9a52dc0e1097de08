"""An Iceberg warehouse on Google Cloud Storage (``gs://<bucket>/<path>``): the credential fields
of a catalog's ``gcs`` block and the one place that turns them into PyIceberg FileIO properties.

PyIceberg reads and writes the warehouse through its fsspec FileIO with ``gcsfs``
(``py-io-impl: pyiceberg.io.fsspec.FsspecFileIO``): unlike PyArrow's ``GcsFileSystem`` it takes an
anonymous mode (public buckets, a local emulator) as well as a service-account key file, an
OAuth2 access token and Application Default Credentials.

One credential mode, by which fields are set: ``anonymous: true``; ``key_file`` (a service-account
key file, loaded by gcsfs); ``access_token`` (an OAuth2 access token, ``SecretStr``; it is not
renewed); nothing: Application Default Credentials. :class:`GcsWarehouseCredentials` is the only
code that unwraps the token; nothing here logs or formats it.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal, Self

from pydantic import ConfigDict, Field, SecretStr, field_validator, model_validator

from floe_dagster.core.errors import ConfigurationError
from floe_dagster.plugins.base import PluginConfig, http_endpoint, located_error

__all__ = ["GcsWarehouseConfig", "GcsWarehouseCredentials"]


def gcs_endpoint(value: str | None) -> str | None:
    """A GCS endpoint (an emulator's, a private one): an http(s) URL without credentials, no
    trailing slash; None stays None. The GCS source and the GCS warehouse both check it so."""
    return http_endpoint(value, "http://127.0.0.1:9023")


class GcsWarehouseConfig(PluginConfig):
    """The project, the endpoint and one credential mode of a warehouse on GCS."""

    credential_kind: ClassVar[Literal["thrift", "aws", "google", "azure"] | None] = "google"
    model_config = ConfigDict(hide_input_in_errors=True)

    project: str | None = Field(None, description="Project id billed for requests. Unset: the credentials'.")
    key_file: str | None = Field(None, description="Service-account key file (JSON). Unset: ADC.")
    access_token: SecretStr | None = Field(
        None, min_length=1, description="An OAuth2 access token (use ${env:NAME}); not renewed."
    )
    anonymous: bool = Field(False, description="No credentials: public buckets, or a local emulator.")
    endpoint: str | None = Field(
        None,
        description=(
            "Storage endpoint override, e.g. an emulator's http://127.0.0.1:9023."
            " Unset: https://storage.googleapis.com."
        ),
    )

    @field_validator("endpoint")
    @classmethod
    def _check_endpoint(cls, value: str | None) -> str | None:
        return gcs_endpoint(value)

    @model_validator(mode="after")
    def _one_mode(self) -> Self:
        title = type(self).__name__
        set_fields = [
            name
            for name, value in (
                ("anonymous", self.anonymous or None),
                ("key_file", self.key_file),
                ("access_token", self.access_token),
            )
            if value is not None
        ]
        if len(set_fields) > 1:
            raise located_error(
                title, (set_fields[1],), f"conflicts with {set_fields[0]}: set one credential mode"
            )
        return self

    @property
    def mode(self) -> str:
        if self.anonymous:
            return "anonymous"
        if self.key_file is not None:
            return "service_account (key_file)"
        if self.access_token is not None:
            return "access_token"
        return "application_default"


class GcsWarehouseCredentials:
    """Unwraps a :class:`GcsWarehouseConfig` into PyIceberg's ``gcs.*`` FileIO properties."""

    def __init__(self, config: GcsWarehouseConfig) -> None:
        self.config = config

    def __repr__(self) -> str:
        return f"GcsWarehouseCredentials(mode={self.config.mode!r})"

    def _token(self) -> str:
        """gcsfs's ``token``: ``anon``, a key file's path, the access token, or ``google_default``."""
        config = self.config
        if config.anonymous:
            return "anon"
        if config.key_file is not None:
            return config.key_file  # gcsfs loads a service-account key from the file
        if config.access_token is not None:
            return config.access_token.get_secret_value()
        return "google_default"

    def file_io_properties(self) -> dict[str, str]:
        """``py-io-impl`` (fsspec + gcsfs) and the ``gcs.*`` properties; they may hold the token."""
        config = self.config
        props = {"py-io-impl": "pyiceberg.io.fsspec.FsspecFileIO", "gcs.oauth2.token": self._token()}
        if config.project:
            props["gcs.project-id"] = config.project
        if config.endpoint:
            props["gcs.service.host"] = config.endpoint
        return props

    def duckdb_filesystem(self) -> Any:
        """A gcsfs filesystem with these credentials, for DuckDB to register: DuckDB's own gs://
        support (httpfs) takes HMAC keys only and always goes to storage.googleapis.com."""
        try:  # gcsfs.core's filesystem, not the package's experimental default (see metastore_auth.py)
            from gcsfs.core import GCSFileSystem
        except ImportError:
            raise ConfigurationError(
                "a warehouse on GCS (the catalog's gcs block) needs gcsfs: pip install 'floe-dagster[gcs]'",
                provider="gcs",
                operation="connect",
            ) from None

        options: dict[str, Any] = {"token": self._token(), "project": self.config.project}
        if self.config.endpoint:
            options["endpoint_url"] = self.config.endpoint
        return GCSFileSystem(**options)

    def secret_values(self) -> list[str]:
        token = self.config.access_token
        return [token.get_secret_value()] if token is not None else []
