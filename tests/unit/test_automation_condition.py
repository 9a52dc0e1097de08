"""floe_dagster.dagster_stage.automation on a tiny graph (no dbt, no metastore): what requests a model."""

from __future__ import annotations

import pytest
from dagster import (
    AssetKey,
    AssetMaterialization,
    AutomationCondition,
    DagsterInstance,
    DataVersion,
    Definitions,
    asset,
    evaluate_automation_conditions,
    observable_source_asset,
)
from dagster._core.definitions.data_version import DATA_VERSION_TAG
from dagster._core.definitions.events import AssetObservation

from floe_dagster.dagster_stage.automation import condition_for, on_upstream_data_version_change


def graph(condition: AutomationCondition, source_condition: AutomationCondition | None) -> Definitions:
    @observable_source_asset(automation_condition=source_condition)
    def raw() -> DataVersion:
        return DataVersion("1")

    @asset(deps=[raw], automation_condition=condition)
    def stg() -> None: ...

    @asset(deps=[stg], automation_condition=condition)
    def mart() -> None: ...

    return Definitions(assets=[raw, stg, mart])


def observe(instance: DagsterInstance, version: str) -> None:
    instance.report_runless_asset_event(AssetObservation(AssetKey("raw"), tags={DATA_VERSION_TAG: version}))


def requested(result: object) -> set[str]:
    return {k for k in ("stg", "mart") if result.get_num_requested(AssetKey(k))}  # type: ignore[attr-defined]


def ticks(condition: AutomationCondition, source_condition: AutomationCondition | None) -> list[set[str]]:
    """Requests per tick: first, repeated version, stg ran, mart ran, new version."""
    defs = graph(condition, source_condition)
    instance = DagsterInstance.ephemeral()
    for key in ("stg", "mart"):
        instance.report_runless_asset_event(AssetMaterialization(key))
    observe(instance, "1")
    out = []
    result = evaluate_automation_conditions(defs=defs, instance=instance)
    out.append(requested(result))
    observe(instance, "1")
    result = evaluate_automation_conditions(defs=defs, instance=instance, cursor=result.cursor)
    out.append(requested(result))
    instance.report_runless_asset_event(AssetMaterialization("stg"))
    result = evaluate_automation_conditions(defs=defs, instance=instance, cursor=result.cursor)
    out.append(requested(result))
    instance.report_runless_asset_event(AssetMaterialization("mart"))  # the run that was requested
    result = evaluate_automation_conditions(defs=defs, instance=instance, cursor=result.cursor)
    out.append(requested(result))
    observe(instance, "2")
    result = evaluate_automation_conditions(defs=defs, instance=instance, cursor=result.cursor)
    out.append(requested(result))
    return out


@pytest.mark.parametrize("observed_by_automation", [False, True])
def test_only_a_new_version_or_a_materialised_parent_requests(observed_by_automation: bool) -> None:
    # a source that is itself observed by automation (requested every tick) must not drag its
    # downstream along when the observation will only repeat the version (dagster-io/dagster#29558)
    source_condition = ~AutomationCondition.in_progress() if observed_by_automation else None
    assert ticks(on_upstream_data_version_change(), source_condition) == [
        set(),  # the first evaluation only sets the cursor
        set(),  # an observation repeating version 1
        {"mart"},  # stg materialised on its own
        set(),  # mart materialised by the requested run: a leaf, nothing downstream
        {"stg", "mart"},  # version 2: the model and, in the same run, its downstream
    ]


def test_manifest_modes() -> None:
    assert condition_for("none") is None
    assert condition_for(None) is None
    assert condition_for("eager") == AutomationCondition.eager()
    assert condition_for("on_upstream_change") == on_upstream_data_version_change()


def reports_with(condition: AutomationCondition, versions: list[str | None]) -> list[bool]:
    """Whether ``stg`` is requested after each report on ``raw``, an external asset (an
    ``AssetSpec`` with no observe function: what a dbt source in no metastore becomes), whose
    materialisations another system reports with a data version (or none)."""
    from dagster import AssetSpec

    @asset(deps=["raw"], automation_condition=condition)
    def stg() -> None: ...

    defs = Definitions(assets=[AssetSpec("raw"), stg])
    instance = DagsterInstance.ephemeral()
    instance.report_runless_asset_event(AssetMaterialization("stg"))
    instance.report_runless_asset_event(AssetMaterialization("raw", tags={DATA_VERSION_TAG: "1"}))
    result = evaluate_automation_conditions(defs=defs, instance=instance)
    out = []
    for version in versions:
        tags = {DATA_VERSION_TAG: version} if version is not None else {}
        instance.report_runless_asset_event(AssetMaterialization("raw", tags=tags))
        result = evaluate_automation_conditions(defs=defs, instance=instance, cursor=result.cursor)
        out.append(bool(result.get_num_requested(AssetKey("stg"))))
    return out


def test_a_repeated_version_reported_for_an_external_source_requests_under_eager_only() -> None:
    # Why floe ships its own condition (Dagster 1.13): eager()'s newly_updated compares data
    # versions only for observable assets; for an external asset every reported event is an
    # update, so a loader that reports "done, same version" again runs everything downstream.
    assert reports_with(AutomationCondition.eager(), ["1"]) == [True]
    assert reports_with(on_upstream_data_version_change(), ["1"]) == [False]
    # a new version requests under both
    assert reports_with(AutomationCondition.eager(), ["2"]) == [True]
    assert reports_with(on_upstream_data_version_change(), ["1", "2"]) == [False, True]


def test_an_observation_without_a_data_version_counts_as_a_change_under_both() -> None:
    # Pinned, not wished for: Dagster compares the latest observation's version with the one
    # before, and None differs from "1". dagster-dbt's source-test observations carry none, so
    # defs/dbt_assets.py drops them (without_source_observations) before Dagster records them.
    for condition in (AutomationCondition.eager(), on_upstream_data_version_change()):
        defs = graph(condition, None)
        instance = DagsterInstance.ephemeral()
        for key in ("stg", "mart"):
            instance.report_runless_asset_event(AssetMaterialization(key))
        observe(instance, "1")
        result = evaluate_automation_conditions(defs=defs, instance=instance)
        instance.report_runless_asset_event(AssetObservation(AssetKey("raw")))  # no data version
        result = evaluate_automation_conditions(defs=defs, instance=instance, cursor=result.cursor)
        assert requested(result) == {"stg", "mart"}, condition.get_label()
