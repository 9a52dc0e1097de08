"""The metastore credential chokepoint: config fields -> typed credentials a connector uses.

Two halves, one place (both owned by ``plugins/factory.py``):

* ``factory.metastore_config`` merges the manifest's options with the environment variables a
  connector declares and validates them into the connector's config model (secrets as
  ``SecretStr``); it is the only code that reads the environment for a metastore.
* ``metastore_credentials`` (here) turns a validated config into typed credentials:
  ``ThriftCredentials`` (Hive Metastore, and the Dataproc service's Thrift side),
  ``AwsCredentials`` (Glue, S3: static keys + session token, profile, role assumption or the
  default chain, resolved once through the AWS resolver shared with the Glue catalog) and
  ``GoogleCredentials`` (Dataproc: a service-account key file or JSON, Application Default
  Credentials, or anonymous for an emulator) and ``AzureCredentials`` (Azure Blob / ADLS Gen2:
  connection string, account key, SAS token, service principal or the default chain,
  ``plugins/azure.py``). ``MetastoreConnector.__init__`` calls it, so a
  connector receives ``self.credentials`` and never reads ``os.environ``, unwraps a
  ``SecretStr`` or builds a credential itself (``tests/unit/test_metastore_chokepoint.py``
  checks every connector module for that).

Nothing here logs or formats a secret: errors name the field and the mode, never a value.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pydantic import SecretStr

from floe_dagster.core.errors import ConfigurationError
from floe_dagster.plugins import aws
from floe_dagster.plugins.aws import mask_credentials_in_botocore_logs
from floe_dagster.plugins.aws_credentials import aws_session, frozen_keys
from floe_dagster.plugins.azure import AzureCredentials, AzureCredentialsConfig
from floe_dagster.plugins.base import PluginConfig

__all__ = [
    "AwsCredentials",
    "AzureCredentials",
    "GoogleCredentials",
    "ThriftCredentials",
    "metastore_credentials",
]

GOOGLE_SCOPES = ("https://www.googleapis.com/auth/cloud-platform",)
# The storage properties of Google credentials (``GoogleCredentials.storage_properties``): PyIceberg's
# names for the project and the endpoint, floe's for the credentials of each mode
GCS_SCHEMES = ("gs", "gcs")
GCS_PROJECT = "gcs.project-id"
GCS_ENDPOINT = "gcs.service.host"
GCS_KEY_JSON = "gcs.floe.service-account-json"
GCS_KEY_FILE = "gcs.floe.service-account-file"
GCS_ANONYMOUS = "gcs.floe.anonymous"


# --- Thrift (Hive Metastore) ----------------------------------------------------------------------


@dataclass(frozen=True)
class ThriftCredentials:
    """How a Thrift connection authenticates, and the FileIO properties for Iceberg metadata."""

    mechanism: str = "none"  # none | kerberos | plain
    user: str | None = None
    password: SecretStr | None = None
    kerberos_service_name: str = "hive"
    io_properties: Mapping[str, SecretStr] = field(default_factory=dict)

    def strategy(self) -> str:
        """The auth strategy for diagnostics (never the password)."""
        if self.mechanism == "kerberos":
            return f"kerberos (SASL GSSAPI, service {self.kerberos_service_name})"
        if self.mechanism == "plain":
            password = "set" if self.password is not None else "unset"
            return f"plain (SASL PLAIN, user {self.user or '-'}, password {password})"
        return f"none (ugi {self.user})" if self.user else "none"

    def transport(self, sock: Any, host: str, provider: str, metastore: str) -> Any:
        """The Thrift transport over ``sock`` for this mechanism (SASL for kerberos and plain)."""
        from thrift.transport import TTransport

        if self.mechanism == "none":
            return TTransport.TBufferedTransport(sock)
        try:
            import puresasl  # noqa: F401
        except ImportError:
            raise ConfigurationError(
                f"metastore '{metastore}': auth {self.mechanism} needs SASL support;"
                " install pyiceberg[hive-kerberos] (puresasl)",
                provider=provider,
                operation="connect",
            ) from None
        if self.mechanism == "kerberos":
            return TTransport.TSaslClientTransport(sock, host, self.kerberos_service_name)
        assert self.password is not None  # the config's check_required guarantees it
        return TTransport.TSaslClientTransport(
            sock,
            host,
            self.kerberos_service_name,
            mechanism="PLAIN",
            username=self.user,
            password=self.password.get_secret_value(),
        )

    def file_io_properties(self) -> dict[str, str]:
        """PyIceberg FileIO properties (endpoint, keys ...) to read Iceberg metadata files."""
        return {key: value.get_secret_value() for key, value in self.io_properties.items()}

    def s3_client(self) -> Any:
        """A boto3 S3 client from the ``s3.*`` FileIO properties (endpoint, region, keys; boto3's
        default chain for what is unset), to list table files (storage data versions)."""
        import boto3

        props = self.file_io_properties()
        return boto3.client(
            "s3",
            endpoint_url=props.get("s3.endpoint"),
            region_name=props.get("s3.region") or "us-east-1",
            aws_access_key_id=props.get("s3.access-key-id"),
            aws_secret_access_key=props.get("s3.secret-access-key"),
            aws_session_token=props.get("s3.session-token"),
        )


# --- AWS (Glue, S3) -------------------------------------------------------------------------------


class AwsCredentials:
    """AWS credentials of one metastore: one boto3 session from the AWS resolver
    (``plugins/aws_credentials.py``), made on first use.

    An assumed role is refreshed before it expires (botocore's ``RefreshableCredentials``), so
    an observation or ingest longer than the role session keeps working: clients made here
    refresh on their own, and ``properties()`` / ``duckdb_secret_sql`` take a current snapshot.
    The default chain (environment, profile files, SSO, container and instance roles) is
    resolved by boto3 too, and DuckDB gets explicit keys: no ``aws`` extension needed.

    The credential modes and their validation are the Glue catalog plugin's
    (``plugins/aws.py``: ``AwsConfig``), so catalogs and metastores accept exactly
    the same settings.
    """

    def __init__(self, source: PluginConfig) -> None:
        self._source = source
        self._session: Any = None
        self._lock = threading.Lock()
        self._seen_secrets: set[str] = set()

    @property
    def aws_config(self) -> Any:
        return self._source.aws_config()  # type: ignore[attr-defined]

    @property
    def mode(self) -> str:
        return str(self.aws_config.credential_mode)

    def session(self) -> Any:
        """The boto3 session (may call STS the first time); a boto3 Session is not thread-safe:
        use it under ``self._lock``, as ``client`` does."""
        if self._session is None:
            mask_credentials_in_botocore_logs()
            self._session = aws_session(self.aws_config)
        return self._session

    def keys(self) -> Any:
        """The current keys (refreshed when due), or None when no source in the chain has any."""
        with self._lock:
            keys = frozen_keys(self.session())
        if keys is not None:
            self._seen_secrets.add(keys.secret_access_key)
            if keys.session_token:
                self._seen_secrets.add(keys.session_token)
        return keys

    def properties(self) -> dict[str, str]:
        """PyIceberg-style ``glue.*`` / ``s3.*`` properties with current keys (may call STS)."""

        config = self.aws_config
        props: dict[str, str] = {
            aws.GLUE_REGION: config.aws_region,
            aws.S3_REGION: config.aws_region,
            aws.GLUE_MAX_RETRIES: str(config.max_attempts - 1),
            aws.GLUE_RETRY_MODE: "standard",
        }
        props.update(aws.s3_addressing_properties(config))
        for key, value in (
            (aws.GLUE_ENDPOINT, config.endpoint),
            (aws.S3_ENDPOINT, config.s3_endpoint),
            (aws.GLUE_ID, config.catalog_id),
        ):
            if value:
                props[key] = value
        keys = self.keys()
        if keys is not None:
            for prefix in ("glue", "s3"):
                props[f"{prefix}.access-key-id"] = keys.access_key_id
                props[f"{prefix}.secret-access-key"] = keys.secret_access_key
                if keys.session_token:
                    props[f"{prefix}.session-token"] = keys.session_token
        return props

    def client(self, service: str, *, region: str | None, endpoint: str | None, config: Any) -> Any:
        """A boto3 client for ``service`` with these credentials; it refreshes an assumed role."""
        with self._lock:
            return self.session().client(service, region_name=region, endpoint_url=endpoint, config=config)

    def storage_properties(self) -> dict[str, str]:
        """The ``s3.*`` properties (region, endpoint, current keys) for reading the tables' files."""
        return {k: v for k, v in self.properties().items() if k.startswith("s3.")}

    def duckdb_secret_sql(self, name: str, region: str | None = None, scopes: Sequence[str] = ()) -> str:
        """``CREATE OR REPLACE SECRET`` (TYPE s3, explicit current keys) for DuckDB's httpfs.

        The keys come from boto3's resolution of the config (static, profile, default chain,
        assumed role), so DuckDB needs no ``aws`` extension; with no credentials anywhere the
        secret has none (public buckets). ``scopes`` (``s3://bucket`` prefixes) limit it to those
        buckets. The statement holds the secret: run it, never log it.
        """
        props = self.storage_properties()

        def literal(value: str) -> str:
            return "'" + value.replace("'", "''") + "'"

        region = props.get("s3.region") or region or str(self.aws_config.region)
        options = [f"REGION {literal(region)}"]
        if "s3.access-key-id" in props:
            options += [
                f"KEY_ID {literal(props['s3.access-key-id'])}",
                f"SECRET {literal(props['s3.secret-access-key'])}",
            ]
            if props.get("s3.session-token"):
                options.append(f"SESSION_TOKEN {literal(props['s3.session-token'])}")
        style = getattr(self.aws_config, "s3_addressing_style", None)
        if endpoint := props.get("s3.endpoint"):
            parts = urlsplit(endpoint)
            options += [
                f"ENDPOINT {literal(parts.netloc)}",
                f"URL_STYLE {literal('vhost' if style == 'virtual' else 'path')}",
                f"USE_SSL {'true' if parts.scheme == 'https' else 'false'}",
            ]
        elif style is not None:
            options.append(f"URL_STYLE {literal('vhost' if style == 'virtual' else 'path')}")
        if scopes:
            options.append(f"SCOPE [{', '.join(literal(scope) for scope in scopes)}]")
        return f"CREATE OR REPLACE SECRET {name} (TYPE s3, {', '.join(options)})"

    def secret_values(self) -> list[str]:
        """The secret values handed out so far (to scrub them from messages)."""
        config = self.aws_config
        values = set(self._seen_secrets)
        for secret in (config.secret_access_key, config.session_token):
            if secret is not None:
                values.add(secret.get_secret_value())
        return [v for v in values if v]


# --- Google (Dataproc Metastore) ------------------------------------------------------------------


@dataclass(frozen=True)
class GoogleCredentials:
    """Which Google credentials to use: a service-account key (file or JSON), ADC, or anonymous."""

    key_file: str | None = None
    key_json: SecretStr | None = None
    anonymous: bool = False
    # Google Cloud Storage (the gcs metastore): HMAC keys for DuckDB's httpfs (gs:// through the
    # XML API), and the storage endpoint (an emulator) for the fsspec filesystem of the other modes
    hmac_access_id: str | None = None
    hmac_secret: SecretStr | None = field(default=None, repr=False)
    storage_endpoint: str | None = None
    project: str | None = None

    # the DuckDB schemes these credentials serve (readers/duckdb_scan.py scopes a secret to them)
    duckdb_schemes = GCS_SCHEMES

    @property
    def mode(self) -> str:
        if self.anonymous:
            return "anonymous"
        if self.key_json is not None:
            return "service_account (key_json)"
        if self.key_file is not None:
            return "service_account (key_file)"
        return "application_default"

    def duckdb_secret_sql(self, name: str, scopes: Sequence[str] = ()) -> str | None:
        """``CREATE OR REPLACE SECRET`` (TYPE gcs, the HMAC keys) scoped to ``scopes`` (``gs://<bucket>``),
        or None without HMAC keys (DuckDB then reads through ``duckdb_filesystem``). It holds the
        secret: run it, never log it."""
        if self.hmac_access_id is None or self.hmac_secret is None:
            return None

        def literal(value: str) -> str:
            return "'" + value.replace("'", "''") + "'"

        options = [
            f"KEY_ID {literal(self.hmac_access_id)}",
            f"SECRET {literal(self.hmac_secret.get_secret_value())}",
        ]
        if scopes:
            options.append(f"SCOPE [{', '.join(literal(scope) for scope in scopes)}]")
        return f"CREATE OR REPLACE SECRET {name} (TYPE gcs, {', '.join(options)})"

    def duckdb_filesystem(self, metastore: str = "-", provider: str = "gcs") -> Any:
        """A gcsfs filesystem (fsspec) with these credentials, for DuckDB to register when DuckDB's
        own gs:// support (HMAC keys only) does not serve: service-account JSON, ADC, anonymous."""
        if self.hmac_access_id is not None:
            return None
        # gcsfs.core's filesystem: the package's default (ExtendedGcsFileSystem) first asks the
        # Storage Control gRPC API for the bucket type, which an emulator does not serve (60 s per call)
        from gcsfs.core import GCSFileSystem

        token: Any = "anon" if self.anonymous else self.google_auth(metastore, provider)
        options: dict[str, Any] = {"token": token, "project": self.project}
        if self.storage_endpoint:
            options["endpoint_url"] = self.storage_endpoint
        return GCSFileSystem(**options)

    def storage_properties(self) -> dict[str, str]:
        """The properties floe's Python readers open gs:// files with (``readers/stores/gcs.py``):
        the project, the storage endpoint (an emulator) and the mode's credentials (a service
        account's key inline or as a file, anonymous; none: application default credentials).
        HMAC keys serve DuckDB's httpfs only. They hold secrets: never log them."""
        props: dict[str, str] = {}
        if self.project:
            props[GCS_PROJECT] = self.project
        if self.storage_endpoint:
            props[GCS_ENDPOINT] = self.storage_endpoint
        if self.anonymous:
            props[GCS_ANONYMOUS] = "true"
        elif self.key_json is not None:
            props[GCS_KEY_JSON] = self.key_json.get_secret_value()
        elif self.key_file is not None:
            props[GCS_KEY_FILE] = str(Path(self.key_file).expanduser())
        return props

    def secret_values(self) -> list[str]:
        values = [s.get_secret_value() for s in (self.key_json, self.hmac_secret) if s is not None]
        return [v for v in values if v]

    def google_auth(self, metastore: str, provider: str, scopes: tuple[str, ...] = GOOGLE_SCOPES) -> Any:
        """The google-auth credentials of this mode (no token is fetched here)."""
        try:
            if self.anonymous:
                from google.auth.credentials import AnonymousCredentials

                return AnonymousCredentials()  # type: ignore[no-untyped-call]
            if self.key_json is not None or self.key_file is not None:
                from google.oauth2 import service_account

                if self.key_json is not None:
                    info = json.loads(self.key_json.get_secret_value())
                else:
                    info = json.loads(Path(self.key_file or "").expanduser().read_text())
                return service_account.Credentials.from_service_account_info(  # type: ignore[no-untyped-call]
                    info, scopes=list(scopes)
                )
            import google.auth

            credentials, _ = google.auth.default(scopes=list(scopes))
            return credentials
        except Exception as exc:
            field_name = "key_json" if self.key_json is not None else "key_file"
            if self.key_json is None and self.key_file is None:
                field_name = "credentials"
            raise ConfigurationError(
                f"metastore '{metastore}' ({provider}): cannot load credentials ({self.mode}):"
                f" {type(exc).__name__}; check {field_name}, or run `gcloud auth application-default login`",
                provider=provider,
                operation="connect",
            ) from None


# --- the chokepoint --------------------------------------------------------------------------------


def metastore_credentials(
    config: PluginConfig,
) -> ThriftCredentials | AwsCredentials | GoogleCredentials | AzureCredentials | None:
    """The typed credentials for a validated metastore config (None: the provider needs none),
    by the kind of credentials the config declares (``PluginConfig.credential_kind``)."""
    kind = type(config).credential_kind
    fields: Any = config
    if kind == "thrift":
        return ThriftCredentials(
            mechanism=fields.auth,
            user=fields.user,
            password=fields.password,
            kerberos_service_name=fields.kerberos_service_name,
            io_properties=dict(fields.io_properties),
        )
    if kind == "google":
        return GoogleCredentials(
            key_file=fields.key_file,
            key_json=fields.key_json,
            anonymous=fields.anonymous,
            hmac_access_id=getattr(fields, "hmac_access_id", None),
            hmac_secret=getattr(fields, "hmac_secret", None),
            storage_endpoint=getattr(fields, "storage_endpoint", None),
            project=getattr(fields, "storage_project", None),
        )
    if kind == "aws":
        return AwsCredentials(config)
    if kind == "azure":
        assert isinstance(config, AzureCredentialsConfig)
        return AzureCredentials(config)
    return None
