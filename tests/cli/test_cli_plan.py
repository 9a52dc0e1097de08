"""`floe validate`, `floe plan` (table, json, --env, --diff) and `floe schema` on a copy of the demo
project: the commands run in process (``run_floe``: the CLI's ``main`` with the script's working
folder, environment and output), the entry point itself as a real `floe` subprocess (schema,
usage errors)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from floe_dagster.manifest.schema import manifest_json_schema
from tests.helpers import REPO, VENV_BIN, run_floe

FLOE = str(VENV_BIN / "floe")
MANIFEST = Path("manifests") / "manifest.yaml"

PROD_ANALYTICS = """\
      duckdb_analytics:
        workload_size: large
        config:
          memory_limit: 16GB
          threads: 8
"""


def floe(project: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return run_floe(args, cwd=project, env=env)


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert text.count(old) == 1, f"{old!r} must occur once in {path}"
    path.write_text(text.replace(old, new))


def at(path: Path, root: Path, line_containing: str, token: str) -> str:
    """``relative/path:line:col`` of ``token`` on the one line of ``path`` containing ``line_containing``."""
    lines = path.read_text().splitlines()
    [index] = [i for i, line in enumerate(lines) if line_containing in line]
    return f"{path.relative_to(root)}:{index + 1}:{lines[index].index(token) + 1}"


def one_error_line(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    return lines[0]


# --- floe validate runs every check floe plan runs ----------------------------------------------


def test_validate_rejects_an_environment_parity_violation(
    demo_project: Path, subprocess_env: dict[str, str]
) -> None:
    manifest = demo_project / MANIFEST
    edit(
        manifest,
        PROD_ANALYTICS,
        "      duckdb_analytics:\n        type: postgres\n"
        "        config: {host: warehouse.internal, user: dbt, dbname: analytics}\n",
    )
    expected = (
        f"{at(manifest, demo_project, 'type: postgres', 'postgres')}:"
        " environments.prod.computes.duckdb_analytics.type: environment parity: transform(s) [customers,"
        " orders] run on compute 'duckdb_analytics', whose type differs by environment: duckdb in [dev];"
        " postgres in [prod]; a transform must run on the same engine type everywhere"
    )
    for command in ("validate", "plan"):
        assert one_error_line(floe(demo_project, subprocess_env, command)) == expected, command


def test_validate_rejects_a_selector_dbt_rejects(demo_project: Path, subprocess_env: dict[str, str]) -> None:
    manifest = demo_project / MANIFEST
    edit(manifest, 'select: "tag:marts"', 'select: "tags:marts"')
    where = at(manifest, demo_project, "select:", '"tags')
    for command in ("validate", "plan"):
        line = one_error_line(floe(demo_project, subprocess_env, command))
        assert line == (
            f"{where}: transforms.assignments[0].select: rule 1: dbt cannot use selector 'tags:marts':"
            " Runtime Error 'tags' is not a valid method name"
        ), command


def test_validate_rejects_meta_naming_an_unapproved_compute_at_the_model_file(
    demo_project: Path, subprocess_env: dict[str, str]
) -> None:
    model = demo_project / "dbt_project" / "models" / "staging" / "stg_payments.sql"
    model.write_text("{{ config(meta={'floe': {'compute': 'spark'}}) }}\n" + model.read_text())
    line = one_error_line(floe(demo_project, subprocess_env, "validate"))
    assert line == (
        f"{at(model, demo_project, 'config(meta', repr('spark'))}: model 'stg_payments' sets"
        " meta.floe.compute 'spark', which is not approved at level product; allowed: [duckdb,"
        " duckdb_analytics]; use one of those or remove the meta"
    )


def test_an_unapproved_assignment_names_models_rule_level_and_allowed(
    demo_project: Path, subprocess_env: dict[str, str]
) -> None:
    """spark is approved by the enterprise, not by the commerce domain: the product may not use it."""
    manifest = demo_project / MANIFEST
    edit(manifest, "      compute: duckdb_analytics", "      compute: spark")
    before = sorted(p.relative_to(demo_project) for p in demo_project.rglob("*"))
    expected = (
        f"{at(manifest, demo_project, 'compute: spark', 'spark')}: transforms.assignments[0].compute:"
        " rule 1 ('tag:marts') assigns model(s) [customers, orders] to compute 'spark', which is not"
        " approved at level product; allowed: [duckdb, duckdb_analytics]"
    )
    for args in (["validate"], ["plan"], ["compile", "--out", "build/plan.json"]):
        assert one_error_line(floe(demo_project, subprocess_env, *args)) == expected, args
    assert sorted(p.relative_to(demo_project) for p in demo_project.rglob("*")) == before


def test_validate_accepts_the_demo_and_says_what_it_planned(
    demo_project: Path, subprocess_env: dict[str, str]
) -> None:
    result = floe(demo_project, subprocess_env, "validate")
    assert result.returncode == 0, result.stderr
    assert result.stdout == (
        "manifests/manifest.yaml: ok (jaffle-lakehouse: 1 catalog(s), 2 approved compute(s),"
        " 1 metastore(s), 5 transform(s) planned; environment dev)\n"
    )


# --- floe plan -----------------------------------------------------------------------------------

DEV_TABLE = """\
UNIQUE ID                      COMPUTE           TYPE    PRESET  CPU     MEMORY   REASON
model.floe_demo.customers      duckdb_analytics  duckdb  medium  1/2     4Gi/8Gi  rule 1 (tag:marts)
model.floe_demo.orders         duckdb_analytics  duckdb  medium  1/2     4Gi/8Gi  rule 1 (tag:marts)
model.floe_demo.stg_customers  duckdb            duckdb  small   500m/1  1Gi/2Gi  default
model.floe_demo.stg_orders     duckdb            duckdb  small   500m/1  1Gi/2Gi  default
model.floe_demo.stg_payments   duckdb            duckdb  small   500m/1  1Gi/2Gi  default

5 model(s); environment dev; default compute duckdb; CPU and MEMORY: the preset's Kubernetes requests/limits
"""


def test_plan_lists_unique_id_compute_type_preset_resources_and_reason(
    demo_project: Path, subprocess_env: dict[str, str]
) -> None:
    result = floe(demo_project, subprocess_env, "plan")
    assert result.returncode == 0, result.stderr
    assert result.stdout == DEV_TABLE

    as_json = floe(demo_project, subprocess_env, "plan", "--format", "json")
    payload = json.loads(as_json.stdout)
    assert payload["plan_format_version"] == 3
    assert payload["manifest_path"] == "manifests/manifest.yaml"
    customers = next(t for t in payload["transforms"] if t["name"] == "customers")
    assert customers == {
        "unique_id": "model.floe_demo.customers",
        "name": "customers",
        "compute": "duckdb_analytics",
        "compute_type": "duckdb",
        "reason": "rule 1 (tag:marts)",
        "workload_size": "medium",
        "resources": {"requests": {"cpu": "1", "memory": "4Gi"}, "limits": {"cpu": "2", "memory": "8Gi"}},
    }


def test_plan_for_another_environment_uses_its_presets(
    demo_project: Path, subprocess_env: dict[str, str]
) -> None:
    result = floe(demo_project, subprocess_env, "plan", "--env", "prod")
    assert result.returncode == 0, result.stderr
    rows = {line.split()[0]: line.split()[1:6] for line in result.stdout.splitlines()[1:6]}
    # prod: duckdb is medium, duckdb_analytics large (manifests/manifest.yaml environments.prod)
    assert rows["model.floe_demo.customers"] == ["duckdb_analytics", "duckdb", "large", "2/4", "8Gi/16Gi"]
    assert rows["model.floe_demo.stg_orders"] == ["duckdb", "duckdb", "medium", "1/2", "4Gi/8Gi"]
    assert "; environment prod;" in result.stdout

    unknown = floe(demo_project, subprocess_env, "plan", "--env", "staging")
    manifest = demo_project / MANIFEST
    assert one_error_line(unknown) == (
        f"{at(manifest, demo_project, 'environments:', 'environments')}: environments: FLOE_ENV=staging:"
        " no such environment; defined: [dev, prod]"
    )


def test_plan_diff_shows_only_the_models_whose_compute_changes(
    demo_project: Path, subprocess_env: dict[str, str]
) -> None:
    other = demo_project / "manifests" / "other.yaml"
    other.write_text((demo_project / MANIFEST).read_text().replace('"tag:marts"', '"tag:staging"'))
    result = floe(demo_project, subprocess_env, "plan", "--diff", "manifests/other.yaml")
    assert result.returncode == 0, result.stderr
    assert result.stdout == (
        "MODEL          FROM              TO\n"
        "customers      duckdb_analytics  duckdb\n"
        "orders         duckdb_analytics  duckdb\n"
        "stg_customers  duckdb            duckdb_analytics\n"
        "stg_orders     duckdb            duckdb_analytics\n"
        "stg_payments   duckdb            duckdb_analytics\n"
    )
    as_json = floe(demo_project, subprocess_env, "plan", "--diff", "manifests/other.yaml", "--format", "json")
    assert json.loads(as_json.stdout)[0] == {"model": "customers", "from": "duckdb_analytics", "to": "duckdb"}

    same = floe(demo_project, subprocess_env, "plan", "--diff", str(MANIFEST))
    assert (same.returncode, same.stdout) == (0, "no model changes compute\n")

    missing = floe(demo_project, subprocess_env, "plan", "--diff", "manifests/nope.yaml")
    assert one_error_line(missing).startswith("manifests/nope.yaml:1:1: manifest file not found")


# --- floe schema ----------------------------------------------------------------------------------


def test_schema_prints_the_manifest_json_schema_the_demo_references() -> None:
    result = subprocess.run([FLOE, "schema"], capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == manifest_json_schema()
    assert result.stdout == (REPO / "manifests" / "manifest.schema.json").read_text()


@pytest.mark.parametrize("extra", [["--format", "yaml"], ["--diff"]])
def test_plan_usage_errors_exit_2_without_a_traceback(extra: list[str]) -> None:
    result = subprocess.run([FLOE, "plan", *extra], capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 2
    assert "usage: floe plan" in result.stderr and "Traceback" not in result.stderr
