"""openGauss as a compute: the postgres compute under its own type (``opengauss``), run by
dbt-postgres.

dbt-opengauss (1.0.1, the only release) requires ``dbt-core==1.0.1`` and cannot install beside
this project's dbt-core 1.11, so the profile is a dbt-postgres target. openGauss's default
password scheme is SHA-256 (``password_encryption_type = 2``), which stock libpq (psycopg2-binary,
what dbt-postgres uses) cannot answer: give the dbt user an MD5 password (server
``password_encryption_type = 1`` before setting it) or install openGauss's own psycopg2 build.
"""

from __future__ import annotations

from typing import ClassVar

from floe_dagster.computes.postgres_flavor import PostgresFlavorCompute

__all__ = ["OpenGaussComputePlugin"]


class OpenGaussComputePlugin(PostgresFlavorCompute):
    type_name: ClassVar[str] = "opengauss"
    product: ClassVar[str] = "openGauss"
    dbt_adapter_type = "postgres"
    package = "dbt-postgres>=1.11,<1.12"
