"""DefinitionNames: the unscoped names are definitions.py's; a scope prefixes every one of them."""

from __future__ import annotations

import pytest
from dagster import AssetKey

from floe_dagster.dagster_stage.names import UNSCOPED, DefinitionNames, scope_of_name


def every_name(names: DefinitionNames) -> list[str]:
    return [
        names.dbt_resource,
        names.catalog_resource("lakehouse"),
        names.compute_resource("duckdb"),
        names.metastore_resource("hms"),
        names.main_job,
        names.observe_job,
        names.health_job,
        names.observation_sensor("hms"),
        names.freshness_sensor,
        names.dbt_op("duckdb"),
        names.observe_op("hms"),
        names.ingest_op("landing"),
        names.health_checks_op,
    ]


def test_unscoped_names_are_the_ones_definitions_py_always_had() -> None:
    assert every_name(UNSCOPED) == [
        "dbt",
        "catalog_lakehouse",
        "compute_duckdb",
        "metastore_hms",
        "floe_main",
        "floe_observe_sources",
        "floe_health",
        "observe_hms_sensor",
        "floe_freshness_checks",
        "dbt_duckdb",
        "observe_hms",
        "ingest_landing",
        "floe_compute_health",
    ]
    assert UNSCOPED.compute_asset_key("duckdb") == AssetKey(["floe_compute", "duckdb"])


def test_a_scope_prefixes_every_name_and_floe_s_own_asset_keys() -> None:
    scoped = DefinitionNames("sales")
    assert every_name(scoped) == [f"sales__{name}" for name in every_name(UNSCOPED)]
    assert scoped.compute_asset_key("duckdb") == AssetKey(["sales", "floe_compute", "duckdb"])


@pytest.mark.parametrize(
    ("manifest_name", "scope"),
    [
        ("jaffle-lakehouse", "jaffle_lakehouse"),
        ("Sales EU / Finance", "sales_eu_finance"),
        ("already_fine_1", "already_fine_1"),
        ("--edge--", "edge"),
        ("---", ""),
    ],
)
def test_a_manifest_name_becomes_a_dagster_name(manifest_name: str, scope: str) -> None:
    assert scope_of_name(manifest_name) == scope


def test_a_scope_that_is_not_a_dagster_name_is_refused() -> None:
    with pytest.raises(ValueError, match="'sales eu' is not a Dagster name"):
        DefinitionNames("sales eu")
