"""`floe compile --out PLAN` and loading that plan: `build_definitions(compiled_plan=...)` and
`definitions.py` with FLOE_PLAN, on a copy of the demo project."""

from __future__ import annotations

import runpy
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from dagster import Definitions

from floe_dagster import build_definitions
from floe_dagster.manifest import ManifestError
from floe_dagster.plan.artifact import read_plan
from tests.helpers import VENV_BIN, run_floe

FLOE = str(VENV_BIN / "floe")


def compile_plan_cli(
    project: Path, env: dict[str, str], out: str, *extra: str
) -> subprocess.CompletedProcess[str]:
    """`floe compile` in process (see ``run_floe``)."""
    return run_floe(["compile", "--out", out, *extra], cwd=project, env=env)


def compile_plan_subprocess(
    project: Path, env: dict[str, str], out: str, *extra: str
) -> subprocess.CompletedProcess[str]:
    """`floe compile` through the real entry point, in a process of its own."""
    return subprocess.run(
        [FLOE, "compile", "--out", out, *extra],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def graph_signature(defs: Definitions) -> dict[str, Any]:
    """What a user sees of the asset graph: keys, lineage, tags, kinds, groups, and each dbt
    compute group's op (name, pool, op tags)."""
    graph = defs.resolve_asset_graph()
    nodes = {
        key.to_user_string(): (
            sorted(parent.to_user_string() for parent in graph.get(key).parent_keys),
            dict(graph.get(key).tags),
            sorted(graph.get(key).kinds),
            graph.get(key).group_name,
        )
        for key in graph.get_all_asset_keys()
    }
    ops = sorted(
        (a.op.name, a.op.pool, sorted(a.op.tags.items()))
        for a in defs.assets or []
        if getattr(a, "op", None) is not None and a.op.name.startswith("dbt_")
    )
    return {"nodes": nodes, "ops": ops, "resources": sorted(defs.resources or {})}


def full_signature(defs: Definitions) -> dict[str, Any]:
    """``graph_signature`` plus the jobs with the assets each selects, the sensors, the asset
    checks, and each resource's type and config (the manifest or plan path it reads aside)."""
    graph = defs.resolve_asset_graph()
    jobs = {
        job.name: sorted(key.to_user_string() for key in job.selection.resolve(graph))  # type: ignore[union-attr]
        for job in defs.jobs or []
        if getattr(job, "selection", None) is not None
    }
    resources = {
        key: (
            type(resource).__name__,
            {k: getattr(resource, k) for k in type(resource).model_fields if k != "manifest_path"},
        )
        for key, resource in (defs.resources or {}).items()
        if hasattr(resource, "manifest_path")
    }
    return {
        **graph_signature(defs),
        "jobs": jobs,
        "sensors": sorted(s.name for s in defs.sensors or []),
        "checks": sorted(str(key) for key in graph.asset_check_keys),
        "resource_config": resources,
    }


def test_compile_writes_the_same_bytes_in_every_process(
    demo_project: Path, subprocess_env: dict[str, str]
) -> None:
    first = compile_plan_subprocess(
        demo_project, {**subprocess_env, "PYTHONHASHSEED": "1"}, "build/plan.json"
    )
    assert first.returncode == 0, first.stderr
    assert first.stdout == (
        "wrote build/plan.json (5 transform(s), environment dev); load it with FLOE_PLAN=build/plan.json\n"
    )
    second = compile_plan_subprocess(
        demo_project, {**subprocess_env, "PYTHONHASHSEED": "2"}, "build/again.json"
    )
    assert second.returncode == 0, second.stderr
    text = (demo_project / "build" / "plan.json").read_bytes()
    assert text == (demo_project / "build" / "again.json").read_bytes()
    assert b'"manifest_path": "../manifests/manifest.yaml"' in text
    assert str(demo_project).encode() not in text, "the artifact must not hold an absolute path"


def test_a_compiled_plan_builds_the_same_definitions_as_the_manifest_even_after_a_move(
    demo_project: Path, subprocess_env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert compile_plan_cli(demo_project, subprocess_env, "build/plan.json").returncode == 0
    # the artifact travels with its project (e.g. built in CI, deployed elsewhere)
    moved = tmp_path / "deployed"
    shutil.move(demo_project, moved)
    manifest = moved / "manifests" / "manifest.yaml"
    from_manifest = build_definitions(manifest)
    from_plan = build_definitions(manifest, compiled_plan=moved / "build" / "plan.json")
    assert graph_signature(from_plan) == graph_signature(from_manifest)
    assert len(graph_signature(from_plan)["ops"]) == 2, "both compute groups must be compared"
    # the plan's manifest path is relative to the plan file: it names the moved manifest
    assert read_plan(moved / "build" / "plan.json").manifest_path == str(manifest)

    monkeypatch.setenv("FLOE_PLAN", str(moved / "build" / "plan.json"))  # what `dagster dev` loads
    assert graph_signature(runpy.run_path(str(moved / "definitions.py"))["defs"]) == graph_signature(
        from_manifest
    )


def test_the_compiled_plan_alone_builds_the_same_asset_graph_resources_and_jobs(
    demo_project: Path, subprocess_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    manifest = demo_project / "manifests" / "manifest.yaml"
    from_manifest = build_definitions(manifest)
    assert compile_plan_cli(demo_project, subprocess_env, "build/plan.json").returncode == 0
    # a deployment that ships the plan (and the dbt project) without the manifest files
    shutil.rmtree(demo_project / "manifests")
    monkeypatch.chdir(demo_project)
    from_plan = build_definitions(manifest, compiled_plan="build/plan.json")
    expected = full_signature(from_manifest)
    assert full_signature(from_plan) == expected
    assert len(expected["jobs"]) >= 2 and expected["sensors"] and expected["checks"], "compare a real graph"
    # the resources read the manifest again from the plan, not from the missing YAML file
    plan_file = str((demo_project / "build" / "plan.json").resolve())
    assert {getattr(r, "manifest_path", plan_file) for r in (from_plan.resources or {}).values()} == {
        plan_file
    }
    catalog = from_plan.resources["catalog_lakehouse"]  # type: ignore[index]
    assert catalog.loaded().manifest.catalogs.keys() == {"lakehouse"}
    assert read_plan("build/plan.json").manifest_document["metadata"]["name"] == catalog.loaded().name


def test_a_plan_compiled_for_an_environment_loads_in_that_environment(
    demo_project: Path, subprocess_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    result = compile_plan_cli(demo_project, subprocess_env, "build/prod.json", "--env", "prod")
    assert result.returncode == 0, result.stderr
    manifest = demo_project / "manifests" / "manifest.yaml"
    monkeypatch.chdir(demo_project)
    defs = build_definitions(manifest, compiled_plan="build/prod.json")
    assert {r.environment for k, r in (defs.resources or {}).items() if k != "dbt"} == {"prod"}

    monkeypatch.setenv("FLOE_ENV", "dev")
    with pytest.raises(ManifestError) as info:
        build_definitions(manifest, compiled_plan="build/prod.json")
    assert str(info.value) == (
        "build/prod.json:1:1: the plan was compiled for environment 'prod', but FLOE_ENV=dev; compile one"
        " for it with `floe compile --env dev --out build/prod.json` or unset FLOE_ENV"
    )


def test_a_stale_plan_is_an_error_saying_to_compile_again(
    demo_project: Path, subprocess_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert compile_plan_cli(demo_project, subprocess_env, "build/plan.json").returncode == 0
    manifest = demo_project / "manifests" / "manifest.yaml"
    monkeypatch.chdir(demo_project)

    def load_error() -> str:
        with pytest.raises(ManifestError) as info:
            build_definitions(manifest, compiled_plan="build/plan.json")
        return str(info.value)

    # a model the plan does not know would otherwise silently drop out of the definitions
    audit = demo_project / "dbt_project" / "models" / "marts" / "orders_audit.sql"
    audit.write_text("select count(*) as n from {{ ref('orders') }}\n")
    expected = (
        "build/plan.json:1:1: stale plan: the dbt project has model(s) [orders_audit] the plan does not"
        " assign; re-run `floe compile manifests/manifest.yaml --out build/plan.json`"
    )
    assert load_error() == expected
    monkeypatch.setenv("FLOE_PLAN", "build/plan.json")
    with pytest.raises(ManifestError) as info:
        runpy.run_path(str(demo_project / "definitions.py"))
    assert str(info.value) == expected
    monkeypatch.delenv("FLOE_PLAN")

    # compiled with the model, which is then removed
    assert compile_plan_cli(demo_project, subprocess_env, "build/plan.json").returncode == 0
    audit.unlink()  # only its folder's time changes: enough for floe to re-parse
    assert load_error() == (
        "build/plan.json:1:1: stale plan: the plan assigns model(s) [orders_audit] the dbt project no"
        " longer has; re-run `floe compile manifests/manifest.yaml --out build/plan.json`"
    )

    # same models, but a rule now sends the marts elsewhere
    assert compile_plan_cli(demo_project, subprocess_env, "build/plan.json").returncode == 0
    manifest.write_text(manifest.read_text().replace('"tag:marts"', '"tag:staging"'))
    assert load_error() == (
        "build/plan.json:1:1: stale plan: the manifest manifests/manifest.yaml (or a parent it extends)"
        " changed since it was compiled; re-run `floe compile manifests/manifest.yaml --out build/plan.json`"
    )

    # same manifest and models, but a model's meta.floe.compute changed
    assert compile_plan_cli(demo_project, subprocess_env, "build/plan.json").returncode == 0
    model = demo_project / "dbt_project" / "models" / "staging" / "stg_orders.sql"
    model.write_text("{{ config(meta={'floe': {'compute': 'duckdb_analytics'}}) }}\n" + model.read_text())
    assert load_error() == (
        "build/plan.json:1:1: stale plan: the dbt models changed since it was compiled (their tags, paths,"
        " materializations, meta.floe.compute or dependencies); re-run `floe compile manifests/manifest.yaml"
        " --out build/plan.json`"
    )


def test_a_missing_plan_file_is_an_error_naming_it(
    demo_project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(demo_project)
    with pytest.raises(ManifestError) as info:
        build_definitions(demo_project / "manifests" / "manifest.yaml", compiled_plan="build/nope.json")
    assert str(info.value) == (
        "build/nope.json:1:1: cannot read the compiled plan (No such file or directory); run"
        " `floe compile --out build/nope.json`"
    )
