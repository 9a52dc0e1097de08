"""KingbaseES (PostgreSQL mode) as a compute: the postgres compute under its own type
(``kingbase``), run by dbt-postgres (no dbt adapter for KingbaseES is published on PyPI).

Its default port is 54321. KingbaseES's own driver (``ksycopg2``) is not needed for PostgreSQL
mode: the server speaks the PostgreSQL wire protocol and libpq authenticates with MD5 or
SCRAM-SHA-256.
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from floe_dagster.computes.postgres import PostgresConfig
from floe_dagster.computes.postgres_flavor import PostgresFlavorCompute

__all__ = ["KingbaseComputePlugin", "KingbaseConfig"]


class KingbaseConfig(PostgresConfig):
    port: int = Field(54321, ge=1, le=65535)


class KingbaseComputePlugin(PostgresFlavorCompute):
    type_name: ClassVar[str] = "kingbase"
    product: ClassVar[str] = "KingbaseES"
    config_model = KingbaseConfig
    dbt_adapter_type = "postgres"
    package = "dbt-postgres>=1.11,<1.12"
