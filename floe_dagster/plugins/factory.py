"""Instantiate the plugins a loaded manifest names (the only place plugins are constructed)."""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from floe_dagster.plugins.catalog import CatalogPlugin
from floe_dagster.plugins.compute import ComputePlugin
from floe_dagster.plugins.metastore import MetastoreConnector, TableFilter
from floe_dagster.plugins.registry import get_plugin_class

if TYPE_CHECKING:
    from floe_dagster.manifest.loader import LoadedManifest
    from floe_dagster.plugins.base import PluginConfig


def build_catalog(loaded: LoadedManifest, name: str) -> CatalogPlugin:
    entry = loaded.manifest.catalogs[name]
    cls = cast(type[CatalogPlugin], get_plugin_class("catalogs", entry.type))
    return cls(name, loaded.plugin_config("catalogs", name))


def build_compute(loaded: LoadedManifest, name: str) -> tuple[ComputePlugin, PluginConfig]:
    cls = cast(type[ComputePlugin], get_plugin_class("computes", loaded.target(name).type))
    return cls(), loaded.plugin_config("computes", name)


def build_metastore(loaded: LoadedManifest, name: str) -> MetastoreConnector:
    entry = loaded.manifest.metastores[name]
    cls = cast(type[MetastoreConnector], get_plugin_class("metastores", entry.type))
    config = loaded.plugin_config("metastores", name)
    if getattr(cls, "needs_catalog", False):
        catalog = build_catalog(loaded, getattr(config, "catalog"))  # noqa: B009
        return cls(name, config, catalog=catalog)  # type: ignore[call-arg]
    return cls(name, config)


def table_filter(loaded: LoadedManifest, name: str) -> TableFilter:
    entry = loaded.manifest.metastores[name]
    return TableFilter(include=tuple(entry.include), exclude=tuple(entry.exclude))
