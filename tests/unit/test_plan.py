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
  approved: [duckdb, duckdb_big]
  default: duckdb
  targets:
    duckdb:
      type: duckdb
      config: {path: ../.floe/duckdb/a.duckdb}
    duckdb_big:
      type: duckdb
      workload_size: large
      config: {path: ../.floe/duckdb/b.duckdb}
"""


@pytest.fixture(scope="module")
def two_compute_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = copy_demo_project(tmp_path_factory.mktemp("plan") / "project")
    manifest = root / "manifests" / "manifest.yaml"
    text = manifest.read_text()
    start, end = text.index("computes:"), text.index("metastores:")
    manifest.write_text(text[:start] + TWO_COMPUTES.lstrip() + "\n" + text[end:])
    model = root / "dbt_project" / "models" / "staging" / "stg_payments.sql"
    model.write_text("{{ config(meta={'floe': {'compute': 'duckdb_big'}}) }}\n" + model.read_text())
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
    plan = plan_for(two_compute_project, "  assignments:\n    - {select: 'tag:marts', compute: duckdb_big}\n")
    assert assigned(plan) == {
        "customers": ("duckdb_big", "rule 1 (tag:marts)"),
        "orders": ("duckdb_big", "rule 1 (tag:marts)"),
        "stg_customers": ("duckdb", "default"),
        "stg_orders": ("duckdb", "default"),
        "stg_payments": ("duckdb_big", "meta (floe.compute)"),
    }
    assert plan.computes == {"duckdb": "duckdb", "duckdb_big": "duckdb"}


def test_first_matching_rule_wins_and_graph_operators_work(two_compute_project: Path) -> None:
    rules = (
        "  assignments:\n"
        "    - {select: '+orders', exclude: 'orders', compute: duckdb_big}\n"
        "    - {select: 'path:models/staging', compute: duckdb}\n"
    )
    plan = assigned(plan_for(two_compute_project, rules))
    assert plan["stg_orders"] == ("duckdb_big", "rule 1 (+orders)")
    assert plan["stg_customers"] == ("duckdb", "rule 2 (path:models/staging)")
    assert plan["orders"] == ("duckdb", "default")


def test_meta_naming_an_unapproved_compute_is_an_error(two_compute_project: Path) -> None:
    model = two_compute_project / "dbt_project" / "models" / "staging" / "stg_payments.sql"
    original = model.read_text()
    model.write_text(original.replace("duckdb_big", "spark"))
    try:
        with pytest.raises(ManifestError) as info:
            plan_for(two_compute_project, "  assignments: []\n")
    finally:
        model.write_text(original)
    message = str(info.value)
    assert "models/staging/stg_payments.sql" in message
    assert "'spark', which is not in computes.approved [duckdb, duckdb_big]" in message


def test_plan_json_is_stable_and_versioned(two_compute_project: Path) -> None:
    plan = plan_for(two_compute_project, "  assignments: []\n")
    first, second = plan.to_json(), plan.to_json()
    assert first == second
    payload = json.loads(first)
    assert payload["plan_format_version"] == 1
    ids = [t["unique_id"] for t in payload["transforms"]]
    assert ids == sorted(ids) and len(ids) == 5
