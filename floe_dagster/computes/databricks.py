"""Databricks compute: a dbt-databricks target (SQL warehouse or all-purpose cluster).

Profile keys are dbt-databricks'
(https://docs.getdbt.com/docs/core/connect-data-platform/databricks-setup): ``host`` (no
scheme), ``http_path``, ``catalog``, ``schema``, and either ``token`` (a personal access token
or a service principal's token) or ``auth_type: oauth`` with ``client_id`` / ``client_secret``
(OAuth machine-to-machine for a service principal). Plus ``session_properties``,
``connect_retries``, ``connect_timeout``, ``threads``. Secrets (``token``, ``client_secret``)
are written as ``{{ env_var('FLOE_SECRET_<COMPUTE>_TOKEN') }}`` / ``..._CLIENT_SECRET``. A
``port`` other than 443 goes to dbt-databricks' ``connection_parameters`` as the
connector's ``_port``.

``timeout_seconds`` sets the ``STATEMENT_TIMEOUT`` session property, which Databricks SQL
(SQL warehouses, ``/sql/1.0/warehouses/...``) honours; on a cluster path it is rejected.

Package choice: dbt-databricks 1.11.x pins databricks-sql-connector < 4.1.6, which pins
thrift < 0.21 and cannot install beside this project's thrift 0.25 (PyIceberg's Hive catalog);
dbt-databricks 1.10.x works with dbt-core 1.11 and with databricks-sql-connector 4.9, which
accepts thrift 0.25. Hence ``dbt-databricks>=1.10.9,<1.11``.

``validate_connection`` opens a session through ``databricks-sql-connector`` (one attempt, a
socket timeout and a retry budget of ``connect_timeout``) and runs ``SELECT 1``. For OAuth it
first gets a token from the workspace's ``/oidc/v1/token`` endpoint with the client
credentials grant (scope ``all-apis``), Databricks' documented machine-to-machine flow.
"""

from __future__ import annotations

from typing import Any, ClassVar

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
from floe_dagster.plugins.compute import DbtProfileContext

__all__ = [
    "DatabricksComputePlugin",
    "DatabricksConfig",
]


class DatabricksConfig(WarehouseConfig):
    host: str = Field(description="Workspace host name, e.g. dbc-a1b2c3d4-e5f6.cloud.databricks.com.")
    http_path: str = Field(description="HTTP path of the SQL warehouse or cluster.")
    catalog: str | None = Field(None, description="Unity Catalog catalog (default: hive_metastore).")
    schema_: str = Field(alias="schema", description="Schema dbt builds models into.")
    token: SecretStr | None = Field(None, description="Personal access token; use ${env:NAME}.")
    client_id: str | None = Field(None, description="Service principal's OAuth client id (auth_type oauth).")
    client_secret: SecretStr | None = Field(None, description="Service principal's OAuth secret.")
    port: int = Field(443, ge=1, le=65535, description="HTTPS port of the workspace.")
    session_properties: dict[str, Any] = Field(default_factory=dict, description="Session configuration.")
    connect_retries: int = Field(1, ge=0, le=10, description="dbt's connection retries.")
    connect_timeout: int = Field(10, ge=1, le=300, description="Seconds to wait for a connection.")
    threads: int = Field(1, ge=1, le=64, description="dbt's thread count for this target.")
    timeout_seconds: int | None = Field(
        None, ge=1, le=172800, description="Statement timeout (SQL warehouses: STATEMENT_TIMEOUT)."
    )

    @field_validator("host")
    @classmethod
    def _bare_host(cls, value: str) -> str:
        if "://" in value or "/" in value:
            raise ValueError("host is the bare workspace host name, without https:// or a path")
        return value

    @property
    def auth_type(self) -> str | None:
        return "oauth" if self.client_id else None

    @model_validator(mode="after")
    def _credentials(self) -> DatabricksConfig:
        has_token = is_set(self.token)
        if self.client_id and not is_set(self.client_secret):
            raise missing_credential(
                "DatabricksConfig",
                "client_secret",
                "databricks OAuth (client_id) needs 'client_secret': add client_secret: ${env:NAME}",
            )
        if is_set(self.client_secret) and not self.client_id:
            raise ValueError("databricks 'client_secret' needs 'client_id'")
        if not has_token and not self.client_id:
            raise missing_credential(
                "DatabricksConfig",
                "token",
                "databricks needs 'token' (a personal access token) or 'client_id' and 'client_secret'"
                " (OAuth machine-to-machine), secrets from ${env:NAME}",
            )
        if has_token and self.client_id:
            raise ValueError("databricks: give 'token' or 'client_id'/'client_secret', not both")
        if self.timeout_seconds:
            if "/warehouses/" not in self.http_path:
                raise ValueError(
                    "databricks timeout_seconds sets STATEMENT_TIMEOUT, which only SQL warehouses"
                    " (/sql/1.0/warehouses/...) honour; set a timeout on the cluster instead"
                )
            if "STATEMENT_TIMEOUT" in self.session_properties:
                raise ValueError("set either timeout_seconds or session_properties.STATEMENT_TIMEOUT")
        return self


class DatabricksComputePlugin(WarehouseCompute):
    type_name: ClassVar[str] = "databricks"
    config_model = DatabricksConfig
    dbt_adapter_type = "databricks"
    package = "dbt-databricks>=1.10.9,<1.11"
    driver_package = "databricks-sql-connector"
    driver_module = "databricks.sql"

    def generate_dbt_profile(self, config: PluginConfig, context: DbtProfileContext) -> dict[str, Any]:
        c: DatabricksConfig = self._checked(config, "generate_dbt_profile")
        session = dict(c.session_properties)
        if c.timeout_seconds:
            session["STATEMENT_TIMEOUT"] = c.timeout_seconds
        output = {
            "type": "databricks",
            "host": c.host,
            "http_path": c.http_path,
            "catalog": c.catalog,
            "schema": c.schema_,
            "token": self._secret_ref(c, context.compute_name, "token"),
            "auth_type": c.auth_type,
            "client_id": c.client_id,
            "client_secret": self._secret_ref(c, context.compute_name, "client_secret"),
            "session_properties": session or None,
            "connection_parameters": {"_port": c.port} if c.port != 443 else None,
            "connect_retries": c.connect_retries,
            "connect_timeout": c.connect_timeout,
            "threads": c.threads,
        }
        return drop_none(output)

    def endpoint(self, config: DatabricksConfig) -> str:
        return f"https://{config.host}:{config.port}{_path(config.http_path)}"

    def socket_address(self, config: DatabricksConfig) -> tuple[str, int]:
        return config.host, config.port

    def _probe(self, config: DatabricksConfig) -> str:
        sql = require("databricks.sql", self.driver_package)
        token = self._access_token(config)
        kwargs: dict[str, Any] = {
            "server_hostname": config.host,
            "http_path": _path(config.http_path),
            "access_token": token,
            "_port": config.port,
            "_socket_timeout": config.connect_timeout,
            "_retry_stop_after_attempts_count": 1,
            "_retry_stop_after_attempts_duration": float(config.connect_timeout),
            "enable_telemetry": False,
            "user_agent_entry": "floe-validate",
        }
        if config.catalog:
            kwargs["catalog"] = config.catalog
        con = sql.connect(**kwargs)
        try:
            cur = con.cursor()
            cur.execute("SELECT 1")
            cur.fetchall()
            cur.close()
        finally:
            con.close()
        return "opened a session and answered SELECT 1"

    def _access_token(self, config: DatabricksConfig) -> str:
        if config.token is not None and config.token.get_secret_value():
            return config.token.get_secret_value()
        assert config.client_id and config.client_secret is not None
        requests = require("requests", "requests")
        response = requests.post(
            f"https://{config.host}:{config.port}/oidc/v1/token",
            data={"grant_type": "client_credentials", "scope": "all-apis"},
            auth=(config.client_id, config.client_secret.get_secret_value()),
            timeout=config.connect_timeout,
        )
        if response.status_code != 200:
            raise PermissionError(f"the OAuth token request answered HTTP {response.status_code}")
        token = response.json().get("access_token")
        if not token:
            raise PermissionError("the OAuth token request answered without an access_token")
        return str(token)


def _path(http_path: str) -> str:
    return http_path if http_path.startswith("/") else f"/{http_path}"
