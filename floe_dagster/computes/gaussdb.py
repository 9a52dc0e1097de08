"""GaussDB (PostgreSQL-compatible mode) as a compute: type ``gaussdb``, run by Huawei's
``dbt-gaussdbdws`` adapter (profile ``type: gaussdbdws``), which installs beside dbt-core 1.11.

dbt-gaussdbdws is dbt-postgres adapted to GaussDB: the same profile keys (``host``, ``port``,
``user``, ``password`` (mandatory), ``dbname``, ``schema``, ``connect_timeout``, ``role``,
``keepalives_idle``, ``sslmode``, ``application_name``, ``retries``) over psycopg2, so the
password is required here too. Default port 8000 (GaussDB's). GaussDB's default SHA-256 password
scheme needs GaussDB's own libpq; with stock psycopg2 the dbt user needs an MD5 password.
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field, model_validator

from floe_dagster.computes.postgres import PostgresConfig
from floe_dagster.computes.postgres_flavor import PostgresFlavorCompute

__all__ = ["GaussDBComputePlugin", "GaussDBConfig"]


class GaussDBConfig(PostgresConfig):
    port: int = Field(8000, ge=1, le=65535)

    @model_validator(mode="after")
    def _password_required(self) -> GaussDBConfig:
        if self.password is None:
            raise ValueError(
                "password is required: dbt-gaussdbdws needs one in its profile (password: ${env:NAME})"
            )
        return self


class GaussDBComputePlugin(PostgresFlavorCompute):
    type_name: ClassVar[str] = "gaussdb"
    product: ClassVar[str] = "GaussDB"
    config_model = GaussDBConfig
    dbt_adapter_type = "gaussdbdws"
    package = "dbt-gaussdbdws==1.0.1"
