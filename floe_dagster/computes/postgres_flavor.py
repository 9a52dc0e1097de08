"""What the PostgreSQL-protocol flavours share (openGauss, GaussDB, KingbaseES, Oscar): the
postgres compute's config, profile, statement timeout, client encoding and Iceberg I/O
(``computes/postgres.py``, ``computes/postgres_iceberg.py``), plus a connection check that says
which server answered.

Each flavour is its own compute type in its own small module (``opengauss.py``, ``gaussdb.py``,
``kingbase.py``, ``oscar.py``), naming its dbt adapter (its own where one installs beside this
project's pins, else dbt-postgres), its default port and the marker its server puts in
``version()``. ``validate_connection`` runs ``SELECT version()`` and ``SHOW client_encoding``: the
result is ``ok`` for any server that answers, and its message names the server's product and
says so plainly when it is not the flavour's (e.g. a plain PostgreSQL standing in for openGauss
in a test). What plain PostgreSQL does not prove about each engine: docs/engines-postgres-snowflake.md.
"""

from __future__ import annotations

import time
from typing import ClassVar

from floe_dagster.computes.postgres import PostgresComputePlugin, PostgresConfig, _safe_detail
from floe_dagster.plugins.base import PluginConfig
from floe_dagster.plugins.compute import ConnectionResult

__all__ = ["PostgresFlavorCompute", "server_product"]


def server_product(version: str, markers: dict[str, str]) -> str:
    """The product named by a ``version()`` string (first marker found), else its first word."""
    lowered = version.lower()
    for marker, product in markers.items():
        if marker in lowered:
            return product
    return version.split(" ", 1)[0] or "unknown"


# version() of each product contains its marker (openGauss: "openGauss 5.0.0 build ...";
# GaussDB: "gaussdb (GaussDB Kernel ...)"; KingbaseES: "KingbaseES V008R006..."; Oscar: "Oscar ...").
KNOWN_PRODUCTS: dict[str, str] = {
    "opengauss": "openGauss",
    "gaussdb": "GaussDB",
    "kingbase": "KingbaseES",
    "oscar": "Oscar",
    "shentong": "Oscar",
    "postgresql": "PostgreSQL",
}


class PostgresFlavorCompute(PostgresComputePlugin):
    """A PostgreSQL-protocol engine driven as the postgres compute, under its own type name."""

    product: ClassVar[str]
    config_model = PostgresConfig

    def validate_connection(self, config: PluginConfig) -> ConnectionResult:
        assert isinstance(config, PostgresConfig)
        where = f"{self.type_name} {config.user}@{config.host}:{config.port}/{config.dbname}"
        started = time.perf_counter()
        try:
            import psycopg2

            con = psycopg2.connect(**self._connect_kwargs(config))
            try:
                with con.cursor() as cur:
                    cur.execute("SELECT version()")
                    version = str(cur.fetchone()[0])
                    cur.execute("SHOW client_encoding")
                    encoding = str(cur.fetchone()[0])
            finally:
                con.close()
        except Exception as exc:
            elapsed = round((time.perf_counter() - started) * 1000, 1)
            return ConnectionResult("failed", elapsed, f"{where}: {_safe_detail(exc, config)}")
        elapsed = round((time.perf_counter() - started) * 1000, 1)
        found = server_product(version, KNOWN_PRODUCTS)
        server = f"server {found}" if found == self.product else f"server {found}, not {self.product}"
        return ConnectionResult("ok", elapsed, f"{where} answered ({server}; client_encoding {encoding})")
