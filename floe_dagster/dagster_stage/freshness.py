"""Freshness from the manifest: ``fail_after`` / ``warn_after`` windows -> Dagster freshness.

Where a window is declared (manifest/schema.py):

- ``metastores.<name>.freshness``: every table of the metastore, and, under ``namespaces``, per
  namespace glob (``raw``, ``sales_*``; the first matching pattern wins over the metastore's own);
- ``transforms.freshness``: a list of ``{select, exclude, fail_after, warn_after}`` rules over
  the dbt models (dbt selector syntax, like assignments; the first matching rule wins).

What it becomes:

- every such asset gets ``FreshnessPolicy.time_window(fail_window, warn_window)`` on its spec
  (shown in the UI; Dagster's freshness daemon evaluates it from materialisations, so for the
  dbt models);
- a metastore table is observed, never materialised: its freshness is a last-update freshness
  check per window (``build_last_update_freshness_checks``), which reads the observation's
  ``dagster/last_updated_timestamp`` metadata. The observation writes there the table's own
  last commit or DDL time (``TableStats.last_modified``), not the time of the observation, so
  a table nobody writes to goes stale however often it is observed. One sensor evaluates the
  checks (``floe_freshness_checks``).

Durations: ``<number><unit>`` parts, unit ``s``, ``m``, ``h``, ``d`` or ``w``: ``36h``,
``1d12h``, ``90m``. Dagster is imported only where a policy or check is built.
"""

from __future__ import annotations

import fnmatch
from collections import defaultdict
from collections.abc import Iterable, Mapping
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from floe_dagster.core.durations import parse_duration
from floe_dagster.dagster_stage.dagster_warnings import calling_on_purpose
from floe_dagster.dagster_stage.names import FRESHNESS_SENSOR
from floe_dagster.plan.selection import rule_selector

if TYPE_CHECKING:
    from dagster import AssetChecksDefinition, AssetKey, AssetSpec, FreshnessPolicy, SensorDefinition

    from floe_dagster.manifest.loader import LoadedManifest


Window = tuple[timedelta, timedelta | None]  # fail_after, warn_after


def window_of(entry: Any) -> Window | None:
    """The (fail, warn) window of a manifest freshness entry; None when it sets no fail_after."""
    if entry is None or entry.fail_after is None:
        return None
    warn = parse_duration(entry.warn_after) if entry.warn_after is not None else None
    return parse_duration(entry.fail_after), warn


def policy(window: Window | None) -> FreshnessPolicy | None:
    if window is None:
        return None
    from dagster import FreshnessPolicy

    return FreshnessPolicy.time_window(fail_window=window[0], warn_window=window[1])


def source_window(loaded: LoadedManifest, metastore: str, namespace: str) -> Window | None:
    """The window of one metastore table: its namespace's pattern, else the metastore's own."""
    freshness = loaded.manifest.metastores[metastore].freshness
    if freshness is None:
        return None
    for pattern, entry in freshness.namespaces.items():
        if fnmatch.fnmatchcase(namespace, pattern):
            return window_of(entry)
    return window_of(freshness)


def source_policy(loaded: LoadedManifest, metastore: str, namespace: str) -> FreshnessPolicy | None:
    return policy(source_window(loaded, metastore, namespace))


def transform_policies(loaded: LoadedManifest, dbt_manifest: Mapping[str, Any]) -> dict[str, FreshnessPolicy]:
    """dbt model unique_id -> its policy, from the first ``transforms.freshness`` rule selecting it."""
    rules = loaded.manifest.transforms.freshness
    if not rules:
        return {}

    select = rule_selector(dbt_manifest)
    policies: dict[str, FreshnessPolicy] = {}
    for rule in rules:
        rule_policy = policy(window_of(rule))
        if rule_policy is None:
            continue
        for unique_id in sorted(select(rule.select, rule.exclude or "")):
            if unique_id in dbt_manifest.get("nodes", {}):
                policies.setdefault(unique_id, rule_policy)
    return policies


def source_freshness_checks(
    windows: Mapping[AssetKey, Window], sensor_name: str = FRESHNESS_SENSOR
) -> tuple[list[AssetChecksDefinition], list[SensorDefinition]]:
    """Last-update freshness checks for observed tables (one check set per window) and their
    sensor, ``sensor_name`` (scoped by ``DefinitionNames.freshness_sensor`` in a component)."""
    if not windows:
        return [], []
    from dagster import (
        AssetCheckSeverity,
        SupersessionWarning,
        build_last_update_freshness_checks,
        build_sensor_for_freshness_checks,
    )

    by_window: dict[Window, list[AssetKey]] = defaultdict(list)
    for key, window in windows.items():
        by_window[window].append(key)
    checks: list[AssetChecksDefinition] = []
    # superseded by FreshnessPolicy, which judges materialisations only (see dagster_warnings.py)
    with calling_on_purpose(
        SupersessionWarning, "build_last_update_freshness_checks", "build_sensor_for_freshness_checks"
    ):
        for (fail, _warn), keys in sorted(by_window.items(), key=lambda item: item[0][0]):
            checks.extend(
                build_last_update_freshness_checks(
                    assets=sorted(keys, key=str),
                    lower_bound_delta=fail,
                    severity=AssetCheckSeverity.ERROR,
                )
            )
        sensor = build_sensor_for_freshness_checks(freshness_checks=checks, name=sensor_name)
    return checks, [sensor]


def windows_of_specs(specs: Iterable[AssetSpec]) -> dict[AssetKey, Window]:
    """The window of each source asset whose (translated) spec has a time-window policy.

    The source translator (dagster_stage/translator.py) gives each spec the manifest's window
    for its table's namespace by default; a translator that changes or drops it changes or
    drops the check with it.
    """
    windows: dict[AssetKey, Window] = {}
    for spec in specs:
        fail = getattr(spec.freshness_policy, "fail_window", None)
        if fail is None:
            continue
        warn = getattr(spec.freshness_policy, "warn_window", None)
        windows[spec.key] = (fail.to_timedelta(), warn.to_timedelta() if warn is not None else None)
    return windows
