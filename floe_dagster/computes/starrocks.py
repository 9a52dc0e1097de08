"""StarRocks compute: a dbt-starrocks target over StarRocks's MySQL protocol (frontend port 9030).

dbt-starrocks 1.12.2 installs beside dbt-core 1.11 (the ``mysql-family`` and ``dev`` extras). Its
profile keys: ``host``, ``port``, ``username``, ``password``, ``schema``, ``catalog`` (default
``default_catalog``; an external catalog such as an Iceberg one can be named), ``charset``,
``version`` (the server's, when the adapter cannot ask), ``threads``.

Tested here: the profile is parsed by dbt-starrocks's own ``StarRocksCredentials`` and the
connection check runs against MariaDB. A dbt build does not: dbt-starrocks qualifies every schema
with its catalog (``default_catalog.<schema>``), which only StarRocks accepts (MariaDB answers a
syntax error), so no dbt model has run on StarRocks here (docs/engines.md).
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import Field

from floe_dagster.computes._mysql import MySqlProtocolCompute, MySqlProtocolConfig
from floe_dagster.computes._warehouse import drop_none
from floe_dagster.plugins.base import PluginConfig
from floe_dagster.plugins.compute import DbtProfileContext

__all__ = ["StarRocksComputePlugin", "StarRocksConfig"]


class StarRocksConfig(MySqlProtocolConfig):
    port: int = Field(9030, ge=1, le=65535, description="StarRocks frontend's MySQL-protocol port.")
    catalog: str = Field("default_catalog", description="StarRocks catalog (internal or external).")
    version: str | None = Field(None, description="Server version, e.g. 3.3 (dbt-starrocks asks when unset).")


class StarRocksComputePlugin(MySqlProtocolCompute):
    type_name: ClassVar[str] = "starrocks"
    config_model = StarRocksConfig
    dbt_adapter_type = "starrocks"
    package = "dbt-starrocks>=1.12,<1.13"
    engine = "StarRocks"
    support_note: ClassVar[str] = (
        "dbt-starrocks; profile + connection check only (its catalog-qualified SQL needs a StarRocks server)"
    )

    def generate_dbt_profile(self, config: PluginConfig, context: DbtProfileContext) -> dict[str, Any]:
        assert isinstance(config, StarRocksConfig)
        return drop_none(
            {
                "type": self.dbt_adapter_type,
                "host": config.host,
                "port": config.port,
                "username": config.user,
                "password": self._password(config, context.compute_name),
                "schema": config.schema_,
                "catalog": config.catalog,
                "charset": config.charset,
                "version": config.version,
                "threads": config.threads,
            }
        )
