"""DuckDB: the reference compute plugin and the embedded default (dbt-duckdb target)."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any, ClassVar

from pydantic import Field, ValidationInfo, field_validator

from floe_dagster.computes.duckdb_extensions import available_extensions, connect_with_extensions
from floe_dagster.plugins.base import PluginConfig
from floe_dagster.plugins.catalog import CatalogPlugin
from floe_dagster.plugins.compute import (
    ComputePlugin,
    ConnectionResult,
    DbtProfileContext,
    ResourceSpec,
    pick_preset,
)
from floe_dagster.plugins.paths import resolve_local_path

MEMORY_LIMIT = re.compile(r"^\d+(\.\d+)?\s*(B|KB|MB|GB|TB|KiB|MiB|GiB|TiB)$", re.IGNORECASE)
DBT_PLUGIN_MODULE = "floe_dagster.computes.dbt_duckdb_plugin"
DBT_PLUGIN_ALIAS = "floe"

PRESETS: dict[str, ResourceSpec] = {
    "small": ResourceSpec("500m", "1", "1Gi", "2Gi"),
    "medium": ResourceSpec("1", "2", "4Gi", "8Gi"),
    "large": ResourceSpec("2", "4", "8Gi", "16Gi"),
}


class DuckDBAttachment(PluginConfig):
    path: str
    alias: str
    read_only: bool = True

    @field_validator("path")
    @classmethod
    def _resolve(cls, value: str, info: ValidationInfo) -> str:
        return resolve_local_path(value, info)


class DuckDBConfig(PluginConfig):
    path: str = Field(".floe/duckdb/lakehouse.duckdb", description="Database file, or ':memory:'.")
    threads: int | None = Field(None, ge=1, description="Worker threads (DuckDB's default: all cores).")
    memory_limit: str | None = Field(None, description="e.g. '4GB' or '512MB'.")
    extensions: list[str] = Field(default_factory=lambda: ["iceberg"], description="Loaded offline.")
    settings: dict[str, str | int | float | bool] = Field(default_factory=dict)
    attach: list[DuckDBAttachment] = Field(default_factory=list)
    timeout_seconds: int | None = Field(None, ge=1)
    dbt_threads: int = Field(1, ge=1, description="dbt's own thread count for this target.")

    @field_validator("path")
    @classmethod
    def _resolve_path(cls, value: str, info: ValidationInfo) -> str:
        return resolve_local_path(value, info)

    @field_validator("memory_limit")
    @classmethod
    def _check_memory_limit(cls, value: str | None) -> str | None:
        if value is not None and not MEMORY_LIMIT.match(value.strip()):
            raise ValueError(f"'{value}' is not a memory size; write it like '4GB' or '512MB'")
        return value

    @field_validator("extensions")
    @classmethod
    def _check_extensions(cls, value: list[str]) -> list[str]:
        known = available_extensions()
        unknown = [e for e in value if e not in known]
        if unknown:
            raise ValueError(
                f"unknown DuckDB extension(s) {unknown}; installed offline extensions: {known}"
                " (add the matching duckdb-extension-<name> package)"
            )
        return value


class DuckDBComputePlugin(ComputePlugin):
    type_name: ClassVar[str] = "duckdb"
    config_model = DuckDBConfig
    dbt_adapter_type = "duckdb"

    def generate_dbt_profile(self, config: PluginConfig, context: DbtProfileContext) -> dict[str, Any]:
        assert isinstance(config, DuckDBConfig)
        if config.path != ":memory:":
            Path(config.path).parent.mkdir(parents=True, exist_ok=True)
        extension_dir = Path(context.state_dir) / "duckdb_extensions"
        external_root = Path(context.state_dir) / "dbt_external" / context.compute_name
        external_root.mkdir(parents=True, exist_ok=True)
        settings: dict[str, Any] = dict(config.settings)
        if config.memory_limit:
            settings["memory_limit"] = config.memory_limit
        if config.threads:
            settings["threads"] = config.threads
        output: dict[str, Any] = {
            "type": "duckdb",
            "path": config.path,
            "threads": config.dbt_threads,
            "extensions": list(config.extensions),
            "config_options": {
                "extension_directory": str(extension_dir),
                "autoinstall_known_extensions": False,
            },
            "external_root": str(external_root),
            "plugins": [
                {
                    "module": DBT_PLUGIN_MODULE,
                    "alias": DBT_PLUGIN_ALIAS,
                    "config": {
                        "manifest": context.manifest_path,
                        "environment": context.environment,
                        "compute": context.compute_name,
                        "catalogs": list(context.catalogs),
                        "write_catalog": context.write_catalog or "",
                    },
                }
            ],
        }
        if settings:
            output["settings"] = settings
        if config.attach:
            output["attach"] = [
                {"path": a.path, "alias": a.alias, "read_only": a.read_only} for a in config.attach
            ]
        return output

    def max_concurrency(self, config: PluginConfig) -> int | None:
        assert isinstance(config, DuckDBConfig)
        return None if config.path == ":memory:" else 1  # DuckDB allows one writer per file

    def get_required_dbt_packages(self) -> list[str]:
        return ["dbt-duckdb>=1.11,<1.12"]

    def validate_connection(self, config: PluginConfig) -> ConnectionResult:
        assert isinstance(config, DuckDBConfig)
        started = time.perf_counter()
        try:
            database = ":memory:"
            if config.path != ":memory:" and Path(config.path).exists():
                database = config.path
            import tempfile

            with tempfile.TemporaryDirectory() as tmp:
                con = connect_with_extensions(
                    database, Path(tmp), config.extensions, read_only=database != ":memory:"
                )
                try:
                    con.execute("SELECT 1").fetchall()
                finally:
                    con.close()
        except Exception as exc:
            elapsed = (time.perf_counter() - started) * 1000
            return ConnectionResult("failed", round(elapsed, 1), f"duckdb '{config.path}': {exc}")
        elapsed = (time.perf_counter() - started) * 1000
        return ConnectionResult("ok", round(elapsed, 1), f"duckdb {config.path} answered")

    def get_resource_requirements(self, workload_size: str) -> ResourceSpec:
        return pick_preset(PRESETS, workload_size, self.type_name)

    def get_catalog_attachment_sql(self, catalog: CatalogPlugin) -> list[str] | None:
        """Expose a catalog's tables as ``<catalog>.<namespace>.<table>`` views over ``iceberg_scan``.

        DuckDB has no native attachment for a PyIceberg SQL catalog, so the catalog becomes an
        in-memory database of views pinned to each table's current metadata file: nothing stale
        is kept in the DuckDB file, and dbt sources address tables as catalog.namespace.table.
        """
        statements = [f"ATTACH IF NOT EXISTS ':memory:' AS {quote(catalog.name)}"]
        for namespace in catalog.list_namespaces():
            schema = ".".join(namespace)
            statements.append(f"CREATE SCHEMA IF NOT EXISTS {quote(catalog.name)}.{quote(schema)}")
            for identifier in catalog.list_tables(namespace):
                table = catalog.load_table(identifier)
                if table.current_snapshot() is None:
                    continue  # iceberg_scan cannot read a table that has never been written
                metadata = table.metadata_location.removeprefix("file://")
                statements.append(
                    f"CREATE OR REPLACE VIEW {quote(catalog.name)}.{quote(schema)}.{quote(identifier[-1])}"
                    f" AS SELECT * FROM iceberg_scan({literal(metadata)})"
                )
        return statements


def quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"
