"""What the MySQL-protocol computes (Doris, StarRocks, TiDB, OceanBase in MySQL mode) share.

Each engine speaks the MySQL client/server protocol, so:

- the config is the same (``host``, ``port``, ``user``, ``password`` as ``SecretStr``, ``schema``,
  ``charset``, ``connect_timeout``, ``threads``); the default port is the engine's;
- ``validate_connection`` opens a connection through ``mysql-connector-python`` (the driver
  dbt-doris and dbt-starrocks use) with ``connect_timeout``, runs ``SELECT VERSION()`` and reports
  the latency and the server's version; failures name the endpoint, never the password;
- the profile is each adapter's own format (its keys differ: ``username`` or ``user``, ``server``
  or ``host``); the password reaches dbt only as ``FLOE_SECRET_<COMPUTE>_PASSWORD``;
- Iceberg catalogs of the manifest are not attached: the engine reads its own (external) catalogs.

Which adapter installs beside dbt-core 1.11, and what the tests prove against a real MariaDB:
docs/engines.md.
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import Field, SecretStr

from floe_dagster.computes._warehouse import WarehouseCompute, WarehouseConfig

__all__ = ["MySqlProtocolCompute", "MySqlProtocolConfig"]


class MySqlProtocolConfig(WarehouseConfig):
    host: str = Field(description="Server (frontend) host name or address.")
    port: int = Field(9030, ge=1, le=65535, description="MySQL-protocol port of the engine.")
    user: str = Field("root", description="Login user.")
    password: SecretStr | None = Field(None, description="Password (use ${env:NAME}); none: empty.")
    schema_: str = Field(alias="schema", description="Database (schema) dbt builds models into.")
    charset: str = Field("utf8mb4", description="Client character set (utf8mb4, gbk, gb18030 ...).")
    connect_timeout: int = Field(10, ge=1, le=300, description="Seconds to wait for a connection.")
    threads: int = Field(1, ge=1, le=64, description="dbt's thread count for this target.")


class MySqlProtocolCompute(WarehouseCompute):
    """Shared implementation; a subclass sets the adapter and writes its profile."""

    config_model: ClassVar[type[MySqlProtocolConfig]] = MySqlProtocolConfig
    driver_package = "mysql-connector-python"
    driver_module = "mysql.connector"
    engine: ClassVar[str]  # the engine's name, for messages

    def endpoint(self, config: MySqlProtocolConfig) -> str:
        return f"{config.user}@{config.host}:{config.port}/{config.schema_}"

    def socket_address(self, config: MySqlProtocolConfig) -> tuple[str, int] | None:
        # No TCP pre-check: the driver's own error is as plain ("Can't connect to MySQL server on
        # 'host:port' (111 Connection refused)") and bounded by connect_timeout, while a bare
        # connect-and-close is an aborted handshake to these servers (MariaDB made the next login
        # about 9 ms slower: benchmarks/health_latency.py).
        return None

    def _password(self, config: MySqlProtocolConfig, compute_name: str) -> str:
        """The profile's password: an env_var reference, or empty when none is configured."""
        return self._secret_ref(config, compute_name, "password") or ""

    def _probe(self, config: MySqlProtocolConfig) -> str:
        import mysql.connector

        kwargs: dict[str, Any] = {
            "host": config.host,
            "port": config.port,
            "user": config.user,
            "password": config.password.get_secret_value() if config.password else "",
            "connection_timeout": config.connect_timeout,
            "charset": config.charset,
            "use_pure": True,
        }
        con = mysql.connector.connect(**kwargs)
        try:
            cur = con.cursor()
            cur.execute("SELECT VERSION()")
            rows: list[Any] = list(cur.fetchall())
            cur.close()
        finally:
            con.close()
        version = str(rows[0][0]) if rows else "?"
        return f"answered SELECT VERSION(): {version}"
