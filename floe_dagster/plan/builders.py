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
from floe_dagster.plugins.dbt_packages import MissingDbtPackageError, describe_missing, missing_packages
from floe_dagster.plugins.factory import connect_metastore, load_time_config
from floe_dagster.plugins.metastore import MetastoreConnector
from floe_dagster.plugins.registry import get_plugin_class
from floe_dagster.plugins.table_model import TableFilter

__all__ = ["build_catalog", "build_compute", "build_metastore", "check_dbt_packages", "table_filter"]


def build_catalog(loaded: LoadedManifest, name: str, quick: bool = False) -> CatalogPlugin:
    entry = loaded.manifest.catalogs[name]
    cls = cast(type[CatalogPlugin], get_plugin_class("catalogs", entry.type))
    config = loaded.plugin_config("catalogs", name)
    return cls(name, load_time_config(config) if quick else config)


def build_compute(loaded: LoadedManifest, name: str) -> tuple[ComputePlugin, PluginConfig]:
    cls = cast(type[ComputePlugin], get_plugin_class("computes", loaded.target(name).type))
    return cls(), loaded.plugin_config("computes", name)


def check_dbt_packages(loaded: LoadedManifest) -> None:
    """Every approved compute's dbt adapter and driver are installed, else one error naming each
    missing package with its install command (``floe validate``, code-location load)."""
    problems: list[MissingDbtPackageError] = []
    for name in loaded.manifest.computes.approved:
        plugin, config = build_compute(loaded, name)
        missing = missing_packages(plugin, config)
        if missing:
            problems.append(
                MissingDbtPackageError(
                    f"compute '{name}' ({plugin.type_name}): {describe_missing(missing)}",
                    compute=name,
                    compute_type=plugin.type_name,
                    missing=missing,
                )
            )
    if not problems:
        return
    if len(problems) == 1:
        raise problems[0]
    everything = sorted({f"'{m.requirement}'" for p in problems for m in p.missing})
    raise MissingDbtPackageError(
        "; ".join(p.message for p in problems) + f" (all at once: `pip install {' '.join(everything)}`)",
        compute=", ".join(p.compute for p in problems),
        compute_type=", ".join(p.compute_type for p in problems),
        missing=[m for p in problems for m in p.missing],
    )


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
