"""floe_dagster.FloeComponent: the same definitions as definitions.py, built from defs state with
no metastore call; and the dg round trip (scaffold, check, list, refresh-defs-state, offline)."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from dagster import AssetExecutionContext, AssetSpec, Definitions

from floe_dagster import FloeComponent, build_definitions, load_manifest
from floe_dagster.demo import seed_demo
from tests.helpers import VENV_BIN

pytestmark = pytest.mark.e2e


def graph_summary(defs: Definitions) -> dict[str, Any]:
    """Everything a user sees of the definitions, comparable between two builds."""
    graph = defs.resolve_asset_graph()
    assets = {}
    for node in graph.asset_nodes:
        condition = node.automation_condition
        assets[node.key.to_user_string()] = {
            "deps": sorted(k.to_user_string() for k in node.parent_keys),
            "group": node.group_name,
            "kinds": sorted(node.kinds),
            "tags": dict(node.tags),
            "owners": list(node.owners),
            "materializable": node.is_materializable,
            "automation": condition.get_label() if condition is not None else None,
            "freshness": repr(node.freshness_policy),
            "description": node.description,
        }
    repo = defs.get_repository_def()
    return {
        "assets": assets,
        "checks": sorted(str(k) for k in graph.asset_check_keys),
        "jobs": sorted(j.name for j in repo.get_all_jobs()),
        "sensors": sorted(s.name for s in repo.sensor_defs),
        "resources": sorted(defs.resources or {}),
    }


def test_component_builds_what_definitions_py_builds_without_the_metastore(
    demo_project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    manifest = demo_project / "manifests" / "manifest.yaml"
    seed_demo(load_manifest(manifest))
    expected = graph_summary(build_definitions(manifest))
    assert "lakehouse/raw/orders" in expected["assets"]

    component = FloeComponent(manifest=str(manifest))
    assert component.defs_state_config.key == "FloeSources[jaffle-lakehouse@dev]"
    state = tmp_path / "state"
    component.write_state_to_path(state)  # the one listing of the metastore

    def unreachable(*_: object, **__: object) -> None:
        raise AssertionError("build_defs_from_state must not call a metastore")

    monkeypatch.setattr("floe_dagster.defs.state.build_metastore", unreachable)
    assert graph_summary(component.build_defs_from_state(None, state)) == expected  # type: ignore[arg-type]

    # get_asset_spec / execute are the overridable hooks (owners, groups, keys without a fork)
    class Owned(FloeComponent):
        def get_asset_spec(self, spec: AssetSpec, node: Mapping[str, Any]) -> AssetSpec:
            return spec.replace_attributes(owners=["team:analytics"], group_name=f"floe_{node['fqn'][1]}")

        def execute(
            self, context: AssetExecutionContext, dbt: Any, compute: str, dbt_build: Any
        ) -> Iterator[Any]:
            yield from dbt_build()

    owned = graph_summary(Owned(manifest=str(manifest)).build_defs_from_state(None, state))  # type: ignore[arg-type]
    assert owned["assets"]["marts/orders"]["owners"] == ["team:analytics"]
    assert owned["assets"]["marts/orders"]["group"] == "floe_marts"
    assert owned["assets"]["lakehouse/raw/orders"] == expected["assets"]["lakehouse/raw/orders"]


def dg(project: Path, *args: str) -> str:
    home = project / ".dagster_home"
    home.mkdir(exist_ok=True)
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    env = {
        **os.environ,
        "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "PYTHONPATH": str(project / "src"),
        "DAGSTER_HOME": str(home),
        "COLUMNS": "200",
    }
    done = subprocess.run(
        [str(VENV_BIN / "dg"), *args], cwd=project, env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, f"dg {' '.join(args)}:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def new_dg_project(root: Path) -> Path:
    package = root / "src" / "platform_project"
    (package / "defs").mkdir(parents=True)
    (root / "pyproject.toml").write_text(
        '[project]\nname = "platform-project"\nversion = "0.1.0"\n\n'
        '[tool.dg]\ndirectory_type = "project"\n\n[tool.dg.project]\nroot_module = "platform_project"\n'
    )
    (package / "__init__.py").write_text("")
    (package / "defs" / "__init__.py").write_text("")
    (package / "definitions.py").write_text(
        "from pathlib import Path\n\nimport dagster as dg\n\n\n"
        "@dg.definitions\ndef defs() -> dg.Definitions:\n"
        "    return dg.load_from_defs_folder(path_within_project=Path(__file__).parent)\n"
    )
    return root


def asset_keys(listing: str) -> set[str]:
    return {asset["asset_key"] for asset in json.loads(listing)["assets"]}


@pytest.mark.skipif(not (VENV_BIN / "dg").exists(), reason="dagster-dg-cli is not installed (dev extra)")
def test_dg_scaffold_check_list_and_offline_state(tmp_path: Path) -> None:
    project = new_dg_project(tmp_path / "platform_project")
    assert "floe_dagster.FloeComponent" in dg(project, "list", "components")
    dg(project, "scaffold", "defs", "floe_dagster.FloeComponent", "lakehouse")
    folder = project / "src" / "platform_project" / "defs" / "lakehouse"
    assert "type: floe_dagster.FloeComponent" in (folder / "defs.yaml").read_text()
    assert (folder / "manifest.yaml").exists(), "a starter manifest when there is none"

    # the usual hooks in YAML: translation per dbt model ({{ node }}), post-processing for all
    (folder / "defs.yaml").write_text(
        (folder / "defs.yaml").read_text()
        + "  translation:\n    owners: ['team:analytics']\n"
        + "    tags:\n      layer: '{{ node.resource_type }}'\n"
        + "post_processing:\n  assets:\n    - target: '*'\n"
        + "      attributes:\n        tags: {platform: floe}\n"
    )
    assert "All definitions loaded successfully" in dg(project, "check", "defs")
    listed = {a["asset_key"]: a for a in json.loads(dg(project, "list", "defs", "--json"))["assets"]}
    example = listed["example"]  # the starter dbt model
    assert example["owners"] == [{"team": "analytics"}]  # how dg prints the owner team:analytics
    tags = {t["key"]: t["value"] for t in example["tags"]}
    assert tags["layer"] == "model" and tags["platform"] == "floe" and tags["floe/compute"] == "duckdb"

    # a table appears in the catalog: one refresh puts it in the defs state ...
    seed_demo(load_manifest(folder / "manifest.yaml"))
    (folder / "defs.yaml").write_text(
        (folder / "defs.yaml")
        .read_text()
        .replace(
            "post_processing:",
            "  defs_state:\n    management_type: LOCAL_FILESYSTEM\n    refresh_if_dev: false\n"
            "post_processing:",
        )
    )
    dg(project, "utils", "refresh-defs-state")
    # ... and the definitions load from it with the catalog gone
    (folder / ".floe" / "catalog.db").write_bytes(b"not a database")
    keys = asset_keys(dg(project, "list", "defs", "--json"))
    assert {"lakehouse/raw/customers", "lakehouse/raw/orders", "lakehouse/raw/payments"} <= keys
