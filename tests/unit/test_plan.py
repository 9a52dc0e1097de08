"""The plan: precedence meta > first matching rule > default, evaluated by dbt's selector engine."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from floe_dagster.manifest import ManifestError, load_manifest
from floe_dagster.manifest.plan import compile_plan
from floe_dagster.transforms.dbt_manifest import prepare_dbt_manifest
from tests.helpers import copy_demo_project

TWO_COMPUTES = """
computes:
  approved: [duckdb, duckdb_analytics]
  default: duckdb
"""


@pytest.fixture(scope="module")
def two_compute_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = copy_demo_project(tmp_path_factory.mktemp("plan") / "project")
    manifest = root / "manifests" / "manifest.yaml"
    text = manifest.read_text()
    start, end = text.index("computes:"), text.index("metastores:")
    manifest.write_text(text[:start] + TWO_COMPUTES.lstrip() + "\n" + text[end:])
    model = root / "dbt_project" / "models" / "staging" / "stg_payments.sql"
    model.write_text("{{ config(meta={'floe': {'compute': 'duckdb_analytics'}}) }}\n" + model.read_text())
    return root


def plan_for(root: Path, assignments: str):  # type: ignore[no-untyped-def]
    manifest = root / "manifests" / "manifest.yaml"
    text = manifest.read_text()
    text = text[: text.index("  assignments:")] + assignments
    variant = root / "manifests" / "variant.yaml"
    variant.write_text(text)
    loaded = load_manifest(variant)
    return compile_plan(loaded, prepare_dbt_manifest(loaded))


def assigned(plan) -> dict[str, tuple[str, str]]:  # type: ignore[no-untyped-def]
    return {t.name: (t.compute, t.reason) for t in plan.transforms}


def test_meta_beats_rules_and_rules_beat_default(two_compute_project: Path) -> None:
    rules = "  assignments:\n    - {select: 'tag:marts', compute: duckdb_analytics}\n"
    plan = plan_for(two_compute_project, rules)
    assert assigned(plan) == {
        "customers": ("duckdb_analytics", "rule 1 (tag:marts)"),
        "orders": ("duckdb_analytics", "rule 1 (tag:marts)"),
        "stg_customers": ("duckdb", "default"),
        "stg_orders": ("duckdb", "default"),
        "stg_payments": ("duckdb_analytics", "meta (floe.compute)"),
    }
    assert plan.computes == {"duckdb": "duckdb", "duckdb_analytics": "duckdb"}


def test_first_matching_rule_wins_and_graph_operators_work(two_compute_project: Path) -> None:
    rules = (
        "  assignments:\n"
        "    - {select: '+orders', exclude: 'orders', compute: duckdb_analytics}\n"
        "    - {select: 'path:models/staging', compute: duckdb}\n"
    )
    plan = assigned(plan_for(two_compute_project, rules))
    assert plan["stg_orders"] == ("duckdb_analytics", "rule 1 (+orders)")
    assert plan["stg_customers"] == ("duckdb", "rule 2 (path:models/staging)")
    assert plan["orders"] == ("duckdb", "default")


def test_meta_naming_an_unapproved_compute_is_an_error(two_compute_project: Path) -> None:
    model = two_compute_project / "dbt_project" / "models" / "staging" / "stg_payments.sql"
    original = model.read_text()
    model.write_text(original.replace("duckdb_analytics", "spark"))
    try:
        with pytest.raises(ManifestError) as info:
            plan_for(two_compute_project, "  assignments: []\n")
    finally:
        model.write_text(original)
    message = str(info.value)
    assert "models/staging/stg_payments.sql" in message
    assert "'spark', which is not in computes.approved [duckdb, duckdb_analytics]" in message


def test_plan_json_is_stable_and_versioned(two_compute_project: Path) -> None:
    plan = plan_for(two_compute_project, "  assignments: []\n")
    first, second = plan.to_json(), plan.to_json()
    assert first == second
    payload = json.loads(first)
    assert payload["plan_format_version"] == 1
    ids = [t["unique_id"] for t in payload["transforms"]]
    assert ids == sorted(ids) and len(ids) == 5


SELECTORS = [
    ("tag:marts", ""),
    ("tag:staging", "stg_orders"),
    ("+orders", "orders"),
    ("stg_orders+", ""),
    ("@stg_customers", ""),
    ("path:models/staging", ""),
    ("config.materialized:external", ""),
    ("fqn:floe_demo.marts.*", ""),
    ("source:raw+", ""),
    ("tag:marts,+customers", ""),
    ("2+customers", ""),
]


def test_floe_rule_selector_agrees_with_dagster_dbt(two_compute_project: Path) -> None:
    """floe builds dbt's selection objects once (plan.DbtRuleSelector) from dagster-dbt's recipe;
    on any dbt / dagster-dbt upgrade, the two must still select exactly the same nodes."""
    import contextlib

    from dagster_dbt.utils import select_unique_ids

    from floe_dagster.manifest.plan import DbtRuleSelector

    loaded = load_manifest(two_compute_project / "manifests" / "manifest.yaml")
    dbt_manifest = prepare_dbt_manifest(loaded)
    ours = DbtRuleSelector(dbt_manifest)
    with contextlib.chdir(loaded.dbt_project_dir):
        for select, exclude in SELECTORS:
            expected = select_unique_ids(select, exclude, "", None, dbt_manifest)
            assert set(ours.select(select, exclude)) == set(expected), (select, exclude)
            assert expected, f"{select!r} selects nothing: the comparison would prove little"
