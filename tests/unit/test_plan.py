"""The plan: precedence meta > first matching rule > default, evaluated by dbt's selector engine."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest

from floe_dagster.manifest import ManifestError, load_manifest
from floe_dagster.plan.artifact import read_plan, write_plan
from floe_dagster.plan.compile import compile_plan
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


def line_col(file: Path, line_containing: str, token: str) -> str:
    """``path:line:col`` of ``token`` on the one line of ``file`` containing ``line_containing``."""
    lines = file.read_text().splitlines()
    [index] = [i for i, line in enumerate(lines) if line_containing in line]
    return f"{file}:{index + 1}:{lines[index].index(token) + 1}"


def test_meta_naming_an_unapproved_compute_is_reported_where_it_is_set(demo_project: Path) -> None:
    """meta.floe.compute may be set in the model's .sql config(), its properties .yml or
    dbt_project.yml: each problem points at the file, line and column that set it."""
    dbt = demo_project / "dbt_project"
    sql = dbt / "models" / "staging" / "stg_payments.sql"
    sql.write_text("-- payments\n{{ config(meta={'floe': {'compute': 'spark'}}) }}\n" + sql.read_text())
    yml = dbt / "models" / "staging" / "_staging.yml"
    yml.write_text(
        yml.read_text().replace(
            "  - name: stg_orders\n",
            "  - name: stg_orders\n    config:\n      meta:\n        floe: {compute: trino}\n",
        )
    )
    project = dbt / "dbt_project.yml"
    project.write_text(
        project.read_text().replace(
            '      +tags: ["marts"]\n', '      +tags: ["marts"]\n      +meta: {floe: {compute: snowflake}}\n'
        )
    )
    loaded = load_manifest(demo_project / "manifests" / "manifest.yaml", check_assignments=False)
    with pytest.raises(ManifestError) as info:
        compile_plan(loaded, prepare_dbt_manifest(loaded))
    allowed = (
        "which is not approved at level product; allowed: [duckdb, duckdb_analytics];"
        " use one of those or remove the meta"
    )
    in_project = line_col(project, "+meta", "snowflake")
    in_sql = line_col(sql, "config(meta", "'spark'")
    assert [str(p) for p in info.value.problems] == [
        f"{in_project}: models.floe_demo.marts.+meta.floe.compute: model 'customers' sets"
        f" meta.floe.compute 'snowflake', {allowed}",
        f"{in_project}: models.floe_demo.marts.+meta.floe.compute: model 'orders' sets"
        f" meta.floe.compute 'snowflake', {allowed}",
        f"{line_col(yml, 'compute: trino', 'trino')}: models[1].config.meta.floe.compute: model"
        f" 'stg_orders' sets meta.floe.compute 'trino', {allowed}",
        f"{in_sql}: model 'stg_payments' sets meta.floe.compute" f" 'spark', {allowed}",
    ]


def shuffled(dbt_manifest: dict[str, Any], seed: int) -> dict[str, Any]:
    """The same dbt manifest with every mapping's entries in another order."""
    rng = random.Random(seed)

    def shuffle(value: Any) -> Any:
        if isinstance(value, dict):
            items = list(value.items())
            rng.shuffle(items)
            return {k: shuffle(v) for k, v in items}
        return value

    return {key: shuffle(value) for key, value in dbt_manifest.items()}


def test_plan_json_is_byte_identical_whatever_the_input_order(two_compute_project: Path) -> None:
    loaded = load_manifest(two_compute_project / "manifests" / "manifest.yaml")
    dbt_manifest = prepare_dbt_manifest(loaded)
    base = two_compute_project / "build"
    first = compile_plan(loaded, dbt_manifest).to_json(relative_to=base)
    orders = set()
    for seed in (1, 2, 3):
        mixed = shuffled(dbt_manifest, seed)
        orders.add(tuple(mixed["nodes"]))
        assert compile_plan(loaded, mixed).to_json(relative_to=base) == first
    assert len(orders) > 1, "the shuffles must actually change the input order"
    payload = json.loads(first)
    assert payload["plan_format_version"] == 3
    assert payload["manifest_path"] == "../manifests/manifest.yaml"
    assert str(two_compute_project) not in first, "the artifact must not hold an absolute path"
    ids = [t["unique_id"] for t in payload["transforms"]]
    assert ids == sorted(ids) and len(ids) == 5


def test_a_plan_read_back_is_the_plan_with_its_manifest_path_resolved(two_compute_project: Path) -> None:
    loaded = load_manifest(two_compute_project / "manifests" / "manifest.yaml")
    plan = compile_plan(loaded, prepare_dbt_manifest(loaded))
    path = two_compute_project / "build" / "plan.json"
    write_plan(plan, path)
    assert read_plan(path) == plan
    assert plan.manifest_path == str(loaded.path)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{\n  nope", "plan.json:2:3: not JSON (Expecting property name enclosed in double quotes)"),
        ('{"plan_format_version": 1}', "plan.json:1:1: plan format version 1; this floe-dagster reads 3"),
        ('{"plan_format_version": 2}', "plan.json:1:1: plan format version 2; this floe-dagster reads 3"),
        ('{"plan_format_version": 3}', "plan.json:1:1: not a floe plan: 'transforms'"),
        ("[]", "plan.json:1:1: not a floe plan (a JSON object written by `floe compile`)"),
    ],
)
def test_a_file_that_is_not_a_current_plan_is_a_problem_at_its_position(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, content: str, message: str
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "plan.json").write_text(content)
    with pytest.raises(ManifestError) as info:
        read_plan("plan.json")
    assert [str(p) for p in info.value.problems] == [
        f"{message}; write the plan again with `floe compile --out plan.json`"
    ]


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

    from floe_dagster.plan.selection import DbtRuleSelector

    loaded = load_manifest(two_compute_project / "manifests" / "manifest.yaml")
    dbt_manifest = prepare_dbt_manifest(loaded)
    ours = DbtRuleSelector(dbt_manifest)
    with contextlib.chdir(loaded.dbt_project_dir):
        for select, exclude in SELECTORS:
            expected = select_unique_ids(select, exclude, "", None, dbt_manifest)
            assert set(ours.select(select, exclude)) == set(expected), (select, exclude)
            assert expected, f"{select!r} selects nothing: the comparison would prove little"
