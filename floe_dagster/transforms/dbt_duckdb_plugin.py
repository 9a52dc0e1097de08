"""The dbt-duckdb plugin that connects dbt models on DuckDB to the platform's catalogs and metastores.

Why a dbt-duckdb plugin (and not a post-hook or a Dagster step after dbt): it is dbt-duckdb's
documented extension point for both directions, so plain ``dbt build`` produces the same
result as a Dagster materialisation.

- Reading: ``configure_connection`` runs the compute plugin's catalog attachment SQL, so every
  table of every manifest catalog is ``<catalog>.<namespace>.<table>`` (dbt sources name them so).
  For a REST catalog that SQL holds the client secret: it is executed, never logged, and errors
  are re-raised with it masked.
- Reading metastore tables: every dbt source linked to a ``hive``, ``glue``, ``dataproc`` or
  ``s3`` metastore becomes a view of the same name over the table's files
  (``computes/metastore_views.py``), resolved once per dbt invocation from the dbt manifest the
  invocation wrote (``<target-path>/manifest.json``) with one batched call per namespace.
- Writing: models materialised as ``external`` with ``plugin: floe`` are written by DuckDB to
  Parquet, then ``store`` commits that file to the write catalog as the Iceberg table
  ``<schema>.<model>`` (replacing its contents, as dbt's table materialisation does).
"""

from __future__ import annotations

import json
import logging
import os
from functools import cached_property
from pathlib import Path
from typing import Any

from dbt.adapters.duckdb.plugins import BasePlugin
from dbt.adapters.duckdb.utils import TargetConfig

from floe_dagster.computes.duckdb import DuckDBComputePlugin, redact_sql, scrub_secrets
from floe_dagster.core.compat import dbt_invocation_flag
from floe_dagster.manifest.loader import LoadedManifest
from floe_dagster.plan.artifact import load_manifest_or_plan
from floe_dagster.plan.builders import build_catalog
from floe_dagster.plugins.catalog import CatalogPlugin
from floe_dagster.readers.formats import register_all, write_versions_read
from floe_dagster.readers.metastore_views import (
    ResolvedViews,
    create_source_views,
    reads_through_views,
    resolve_source_views,
)
from floe_dagster.writers.iceberg import replace_table_from_parquet

logger = logging.getLogger("floe_dagster.dbt")


class Plugin(BasePlugin):
    def initialize(self, plugin_config: dict[str, Any]) -> None:
        self.manifest_path = plugin_config["manifest"]
        self.environment: str | None = plugin_config.get("environment")
        self.catalog_names: list[str] = list(plugin_config.get("catalogs") or [])
        self.write_catalog: str = plugin_config.get("write_catalog") or ""

    @cached_property
    def _loaded(self) -> LoadedManifest:
        return load_manifest_or_plan(self.manifest_path, self.environment)

    def _catalog(self, name: str) -> CatalogPlugin:
        return build_catalog(self._loaded, name)

    def _dbt_manifest(self) -> dict[str, Any]:
        """The dbt manifest of this invocation (its target path), else the project's ``target/``."""
        project = self._loaded.dbt_project_dir
        candidates = []
        target = _invocation_target_path()
        if target:
            candidates.append(Path(target) if Path(target).is_absolute() else project / target)
        candidates.append(project / "target")
        for folder in candidates:
            path = folder / "manifest.json"
            if path.is_file():
                with path.open(encoding="utf-8") as handle:
                    return dict(json.load(handle))
        logger.warning("floe: no dbt manifest.json in %s; no metastore source views", candidates)
        return {}

    @cached_property
    def _source_views(self) -> Any:
        """Resolved once per dbt invocation (this plugin lives as long as the invocation)."""

        if not any(reads_through_views(self._loaded, m) for m in self._loaded.manifest.metastores):
            return ResolvedViews()  # only Iceberg catalogs: nothing to read the dbt manifest for
        resolved = resolve_source_views(self._loaded, self._dbt_manifest())
        write_versions_read(resolved.versions)  # what the run records on its materialisations
        return resolved

    def configure_connection(self, conn: Any) -> None:
        """Attach every manifest catalog, then create the metastore source views.

        The statements may hold a catalog's client secret or a metastore's storage credentials:
        they are never logged, and a failure is re-raised with the secrets masked (no chained
        exception, whose message and traceback could still carry the statement)."""

        compute = DuckDBComputePlugin()
        for name in self.catalog_names:
            catalog = self._catalog(name)
            filesystem = getattr(catalog, "duckdb_filesystem", None)
            if callable(filesystem) and (fs := filesystem()) is not None:
                conn.register_filesystem(fs)  # a warehouse DuckDB reads through fsspec (gs:// without HMAC)
            statements = compute.get_catalog_attachment_sql(catalog) or []
            for statement in statements:
                try:
                    conn.execute(statement)
                except Exception as exc:
                    detail = scrub_secrets(f"{type(exc).__name__}: {exc}", statements)
                    raise RuntimeError(
                        f"floe: attaching catalog '{name}' failed: {detail}"
                        f" (statement: {scrub_secrets(redact_sql(statement), statements)})"
                    ) from None
        self._create_source_views(conn)

    def configure_cursor(self, cursor: Any) -> None:
        """Register the Arrow datasets of the views (ORC, ...) on each cursor dbt opens: a
        registration belongs to one DuckDB connection, and every cursor is one."""
        register_all(cursor, self._source_views.registered)

    def _create_source_views(self, conn: Any) -> None:
        resolved = self._source_views
        try:
            create_source_views(conn, resolved)
        except Exception as exc:
            detail = scrub_secrets(f"{type(exc).__name__}: {exc}", resolved.secrets)
            raise RuntimeError(f"floe: creating the metastore source views failed: {detail}") from None

    def store(self, target_config: TargetConfig) -> None:
        if not self.write_catalog:
            raise RuntimeError(
                "this model is materialised with plugin 'floe' but the manifest names no"
                " transforms.catalog to write it to; set transforms.catalog"
            )
        assert target_config.location is not None

        relation = target_config.relation
        identifier = (str(relation.schema), str(relation.identifier))
        rows = replace_table_from_parquet(
            self._catalog(self.write_catalog), identifier, target_config.location.path
        )
        logger.info(
            "floe: wrote %s rows to Iceberg table %s.%s", rows, self.write_catalog, ".".join(identifier)
        )


def _invocation_target_path() -> str | None:
    """dbt's ``--target-path`` / ``DBT_TARGET_PATH`` of the running invocation (dagster-dbt sets one
    per run), when dbt's flags or the environment have it."""
    try:
        target = dbt_invocation_flag("TARGET_PATH")
    except Exception:
        target = None
    return str(target) if target else os.environ.get("DBT_TARGET_PATH") or None
