"""OceanBase compute (MySQL mode): a dbt-oceanbase target (adapter type ``obmysql``, port 2881).

dbt-oceanbase 1.0.1 installs beside dbt-core 1.11, but pins ``mysql-connector-python>=8.0,<8.1``
while dbt-starrocks needs ``>=8.1``: the two cannot share one environment. It is therefore its own
extra (``pip install 'floe-dagster[oceanbase]'``), not in ``dev``; in the test environment its
adapter is absent, which ``floe validate`` / ``floe health`` / the load report by name
(plugins/dbt_packages.py). Profile keys (dbt-oceanbase 1.0.1's ``OBMySQLCredentials``): ``host``,
``port``, ``user``, ``password``, ``database`` (= ``schema``), ``schema``, ``connect_timeout``,
``retries``. Oracle mode is not supported (no dbt adapter for it).

Tested here: the connection check against MariaDB (same protocol); the profile against the
adapter's credentials fields as read from its 1.0.1 source (it cannot be imported beside
dbt-starrocks).
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import Field

from floe_dagster.computes._mysql import MySqlProtocolCompute, MySqlProtocolConfig
from floe_dagster.plugins.base import PluginConfig
from floe_dagster.plugins.compute import DbtProfileContext

__all__ = ["OceanBaseComputePlugin", "OceanBaseConfig"]


class OceanBaseConfig(MySqlProtocolConfig):
    port: int = Field(2881, ge=1, le=65535, description="OceanBase's MySQL-protocol port (OBProxy: 2883).")
    user: str = Field(description="Login user, e.g. root@tenant#cluster through OBProxy.")
    retries: int = Field(1, ge=0, le=10, description="dbt-oceanbase's connection retries.")


class OceanBaseComputePlugin(MySqlProtocolCompute):
    type_name: ClassVar[str] = "oceanbase"
    config_model = OceanBaseConfig
    dbt_adapter_type = "obmysql"
    package = "dbt-oceanbase>=1.0.1,<1.1"
    engine = "OceanBase (MySQL mode)"
    support_note: ClassVar[str] = (
        "dbt-oceanbase (extra 'oceanbase', conflicts with dbt-starrocks); profile + connection check tested"
    )

    def generate_dbt_profile(self, config: PluginConfig, context: DbtProfileContext) -> dict[str, Any]:
        assert isinstance(config, OceanBaseConfig)
        return {
            "type": self.dbt_adapter_type,
            "host": config.host,
            "port": config.port,
            "user": config.user,
            "password": self._password(config, context.compute_name),
            "database": config.schema_,
            "schema": config.schema_,
            "connect_timeout": config.connect_timeout,
            "retries": config.retries,
            "threads": config.threads,
        }
