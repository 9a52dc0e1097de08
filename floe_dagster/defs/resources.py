"""Dagster resources for the manifest's catalogs, computes and metastores.

A resource holds the manifest path and an entry name, never the entry's config: config may
carry credentials, and Dagster shows resource config in the UI. The plugin is built from the
manifest when a step needs it.
"""

from __future__ import annotations

from functools import cached_property
from typing import Any

from dagster import ConfigurableResource
from dagster_dbt import DbtCliResource
from packaging import version
from pydantic import PrivateAttr

from floe_dagster.manifest.loader import LoadedManifest, load_manifest
from floe_dagster.plugins.catalog import CatalogPlugin, HealthStatus
from floe_dagster.plugins.compute import ComputePlugin, ConnectionResult
from floe_dagster.plugins.factory import build_catalog, build_compute, build_metastore, table_filter
from floe_dagster.plugins.metastore import MetastoreConnector, TableFilter


class _ManifestEntryResource(ConfigurableResource):
    manifest_path: str
    environment: str
    name: str
    plugin_type: str

    _loaded: LoadedManifest | None = PrivateAttr(default=None)

    def loaded(self) -> LoadedManifest:
        if self._loaded is None:
            self._loaded = load_manifest(
                self.manifest_path, environment=self.environment, check_assignments=False
            )
        return self._loaded


class FloeCatalogResource(_ManifestEntryResource):
    """An Iceberg catalog from the manifest's ``catalogs`` section."""

    def plugin(self) -> CatalogPlugin:
        return build_catalog(self.loaded(), self.name)

    def health_check(self, timeout: float = 10.0) -> HealthStatus:
        return self.plugin().health_check(timeout)


class FloeComputeResource(_ManifestEntryResource):
    """A compute engine (one dbt target) from the manifest's ``computes.targets``."""

    def plugin(self) -> tuple[ComputePlugin, Any]:
        return build_compute(self.loaded(), self.name)

    def check_connection(self) -> ConnectionResult:
        plugin, config = self.plugin()
        return plugin.validate_connection(config)


class FloeMetastoreResource(_ManifestEntryResource):
    """A metastore whose tables are observable source assets."""

    def connector(self) -> MetastoreConnector:
        return build_metastore(self.loaded(), self.name)

    def table_filter(self) -> TableFilter:
        return table_filter(self.loaded(), self.name)

    def batch_size(self) -> int:
        return self.loaded().manifest.metastores[self.name].batch_size


class FloeDbtCliResource(DbtCliResource):
    """dagster-dbt's resource, minus start-up work that costs seconds on every step.

    dagster-dbt runs ``dbt --version`` in a subprocess (a full dbt import, 4-10 s here) to learn
    a version that the dbt-core installed beside floe already tells us, and opens an adapter in
    process that only its optional metadata fetchers use.
    """

    @cached_property
    def _cli_version(self) -> version.Version:
        from dbt.version import __version__ as dbt_version

        return version.parse(dbt_version)

    def _initialize_dbt_core_adapter(self, args):
        return None
