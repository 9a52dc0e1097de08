"""Trino (and Starburst) compute: a dbt-trino target.

Profile keys are dbt-trino's (https://docs.getdbt.com/docs/core/connect-data-platform/trino-setup):
``method`` (none | ldap | jwt | certificate), ``host``, ``port``, ``user``, ``database`` (the
Trino catalog), ``schema``, ``http_scheme``, ``password`` (ldap), ``jwt_token`` (jwt),
``client_certificate`` / ``client_private_key`` (certificate), ``cert``, ``roles``,
``session_properties``, ``client_tags``, ``timezone``, ``prepared_statements_enabled``,
``retries``, ``threads``. Secrets (``password``, ``jwt_token``) are written as
``{{ env_var('FLOE_SECRET_<COMPUTE>_PASSWORD') }}`` / ``..._JWT_TOKEN``.

``timeout_seconds`` becomes the ``query_max_run_time`` session property (dbt-trino has no
timeout key of its own). ``connect_timeout`` is floe's: it bounds ``validate_connection``,
which runs ``SELECT 1`` through the ``trino`` driver with one attempt (the driver retries
connection errors three times by default).
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import Field, SecretStr, model_validator

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
    "TrinoComputePlugin",
    "TrinoConfig",
]


class TrinoConfig(WarehouseConfig):
    method: Literal["none", "ldap", "jwt", "certificate"] = Field(
        "none", description="dbt-trino auth method: none, ldap (user + password), jwt, certificate."
    )
    host: str = Field(description="Coordinator host name (no scheme).")
    port: int = Field(443, ge=1, le=65535, description="Coordinator port (443 for TLS, 8080 plain).")
    http_scheme: Literal["http", "https"] | None = Field(
        None, description="http or https; default: https, or http for method none on a port other than 443."
    )
    user: str | None = Field(None, description="Trino user (required except for jwt and certificate).")
    catalog: str = Field(description="Trino catalog dbt builds models into (dbt-trino's `database`).")
    schema_: str = Field(alias="schema", description="Schema dbt builds models into.")
    password: SecretStr | None = Field(None, description="LDAP password (method ldap); use ${env:NAME}.")
    jwt_token: SecretStr | None = Field(None, description="JWT bearer token (method jwt); use ${env:NAME}.")
    client_certificate: str | None = Field(None, description="Client certificate file (method certificate).")
    client_private_key: str | None = Field(None, description="Client private key file (method certificate).")
    cert: str | bool | None = Field(None, description="CA bundle path, or false to skip TLS verification.")
    roles: dict[str, str] | None = Field(None, description="Catalog -> role, e.g. {system: analyst}.")
    session_properties: dict[str, Any] = Field(default_factory=dict, description="Trino session properties.")
    client_tags: list[str] | None = Field(None, description="Client tags sent with every query.")
    timezone: str | None = Field(None, description="Session time zone.")
    prepared_statements_enabled: bool = Field(True, description="dbt-trino's default: true.")
    retries: int = Field(3, ge=0, le=10, description="dbt-trino's connection retries.")
    threads: int = Field(1, ge=1, le=64, description="dbt's thread count for this target.")
    connect_timeout: int = Field(10, ge=1, le=300, description="Seconds validate_connection waits.")
    timeout_seconds: int | None = Field(
        None, ge=1, description="Query timeout: the query_max_run_time session property."
    )

    @property
    def scheme(self) -> str:
        if self.http_scheme:
            return self.http_scheme
        return "http" if self.method == "none" and self.port != 443 else "https"

    @model_validator(mode="after")
    def _credentials_for_method(self) -> TrinoConfig:
        needs: dict[str, list[str]] = {
            "none": ["user"],
            "ldap": ["user", "password"],
            "jwt": ["jwt_token"],
            "certificate": ["client_certificate", "client_private_key"],
        }
        missing = [name for name in needs[self.method] if not is_set(getattr(self, name))]
        if missing:
            raise missing_credential(
                "TrinoConfig",
                missing[0],
                f"trino method '{self.method}' needs {', '.join(repr(m) for m in missing)}"
                " (secrets from ${env:NAME})",
            )
        if self.method != "none" and self.scheme != "https":
            raise ValueError(f"trino method '{self.method}' sends credentials: it needs http_scheme 'https'")
        if self.timeout_seconds and "query_max_run_time" in self.session_properties:
            raise ValueError("set either timeout_seconds or session_properties.query_max_run_time, not both")
        return self


class TrinoComputePlugin(WarehouseCompute):
    type_name: ClassVar[str] = "trino"
    config_model = TrinoConfig
    dbt_adapter_type = "trino"
    package = "dbt-trino>=1.11,<1.12"
    driver_package = "trino"
    driver_module = "trino.dbapi"

    def generate_dbt_profile(self, config: PluginConfig, context: DbtProfileContext) -> dict[str, Any]:
        c: TrinoConfig = self._checked(config, "generate_dbt_profile")
        session = dict(c.session_properties)
        if c.timeout_seconds:
            session["query_max_run_time"] = f"{c.timeout_seconds}s"
        output = {
            "type": "trino",
            "method": c.method,
            "host": c.host,
            "port": c.port,
            "http_scheme": c.scheme,
            "user": c.user,
            "database": c.catalog,
            "schema": c.schema_,
            "threads": c.threads,
            "retries": c.retries,
            "prepared_statements_enabled": c.prepared_statements_enabled,
            "password": self._secret_ref(c, context.compute_name, "password"),
            "jwt_token": self._secret_ref(c, context.compute_name, "jwt_token"),
            "client_certificate": c.client_certificate,
            "client_private_key": c.client_private_key,
            "cert": c.cert,
            "roles": c.roles,
            "session_properties": session or None,
            "client_tags": c.client_tags,
            "timezone": c.timezone,
        }
        return drop_none(output)

    def endpoint(self, config: TrinoConfig) -> str:
        return f"{config.scheme}://{config.host}:{config.port} (catalog {config.catalog})"

    def socket_address(self, config: TrinoConfig) -> tuple[str, int]:
        return config.host, config.port

    def _probe(self, config: TrinoConfig) -> str:
        dbapi = require("trino.dbapi", self.driver_package)
        auth_module = require("trino.auth", self.driver_package)
        auth: Any = None
        if config.method == "ldap":
            assert config.password is not None
            auth = auth_module.BasicAuthentication(config.user, config.password.get_secret_value())
        elif config.method == "jwt":
            assert config.jwt_token is not None
            auth = auth_module.JWTAuthentication(config.jwt_token.get_secret_value())
        elif config.method == "certificate":
            auth = auth_module.CertificateAuthentication(config.client_certificate, config.client_private_key)
        kwargs: dict[str, Any] = {
            "host": config.host,
            "port": config.port,
            "user": config.user,
            "catalog": config.catalog,
            "schema": config.schema_,
            "http_scheme": config.scheme,
            "auth": auth,
            "request_timeout": config.connect_timeout,
            "max_attempts": 1,
            "source": "floe-validate",
        }
        if config.cert is not None:
            kwargs["verify"] = config.cert
        if config.roles:
            kwargs["roles"] = config.roles
        con = dbapi.connect(**kwargs)
        try:
            cur = con.cursor()
            cur.execute("SELECT 1")
            cur.fetchall()
        finally:
            con.close()
        return "answered SELECT 1"
