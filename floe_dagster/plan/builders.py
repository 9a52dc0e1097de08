"""Plugin instances for the entries of a loaded manifest (catalogs, computes, metastores).

The only place plugins are constructed from a manifest; the config of a metastore goes through
the credential chokepoint (``floe_dagster.plugins.factory.metastore_config``).
"""

from __future__ import annotations

from typing import cast

from floe_dagster.manifest.loader import LoadedManifest
from floe_dagster.plugins.base import PluginConfig
from floe_dagster.plugins.catalog import CatalogPlugin
from floe_dagster.plugins.compute import ComputePlugin
from floe_dagster.plugins.data_versions import DataVersionPolicy
from floe_dagster.plugins.factory import connect_metastore, load_time_config
from floe_dagster.plugins.metastore import MetastoreConnector
from floe_dagster.plugins.registry import get_plugin_class
from floe_dagster.plugins.table_model import TableFilter

__all__ = ["build_catalog", "build_compute", "build_metastore", "table_filter"]


def build_catalog(loaded: LoadedManifest, name: str, quick: bool = False) -> CatalogPlugin:
    entry = loaded.manifest.catalogs[name]
    cls = cast(type[CatalogPlugin], get_plugin_class("catalogs", entry.type))
    config = loaded.plugin_config("catalogs", name)
    return cls(name, load_time_config(config) if quick else config)


def build_compute(loaded: LoadedManifest, name: str) -> tuple[ComputePlugin, PluginConfig]:
    cls = cast(type[ComputePlugin], get_plugin_class("computes", loaded.target(name).type))
    return cls(), loaded.plugin_config("computes", name)


def build_metastore(loaded: LoadedManifest, name: str, quick: bool = False) -> MetastoreConnector:
    """The connector of metastore ``name``; ``quick``: one short attempt (see ``LOAD_TIME_LIMITS``)."""
    entry = loaded.manifest.metastores[name]
    config = loaded.plugin_config("metastores", name)
    catalog = None
    if getattr(get_plugin_class("metastores", entry.type), "needs_catalog", False):
        catalog = build_catalog(loaded, getattr(config, "catalog"), quick=quick)  # noqa: B009
    connector = connect_metastore(name, entry.type, config, catalog=catalog, quick=quick)
    connector.data_version_policy = DataVersionPolicy.of(entry.data_version)
    return connector


def table_filter(loaded: LoadedManifest, name: str) -> TableFilter:
    entry = loaded.manifest.metastores[name]
    return TableFilter(include=tuple(entry.include), exclude=tuple(entry.exclude))
