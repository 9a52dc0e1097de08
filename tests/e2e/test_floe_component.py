"""floe_dagster.FloeComponent: the same definitions as definitions.py (names scoped by the
manifest's name), built from defs state with no metastore call; two platforms in one code
location; and the dg round trip (scaffold, check, list, refresh-defs-state, offline)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from dagster import AssetExecutionContext, AssetKey, AssetSpec, Definitions

from floe_dagster import FloeComponent, build_definitions, load_manifest
from floe_dagster.demo import seed_demo
from floe_dagster.plan.builders import build_catalog
from tests.helpers import VENV_BIN

pytestmark = pytest.mark.e2e


def graph_summary(defs: Definitions, scope: str = "") -> dict[str, Any]:
    """Everything a user sees of the definitions, comparable between two builds.

    With ``scope``, every resource, job, sensor and op name must carry it (``<scope>__``) and
    is shown without it, and so are the asset keys floe scopes (``<scope>/...``): the summary
    of a scoped build then equals the unscoped one's.
    """

    def name(text: str) -> str:
        if not scope:
            return text
        assert text.startswith(f"{scope}__"), f"{text} is not scoped by {scope}"
        return text.removeprefix(f"{scope}__")

    def key(asset_key: AssetKey) -> str:
        text = asset_key.to_user_string()
        return text.removeprefix(f"{scope}/") if scope else text

    graph = defs.resolve_asset_graph()
    assets = {}
    for node in graph.asset_nodes:
        condition = node.automation_condition
        assets[key(node.key)] = {
            "deps": sorted(key(k) for k in node.parent_keys),
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
    ops = {definition.node_def.name for definition in graph.assets_defs if definition.is_executable}
    return {
        "assets": assets,
        "checks": sorted(f"{key(k.asset_key)}:{k.name}" for k in graph.asset_check_keys),
        "ops": sorted(name(op) for op in ops),  # the dbt groups, the observation, the health checks
        "jobs": sorted(name(j.name) for j in repo.get_all_jobs() if j.name != "__ASSET_JOB"),
        "sensors": sorted(name(s.name) for s in repo.sensor_defs),
        "resources": sorted(name(r) for r in defs.resources or {}),
    }


def block_network_and_subprocesses(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any socket connection or new process fails the test from here on."""

    def refused(*_: object, **__: object) -> None:
        raise AssertionError("build_defs_from_state opened a connection or started a process")

    for name in ("connect", "connect_ex"):
        monkeypatch.setattr(socket.socket, name, refused)
    monkeypatch.setattr(subprocess.Popen, "__init__", refused)
    monkeypatch.setattr(os, "posix_spawn", refused)
    monkeypatch.setattr(os, "fork", refused)
    monkeypatch.setattr("floe_dagster.metastores.state.build_metastore", refused)


def test_component_builds_what_definitions_py_builds_from_its_state_alone(
    demo_project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    manifest = demo_project / "manifests" / "manifest.yaml"
    seed_demo(load_manifest(manifest))
    expected = graph_summary(build_definitions(manifest))
    assert "lakehouse/raw/orders" in expected["assets"]

    component = FloeComponent(manifest=str(manifest))
    assert component.defs_state_config.key == "FloeSources[jaffle-lakehouse@dev]"
    state = tmp_path / "state"
    component.write_state_to_path(state)  # the one listing of the metastore, the one dbt parse
    stored = json.loads(state.read_text())
    assert stored["format"] == "floe-component-state"
    assert {"model.floe_demo.stg_orders", "model.floe_demo.orders"} <= set(stored["dbt_manifest"]["nodes"])
    assert [t["name"] for t in stored["sources"]["metastores"]["lakehouse"]["tables"]] == [
        "customers",
        "orders",
        "payments",
    ]

    # The dbt project changes after the refresh, so its target/manifest.json is stale (and
    # prepare_dbt_manifest would run `dbt parse`); the metastore and dbt are out of reach.
    model = demo_project / "dbt_project" / "models" / "staging" / "stg_orders.sql"
    later = time.time() + 60
    os.utime(model, (later, later))
    block_network_and_subprocesses(monkeypatch)
    built = component.build_defs_from_state(None, state)  # type: ignore[arg-type]
    # the same graph; every name scoped by the manifest's name (two platforms share a code location)
    assert graph_summary(built, scope="jaffle_lakehouse") == expected
    assert {"jaffle_lakehouse__floe_main", "jaffle_lakehouse__dbt"} <= {
        *(job.name for job in built.get_repository_def().get_all_jobs()),
        *(built.resources or {}),
    }
    assert "jaffle_lakehouse/floe_compute/duckdb" in graph_summary(built)["assets"]


def test_name_scope_none_builds_exactly_what_definitions_py_builds(
    demo_project: Path, tmp_path: Path
) -> None:
    manifest = demo_project / "manifests" / "manifest.yaml"
    seed_demo(load_manifest(manifest))
    component = FloeComponent(manifest=str(manifest), name_scope="none")
    component.write_state_to_path(tmp_path / "state")
    built = component.build_defs_from_state(None, tmp_path / "state")  # type: ignore[arg-type]
    assert graph_summary(built) == graph_summary(build_definitions(manifest))  # names included
    assert "floe_main" in graph_summary(built)["jobs"] and "dbt" in graph_summary(built)["resources"]


def test_with_no_state_yet_it_reads_the_dbt_manifest_on_disk_or_says_to_refresh(
    demo_project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from floe_dagster.core.errors import ConfigurationError

    manifest = demo_project / "manifests" / "manifest.yaml"
    component = FloeComponent(manifest=str(manifest))
    block_network_and_subprocesses(monkeypatch)
    summary = graph_summary(component.build_defs_from_state(None, None))  # type: ignore[arg-type]
    assert "marts/orders" in summary["assets"]  # from dbt_project/target/manifest.json, unparsed
    assert "lakehouse/raw/orders" in summary["assets"]  # a source dbt names, without metastore metadata

    (demo_project / "dbt_project" / "target" / "manifest.json").unlink()
    with pytest.raises(ConfigurationError) as caught:
        component.build_defs_from_state(None, None)  # type: ignore[arg-type]
    message = str(caught.value)
    assert "no defs state for FloeSources[jaffle-lakehouse@dev]" in message
    assert "dg utils refresh-defs-state" in message and "manifest.json" in message


def test_get_asset_spec_renames_keys_and_execute_wraps_the_dbt_build(
    demo_project: Path, tmp_path: Path
) -> None:
    from dagster import DagsterInstance

    manifest = demo_project / "manifests" / "manifest.yaml"
    seed_demo(load_manifest(manifest))
    ran: list[tuple[str, list[str]]] = []

    class Audited(FloeComponent):
        def get_asset_spec(self, spec: AssetSpec, node: Mapping[str, Any]) -> AssetSpec:
            spec = spec.replace_attributes(owners=["team:analytics"], group_name=f"floe_{node['fqn'][1]}")
            if node["name"] == "stg_customers":  # a new key, without forking floe
                spec = spec.replace_attributes(key=AssetKey(["silver", "customers"]))
            return spec

        def execute(
            self, context: AssetExecutionContext, dbt: Any, compute: str, dbt_build: Any
        ) -> Iterator[Any]:
            context.log.info(f"audited: dbt build on {compute}")
            events = []
            for event in dbt_build():
                events.append(type(event).__name__)
                yield event
            ran.append((compute, events))

    component = Audited(manifest=str(manifest))
    component.write_state_to_path(tmp_path / "state")
    defs = component.build_defs_from_state(None, tmp_path / "state")  # type: ignore[arg-type]
    summary = graph_summary(defs)
    assert "silver/customers" in summary["assets"] and "staging/stg_customers" not in summary["assets"]
    assert "silver/customers" in summary["assets"]["marts/customers"]["deps"]  # downstream follows
    assert summary["assets"]["marts/orders"]["owners"] == ["team:analytics"]
    assert summary["assets"]["marts/orders"]["group"] == "floe_marts"

    instance = DagsterInstance.get()
    staging = [AssetKey(["silver", "customers"]), AssetKey(["staging", "stg_orders"])]
    staging.append(AssetKey(["staging", "stg_payments"]))  # the compute group duckdb, whole
    main_job = component.definition_names().main_job
    assert main_job == "jaffle_lakehouse__floe_main"
    result = defs.resolve_job_def(main_job).execute_in_process(instance=instance, asset_selection=staging)
    assert result.success
    assert [compute for compute, _ in ran] == ["duckdb"]  # the override ran, once, for its group
    assert "Output" in ran[0][1] or "AssetMaterialization" in ran[0][1]
    assert instance.get_latest_materialization_event(AssetKey(["silver", "customers"])) is not None
    logs = [entry.message or "" for entry in instance.all_logs(result.run_id)]
    assert any("audited: dbt build on duckdb" in line for line in logs)


def defs_yaml(folder: Path, attributes: Mapping[str, Any]) -> Path:
    folder.mkdir(parents=True)
    (folder / "defs.yaml").write_text(
        json.dumps({"type": "floe_dagster.FloeComponent", "attributes": dict(attributes)})
    )
    return folder


def test_environment_in_defs_yaml_selects_the_manifest_environment(demo_project: Path) -> None:
    from dagster.components.testing.utils import create_defs_folder_sandbox

    manifest = str(demo_project / "manifests" / "manifest.yaml")
    with create_defs_folder_sandbox() as sandbox:
        prod = defs_yaml(sandbox.defs_folder_path / "prod", {"manifest": manifest, "environment": "prod"})
        with sandbox.load_component_and_build_defs(defs_path=prod) as (component, defs):
            assert isinstance(component, FloeComponent) and component.environment == "prod"
            assert component.load_manifest().environment == "prod"
            assert component.defs_state_config.key == "FloeSources[jaffle-lakehouse@prod]"
            resources = defs.resources or {}
            assert resources["jaffle_lakehouse__compute_duckdb"].environment == "prod"  # what runs load
            assert resources["jaffle_lakehouse__catalog_lakehouse"].environment == "prod"
    with create_defs_folder_sandbox() as sandbox:
        dev = defs_yaml(sandbox.defs_folder_path / "dev", {"manifest": manifest})
        with sandbox.load_component_and_build_defs(defs_path=dev) as (component, defs):
            assert component.defs_state_config.key == "FloeSources[jaffle-lakehouse@dev]"  # type: ignore[attr-defined]
            assert (defs.resources or {})["jaffle_lakehouse__compute_duckdb"].environment == "dev"


def test_scaffold_leaves_an_existing_manifest_alone(tmp_path: Path) -> None:
    from dagster.components import ScaffoldRequest

    from floe_dagster.dagster_stage.component import FloeComponentScaffolder, FloeScaffoldParams

    folder = tmp_path / "platform"
    folder.mkdir()
    mine = "# my platform, not a starter\napiVersion: floe.dev/v1\nkind: Manifest\nmetadata: {name: mine}\n"
    (folder / "manifest.yaml").write_text(mine)
    request = ScaffoldRequest(
        type_name="floe_dagster.FloeComponent",
        target_path=folder,
        scaffold_format="yaml",
        project_root=tmp_path,
        params=FloeScaffoldParams(manifest="manifest.yaml"),
    )
    FloeComponentScaffolder().scaffold(request)
    assert (folder / "manifest.yaml").read_text() == mine
    assert not (folder / "dbt_project").exists()  # no starter dbt project either
    assert "manifest: manifest.yaml" in (folder / "defs.yaml").read_text()


def renamed_copy(source: Path, destination: Path, name: str) -> Path:
    """A copy of the demo whose manifest is named ``name`` (dbt manifest reused, paths rewritten)."""
    from tests.helpers import copy_demo_project

    copy = copy_demo_project(destination, parsed_from=source)
    manifest = copy / "manifests" / "manifest.yaml"
    manifest.write_text(manifest.read_text().replace("name: jaffle-lakehouse", f"name: {name}"))
    return manifest


def test_two_platforms_have_their_own_state_keys_and_states(
    demo_project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dagster.components.testing.utils import create_defs_folder_sandbox
    from dagster.components.utils.project_paths import get_local_state_path

    first = demo_project / "manifests" / "manifest.yaml"
    second = renamed_copy(demo_project, tmp_path / "second", "jaffle-two")
    seed_demo(load_manifest(first))
    seed_demo(load_manifest(second))
    extra = build_catalog(load_manifest(second), "lakehouse")  # a table only the second platform has
    extra.create_table(("raw", "refunds"), pa.schema([("id", pa.int64())]))

    with create_defs_folder_sandbox() as sandbox:
        one = defs_yaml(sandbox.defs_folder_path / "one", {"manifest": str(first)})
        two = defs_yaml(sandbox.defs_folder_path / "two", {"manifest": str(second)})
        with sandbox.build_component_tree() as tree:
            components = [tree.load_component(one), tree.load_component(two)]
        keys = [c.defs_state_config.key for c in components]  # type: ignore[attr-defined]
        assert keys == ["FloeSources[jaffle-lakehouse@dev]", "FloeSources[jaffle-two@dev]"]
        paths = [get_local_state_path(key, sandbox.project_root) for key in keys]
        assert paths[0] != paths[1]
        for component, path in zip(components, paths, strict=True):
            component.write_state_to_path(path)  # type: ignore[attr-defined]
        block_network_and_subprocesses(monkeypatch)
        graphs = [
            graph_summary(c.build_defs_from_state(None, p))  # type: ignore[attr-defined]
            for c, p in zip(components, paths, strict=True)
        ]
    assert "lakehouse/raw/refunds" in graphs[1]["assets"]  # the second platform's own listing ...
    assert "lakehouse/raw/refunds" not in graphs[0]["assets"]  # ... not written over the first's
    assert "lakehouse/raw/orders" in graphs[0]["assets"] and "marts/orders" in graphs[0]["assets"]


def test_two_platforms_load_side_by_side_in_one_code_location(demo_project: Path, tmp_path: Path) -> None:
    """Two FloeComponents in one defs folder: each keeps its own names, resources and tables."""
    from dagster import DagsterInstance
    from dagster.components.testing.utils import create_defs_folder_sandbox
    from dagster.components.utils.project_paths import get_local_state_path

    from floe_dagster.plan.dbt_project import profiles_dir

    first = demo_project / "manifests" / "manifest.yaml"
    second = renamed_copy(demo_project, tmp_path / "second", "jaffle-two")
    # the same metastore and dbt project names: the second maps its keys apart (the user's keys)
    text = second.read_text()
    second.write_text(
        text.replace('    include: ["raw.*"]\n', '    include: ["raw.*"]\n    asset_key_prefix: [two]\n')
    )
    loaded = {"jaffle_lakehouse": load_manifest(first), "jaffle_two": load_manifest(second)}
    for platform in loaded.values():
        seed_demo(platform)
    catalogs = {scope: build_catalog(platform, "lakehouse") for scope, platform in loaded.items()}
    catalogs["jaffle_two"].create_table(("raw", "refunds"), pa.schema([("id", pa.int64())]))

    with create_defs_folder_sandbox() as sandbox:
        one = defs_yaml(sandbox.defs_folder_path / "one", {"manifest": str(first)})
        two = defs_yaml(
            sandbox.defs_folder_path / "two", {"manifest": str(second), "translation": {"key_prefix": "two"}}
        )
        with sandbox.build_component_tree() as tree:
            for folder in (one, two):
                component = tree.load_component(folder)
                key = component.defs_state_config.key  # type: ignore[attr-defined]
                component.write_state_to_path(get_local_state_path(key, sandbox.project_root))  # type: ignore[attr-defined]
            defs = tree.build_defs()  # what a dg code location loads: both folders, merged
            repo = defs.get_repository_def()  # Dagster refuses a name or key defined twice here

    resources = defs.resources or {}
    each = ["dbt", "catalog_lakehouse", "compute_duckdb", "compute_duckdb_analytics", "metastore_lakehouse"]
    assert set(resources) == {f"{scope}__{name}" for scope in loaded for name in each}
    jobs = {job.name for job in repo.get_all_jobs()}
    sensors = {sensor.name for sensor in repo.sensor_defs}
    for scope, platform in loaded.items():
        assert {f"{scope}__floe_main", f"{scope}__floe_observe_sources", f"{scope}__floe_health"} <= jobs
        assert f"{scope}__observe_lakehouse_sensor" in sensors
        dbt = resources[f"{scope}__dbt"]  # each dbt resource runs its own project with its own profiles
        assert Path(dbt.project_dir) == platform.dbt_project_dir
        assert Path(dbt.profiles_dir) == profiles_dir(platform)
        assert Path(resources[f"{scope}__metastore_lakehouse"].manifest_path) == platform.path
    graph = defs.resolve_asset_graph()
    nodes = {node.key.to_user_string() for node in graph.asset_nodes}
    assert {"marts/orders", "two/marts/orders", "lakehouse/raw/orders", "two/raw/orders"} <= nodes
    assert {"jaffle_lakehouse/floe_compute/duckdb", "jaffle_two/floe_compute/duckdb"} <= nodes
    assert "two/raw/orders" in {
        k.to_user_string() for k in graph.get(AssetKey(["two", "staging", "stg_orders"])).parent_keys
    }

    # each observation job observes its own metastore's tables: refunds is only in the second's
    instance = DagsterInstance.get()
    observed = {}
    for scope in loaded:
        result = defs.resolve_job_def(f"{scope}__floe_observe_sources").execute_in_process(instance=instance)
        assert result.success
        observed[scope] = {e.asset_key.to_user_string() for e in result.get_asset_observation_events()}
    assert observed == {
        "jaffle_lakehouse": {f"lakehouse/raw/{t}" for t in ("customers", "orders", "payments")},
        "jaffle_two": {f"two/raw/{t}" for t in ("customers", "orders", "payments", "refunds")},
    }

    # the second platform's main job materialises its models into its own catalog, nothing else
    result = defs.resolve_job_def("jaffle_two__floe_main").execute_in_process(instance=instance)
    assert result.success
    materialised = {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}
    assert {"two/staging/stg_orders", "two/marts/orders", "two/marts/customers"} <= materialised
    assert all(key.startswith("two/") for key in materialised), materialised
    assert instance.get_latest_materialization_event(AssetKey(["marts", "orders"])) is None
    assert ("marts",) in catalogs["jaffle_two"].list_namespaces()
    assert set(catalogs["jaffle_lakehouse"].list_namespaces()) == {("raw",)}


def test_a_name_scope_that_is_not_a_dagster_name_says_what_to_write(demo_project: Path) -> None:
    from dagster.components.core.component_tree import ComponentTreeException
    from dagster.components.testing.utils import create_defs_folder_sandbox

    from floe_dagster.core.errors import ConfigurationError

    manifest = str(demo_project / "manifests" / "manifest.yaml")
    component = FloeComponent(manifest=manifest, name_scope="sales")
    assert component.definition_names().main_job == "sales__floe_main"
    with create_defs_folder_sandbox() as sandbox:
        bad = defs_yaml(sandbox.defs_folder_path / "bad", {"manifest": manifest, "name_scope": "Sales EU"})
        with (
            pytest.raises(ComponentTreeException) as caught,
            sandbox.load_component_and_build_defs(defs_path=bad),
        ):
            pass
    assert "defs.yaml (FloeComponent) (error)" in str(caught.value)  # where, as dg check defs shows it
    error = caught.value.__cause__  # what, and how to fix it
    assert isinstance(error, ConfigurationError), repr(caught.value)
    message = str(error)
    assert "name_scope 'Sales EU'" in message and manifest in message
    assert "letters, digits and _" in message and "sales_eu" in message and "'none'" in message


def test_a_manifest_name_with_nothing_to_scope_by_asks_for_a_name_scope(demo_project: Path) -> None:
    from floe_dagster.core.errors import ConfigurationError

    manifest = demo_project / "manifests" / "manifest.yaml"
    manifest.write_text(manifest.read_text().replace("name: jaffle-lakehouse", "name: '---'"))
    with pytest.raises(ConfigurationError) as caught:
        FloeComponent(manifest=str(manifest)).definition_names()
    assert "manifest name '---'" in str(caught.value) and "set name_scope in defs.yaml" in str(caught.value)
    assert FloeComponent(manifest=str(manifest), name_scope="none").definition_names().main_job == "floe_main"


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
