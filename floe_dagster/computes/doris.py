"""Apache Doris compute: a dbt-doris target over Doris's MySQL protocol (frontend port 9030).

dbt-doris 1.0.0 installs beside dbt-core 1.11 (the ``mysql-family`` and ``dev`` extras). Its profile
keys: ``host``, ``port``, ``username``, ``password``, ``schema`` (Doris has no schema level: the
database is the schema, so ``database`` is left out), ``threads``. The adapter has no key for a
connect timeout or a client character set: ``connect_timeout`` and ``charset`` apply to
``validate_connection`` only. Doris table models (``duplicate_key``, ``distributed_by``,
``buckets``, ``properties``) are set per model in dbt, as dbt-doris documents.

Tested here: the profile is parsed by dbt-doris's own ``DorisCredentials``, and a real ``dbt build``
(tables, a view, refs) runs through dbt-doris against MariaDB, which speaks the same protocol but
is not Doris (what that does not prove: docs/engines.md).
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import Field

from floe_dagster.computes._mysql import MySqlProtocolCompute, MySqlProtocolConfig
from floe_dagster.plugins.base import PluginConfig
from floe_dagster.plugins.compute import DbtProfileContext

__all__ = ["DorisComputePlugin", "DorisConfig"]


class DorisConfig(MySqlProtocolConfig):
    port: int = Field(9030, ge=1, le=65535, description="Doris frontend's MySQL-protocol port.")


class DorisComputePlugin(MySqlProtocolCompute):
    type_name: ClassVar[str] = "doris"
    config_model = DorisConfig
    dbt_adapter_type = "doris"
    package = "dbt-doris>=1.0,<1.1"
    engine = "Apache Doris"
    support_note: ClassVar[str] = "dbt-doris; dbt build proven on MariaDB (MySQL protocol), not on Doris"

    def generate_dbt_profile(self, config: PluginConfig, context: DbtProfileContext) -> dict[str, Any]:
        assert isinstance(config, DorisConfig)
        return {
            "type": self.dbt_adapter_type,
            "host": config.host,
            "port": config.port,
            "username": config.user,
            "password": self._password(config, context.compute_name),
            "schema": config.schema_,
            "threads": config.threads,
        }
