"""Oscar (ShenTong) as a compute: the postgres compute under its own type (``oscar``), run by
dbt-postgres (no dbt adapter and no Python driver for Oscar is published on PyPI).

This relies on Oscar's PostgreSQL-compatible wire protocol (default port 2003). Oscar's SQL
dialect is not PostgreSQL's in every respect; models that use PostgreSQL-only functions may fail
there. Nothing here has run against an Oscar server (none can run on these machines).
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from floe_dagster.computes.postgres import PostgresConfig
from floe_dagster.computes.postgres_flavor import PostgresFlavorCompute

__all__ = ["OscarComputePlugin", "OscarConfig"]


class OscarConfig(PostgresConfig):
    port: int = Field(2003, ge=1, le=65535)


class OscarComputePlugin(PostgresFlavorCompute):
    type_name: ClassVar[str] = "oscar"
    product: ClassVar[str] = "Oscar"
    config_model = OscarConfig
    dbt_adapter_type = "postgres"
    package = "dbt-postgres>=1.11,<1.12"
