"""The dbt-duckdb plugin that connects dbt models on DuckDB to the platform's Iceberg catalogs.

Why a dbt-duckdb plugin (and not a post-hook or a Dagster step after dbt): it is dbt-duckdb's
documented extension point for both directions, so plain ``dbt build`` produces the same
result as a Dagster materialisation.

- Reading: ``configure_connection`` runs the compute plugin's catalog attachment SQL, so every
  table of every manifest catalog is ``<catalog>.<namespace>.<table>`` (dbt sources name them so).
  For a REST catalog that SQL holds the client secret: it is executed, never logged, and errors
  are re-raised with it masked.
- Writing: models materialised as ``external`` with ``plugin: floe`` are written by DuckDB to
  Parquet, then ``store`` commits that file to the write catalog as the Iceberg table
  ``<schema>.<model>`` (replacing its contents, as dbt's table materialisation does).
"""

from __future__ import annotations

import logging
from functools import cached_property
from typing import Any

from dbt.adapters.duckdb.plugins import BasePlugin
from dbt.adapters.duckdb.utils import TargetConfig

logger = logging.getLogger("floe_dagster.dbt")


class Plugin(BasePlugin):
    def initialize(self, plugin_config: dict[str, Any]) -> None:
        self.manifest_path = plugin_config["manifest"]
        self.environment: str | None = plugin_config.get("environment")
        self.catalog_names: list[str] = list(plugin_config.get("catalogs") or [])
        self.write_catalog: str = plugin_config.get("write_catalog") or ""

    @cached_property
    def _loaded(self):
        from floe_dagster.manifest.loader import load_manifest

        return load_manifest(self.manifest_path, environment=self.environment, check_assignments=False)

    def _catalog(self, name: str):
        from floe_dagster.plugins.factory import build_catalog

        return build_catalog(self._loaded, name)

    def configure_connection(self, conn: Any) -> None:
        """Attach every manifest catalog. The statements may hold a catalog's client secret:
        they are never logged, and a failure is re-raised with the secret masked (no chained
        exception, whose message and traceback could still carry the statement)."""
        from floe_dagster.computes.duckdb import DuckDBComputePlugin, redact_sql, scrub_secrets

        compute = DuckDBComputePlugin()
        for name in self.catalog_names:
            statements = compute.get_catalog_attachment_sql(self._catalog(name)) or []
            for statement in statements:
                try:
                    conn.execute(statement)
                except Exception as exc:
                    detail = scrub_secrets(f"{type(exc).__name__}: {exc}", statements)
                    raise RuntimeError(
                        f"floe: attaching catalog '{name}' failed: {detail}"
                        f" (statement: {scrub_secrets(redact_sql(statement), statements)})"
                    ) from None

    def store(self, target_config: TargetConfig) -> None:
        if not self.write_catalog:
            raise RuntimeError(
                "this model is materialised with plugin 'floe' but the manifest names no"
                " transforms.catalog to write it to; set transforms.catalog"
            )
        assert target_config.location is not None
        from floe_dagster.transforms.iceberg_writer import replace_table_from_parquet

        relation = target_config.relation
        identifier = (str(relation.schema), str(relation.identifier))
        rows = replace_table_from_parquet(
            self._catalog(self.write_catalog), identifier, target_config.location.path
        )
        logger.info(
            "floe: wrote %s rows to Iceberg table %s.%s", rows, self.write_catalog, ".".join(identifier)
        )
