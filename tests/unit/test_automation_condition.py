"""floe_dagster.automation on a tiny graph (no dbt, no metastore): what requests a model."""

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

from floe_dagster.automation import condition_for, on_upstream_data_version_change


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
