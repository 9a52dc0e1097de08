"""Each compute group's dbt multi-asset, selected from the plan's models, is what dbt's selector
gave for the group's fqn list: the same asset keys, dependencies and checks, group by group."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from dagster import AssetsDefinition

from floe_dagster import load_manifest
from floe_dagster.dagster_stage.dbt_assets import (
    FloeDbtTranslator,
    _dbt_group,
    dbt_asset_groups,
    fqn_selector,
)
from floe_dagster.dagster_stage.sources import dbt_source_refs
from floe_dagster.plan.compile import compile_plan
from floe_dagster.transforms.dbt_manifest import prepare_dbt_manifest
from tests.generated_dbt import generate_project

GroupShape = dict[str, Any]


def shape(assets_def: AssetsDefinition) -> GroupShape:
    """What a group defines: each asset key with its dependencies, and its checks."""
    return {
        "op": assets_def.op.name,
        "select": assets_def.op.tags["dagster_dbt/select"],
        "assets": {
            spec.key.to_user_string(): sorted(dep.asset_key.to_user_string() for dep in spec.deps)
            for spec in assets_def.specs
        },
        "checks": sorted(f"{c.asset_key.to_user_string()}:{c.name}" for c in assets_def.check_specs),
    }


def fqn_list_groups(loaded: Any, dbt_manifest: dict[str, Any], plan: Any, refs: Any) -> list[GroupShape]:
    """The groups as before: dagster-dbt evaluates each group's fqn list with dbt's selector."""
    translator = FloeDbtTranslator(plan, refs)
    return [
        shape(
            _dbt_group(
                compute,
                plan.computes[compute],
                transforms[0].resources,
                fqn_selector(dbt_manifest, [t.unique_id for t in transforms]),
                dbt_manifest,
                translator,
            )
        )
        for compute, transforms in sorted(plan.by_compute().items())
    ]


@pytest.fixture
def count_dbt_selections(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Any]]:
    """Every selection dbt's own selector evaluates (dbt's NodeSelector, still run for real)."""
    import dbt.graph.selector as graph_selector

    calls: list[Any] = []
    select_nodes = graph_selector.NodeSelector.select_nodes

    def counted(self: Any, spec: Any) -> Any:
        calls.append(spec)
        return select_nodes(self, spec)

    monkeypatch.setattr(graph_selector.NodeSelector, "select_nodes", counted)
    yield calls


def check_same_groups(manifest_path: Path, calls: list[Any]) -> list[GroupShape]:
    loaded = load_manifest(manifest_path)
    dbt_manifest = prepare_dbt_manifest(loaded)
    plan = compile_plan(loaded, dbt_manifest)
    refs = dbt_source_refs(loaded, dbt_manifest)
    assert len(plan.by_compute()) == 2  # the demo's two compute groups

    calls.clear()
    new = [shape(group) for group in dbt_asset_groups(plan, dbt_manifest, refs)]
    assert calls == []  # no group was selected with dbt's selector
    old = fqn_list_groups(loaded, dbt_manifest, plan, refs)
    assert len(calls) == 2  # (the old way: one dbt selection per group)

    assert new == old
    return new


def test_demo_groups_match_the_fqn_list_selection(
    demo_project: Path, count_dbt_selections: list[Any]
) -> None:
    groups = check_same_groups(demo_project / "manifests" / "manifest.yaml", count_dbt_selections)
    by_op = {g["op"]: g for g in groups}
    assert set(by_op["dbt_duckdb"]["assets"]) == {
        "staging/stg_customers",
        "staging/stg_orders",
        "staging/stg_payments",
    }
    # a dependency inside the group and one on the other group
    customers = by_op["dbt_duckdb_analytics"]["assets"]["marts/customers"]
    assert customers == ["marts/orders", "staging/stg_customers"]
    assert "staging/stg_orders:not_null_stg_orders_order_id" in by_op["dbt_duckdb"]["checks"]


def test_generated_project_groups_match_the_fqn_list_selection(
    tmp_path: Path, count_dbt_selections: list[Any]
) -> None:
    """300 models with tests, ephemeral models and dependencies and tests across the groups."""
    manifest = generate_project(tmp_path / "project", 300)
    groups = check_same_groups(manifest, count_dbt_selections)
    by_op = {g["op"]: g for g in groups}
    staging, marts = by_op["dbt_duckdb"], by_op["dbt_duckdb_analytics"]
    assert len(staging["assets"]) + len(marts["assets"]) == 5 + 300 - 4  # 4 ephemeral models
    # read across the groups, and through an ephemeral model (m_00107 -> m_00106)
    assert "staging/s_00050" in marts["assets"]["marts/m_00050"]
    assert marts["assets"]["marts/m_00108"] == ["marts/m_00106"]
    assert len(staging["checks"]) == 30 + 10  # the generated not_null tests, the demo's 10 staging tests
