"""Azure Blob Storage / ADLS Gen2 for every plugin that reads it: the shared credential fields,
the one resolver that turns them into SDK credentials and DuckDB secrets, and error mapping.

One credential mode, by which fields are set (first match wins):

* ``connection_string`` (it carries the account and its key or SAS);
* ``account_key`` (with ``account_name``);
* ``sas_token`` (with ``account_name``); a leading ``?`` is dropped;
* a service principal: ``client_id`` + ``client_secret`` + ``tenant_id``; by default read from
  ``AZURE_CLIENT_ID`` / ``AZURE_CLIENT_SECRET`` / ``AZURE_TENANT_ID`` through the metastore
  chokepoint (``plugins/factory.py``), so they are ignored when an explicit credential above is set;
* nothing: ``azure.identity.DefaultAzureCredential`` (managed identity, Azure CLI, ...).

Every secret is a ``SecretStr``; :class:`AzureCredentials` is the only code that unwraps them
(the metastore chokepoint, ``plugins/metastore_auth.py``, hands it to the connector). Nothing
here logs or formats a secret.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, ClassVar, Literal, Self
from urllib.parse import parse_qsl, urlsplit

from pydantic import ConfigDict, Field, SecretStr, field_validator, model_validator

from floe_dagster.core.compat import pooled_azure_transport
from floe_dagster.core.errors import (
    AuthenticationError,
    ConfigurationError,
    FloeError,
    NotFoundError,
    UnavailableError,
)
from floe_dagster.plugins.base import PluginConfig, http_endpoint, located_error

__all__ = [
    "AZURE_ENV",
    "AzureCredentials",
    "AzureCredentialsConfig",
    "azure_error_class",
    "azure_error_code",
    "blob_path",
]

# The service principal's fields and the environment variables the Azure SDKs read for them.
AZURE_ENV: dict[str, tuple[str, ...]] = {
    "client_id": ("AZURE_CLIENT_ID",),
    "client_secret": ("AZURE_CLIENT_SECRET",),
    "tenant_id": ("AZURE_TENANT_ID",),
}
_ACCOUNT = re.compile(r"^[a-z0-9]{3,24}$")
_SAS_KEYS = ("sig=", "se=")
AZURE_SCHEMES = ("az", "azure", "abfss", "abfs", "wasbs", "wasb")

AzureMode = Literal["connection_string", "account_key", "sas_token", "service_principal", "default"]


class AzureCredentialsConfig(PluginConfig):
    """The storage account and one credential mode (see the module docstring)."""

    credential_kind: ClassVar[Literal["thrift", "aws", "google", "azure"] | None] = "azure"
    model_config = ConfigDict(hide_input_in_errors=True)

    account_name: str | None = Field(
        None, description="Storage account name, e.g. mydatalake (not needed with connection_string)."
    )
    account_key: SecretStr | None = Field(None, min_length=1, description="Account key (use ${env:NAME}).")
    sas_token: SecretStr | None = Field(
        None, min_length=1, description="Shared access signature (account or container SAS; use ${env:NAME})."
    )
    connection_string: SecretStr | None = Field(
        None, min_length=1, description="Storage connection string (use ${env:NAME})."
    )
    client_id: str | None = Field(
        None,
        min_length=1,
        description="Service principal: application (client) id. Default: AZURE_CLIENT_ID.",
    )
    client_secret: SecretStr | None = Field(
        None, min_length=1, description="Service principal: client secret. Default: AZURE_CLIENT_SECRET."
    )
    tenant_id: str | None = Field(
        None, min_length=1, description="Service principal: tenant (directory) id. Default: AZURE_TENANT_ID."
    )
    endpoint: str | None = Field(
        None,
        description=(
            "Blob endpoint override, http(s)://host[:port][/account] (Azurite, sovereign clouds)."
            " Unset: https://<account_name>.blob.core.windows.net."
        ),
    )
    max_attempts: int = Field(
        5, ge=1, le=20, description="Attempts per Azure call in all (retries of 5xx and connection errors)."
    )

    @field_validator("account_name")
    @classmethod
    def _check_account(cls, value: str | None) -> str | None:
        if value is not None and not _ACCOUNT.match(value):
            raise ValueError("must be a storage account name: 3-24 lowercase letters and digits")
        return value

    @field_validator("endpoint")
    @classmethod
    def _check_endpoint(cls, value: str | None) -> str | None:
        return http_endpoint(value, "http://127.0.0.1:10000/devstoreaccount1", "put a SAS in sas_token")

    @model_validator(mode="after")
    def _one_mode(self) -> Self:
        title = type(self).__name__
        if self.connection_string is not None:
            for name in ("account_key", "sas_token"):
                if getattr(self, name) is not None:
                    raise located_error(
                        title, (name,), "conflicts with connection_string (it carries the credential)"
                    )
            return self
        if self.account_name is None:
            raise located_error(
                title, ("account_name",), "is required (or set connection_string): the storage account"
            )
        if self.account_key is not None and self.sas_token is not None:
            raise located_error(title, ("sas_token",), "conflicts with account_key: set one of them")
        if self.sas_token is not None:
            token = self.sas_token.get_secret_value().lstrip("?")
            if not all(key in token for key in _SAS_KEYS):
                raise located_error(
                    title, ("sas_token",), "is not a SAS token (it needs the se= expiry and sig= signature)"
                )
        if self.mode == "service_principal":
            for name in ("client_id", "client_secret", "tenant_id"):
                if getattr(self, name) is None:
                    raise located_error(
                        title,
                        (name,),
                        f"is required for a service principal (or set AZURE_{name.upper()}),"
                        " with client_id, client_secret and tenant_id",
                    )
        return self

    @property
    def mode(self) -> AzureMode:
        if self.connection_string is not None:
            return "connection_string"
        if self.account_key is not None:
            return "account_key"
        if self.sas_token is not None:
            return "sas_token"
        if self.client_id is not None or self.client_secret is not None or self.tenant_id is not None:
            return "service_principal"
        return "default"

    def sas_expiry(self) -> datetime | None:
        """When the SAS token (or the connection string's) expires, from its ``se=`` field."""
        token = ""
        if self.sas_token is not None:
            token = self.sas_token.get_secret_value()
        elif self.connection_string is not None:
            token = _connection_parts(self.connection_string.get_secret_value()).get(
                "sharedaccesssignature", ""
            )
        for key, value in parse_qsl(token.lstrip("?")):
            if key == "se":
                try:
                    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
                except ValueError:
                    return None
                return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
        return None

    def account(self) -> str:
        """The storage account (from the connection string when that is the mode)."""
        if self.account_name is not None:
            return self.account_name
        assert self.connection_string is not None
        parts = _connection_parts(self.connection_string.get_secret_value())
        return parts.get("accountname", "")

    def account_url(self) -> str:
        if self.endpoint is not None:
            return self.endpoint
        if self.connection_string is not None:
            parts = _connection_parts(self.connection_string.get_secret_value())
            if "blobendpoint" in parts:
                return parts["blobendpoint"].rstrip("/")
            suffix = parts.get("endpointsuffix", "core.windows.net")
            protocol = parts.get("defaultendpointsprotocol", "https")
            return f"{protocol}://{self.account()}.blob.{suffix}"
        return f"https://{self.account()}.blob.core.windows.net"


def _connection_parts(text: str) -> dict[str, str]:
    parts: dict[str, str] = {}
    for item in text.split(";"):
        if "=" in item:
            key, value = item.split("=", 1)
            parts[key.strip().lower()] = value.strip()
    return parts


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


class AzureCredentials:
    """The Azure credentials of one plugin: SDK clients and DuckDB secrets from one config."""

    # the DuckDB schemes these credentials serve (readers/duckdb_scan.py scopes the secret to them)
    duckdb_schemes = AZURE_SCHEMES

    def __init__(self, source: AzureCredentialsConfig) -> None:
        self.config = source

    @property
    def mode(self) -> str:
        return self.config.mode

    def token_credential(self) -> Any:
        """The azure-identity / azure-core credential object of this mode (no token fetched)."""
        config = self.config
        if config.mode == "account_key":
            from azure.core.credentials import AzureNamedKeyCredential

            assert config.account_key is not None
            return AzureNamedKeyCredential(config.account(), config.account_key.get_secret_value())
        if config.mode == "sas_token":
            from azure.core.credentials import AzureSasCredential

            assert config.sas_token is not None
            return AzureSasCredential(config.sas_token.get_secret_value().lstrip("?"))
        if config.mode == "service_principal":
            from azure.identity import ClientSecretCredential

            assert config.client_secret is not None and config.tenant_id and config.client_id
            return ClientSecretCredential(
                config.tenant_id, config.client_id, config.client_secret.get_secret_value()
            )
        if config.mode == "default":
            from azure.identity import DefaultAzureCredential

            return DefaultAzureCredential()
        return None

    def blob_service(self, pool: int = 10) -> Any:
        """An ``azure.storage.blob.BlobServiceClient`` with these credentials, keeping ``pool``
        connections to the account (one per download in flight)."""
        from azure.storage.blob import BlobServiceClient

        timeouts = {"connection_timeout": 10, "read_timeout": 60}
        options: dict[str, Any] = {
            "retry_total": self.config.max_attempts - 1,
            "transport": pooled_azure_transport(pool, **timeouts),
            **timeouts,
        }
        if self.config.mode == "connection_string":
            assert self.config.connection_string is not None
            return BlobServiceClient.from_connection_string(
                self.config.connection_string.get_secret_value(), **options
            )
        return BlobServiceClient(self.config.account_url(), credential=self.token_credential(), **options)

    def duckdb_secret_sql(self, name: str, scopes: Sequence[str] = ()) -> str:
        """``CREATE OR REPLACE SECRET`` (TYPE azure) for DuckDB's azure extension, scoped to
        ``scopes`` (``az://<container>`` prefixes). It holds the secret: run it, never log it."""
        config = self.config
        options: list[str]
        if config.mode in ("connection_string", "account_key", "sas_token"):
            options = ["PROVIDER config", f"CONNECTION_STRING {_literal(self.connection_string())}"]
        elif config.mode == "service_principal":
            assert config.client_secret is not None
            options = [
                "PROVIDER service_principal",
                f"TENANT_ID {_literal(str(config.tenant_id))}",
                f"CLIENT_ID {_literal(str(config.client_id))}",
                f"CLIENT_SECRET {_literal(config.client_secret.get_secret_value())}",
                f"ACCOUNT_NAME {_literal(config.account())}",
            ]
        else:
            options = ["PROVIDER credential_chain", f"ACCOUNT_NAME {_literal(config.account())}"]
        if scopes:
            options.append(f"SCOPE [{', '.join(_literal(scope) for scope in scopes)}]")
        return f"CREATE OR REPLACE SECRET {name} (TYPE azure, {', '.join(options)})"

    def connection_string(self) -> str:
        """A connection string for the key, SAS or connection-string modes (holds the secret)."""
        config = self.config
        if config.connection_string is not None:
            return config.connection_string.get_secret_value()
        parts = urlsplit(config.account_url())
        fields = [
            f"DefaultEndpointsProtocol={parts.scheme}",
            f"AccountName={config.account()}",
            f"BlobEndpoint={config.account_url()}",
        ]
        if config.account_key is not None:
            fields.append(f"AccountKey={config.account_key.get_secret_value()}")
        elif config.sas_token is not None:
            fields.append(f"SharedAccessSignature={config.sas_token.get_secret_value().lstrip('?')}")
        else:
            raise ConfigurationError(
                f"azure credentials of mode {config.mode} make no connection string",
                provider="azure",
                operation="connect",
            )
        return ";".join(fields)

    def file_io_properties(self) -> dict[str, str]:
        """PyIceberg FileIO properties (``adls.*``, PyArrow's AzureFileSystem) for tables whose
        warehouse is ``abfss://<container>/<path>`` on this account. They hold the secret."""
        config = self.config
        props = {
            "py-io-impl": "pyiceberg.io.pyarrow.PyArrowFileIO",
            "adls.account-name": config.account(),
        }
        parts = (
            _connection_parts(config.connection_string.get_secret_value()) if config.connection_string else {}
        )
        key = config.account_key.get_secret_value() if config.account_key else parts.get("accountkey")
        sas = config.sas_token.get_secret_value() if config.sas_token else parts.get("sharedaccesssignature")
        if key:
            props["adls.account-key"] = key
        elif sas:
            props["adls.sas-token"] = sas.lstrip("?")
        elif config.mode == "service_principal":
            assert config.client_secret is not None
            props.update(
                {
                    "adls.client-id": str(config.client_id),
                    "adls.client-secret": config.client_secret.get_secret_value(),
                    "adls.tenant-id": str(config.tenant_id),
                }
            )
        url = urlsplit(config.account_url())
        if not url.hostname or not url.hostname.endswith(".core.windows.net"):  # an emulator, a proxy
            for kind in ("blob", "dfs"):
                props[f"adls.{kind}-storage-authority"] = url.netloc
                props[f"adls.{kind}-storage-scheme"] = url.scheme
        return props

    def secret_values(self) -> list[str]:
        """Every secret of the config (to scrub them from messages), with the pieces of a
        connection string that are secrets."""
        values: list[str] = []
        for secret in (
            self.config.account_key,
            self.config.sas_token,
            self.config.connection_string,
            self.config.client_secret,
        ):
            if secret is not None:
                values.append(secret.get_secret_value())
        if self.config.connection_string is not None:
            parts = _connection_parts(self.config.connection_string.get_secret_value())
            values += [parts[k] for k in ("accountkey", "sharedaccesssignature") if parts.get(k)]
        if self.config.sas_token is not None:
            token = self.config.sas_token.get_secret_value().lstrip("?")
            values += [p.split("=", 1)[1] for p in token.split("&") if p.startswith("sig=")]
        return [v for v in values if v]


def blob_path(location: str) -> str | None:
    """``az://<container>/<path>`` for an ADLS Gen2 / Blob location (``abfss://<container>/<path>``,
    ``abfss://<container>@<account>.dfs.core.windows.net/<path>``, ``wasbs://`` alike), else None.

    The same files through the Blob endpoint: DuckDB's azure extension opens ``abfss://`` through
    the DFS endpoint, which an emulator (Azurite) lacks; every ADLS Gen2 account serves the Blob
    API as well, so ``az://`` reads them on both. The account is the DuckDB secret's."""
    parts = urlsplit(location)
    if parts.scheme not in ("abfss", "abfs", "wasbs", "wasb") or not parts.netloc:
        return None
    container = parts.netloc.split("@", 1)[0]
    return f"az://{container}{parts.path}"


def azure_error_code(exc: Exception) -> str:
    """The storage service's error code (``ContainerNotFound``, ``AuthenticationFailed`` ...)."""
    code = getattr(exc, "error_code", None)
    if code:
        return str(getattr(code, "value", code))  # azure-storage's StorageErrorCode enum
    response = getattr(exc, "response", None)
    headers = getattr(response, "headers", None) or {}
    return str(headers.get("x-ms-error-code", "") or "")


def azure_error_class(exc: Exception) -> type[FloeError] | None:
    """floe's class for an azure-core / azure-identity exception, else None."""
    try:
        from azure.core import exceptions as ace
    except ImportError:
        return ConfigurationError
    status = int(getattr(exc, "status_code", 0) or 0)
    if isinstance(exc, ace.ClientAuthenticationError) or status in (401, 403):
        return AuthenticationError
    if isinstance(exc, ace.ResourceNotFoundError) or status == 404:
        return NotFoundError
    if isinstance(exc, ace.ServiceRequestError | ace.ServiceResponseError) or status >= 500:
        return UnavailableError
    try:
        from azure.identity import CredentialUnavailableError
    except ImportError:
        return None
    if isinstance(exc, CredentialUnavailableError):
        return ConfigurationError
    return None
