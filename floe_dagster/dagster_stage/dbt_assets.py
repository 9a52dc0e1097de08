"""dbt models -> Dagster assets: one dbt multi-asset per compute, each run with its own ``--target``."""

import contextlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from dagster import (
    AssetExecutionContext,
    AssetKey,
    AssetObservation,
    AssetsDefinition,
    AssetSpec,
    AutomationCondition,
    FreshnessPolicy,
)
from dagster_dbt import DagsterDbtTranslator, DagsterDbtTranslatorSettings, dbt_assets

from floe_dagster.core.compat import dbt_assets_preselected
from floe_dagster.dagster_stage.names import UNSCOPED, DefinitionNames
from floe_dagster.dagster_stage.resources import FloeDbtCliResource
from floe_dagster.dagster_stage.source_versions import source_versions_environment, with_source_versions
from floe_dagster.dagster_stage.sources import TableRef, source_asset_key
from floe_dagster.plan.builders import build_compute
from floe_dagster.plan.model import Plan
from floe_dagster.plugins.compute import ComputePlugin, DbtProfileContext
from floe_dagster.transforms.dbt_in_process import environment
from floe_dagster.transforms.profiles import profile_context

COMPUTE_TAG = "floe/compute"
K8S_CONFIG_TAG = "dagster-k8s/config"

# Hooks (floe_dagster.FloeComponent overrides them): a dbt model's spec, given its dbt node, and
# the body of a compute group's step, given the compute's name and the default body (a callable
# that runs ``dbt build`` on that compute and yields its events).
SpecHook = Callable[[AssetSpec, Mapping[str, Any]], AssetSpec]
ExecuteHook = Callable[
    [AssetExecutionContext, FloeDbtCliResource, str, Callable[[], Iterator[Any]]], Iterator[Any]
]


def source_key(ref: TableRef | AssetKey) -> AssetKey:
    """A dbt source's key: its table's translated key (dagster_stage/translator.py), or the
    manifest's key of a ``TableRef``."""
    return ref if isinstance(ref, AssetKey) else source_asset_key(*ref)


class FloeDbtTranslator(DagsterDbtTranslator):
    """dbt sources become the metastore source assets' keys; models are tagged with their compute."""

    def __init__(
        self,
        plan: Plan,
        source_refs: Mapping[str, TableRef | AssetKey],
        automation: AutomationCondition[Any] | None = None,
        freshness: Mapping[str, FreshnessPolicy] | None = None,
        spec_hook: SpecHook | None = None,
    ) -> None:
        super().__init__(settings=DagsterDbtTranslatorSettings(enable_asset_checks=True))
        self.spec_hook = spec_hook
        self.plan = plan
        self.source_refs = source_refs
        self.automation = (
            automation  # the manifest's transforms.automation (floe_dagster/dagster_stage/automation.py)
        )
        self.freshness = dict(
            freshness or {}
        )  # unique_id -> policy (floe_dagster/dagster_stage/freshness.py)
        self.compute_by_id = {t.unique_id: t.compute for t in plan.transforms}
        self.specs: dict[tuple[int, str, int], AssetSpec] = {}

    def get_asset_key(self, dbt_resource_props: Mapping[str, Any]) -> AssetKey:
        ref = self.source_refs.get(dbt_resource_props["unique_id"])
        if ref is not None:
            return source_key(ref)
        return super().get_asset_key(dbt_resource_props)

    def get_asset_spec(self, manifest: Mapping[str, Any], unique_id: str, project: Any) -> AssetSpec:
        # dagster-dbt asks again for every model a selected model depends on, and each compute
        # group asks for the models it reads from another: build each model's spec once
        memo = (id(manifest), unique_id, id(project))
        spec = self.specs.get(memo)
        if spec is None:
            spec = self.specs[memo] = self._asset_spec(manifest, unique_id, project)
        return spec

    def _asset_spec(self, manifest: Mapping[str, Any], unique_id: str, project: Any) -> AssetSpec:
        spec = super().get_asset_spec(manifest, unique_id, project)
        compute = self.compute_by_id.get(unique_id)
        if compute is None:
            return spec
        policy = self.freshness.get(unique_id)
        kinds = {"dbt", self.plan.computes[compute], "iceberg"}
        # one new spec per model, not one per attribute (each AssetSpec is validated anew)
        if policy is not None:
            spec = spec.replace_attributes(kinds=kinds, freshness_policy=policy)
        else:
            spec = spec.replace_attributes(kinds=kinds)
        if self.spec_hook is not None:
            spec = self.spec_hook(spec, manifest["nodes"][unique_id])
        return spec

    def get_tags(self, dbt_resource_props: Mapping[str, Any]) -> Mapping[str, str]:
        tags = dict(super().get_tags(dbt_resource_props))
        compute = self.compute_by_id.get(dbt_resource_props["unique_id"])
        if compute is not None:
            tags[COMPUTE_TAG] = compute
        return tags

    def get_automation_condition(
        self, dbt_resource_props: Mapping[str, Any]
    ) -> AutomationCondition[Any] | None:
        if self.automation is not None and dbt_resource_props["unique_id"] in self.compute_by_id:
            return self.automation
        return super().get_automation_condition(dbt_resource_props)

    def source_keys(self) -> set[AssetKey]:
        return {source_key(ref) for ref in self.source_refs.values()}

    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
        fqn = dbt_resource_props.get("fqn") or []
        return fqn[1] if len(fqn) > 2 else "transforms"


def without_source_observations(events: Iterable[Any], source_keys: set[AssetKey]) -> Iterator[Any]:
    """Drop the observations dagster-dbt logs for dbt tests on sources.

    Those observations carry no data version, and Dagster takes a source's current version
    from its latest observation: letting them through would reset every metastore table's
    observed version after each dbt build. The tests still run; a failing one fails the build.
    """
    for event in events:
        if isinstance(event, AssetObservation) and event.asset_key in source_keys:
            continue
        yield event


@dataclass(frozen=True)
class ComputeForDbt:
    """A compute group's plugin, its config and its dbt profile context, loaded once per step."""

    name: str
    plugin: ComputePlugin
    config: Any
    profile_context: DbtProfileContext

    @classmethod
    def of(cls, plan: Plan, compute: str) -> "ComputeForDbt":
        loaded = plan.loaded_manifest()
        plugin, config = build_compute(loaded, compute)
        return cls(compute, plugin, config, profile_context(loaded, compute))

    @contextlib.contextmanager
    def environment(self) -> Iterator[None]:
        """Set the compute's dbt variables (its secrets) while dbt is started, then restore.

        The in-process executor runs one step at a time, so no other step sees them; dbt run in
        this process (``runs_dbt_in_process``) is given them for its whole invocation.
        """
        variables = {
            **self.plugin.prepare_dbt_run(self.config, self.profile_context),
            **self.plugin.dbt_env(self.config, self.name),
        }
        with environment(variables):
            yield

    def runs_in_process(self) -> bool:
        return self.plugin.runs_dbt_in_process(self.config)

    def release_in_process(self) -> None:
        self.plugin.release_dbt_in_process(self.config)

    def finish(self) -> None:
        """The compute's after-dbt step (e.g. Spark commits its outputs to the catalog)."""
        self.plugin.finish_dbt_run(self.config, self.profile_context)


def fqn_selector(dbt_manifest: Mapping[str, Any], unique_ids: list[str]) -> str:
    nodes = dbt_manifest["nodes"]
    return " ".join("fqn:" + ".".join(nodes[u]["fqn"]) for u in sorted(unique_ids))


def tests_by_parent(dbt_manifest: Mapping[str, Any]) -> dict[str, list[str]]:
    """dbt node unique id -> the data tests that depend on it (one pass over the nodes)."""
    found: dict[str, list[str]] = {}
    for unique_id, node in dbt_manifest.get("nodes", {}).items():
        if node.get("resource_type") == "test":
            for parent in (node.get("depends_on") or {}).get("nodes") or ():
                found.setdefault(parent, []).append(unique_id)
    return found


def group_selection(unique_ids: Iterable[str], tests: Mapping[str, list[str]]) -> frozenset[str]:
    """What dbt selects for a compute group's ``fqn_selector``, without dbt's selector.

    The models themselves and, as dbt's default (eager) indirect selection adds them, every data
    test on any of them: O(models + tests) for the group, where dbt evaluates each ``fqn:``
    criterion with a pass over every node of the project (models x models for the group).
    """
    selected = set(unique_ids)
    for unique_id in list(selected):
        selected.update(tests.get(unique_id, ()))
    return frozenset(selected)


def dbt_asset_groups(
    plan: Plan,
    dbt_manifest: Mapping[str, Any],
    source_refs: Mapping[str, TableRef | AssetKey],
    automation: AutomationCondition[Any] | None = None,
    freshness: Mapping[str, FreshnessPolicy] | None = None,
    spec_hook: SpecHook | None = None,
    execute: ExecuteHook | None = None,
    names: DefinitionNames = UNSCOPED,
    check_keys: Callable[[Mapping[AssetKey, str]], None] | None = None,
) -> list[AssetsDefinition]:
    """One dbt multi-asset per compute; ``names`` names their ops and the dbt resource they use.

    ``source_refs``: dbt source unique_id -> the key of the source asset it reads (as the source
    translator gave it) or its ``TableRef`` (then the manifest's key). ``check_keys`` is given
    every model's key (-> ``dbt model <unique_id>``) before the assets are built.
    """
    translator = FloeDbtTranslator(plan, source_refs, automation, freshness, spec_hook)
    if check_keys is not None:  # dagster-dbt memoises the specs: dbt_assets below reuses them
        check_keys(
            {
                translator.get_asset_spec(dbt_manifest, t.unique_id, None).key: f"dbt model {t.unique_id}"
                for t in plan.transforms
            }
        )
    groups = plan.by_compute()
    single = len(groups) == 1
    tests = tests_by_parent(dbt_manifest) if not single else {}
    definitions = []
    for compute, transforms in sorted(groups.items()):
        resources = transforms[0].resources
        preselected: contextlib.AbstractContextManager[None] = contextlib.nullcontext()
        if single:
            select = "fqn:*"
        else:
            # dbt runs the group by its models' fqns; the definition takes the plan's models as
            # they are (see group_selection) rather than having dbt evaluate that list here
            unique_ids = [t.unique_id for t in transforms]
            select = fqn_selector(dbt_manifest, unique_ids)
            preselected = dbt_assets_preselected(dbt_manifest, select, group_selection(unique_ids, tests))
        with preselected:
            group = _dbt_group(
                compute, plan.computes[compute], resources, select, dbt_manifest, translator, execute, names
            )
        definitions.append(group)
    return definitions


def pool_name(compute: str) -> str:
    return f"floe-compute-{compute}"


def _dbt_group(
    compute: str,
    compute_type: str,
    resources: Mapping[str, Mapping[str, str]],
    select: str,
    dbt_manifest: Mapping[str, Any],
    translator: FloeDbtTranslator,
    execute: ExecuteHook | None = None,
    names: DefinitionNames = UNSCOPED,
) -> AssetsDefinition:
    # The dbt resource is asked for by key, not by a parameter named after it: under a name
    # scope its key is ``<scope>__dbt`` (defs/names.py).
    dbt_key = names.dbt_resource

    @dbt_assets(
        manifest=dbt_manifest,
        select=select,
        name=names.dbt_op(compute),
        required_resource_keys={dbt_key},
        dagster_dbt_translator=translator,
        op_tags={
            COMPUTE_TAG: compute,
            "floe/compute_type": compute_type,
            # read by dagster-k8s executors: each compute group gets its preset's requests/limits
            K8S_CONFIG_TAG: {"container_config": {"resources": dict(resources)}},
        },
        pool=pool_name(compute),
    )
    def run_dbt(context: AssetExecutionContext) -> Iterator[Any]:
        dbt: FloeDbtCliResource = getattr(context.resources, dbt_key)
        context.log.info(f"floe: dbt build on compute '{compute}' ({compute_type})")

        def default() -> Iterator[Any]:
            return dbt_build(context, dbt, translator, compute, dbt_manifest)

        yield from (default() if execute is None else execute(context, dbt, compute, default))

    return run_dbt


def dbt_build(
    context: AssetExecutionContext,
    dbt: FloeDbtCliResource,
    translator: FloeDbtTranslator,
    compute: str,
    dbt_manifest: Mapping[str, Any] | None = None,
) -> Iterator[Any]:
    """A compute group's step: ``dbt build --target <compute>`` with the compute's environment;
    each model's materialisation records the versions of the sources it read (source_versions.py)."""
    target = ComputeForDbt.of(translator.plan, compute)
    sources = {uid: source_key(ref) for uid, ref in translator.source_refs.items()}
    read_at = translator.plan.loaded_manifest().manifest.transforms.read_sources_at
    with source_versions_environment(read_at, context.instance, sources) as versions_file:
        with target.environment():
            invocation = dbt.cli(
                ["build", "--target", compute],
                context=context,
                in_process=target.runs_in_process(),
                release=target.release_in_process,
            )
        events = without_source_observations(invocation.stream(), translator.source_keys())
        yield from with_source_versions(events, versions_file, dbt_manifest or {}, sources)
    target.finish()
