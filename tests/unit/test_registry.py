"""Plugins are found through entry points, built-in ones included."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from floe_dagster.catalogs.sql import SqlCatalogPlugin
from floe_dagster.computes.duckdb import DuckDBComputePlugin
from floe_dagster.core.errors import PluginApiVersionError
from floe_dagster.metastores.iceberg import IcebergMetastoreConnector
from floe_dagster.plugins import PluginNotFoundError, available_types, get_plugin_class
from floe_dagster.plugins.base import PLUGIN_API_VERSION
from floe_dagster.plugins.registry import installed_plugins


def test_builtin_plugins_come_from_entry_points() -> None:
    assert get_plugin_class("catalogs", "sql") is SqlCatalogPlugin
    assert get_plugin_class("computes", "duckdb") is DuckDBComputePlugin
    assert get_plugin_class("metastores", "iceberg") is IcebergMetastoreConnector
    assert "duckdb" in available_types("computes")


def test_unknown_type_names_installed_choices() -> None:
    with pytest.raises(PluginNotFoundError) as info:
        get_plugin_class("computes", "quackdb")
    assert "unknown compute type 'quackdb'" in str(info.value)
    assert "(did you mean 'duckdb'?)" in str(info.value)
    installed = str(info.value).split("installed: [", 1)[1].split("]", 1)[0].split(", ")
    assert {"duckdb", "postgres"} <= set(installed) and installed == sorted(installed)
    assert info.value.provider == "quackdb" and info.value.operation == "load_plugin"
    assert info.value.retryable is False


PLUGIN_SOURCE = """\
from floe_dagster.computes.duckdb import DuckDBComputePlugin


class FutureCompute(DuckDBComputePlugin):
    type_name = "future"
    plugin_api_version = "2.0"


class NewerMinorCompute(DuckDBComputePlugin):
    type_name = "newer_minor"
    plugin_api_version = "1.7"


class UnversionedCompute(DuckDBComputePlugin):
    type_name = "unversioned"
    plugin_api_version = "latest"
"""


@pytest.fixture
def third_party_plugins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A real distribution on sys.path whose entry points register three tiny compute plugins."""
    package = tmp_path / "floe_registry_test_plugins"
    package.mkdir()
    (package / "__init__.py").write_text(PLUGIN_SOURCE)
    dist_info = tmp_path / "floe_registry_test_plugins-0.1.dist-info"
    dist_info.mkdir()
    (dist_info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: floe-registry-test-plugins\nVersion: 0.1\n"
    )
    (dist_info / "entry_points.txt").write_text(
        "[floe.computes]\n"
        "future = floe_registry_test_plugins:FutureCompute\n"
        "newer_minor = floe_registry_test_plugins:NewerMinorCompute\n"
        "unversioned = floe_registry_test_plugins:UnversionedCompute\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    installed_plugins.cache_clear()
    get_plugin_class.cache_clear()
    yield
    monkeypatch.undo()
    sys.modules.pop("floe_registry_test_plugins", None)
    installed_plugins.cache_clear()
    get_plugin_class.cache_clear()


def test_a_plugin_of_another_major_api_version_is_refused(third_party_plugins: None) -> None:
    assert "future" in available_types("computes")
    with pytest.raises(PluginApiVersionError) as info:
        get_plugin_class("computes", "future")
    assert str(info.value) == (
        "[future:load_plugin] compute type 'future' (floe_registry_test_plugins.FutureCompute) implements"
        f" plugin API '2.0', but this floe-dagster implements plugin API {PLUGIN_API_VERSION} (major 1);"
        " install a version of the plugin built for plugin API 1.x, or a floe-dagster that implements API 2.0"
    )
    assert isinstance(info.value, PluginNotFoundError) and info.value.retryable is False


def test_a_plugin_of_the_same_major_api_version_loads(third_party_plugins: None) -> None:
    cls = get_plugin_class("computes", "newer_minor")
    assert cls.__name__ == "NewerMinorCompute" and cls.plugin_api_version == "1.7"


def test_a_plugin_without_a_numeric_api_version_is_refused(third_party_plugins: None) -> None:
    with pytest.raises(PluginApiVersionError, match="implements plugin API 'latest'"):
        get_plugin_class("computes", "unversioned")


def test_the_manifest_points_at_the_type_of_an_incompatible_plugin(
    third_party_plugins: None, tmp_path: Path
) -> None:
    from floe_dagster.manifest import ManifestError, load_manifest

    (tmp_path / "dbt").mkdir()
    (tmp_path / "dbt" / "dbt_project.yml").write_text("name: t\nprofile: t\n")
    (tmp_path / "manifest.yaml").write_text(
        "apiVersion: floe.dev/v1\nkind: Manifest\nmetadata: {name: m}\n"
        "computes:\n  approved: [next]\n  default: next\n  targets:\n    next:\n      type: future\n"
        "transforms:\n  dbt_project: dbt\n"
    )
    with pytest.raises(ManifestError) as info:
        load_manifest(tmp_path / "manifest.yaml")
    [problem] = [str(p) for p in info.value.problems]
    assert problem.startswith(
        f"{tmp_path / 'manifest.yaml'}:9:13: computes.targets.next.type: compute type 'future'"
    )
    assert "implements plugin API '2.0'" in problem


def test_every_builtin_plugin_implements_this_api() -> None:
    for kind in ("catalogs", "computes", "metastores"):
        for name in available_types(kind):  # type: ignore[arg-type]
            try:
                cls = get_plugin_class(kind, name)  # type: ignore[arg-type]
            except PluginNotFoundError as exc:
                assert "cannot be imported" in str(exc), exc  # an optional extra not installed
                continue
            assert cls.plugin_api_version == PLUGIN_API_VERSION, (kind, name)
