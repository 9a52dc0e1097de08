"""TiDB compute: a dbt-tidb target over TiDB's MySQL protocol (port 4000).

dbt-tidb does NOT install beside this project's pins: every release requires an older dbt-core
(the newest, 1.6.4, needs ``dbt-core>=1.6.4,<1.7``), and dbt-mysql (1.7 at most) neither. So this
compute writes dbt-tidb's documented profile (``server``, ``port``, ``username``, ``password``,
``schema``, ``charset``, ``retries``) and validates the connection, but dbt cannot run on it in
this environment: ``floe validate``, ``floe health`` and the code-location load say that dbt-tidb
is missing (plugins/dbt_packages.py) instead of failing when a run starts.

Tested here: the connection check against MariaDB (same protocol); the profile against dbt-tidb
1.6.4's credentials fields as documented (the adapter itself cannot be imported here).
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import Field

from floe_dagster.computes._mysql import MySqlProtocolCompute, MySqlProtocolConfig
from floe_dagster.plugins.base import PluginConfig
from floe_dagster.plugins.compute import DbtProfileContext

__all__ = ["TiDBComputePlugin", "TiDBConfig"]


class TiDBConfig(MySqlProtocolConfig):
    port: int = Field(4000, ge=1, le=65535, description="TiDB's MySQL-protocol port.")
    retries: int = Field(1, ge=0, le=10, description="dbt-tidb's connection retries.")


class TiDBComputePlugin(MySqlProtocolCompute):
    type_name: ClassVar[str] = "tidb"
    config_model = TiDBConfig
    dbt_adapter_type = "tidb"
    package = "dbt-tidb>=1.6,<1.7"
    engine = "TiDB"
    support_note: ClassVar[str] = (
        "profile + connection check only: dbt-tidb needs dbt-core<1.7, so dbt cannot run on it"
        " beside dbt-core 1.11"
    )

    def generate_dbt_profile(self, config: PluginConfig, context: DbtProfileContext) -> dict[str, Any]:
        assert isinstance(config, TiDBConfig)
        return {
            "type": self.dbt_adapter_type,
            "server": config.host,
            "port": config.port,
            "username": config.user,
            "password": self._password(config, context.compute_name),
            "schema": config.schema_,
            "charset": config.charset,
            "retries": config.retries,
            "threads": config.threads,
        }
