"""Stage 3 of the flow: a Plan (and what the edges report) -> Dagster ``Definitions``."""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from dagster import AssetSelection, Definitions, define_asset_job

from floe_dagster.dagster_stage.automation import condition_for
from floe_dagster.dagster_stage.dbt_assets import ExecuteHook, SpecHook, dbt_asset_groups
from floe_dagster.dagster_stage.executors import executor_definition
from floe_dagster.dagster_stage.freshness import (
    source_freshness_checks,
    transform_policies,
    windows_of_specs,
)
from floe_dagster.dagster_stage.health import compute_health
from floe_dagster.dagster_stage.ingest import ingest_assets
from floe_dagster.dagster_stage.names import MAIN_JOB, OBSERVE_JOB, UNSCOPED, DefinitionNames
from floe_dagster.dagster_stage.resources import (
    CatalogResource,
    ComputeResource,
    FloeDbtCliResource,
    MetastoreResource,
)
from floe_dagster.dagster_stage.sensors import observation_sensor
from floe_dagster.dagster_stage.sources import (
    TableRef,
    dbt_source_refs,
    observable_source_assets,
    source_tables,
)
from floe_dagster.dagster_stage.translator import FloeSourceTranslator, check_distinct, translate_sources
from floe_dagster.manifest.loader import DEFAULT_MANIFEST, LoadedManifest, load_manifest
from floe_dagster.metastores.state import SourcesState, load_sources_state
from floe_dagster.plan.artifact import check_plan_environment, current_plan, read_plan
from floe_dagster.plan.builders import check_dbt_packages
from floe_dagster.plan.compile import compile_plan
from floe_dagster.plan.dbt_project import profiles_dir
from floe_dagster.plan.model import Plan
from floe_dagster.transforms.dbt_manifest import dbt_executable, prepare_dbt_manifest

__all__ = ["MAIN_JOB", "OBSERVE_JOB", "build_definitions", "build_resources", "definitions_from_plan"]


def build_definitions(
    manifest_path: str | os.PathLike[str] = DEFAULT_MANIFEST,
    compiled_plan: str | os.PathLike[str] | None = None,
    state_path: str | os.PathLike[str] | None = None,
    translator: FloeSourceTranslator | None = None,
) -> Definitions:
    """manifest.yaml -> Manifest -> Plan -> Definitions (the whole flow of DESIGN.md).

    ``compiled_plan`` is the JSON of ``floe compile``; given, the plan is read instead of compiled
    (in the environment it was compiled for), and it alone builds the definitions: it carries the
    manifest's document. When the manifest file is at hand too, the plan is checked against it and
    the dbt project: a stale plan is a ManifestError saying to compile it again.
    Metastore tables come from the defs state (``state_path``, default under the manifest's
    state_dir; see metastores/state.py): with a current state, loading calls no metastore.
    ``translator``: a ``FloeSourceTranslator`` (subclass) giving each metastore table's source
    asset spec (key, group, tags, metadata...); default: the manifest's keys.
    """
    if compiled_plan is None:
        loaded = load_manifest(manifest_path, check_assignments=False)
        check_dbt_packages(loaded)  # a missing dbt adapter: a clear load error, before dbt parses
        dbt_manifest = prepare_dbt_manifest(loaded)
        plan = compile_plan(loaded, dbt_manifest)
    else:
        plan = read_plan(compiled_plan)
        environment = check_plan_environment(plan, compiled_plan)
        if Path(manifest_path).is_file():
            on_disk = load_manifest(manifest_path, environment=environment, check_assignments=False)
            dbt_manifest = prepare_dbt_manifest(on_disk)
            plan = current_plan(plan, on_disk, dbt_manifest, compiled_plan)
        else:  # the plan alone (a deployment that ships it instead of the manifest files)
            dbt_manifest = prepare_dbt_manifest(plan.loaded_manifest())
    return definitions_from_plan(
        plan, dbt_manifest, load_sources_state(plan.loaded_manifest(), state_path), translator=translator
    )


def definitions_from_plan(
    plan: Plan,
    dbt_manifest: Mapping[str, Any],
    state: SourcesState,
    spec_hook: SpecHook | None = None,
    execute: ExecuteHook | None = None,
    names: DefinitionNames = UNSCOPED,
    translator: FloeSourceTranslator | None = None,
) -> Definitions:
    """Definitions from a compiled plan, the parsed dbt manifest and the defs state.

    The Dagster stage is a function of the plan: the manifest it reads (catalogs, computes and
    metastores with their config, source key mappings, freshness windows, automation, ingest) is
    the one the plan carries (``Plan.loaded_manifest``). Makes no network call
    (``build_definitions`` and ``floe_dagster.FloeComponent`` both end here). ``spec_hook`` and
    ``execute`` customise the dbt models' specs and each compute group's step (see
    dagster_stage/dbt_assets.py). ``names`` gives every resource key, job, sensor and op name and
    floe's own asset keys (dagster_stage/names.py): unscoped for ``build_definitions``, one scope
    per platform for the component, so two platforms share a code location.
    ``translator`` gives every metastore table's source asset spec (default
    ``FloeSourceTranslator()``; dagster_stage/translator.py).
    """
    loaded = plan.loaded_manifest()
    check_dbt_packages(loaded)  # every approved compute's dbt adapter and driver are installed
    source_refs = dbt_source_refs(loaded, dbt_manifest)
    refs_by_metastore: dict[str, list[TableRef]] = defaultdict(list)
    dbt_sources: dict[str, dict[tuple[str, str], Mapping[str, Any]]] = defaultdict(dict)
    for unique_id, ref in sorted(source_refs.items()):
        refs_by_metastore[ref.metastore].append(ref)
        node = dbt_manifest.get("sources", {}).get(unique_id, {})
        dbt_sources[ref.metastore].setdefault((ref.namespace, ref.table), node)
    # every source asset's spec comes from the one source translator (dagster_stage/translator.py);
    # the dbt models, sensors, freshness checks and ingest assets read its keys from these specs
    translated = {
        name: translate_sources(
            name,
            source_tables(loaded, name, state.tables(name), refs_by_metastore[name], dbt_sources[name]),
            translator,
        )
        for name in loaded.manifest.metastores
    }
    check_distinct(translated.values(), translator)
    sources = {
        name: observable_source_assets(loaded, name, translated[name], names)
        for name in loaded.manifest.metastores
    }
    observed = [asset for assets in sources.values() for asset in assets]
    # A sensor for every metastore, also one with no table yet (nothing listed, no dbt source):
    # its ticks write the listing to the defs state, so the tables appear at the next load.
    sensors = [
        observation_sensor(
            loaded,
            name,
            [key for asset in assets for key in asset.keys],
            names,
            translated=translated[name],
        )
        for name, assets in sources.items()
    ]
    key_of_source = {
        unique_id: translated[ref.metastore].keys_by_table[(ref.namespace, ref.table)]
        for unique_id, ref in source_refs.items()
    }
    transforms = dbt_asset_groups(
        plan,
        dbt_manifest,
        key_of_source,
        condition_for(loaded.manifest.transforms.automation),
        transform_policies(loaded, dbt_manifest),
        spec_hook,
        execute,
        names,
        # a table and a dbt model given one key: an error naming both, before dagster-dbt's
        check_keys=lambda models: check_distinct(translated.values(), translator, models),
    )
    source_keys = [key for source in observed for key in source.keys]
    freshness_checks, freshness_sensors = source_freshness_checks(  # floe_dagster/dagster_stage/freshness.py
        {
            key: window
            for t in translated.values()
            for key, window in windows_of_specs(t.specs.values()).items()
        },
        names.freshness_sensor,
    )
    ingests = [  # opt-in incremental ingest of s3 metastores' tables into Iceberg (defs/ingest.py)
        ingest
        for name in loaded.manifest.metastores
        if (
            ingest := ingest_assets(
                loaded, name, state.tables(name), source_keys, names, translated[name].keys_by_table
            )
        )
        is not None
    ]
    jobs = [
        define_asset_job(
            names.main_job,
            # this platform's own assets, not every asset of a code location it shares
            selection=AssetSelection.assets(*transforms, *ingests),
            description="Materialise every dbt transform of the manifest.",
        )
    ]
    if observed:
        jobs.append(
            define_asset_job(
                names.observe_job,
                selection=AssetSelection.assets(*observed),
                description="Observe every metastore table (records data versions).",
            )
        )
    health = compute_health(loaded, names)  # compute connection checks and the floe_health job
    return Definitions(
        assets=[*observed, *ingests, *transforms, *health.specs],
        asset_checks=[health.checks, *freshness_checks],
        resources=build_resources(loaded, names),
        jobs=[*jobs, health.job],
        sensors=[*sensors, *freshness_sensors],
        # the manifest's choice for this environment (in_process by default: dbt already runs in
        # its own process, a process per step only adds start-up time); dagster_stage/executors.py
        executor=executor_definition(loaded),
    )


def build_resources(loaded: LoadedManifest, names: DefinitionNames = UNSCOPED) -> dict[str, Any]:
    m = loaded.manifest
    path = str(loaded.source_path)
    resources: dict[str, Any] = {
        names.dbt_resource: FloeDbtCliResource(
            project_dir=str(loaded.dbt_project_dir),
            profiles_dir=str(profiles_dir(loaded)),
            dbt_executable=dbt_executable(),
        )
    }
    for name, catalog in m.catalogs.items():
        resources[names.catalog_resource(name)] = CatalogResource(
            manifest_path=path, environment=loaded.environment, name=name, plugin_type=catalog.type
        )
    for name in m.computes.approved:
        resources[names.compute_resource(name)] = ComputeResource(
            manifest_path=path,
            environment=loaded.environment,
            name=name,
            plugin_type=m.computes.targets[name].type,
        )
    for name, metastore in m.metastores.items():
        resources[names.metastore_resource(name)] = MetastoreResource(
            manifest_path=path, environment=loaded.environment, name=name, plugin_type=metastore.type
        )
    return resources
