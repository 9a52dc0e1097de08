"""``get_required_dbt_packages()`` and ``required_drivers()`` checked against this Python environment.

The installed distributions are read by ``importlib.metadata`` and the modules looked up by
``importlib.util.find_spec``: nothing is mocked but the absence of a module, made the way Python
documents for blocking an import (``sys.modules[name] = None``).
"""

from __future__ import annotations

import sys
from typing import Any, ClassVar, cast

import pytest

from floe_dagster.computes.clickhouse import ClickHouseComputePlugin, ClickHouseConfig
from floe_dagster.computes.duckdb import DuckDBComputePlugin
from floe_dagster.plugins.compute import ComputePlugin
from floe_dagster.plugins.dbt_packages import describe_missing, missing_packages
from floe_dagster.plugins.registry import available_types, get_plugin_class


class _Declares(DuckDBComputePlugin):
    """The DuckDB compute declaring other requirements (as a third-party plugin could)."""

    type_name: ClassVar[str] = "declares"
    requirements: ClassVar[list[str]] = []

    def get_required_dbt_packages(self) -> list[str]:
        return list(self.requirements)


def declaring(*requirements: str) -> ComputePlugin:
    cls = type("Declaring", (_Declares,), {"requirements": list(requirements)})
    return cast(ComputePlugin, cls())


# Computes whose adapter cannot install beside this project's pins (see docs/engines.md): the
# check must report them, not pass.
NOT_INSTALLABLE_HERE = {
    "tidb",  # dbt-tidb needs dbt-core<1.7
    "oceanbase",  # dbt-oceanbase pins mysql-connector-python<8.1, dbt-starrocks (dev) needs >=8.1
}


@pytest.mark.parametrize("type_name", available_types("computes"))
def test_every_builtin_compute_has_its_declared_adapter_and_driver_here(type_name: str) -> None:
    """The requirement strings are real: each matches the installed adapter's name and version."""
    plugin = cast(ComputePlugin, get_plugin_class("computes", type_name)())
    missing = missing_packages(plugin)
    if type_name in NOT_INSTALLABLE_HERE:
        assert missing and missing[0].role == "dbt adapter"
    else:
        assert missing == [], describe_missing(missing)
    assert plugin.get_required_dbt_packages(), "every compute declares its dbt adapter"


def test_an_adapter_that_is_not_installed_is_named_with_its_install_command() -> None:
    missing = missing_packages(declaring("dbt-nosuchengine>=1.11,<1.12"))
    assert [(m.requirement, m.role, m.reason) for m in missing] == [
        ("dbt-nosuchengine>=1.11,<1.12", "dbt adapter", "not installed")
    ]
    assert missing[0].install_command == "pip install 'dbt-nosuchengine>=1.11,<1.12'"
    assert "pip install 'dbt-nosuchengine>=1.11,<1.12'" in describe_missing(missing)


def test_an_installed_adapter_of_the_wrong_version_is_missing() -> None:
    from importlib.metadata import version

    (problem,) = missing_packages(declaring("dbt-duckdb>=99"))
    assert problem.reason == f"version {version('dbt-duckdb')} installed, >=99 needed"


def test_an_extra_whose_dependency_is_absent_is_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    # dbt-spark[session] pulls pyspark: present here, so satisfied ...
    assert missing_packages(declaring("dbt-duckdb>=1.11", "dbt-spark[session]>=1.11")) == []
    # ... and an extra a distribution does not declare adds nothing to check
    assert missing_packages(declaring("dbt-duckdb[nosuchextra]>=1.11")) == []


def test_an_adapter_module_that_cannot_be_imported_is_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "dbt.adapters.clickhouse", cast(Any, None))
    (problem,) = missing_packages(ClickHouseComputePlugin())
    assert problem.role == "dbt adapter"
    assert problem.requirement == ClickHouseComputePlugin.package
    assert problem.reason == "module dbt.adapters.clickhouse not found"


def test_the_driver_of_the_configured_protocol_is_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "clickhouse_driver", cast(Any, None))
    plugin = ClickHouseComputePlugin()
    http = ClickHouseConfig.model_validate({"host": "h", "driver": "http"})
    native = ClickHouseConfig.model_validate({"host": "h", "driver": "native"})
    assert missing_packages(plugin, http) == []
    (problem,) = missing_packages(plugin, native)
    assert (problem.role, problem.requirement) == ("driver", "clickhouse-driver")
    assert "pip install 'clickhouse-driver'" in problem.describe()


def test_an_invalid_requirement_string_is_reported_not_raised() -> None:
    (problem,) = missing_packages(declaring("dbt duckdb ???"))
    assert "not a valid pip requirement" in problem.reason
