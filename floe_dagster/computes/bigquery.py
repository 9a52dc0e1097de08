"""BigQuery compute: a dbt-bigquery target.

Profile keys are dbt-bigquery's
(https://docs.getdbt.com/docs/core/connect-data-platform/bigquery-setup): ``method``,
``project``, ``dataset``, ``execution_project``, ``location``, ``priority``,
``maximum_bytes_billed``, ``impersonate_service_account``, ``job_retries``,
``job_creation_timeout_seconds``, ``job_retry_deadline_seconds``,
``job_execution_timeout_seconds`` (from ``timeout_seconds``), ``api_endpoint``, ``threads``,
and per method:

- ``oauth``: Application Default Credentials of the dbt process (gcloud, workload identity);
- ``service-account``: ``keyfile`` (a path);
- ``service-account-json``: ``keyfile_json``, the key file's JSON. It is a secret: the profile
  holds ``"{{ fromjson(env_var('FLOE_SECRET_<COMPUTE>_KEYFILE_JSON')) }}"``, which dbt renders
  to the mapping dbt-bigquery expects;
- ``oauth-secrets``: ``token`` (an access token), or ``refresh_token`` + ``client_id`` +
  ``client_secret`` + ``token_uri``.

Secrets (``keyfile_json``, ``token``, ``refresh_token``, ``client_secret``) reach dbt only as
``FLOE_SECRET_<COMPUTE>_<FIELD>`` environment variables.

Package choice: dbt-bigquery 1.11.x works with dbt-core 1.11 and is in floe's ``dev`` extra (a
large tree: Vertex AI, Dataproc, pandas-gbq); the tests parse generated profiles with its own
``BigQueryCredentials``.

``validate_connection`` builds the credentials as dbt-bigquery does and runs ``SELECT 1`` as a
query job through ``google-cloud-bigquery``, with ``connect_timeout`` as the deadline of the
request, its retries and the job.
"""

from __future__ import annotations

import json
from typing import Any, ClassVar, Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator, model_validator

from floe_dagster.computes._warehouse import (
    WarehouseCompute,
    WarehouseConfig,
    drop_none,
    is_set,
    missing_credential,
    require,
)
from floe_dagster.plugins.base import PluginConfig
from floe_dagster.plugins.compute import DbtProfileContext, secret_env_name

__all__ = [
    "BigQueryComputePlugin",
    "BigQueryConfig",
]

SCOPES = (
    "https://www.googleapis.com/auth/bigquery",
    "https://www.googleapis.com/auth/cloud-platform",
    "https://www.googleapis.com/auth/drive",
)


class BigQueryConfig(WarehouseConfig):
    method: Literal["oauth", "service-account", "service-account-json", "oauth-secrets"] = Field(
        "oauth", description="oauth (ADC), service-account, service-account-json or oauth-secrets."
    )
    project: str = Field(description="GCP project that holds the datasets.")
    dataset: str = Field(description="Dataset dbt builds models into.")
    execution_project: str | None = Field(None, description="Project billed for the jobs.")
    location: str | None = Field(None, description="Dataset location, e.g. EU or europe-west1.")
    priority: Literal["interactive", "batch"] | None = Field(None, description="Job priority.")
    maximum_bytes_billed: int | None = Field(None, ge=1, description="Fail jobs that would bill more.")
    impersonate_service_account: str | None = Field(None, description="Service account to impersonate.")
    keyfile: str | None = Field(None, description="Service account key file (method service-account).")
    keyfile_json: SecretStr | None = Field(
        None, description="Service account key JSON (method service-account-json); use ${env:NAME}."
    )
    token: SecretStr | None = Field(None, description="OAuth access token (method oauth-secrets).")
    refresh_token: SecretStr | None = Field(None, description="OAuth refresh token (method oauth-secrets).")
    client_id: str | None = Field(None, description="OAuth client id (with refresh_token).")
    client_secret: SecretStr | None = Field(None, description="OAuth client secret (with refresh_token).")
    token_uri: str | None = Field(None, description="OAuth token endpoint (with refresh_token).")
    api_endpoint: str | None = Field(None, description="BigQuery API endpoint override.")
    job_retries: int = Field(1, ge=0, le=10, description="dbt-bigquery's job retries.")
    job_creation_timeout_seconds: int | None = Field(None, ge=1, description="Job creation timeout.")
    job_retry_deadline_seconds: int | None = Field(None, ge=1, description="Deadline for all retries.")
    threads: int = Field(1, ge=1, le=64, description="dbt's thread count for this target.")
    connect_timeout: int = Field(10, ge=1, le=300, description="Seconds validate_connection waits.")
    timeout_seconds: int | None = Field(
        None, ge=1, description="Query timeout: dbt-bigquery's job_execution_timeout_seconds."
    )

    @field_validator("keyfile_json")
    @classmethod
    def _key_json(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None:
            return None
        try:
            data = json.loads(value.get_secret_value())
        except ValueError:
            raise ValueError("keyfile_json is not valid JSON (its content is not shown)") from None
        if not isinstance(data, dict):
            raise ValueError("keyfile_json must be a JSON object (a service account key file)")
        missing = [k for k in ("type", "private_key", "client_email") if k not in data]
        if missing:
            raise ValueError(f"keyfile_json lacks {missing}; is it a service account key file?")
        return value

    @model_validator(mode="after")
    def _credentials_for_method(self) -> BigQueryConfig:
        method = self.method
        if method == "service-account" and not self.keyfile:
            raise missing_credential(
                "BigQueryConfig",
                "keyfile",
                "bigquery method 'service-account' needs 'keyfile' (a key file path)",
            )
        if method == "service-account-json" and not is_set(self.keyfile_json):
            raise missing_credential(
                "BigQueryConfig",
                "keyfile_json",
                "bigquery method 'service-account-json' needs 'keyfile_json' (from ${env:NAME})",
            )
        if method == "oauth-secrets":
            refresh = [
                is_set(self.refresh_token),
                bool(self.client_id),
                is_set(self.client_secret),
                bool(self.token_uri),
            ]
            if not is_set(self.token) and not all(refresh):
                names = ["refresh_token", "client_id", "client_secret", "token_uri"]
                missing = [n for n, ok in zip(names, refresh, strict=True) if not ok]
                raise missing_credential(
                    "BigQueryConfig",
                    "token" if len(missing) == len(names) else missing[0],
                    "bigquery method 'oauth-secrets' needs 'token', or 'refresh_token', 'client_id',"
                    f" 'client_secret' and 'token_uri' (missing: {', '.join(missing)})",
                )
        unused = {
            "oauth": ["keyfile", "keyfile_json", "token", "refresh_token", "client_secret"],
            "service-account": ["keyfile_json", "token", "refresh_token", "client_secret"],
            "service-account-json": ["keyfile", "token", "refresh_token", "client_secret"],
            "oauth-secrets": ["keyfile", "keyfile_json"],
        }[method]
        given = [name for name in unused if is_set(getattr(self, name))]
        if given:
            raise ValueError(f"bigquery method '{method}' does not use {', '.join(repr(g) for g in given)}")
        return self


class BigQueryComputePlugin(WarehouseCompute):
    type_name: ClassVar[str] = "bigquery"
    config_model = BigQueryConfig
    dbt_adapter_type = "bigquery"
    package = "dbt-bigquery>=1.11,<1.12"
    driver_package = "google-cloud-bigquery"
    driver_module = "google.cloud.bigquery"

    def generate_dbt_profile(self, config: PluginConfig, context: DbtProfileContext) -> dict[str, Any]:
        c: BigQueryConfig = self._checked(config, "generate_dbt_profile")
        name = context.compute_name
        keyfile_json = None
        if is_set(c.keyfile_json):
            keyfile_json = "{{ fromjson(env_var('" + secret_env_name(name, "keyfile_json") + "')) }}"
        output = {
            "type": "bigquery",
            "method": c.method,
            "project": c.project,
            "dataset": c.dataset,
            "execution_project": c.execution_project,
            "location": c.location,
            "priority": c.priority,
            "maximum_bytes_billed": c.maximum_bytes_billed,
            "impersonate_service_account": c.impersonate_service_account,
            "keyfile": c.keyfile,
            "keyfile_json": keyfile_json,
            "token": self._secret_ref(c, name, "token"),
            "refresh_token": self._secret_ref(c, name, "refresh_token"),
            "client_id": c.client_id,
            "client_secret": self._secret_ref(c, name, "client_secret"),
            "token_uri": c.token_uri,
            "api_endpoint": c.api_endpoint,
            "job_retries": c.job_retries,
            "job_creation_timeout_seconds": c.job_creation_timeout_seconds,
            "job_retry_deadline_seconds": c.job_retry_deadline_seconds,
            "job_execution_timeout_seconds": c.timeout_seconds,
            "threads": c.threads,
        }
        return drop_none(output)

    def endpoint(self, config: BigQueryConfig) -> str:
        api = config.api_endpoint or "https://bigquery.googleapis.com"
        return f"{api} (project {config.execution_project or config.project}, method {config.method})"

    def socket_address(self, config: BigQueryConfig) -> tuple[str, int] | None:
        url = urlsplit(config.api_endpoint or "https://bigquery.googleapis.com")
        if not url.hostname:
            return None
        return url.hostname, url.port or (80 if url.scheme == "http" else 443)

    def _probe(self, config: BigQueryConfig) -> str:
        bigquery = require("google.cloud.bigquery", self.driver_package)
        retry_module = require("google.cloud.bigquery.retry", self.driver_package)
        credentials = _credentials(config)
        options = {"api_endpoint": config.api_endpoint} if config.api_endpoint else None
        client = bigquery.Client(
            project=config.execution_project or config.project,
            credentials=credentials,
            location=config.location,
            client_options=options,
        )
        retry = retry_module.DEFAULT_RETRY.with_timeout(float(config.connect_timeout))
        try:
            job = client.query("SELECT 1", timeout=config.connect_timeout, retry=retry, job_retry=None)
            rows = list(job.result(timeout=config.connect_timeout, retry=retry))
        finally:
            client.close()
        if len(rows) != 1 or rows[0][0] != 1:
            raise RuntimeError(f"SELECT 1 answered {len(rows)} row(s)")
        return "ran SELECT 1 as a query job"


def _credentials(config: BigQueryConfig) -> Any:
    """google-auth credentials for the method, as dbt-bigquery builds them."""
    auth_package = "google-auth"
    credentials: Any
    if config.method == "oauth":
        google_auth = require("google.auth", auth_package)
        credentials, _ = google_auth.default(scopes=SCOPES)
    elif config.method in ("service-account", "service-account-json"):
        service_account = require("google.oauth2.service_account", auth_package)
        if config.method == "service-account":
            credentials = service_account.Credentials.from_service_account_file(config.keyfile, scopes=SCOPES)
        else:
            assert config.keyfile_json is not None
            info = json.loads(config.keyfile_json.get_secret_value())
            credentials = service_account.Credentials.from_service_account_info(info, scopes=SCOPES)
    else:
        oauth2 = require("google.oauth2.credentials", auth_package)
        credentials = oauth2.Credentials(
            token=config.token.get_secret_value() if config.token else None,
            refresh_token=config.refresh_token.get_secret_value() if config.refresh_token else None,
            client_id=config.client_id,
            client_secret=config.client_secret.get_secret_value() if config.client_secret else None,
            token_uri=config.token_uri,
            scopes=SCOPES,
        )
    if config.impersonate_service_account:
        impersonated = require("google.auth.impersonated_credentials", auth_package)
        credentials = impersonated.Credentials(
            source_credentials=credentials,
            target_principal=config.impersonate_service_account,
            target_scopes=SCOPES,
        )
    return credentials
