"""Declarative automation that runs a dbt model only on a real upstream change.

``on_upstream_data_version_change()`` is ``AutomationCondition.eager()`` with its trigger split
by the kind of dependency:

- an upstream **source** (a metastore table, or an external asset such as a dbt source no
  metastore lists) counts only when its *data version* changed since the previous evaluation
  (``data_version_changed``): an observation or a reported materialisation that repeats the
  version seen before (the sensor's full pass, the "Observe" button, a loader reporting "done"
  with nothing new) requests nothing (dagster-io/dagster#28063, #22850). In Dagster 1.13
  ``eager()`` already compares versions for *observable* sources, but for an external asset
  it counts every reported event as an update (tests/unit/test_automation_condition.py shows
  the difference); an event with no data version counts as a change under both;
- an upstream **materialisable asset** (another dbt model) counts when it was materialised
  since the previous evaluation (``newly_updated``), except by a run that also targets this
  asset, or when it will be requested on this same evaluation (so a change runs the whole
  downstream chain in one run).

The rest is eager's bookkeeping: the trigger is remembered until the asset is requested or
materialised (``since_last_handled``), and nothing is requested while a dependency is missing
or in progress, or while the asset itself is in progress. The manifest sets it on every dbt
transform with ``transforms.automation: on_upstream_change``.
"""

from __future__ import annotations

from typing import Any, Literal

from dagster import AssetSelection, AutomationCondition

AutomationMode = Literal["on_upstream_change", "eager", "none"]

LABEL = "on_upstream_data_version_change"


__all__ = [
    "any_model_updated",
    "any_source_data_version_changed",
    "condition_for",
    "observable_sources",
    "on_upstream_data_version_change",
]


def observable_sources() -> AssetSelection:
    """Every asset that can be observed but not materialised (the metastore tables)."""
    everything = AssetSelection.all(include_sources=True)
    return everything - everything.materializable()


def any_source_data_version_changed() -> AutomationCondition[Any]:
    """True when an upstream observable source recorded a data version it did not have before."""
    return (
        AutomationCondition.any_deps_match(AutomationCondition.data_version_changed())
        .allow(observable_sources())
        .with_label("any_source_data_version_changed")
    )


def any_model_updated() -> AutomationCondition[Any]:
    """True when an upstream materialisable asset was materialised, or will be on this tick."""
    return (
        AutomationCondition.any_deps_match(
            (AutomationCondition.newly_updated() & ~AutomationCondition.executed_with_root_target())
            | AutomationCondition.will_be_requested()
        )
        .ignore(observable_sources())
        .with_label("any_model_updated")
    )


def on_upstream_data_version_change() -> AutomationCondition[Any]:
    """Request the asset when an upstream source's data version changed or an upstream model
    was materialised; never on an observation that repeats the same version."""
    return (
        AutomationCondition.in_latest_time_window()
        & (any_source_data_version_changed() | any_model_updated()).since_last_handled()
        & ~AutomationCondition.any_deps_missing()
        & ~AutomationCondition.any_deps_in_progress()
        & ~AutomationCondition.in_progress()
    ).with_label(LABEL)


def condition_for(mode: AutomationMode | None) -> AutomationCondition[Any] | None:
    """The automation condition a manifest's ``transforms.automation`` names (None: no automation)."""
    if mode == "on_upstream_change":
        return on_upstream_data_version_change()
    if mode == "eager":
        return AutomationCondition.eager()
    return None
