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
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from floe_dagster.defs.names import FRESHNESS_SENSOR

if TYPE_CHECKING:
    from dagster import AssetChecksDefinition, AssetKey, AssetSpec, FreshnessPolicy, SensorDefinition

    from floe_dagster.manifest.loader import LoadedManifest
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_PART = re.compile(r"(\d+(?:\.\d+)?)([smhdw])")
MAX_DURATION = timedelta(days=36500)  # a century: any longer window is a typo


def parse_duration(text: str) -> timedelta:
    """``36h`` -> 36 hours; raises ValueError (with the accepted form) on anything else."""
    compact = text.strip().replace(" ", "")
    if not compact or _PART.sub("", compact) != "":
        raise ValueError(
            f"'{text}' is not a duration; use <number><unit> parts with unit s, m, h, d or w"
            " (e.g. 36h, 1d12h, 90m)"
        )
    seconds = sum(float(n) * _UNITS[u] for n, u in _PART.findall(compact))
    if seconds <= 0:
        raise ValueError(f"'{text}' is not a positive duration")
    if seconds > MAX_DURATION.total_seconds():  # also inf: a number too long for a float
        raise ValueError(f"'{text}' is longer than the longest duration, {MAX_DURATION.days:,}d")
    return timedelta(seconds=seconds)


def check_window(fail_after: str | None, warn_after: str | None) -> None:
    """Both parse, and a warning comes before the failure (ValueError otherwise)."""
    fail = parse_duration(fail_after) if fail_after is not None else None
    warn = parse_duration(warn_after) if warn_after is not None else None
    if warn is not None and fail is None:
        raise ValueError("warn_after needs fail_after")
    if fail is not None and warn is not None and warn >= fail:
        raise ValueError(f"warn_after ({warn_after}) must be shorter than fail_after ({fail_after})")


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
    from floe_dagster.manifest.plan import rule_selector

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
        build_last_update_freshness_checks,
        build_sensor_for_freshness_checks,
    )

    by_window: dict[Window, list[AssetKey]] = defaultdict(list)
    for key, window in windows.items():
        by_window[window].append(key)
    checks: list[AssetChecksDefinition] = []
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


def windows_of_sources(
    loaded: LoadedManifest, metastore: str, specs: Iterable[AssetSpec]
) -> dict[AssetKey, Window]:
    """The window of each source asset of ``metastore`` that has one.

    The namespace comes from each spec's ``floe/table`` metadata (``<namespace>.<table>``), not
    from its key, which the manifest may map (``asset_key_prefix`` / ``asset_keys``).
    """
    from floe_dagster.defs.sources import TABLE_METADATA

    windows = {}
    for spec in specs:
        qualified = spec.metadata[TABLE_METADATA]
        namespace = str(getattr(qualified, "value", qualified)).rsplit(".", 1)[0]
        window = source_window(loaded, metastore, namespace)
        if window is not None:
            windows[spec.key] = window
    return windows
