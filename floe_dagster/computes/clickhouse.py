"""ClickHouse compute: a dbt-clickhouse target.

Profile keys are dbt-clickhouse's
(https://clickhouse.com/docs/integrations/dbt/features-and-configurations): ``driver`` (http |
native), ``host``, ``port``, ``user``, ``password``, ``schema`` (the ClickHouse database dbt
builds into), ``secure``, ``verify``, ``client_cert``, ``client_cert_key``, ``cluster``,
``connect_timeout``, ``send_receive_timeout``, ``retries``, ``custom_settings``, ``threads``.
The password is written as ``{{ env_var('FLOE_SECRET_<COMPUTE>_PASSWORD') }}``; ClickHouse
users may have no password (the server's ``default`` user has none out of the box), so the key
is left out when none is configured.

``timeout_seconds`` becomes the ``max_execution_time`` setting in ``custom_settings``.

Package choice: dbt-clickhouse has no 1.11 release; 1.10.x requires dbt-core >= 1.9 and
dbt-adapters < 1.25 and works beside dbt-core 1.11.

``validate_connection`` runs ``SELECT 1`` through ``clickhouse-connect`` (HTTP interface) or,
for ``driver: native``, through ``clickhouse-driver`` (which dbt-clickhouse installs), both with
``connect_timeout``.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import Field, SecretStr, model_validator

from floe_dagster.computes._warehouse import WarehouseCompute, WarehouseConfig, drop_none, require
from floe_dagster.plugins.base import PluginConfig
from floe_dagster.plugins.compute import DbtProfileContext

__all__ = [
    "ClickHouseComputePlugin",
    "ClickHouseConfig",
]

DEFAULT_PORTS = {("http", False): 8123, ("http", True): 8443, ("native", False): 9000, ("native", True): 9440}


class ClickHouseConfig(WarehouseConfig):
    driver: Literal["http", "native"] = Field("http", description="http (clickhouse-connect) or native.")
    host: str = Field(description="Server host name or address.")
    port: int | None = Field(
        None, ge=1, le=65535, description="Default: 8123 / 8443 (http), 9000 / 9440 (native, secure)."
    )
    user: str = Field("default", description="ClickHouse user.")
    password: SecretStr | None = Field(None, description="Password of the user; use ${env:NAME}.")
    schema_: str = Field("default", alias="schema", description="Database dbt builds models into.")
    secure: bool = Field(False, description="TLS (https for http, TLS for native).")
    verify: bool = Field(True, description="Verify the server's TLS certificate.")
    client_cert: str | None = Field(None, description="TLS client certificate file (.pem).")
    client_cert_key: str | None = Field(None, description="Private key file of the client certificate.")
    cluster: str | None = Field(None, description="Run DDL ON CLUSTER this cluster.")
    connect_timeout: int = Field(10, ge=1, le=300, description="Seconds to wait for a connection.")
    send_receive_timeout: int = Field(300, ge=1, description="Seconds to wait for a query's data.")
    retries: int = Field(1, ge=0, le=10, description="dbt-clickhouse's connection retries.")
    custom_settings: dict[str, Any] = Field(default_factory=dict, description="ClickHouse settings.")
    threads: int = Field(1, ge=1, le=64, description="dbt's thread count for this target.")
    timeout_seconds: int | None = Field(
        None, ge=1, description="Query timeout: the max_execution_time setting."
    )

    @property
    def effective_port(self) -> int:
        return self.port or DEFAULT_PORTS[(self.driver, self.secure)]

    @model_validator(mode="after")
    def _consistent(self) -> ClickHouseConfig:
        if bool(self.client_cert) != bool(self.client_cert_key):
            raise ValueError("clickhouse 'client_cert' and 'client_cert_key' go together")
        if self.timeout_seconds and "max_execution_time" in self.custom_settings:
            raise ValueError("set either timeout_seconds or custom_settings.max_execution_time, not both")
        return self


class ClickHouseComputePlugin(WarehouseCompute):
    type_name: ClassVar[str] = "clickhouse"
    config_model = ClickHouseConfig
    dbt_adapter_type = "clickhouse"
    package = "dbt-clickhouse>=1.10.3,<1.11"
    driver_package = "clickhouse-connect"
    driver_module = "clickhouse_connect"

    def generate_dbt_profile(self, config: PluginConfig, context: DbtProfileContext) -> dict[str, Any]:
        c: ClickHouseConfig = self._checked(config, "generate_dbt_profile")
        settings = dict(c.custom_settings)
        if c.timeout_seconds:
            settings["max_execution_time"] = c.timeout_seconds
        output = {
            "type": "clickhouse",
            "driver": c.driver,
            "host": c.host,
            "port": c.effective_port,
            "user": c.user,
            "password": self._secret_ref(c, context.compute_name, "password"),
            "schema": c.schema_,
            "secure": c.secure,
            "verify": c.verify,
            "client_cert": c.client_cert,
            "client_cert_key": c.client_cert_key,
            "cluster": c.cluster,
            "connect_timeout": c.connect_timeout,
            "send_receive_timeout": c.send_receive_timeout,
            "retries": c.retries,
            "custom_settings": settings or None,
            "threads": c.threads,
        }
        return drop_none(output)

    def endpoint(self, config: ClickHouseConfig) -> str:
        scheme = {("http", False): "http", ("http", True): "https"}.get(
            (config.driver, config.secure), "native"
        )
        return f"{scheme}://{config.user}@{config.host}:{config.effective_port}/{config.schema_}"

    def driver(self, config: ClickHouseConfig) -> tuple[str, str]:
        if config.driver == "native":
            return "clickhouse_driver", "clickhouse-driver"
        return self.driver_module, self.driver_package

    def socket_address(self, config: ClickHouseConfig) -> tuple[str, int]:
        return config.host, config.effective_port

    def _probe(self, config: ClickHouseConfig) -> str:
        password = config.password.get_secret_value() if config.password else ""
        if config.driver == "native":
            native = require("clickhouse_driver", "clickhouse-driver")
            client = native.Client(
                host=config.host,
                port=config.effective_port,
                user=config.user,
                password=password,
                database=config.schema_,
                secure=config.secure,
                verify=config.verify,
                connect_timeout=config.connect_timeout,
                send_receive_timeout=config.connect_timeout,
                sync_request_timeout=config.connect_timeout,
                client_name="floe-validate",
            )
            try:
                rows = client.execute("SELECT 1")
            finally:
                client.disconnect()
            value = rows[0][0] if rows else None
        else:
            clickhouse_connect = require("clickhouse_connect", self.driver_package)
            kwargs: dict[str, Any] = {
                "host": config.host,
                "port": config.effective_port,
                "username": config.user,
                "password": password,
                "database": config.schema_,
                "secure": config.secure,
                "verify": config.verify,
                "connect_timeout": config.connect_timeout,
                "send_receive_timeout": config.connect_timeout,
                "client_name": "floe-validate",
            }
            if config.client_cert:
                kwargs.update(client_cert=config.client_cert, client_cert_key=config.client_cert_key)
            http_client = clickhouse_connect.get_client(**kwargs)
            try:
                value = http_client.command("SELECT 1")
            finally:
                http_client.close()
        if str(value) != "1":
            raise RuntimeError("SELECT 1 answered an unexpected value")
        return "answered SELECT 1"
