"""``__all__`` on every module users and plugin authors import from.

The package, its stage packages, the plugin contracts (every ``plugins/*.py``), the error root,
the Dagster stage's public modules and every module of ``catalogs/``, ``computes/`` and
``metastores/`` that defines a plugin: each lists its public names in ``__all__``, ``from module
import *`` gives exactly those names, each of them exists, and every plugin class a module
defines is listed with its config class.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from pathlib import Path
from types import ModuleType

import pytest

import floe_dagster
from floe_dagster.plugins.catalog import CatalogPlugin
from floe_dagster.plugins.compute import ComputePlugin
from floe_dagster.plugins.metastore import MetastoreConnector

PACKAGE = Path(floe_dagster.__file__).parent
PLUGIN_BASES = (CatalogPlugin, ComputePlugin, MetastoreConnector)

NAMED = [
    "floe_dagster",
    "floe_dagster.dagster_stage.automation",
    "floe_dagster.core.errors",
    "floe_dagster.core.compat",
    "floe_dagster.manifest",
    "floe_dagster.plan",
    "floe_dagster.plugins",
    "floe_dagster.dagster_stage",
    "floe_dagster.dagster_stage.definitions",
    "floe_dagster.dagster_stage.resources",
    "floe_dagster.dagster_stage.automation",
    "floe_dagster.dagster_stage.component",
]


def submodules(package: str) -> list[str]:
    folder = PACKAGE / package
    modules = pkgutil.iter_modules([str(folder)])
    return [f"floe_dagster.{package}.{info.name}" for info in modules if not info.name.startswith("_")]


def plugin_classes(module: ModuleType) -> list[type]:
    return [
        cls
        for _, cls in inspect.getmembers(module, inspect.isclass)
        if cls.__module__ == module.__name__
        and issubclass(cls, PLUGIN_BASES)
        and cls not in PLUGIN_BASES
        and not cls.__name__.startswith("_")
    ]


def plugin_modules() -> list[str]:
    found = []
    for package in ("catalogs", "computes", "metastores"):
        for name in submodules(package):
            if plugin_classes(importlib.import_module(name)):
                found.append(name)
    return found


PUBLIC_MODULES = sorted({*NAMED, *submodules("plugins"), *plugin_modules()})


def test_the_plugin_modules_are_found() -> None:
    expected = {"catalogs.rest", "catalogs.hive", "computes.duckdb", "computes.spark", "metastores.s3"}
    assert {f"floe_dagster.{name}" for name in expected} <= set(PUBLIC_MODULES)
    assert "floe_dagster.plugins.aws" in PUBLIC_MODULES


@pytest.mark.parametrize("name", PUBLIC_MODULES)
def test_star_import_gives_exactly_all(name: str) -> None:
    module = importlib.import_module(name)
    public = getattr(module, "__all__", None)
    assert isinstance(public, list) and public, f"{name} has no __all__"
    assert len(public) == len(set(public)), f"{name}.__all__ repeats a name"
    missing = [item for item in public if not hasattr(module, item)]
    assert missing == [], f"{name}.__all__ names what it does not have"
    namespace: dict[str, object] = {}
    exec(f"from {name} import *", namespace)
    assert set(namespace) - {"__builtins__"} == set(public)


@pytest.mark.parametrize(
    "name",
    [name for name in PUBLIC_MODULES if name.split(".")[1:2] in (["catalogs"], ["computes"], ["metastores"])],
)
def test_every_plugin_class_and_its_config_is_public(name: str) -> None:
    module = importlib.import_module(name)
    for cls in plugin_classes(module):
        assert cls.__name__ in module.__all__, f"{name}.{cls.__name__}"
        config = getattr(cls, "config_model", None)
        if config is not None and config.__module__ == name:
            assert config.__name__ in module.__all__, f"{name}.{config.__name__}"
