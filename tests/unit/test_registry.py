"""Plugins are found through entry points, built-in ones included."""

from __future__ import annotations

import pytest

from floe_dagster.catalogs.sql import SqlCatalogPlugin
from floe_dagster.computes.duckdb import DuckDBComputePlugin
from floe_dagster.metastores.iceberg import IcebergCatalogConnector
from floe_dagster.plugins import PluginNotFoundError, available_types, get_plugin_class


def test_builtin_plugins_come_from_entry_points() -> None:
    assert get_plugin_class("catalogs", "sql") is SqlCatalogPlugin
    assert get_plugin_class("computes", "duckdb") is DuckDBComputePlugin
    assert get_plugin_class("metastores", "iceberg") is IcebergCatalogConnector
    assert "duckdb" in available_types("computes")


def test_unknown_type_names_installed_choices() -> None:
    with pytest.raises(PluginNotFoundError) as info:
        get_plugin_class("computes", "quackdb")
    assert "unknown compute type 'quackdb'" in str(info.value)
    assert "(did you mean 'duckdb'?)" in str(info.value)
    assert "duckdb, postgres" in str(info.value).split("installed: [", 1)[1]
    assert info.value.provider == "quackdb" and info.value.operation == "load_plugin"
    assert info.value.retryable is False
