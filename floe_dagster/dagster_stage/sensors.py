"""One observation sensor per metastore: data versions recorded without launching a run.

Each tick lists the metastore in batches (``MetastoreConnector.scan``: one namespace listing,
one table listing per namespace, one batched get per ``batch_size`` tables), compares every
table's data version with the sensor's cursor, and returns ``SensorResult(asset_events=...)``
with one ``AssetObservation`` per table whose version changed. The daemon records those
observations; each carries the ``dagster/data_version`` tag exactly as an observation run
would, so declarative automation sees the new version. A table whose version did not change
is not reported at all, so a repeated tick never looks like new data.

The cursor is compact JSON: ``{"v": 1, "t": {"<namespace>.<table>": "<digest of version>"}}``,
plus ``"f"``: the change feed's state (position, last reconciliation, acknowledgements).
The observable source asset's "Observe" button stays available for a manual full pass.

Change feeds (docs/change-feeds.md): when the metastore's connector declares one and the
manifest's ``change_feed.enabled`` is on (the default), a tick asks the feed what changed since
the cursor's position and describes only those tables (``metastores/feed_tick.py``); a full scan
runs on the first tick, every ``change_feed.reconcile_interval_seconds``, and whenever the feed
cannot tell (logged once). Both record the same observations.

A tick whose listing finds tables the definitions do not have yet, or a metastore the defs state
has no current listing of (it could not be listed when the code location loaded), writes its
listing into the defs state (``state.record_listing``): the tables become source assets on the
next code-location load without ``floe refresh``. A failing tick raises a ``MetastoreError``
that keeps the provider, operation and retryable tags of the cause.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from dagster import (
    AssetKey,
    AssetObservation,
    DefaultSensorStatus,
    SensorDefinition,
    SensorEvaluationContext,
    SensorResult,
    sensor,
)

from floe_dagster.core.compat import observation_data_version_tags
from floe_dagster.core.errors import FloeError, MetastoreError
from floe_dagster.dagster_stage.names import UNSCOPED, DefinitionNames
from floe_dagster.dagster_stage.sources import source_asset_key, table_metadata
from floe_dagster.dagster_stage.translator import TranslatedSources
from floe_dagster.manifest.loader import LoadedManifest
from floe_dagster.manifest.schema import ChangeFeedOptions
from floe_dagster.metastores.feed_tick import FeedState, FeedTick, feed_tick, merge_versions
from floe_dagster.metastores.state import (
    TableRecord,
    default_state_path,
    has_current_listing,
    known_partition_count,
    read_state,
    record_listing,
    table_record,
    unreachable_message,
)
from floe_dagster.plan.source_refs import SourceKeys
from floe_dagster.plugins.metastore import MetastoreConnector
from floe_dagster.plugins.table_model import Table, TableFilter

CURSOR_VERSION = 1


def sensor_name(metastore: str) -> str:
    """The unscoped name of a metastore's sensor (``build_definitions``'; see defs/names.py)."""
    return UNSCOPED.observation_sensor(metastore)


def version_digest(version: str) -> str:
    """A short, stable stand-in for a data version in the cursor (bounded whatever the version)."""
    return hashlib.blake2b(version.encode(), digest_size=8).hexdigest()


def encode_cursor(versions: Mapping[str, str], feed: FeedState | None = None) -> str:
    document: dict[str, object] = {"v": CURSOR_VERSION, "t": dict(versions)}
    if feed is not None:
        document["f"] = feed.to_json()
    return json.dumps(document, separators=(",", ":"), sort_keys=True)


def decode_feed_state(cursor: str | None) -> FeedState:
    """The change feed's state a cursor holds (none in an empty, foreign or older cursor)."""
    try:
        document = json.loads(cursor) if cursor else None
    except ValueError:
        return FeedState()
    if not isinstance(document, dict) or document.get("v") != CURSOR_VERSION:
        return FeedState()
    return FeedState.from_json(document.get("f"))


def decode_cursor(cursor: str | None) -> dict[str, str]:
    """The versions a cursor holds; an empty, foreign or older cursor holds none (report all)."""
    if not cursor:
        return {}
    try:
        document = json.loads(cursor)
    except ValueError:
        return {}
    if not isinstance(document, dict) or document.get("v") != CURSOR_VERSION:
        return {}
    tables = document.get("t")
    return {str(k): str(v) for k, v in tables.items()} if isinstance(tables, dict) else {}


def observation_tags(data_version: str) -> dict[str, str]:
    """The tags an observation run writes for a data version (what automation reads)."""
    return observation_data_version_tags(data_version)


@dataclass
class ObservationPass:
    """One listing of a metastore, compared with the previous versions."""

    events: list[AssetObservation] = field(default_factory=list)
    versions: dict[str, str] = field(default_factory=dict)  # namespace.table -> version digest
    listed: int = 0
    unknown: list[str] = field(default_factory=list)  # in the metastore, not in the definitions
    records: list[TableRecord] = field(default_factory=list)  # the listing, as the defs state keeps it


def observe_changes(
    connector: MetastoreConnector,
    table_filter: TableFilter,
    batch_size: int,
    metastore: str,
    previous: Mapping[str, str],
    known_keys: Collection[AssetKey] | None = None,
    keys: SourceKeys | Mapping[tuple[str, str], AssetKey] | None = None,
) -> ObservationPass:
    """Observations for the tables whose version differs from ``previous`` (all, when empty).

    ``keys``: each table's key, (namespace, table) -> the key its translated spec has (a table
    not in it is unknown), or the manifest's asset key mapping of the metastore (default keys
    without it).
    """
    tables = connector.scan(table_filter, batch_size=batch_size)
    return compare_versions(tables, metastore, previous, {}, known_keys, keys)


def compare_versions(
    tables: Iterable[Table],
    metastore: str,
    previous: Mapping[str, str],
    base: Mapping[str, str],
    known_keys: Collection[AssetKey] | None,
    keys: SourceKeys | Mapping[tuple[str, str], AssetKey] | None,
) -> ObservationPass:
    """Observations for ``tables`` whose version differs from ``previous``; the pass's versions
    are ``base`` (the versions kept from before: none for a full scan) updated with ``tables``."""
    result = ObservationPass(versions=dict(base))
    for table in tables:
        result.listed += 1
        result.records.append(table_record(table, known_partition_count(table)))
        if isinstance(keys, Mapping):
            key = keys.get((table.namespace, table.name))
        else:
            key = source_asset_key(metastore, table.namespace, table.name, keys)
        if key is None or (known_keys is not None and key not in known_keys):
            result.unknown.append(table.qualified_name)
            result.versions.pop(table.qualified_name, None)
            continue
        digest = version_digest(table.data_version)
        result.versions[table.qualified_name] = digest
        if previous.get(table.qualified_name) != digest:
            result.events.append(
                AssetObservation(
                    asset_key=key,
                    tags=observation_tags(table.data_version),
                    metadata=table_metadata(table),
                )
            )
    return result


def observe_feed_tick(
    tick: FeedTick,
    metastore: str,
    previous: Mapping[str, str],
    known_keys: Collection[AssetKey] | None = None,
    keys: SourceKeys | Mapping[tuple[str, str], AssetKey] | None = None,
) -> ObservationPass:
    """The observations of one ``feed_tick``: the same a full scan would record (same keys and
    data versions), computed from the tables the tick described."""
    base = merge_versions(previous, tick, lambda namespace, name: f"{namespace}.{name}")
    return compare_versions(tick.tables, metastore, previous, base, known_keys, keys)


def observe_through_feed(
    connector: MetastoreConnector,
    table_filter: TableFilter,
    batch_size: int,
    metastore: str,
    cursor: str | None,
    options: ChangeFeedOptions,
    known_keys: Collection[AssetKey] | None = None,
    keys: SourceKeys | Mapping[tuple[str, str], AssetKey] | None = None,
) -> tuple[ObservationPass, FeedTick, str]:
    """One sensor tick from its cursor: (observations, the tick, the new cursor)."""
    tick = feed_tick(connector, table_filter, batch_size, decode_feed_state(cursor), options)
    observed = observe_feed_tick(tick, metastore, decode_cursor(cursor), known_keys, keys)
    return observed, tick, encode_cursor(observed.versions, tick.state)


def listing_is_news(loaded: LoadedManifest, metastore: str, observed: ObservationPass, path: Path) -> bool:
    """The defs state lacks a current listing of ``metastore``, or a table this pass found."""
    state = read_state(path)
    if not has_current_listing(loaded, metastore, state):
        return True
    assert state is not None
    in_state = {f"{r['namespace']}.{r['name']}" for r in state.tables(metastore)}
    return any(name not in in_state for name in observed.unknown)


def listing_after(
    loaded: LoadedManifest, metastore: str, observed: ObservationPass, tick: FeedTick, path: Path
) -> list[TableRecord]:
    """The metastore's whole listing after ``tick``: a scan's records, or the defs state's records
    with the feed tick's described tables replaced and its gone tables removed."""
    if tick.mode == "scan":
        return observed.records
    state = read_state(path)
    replaced = {(r["namespace"], r["name"]) for r in observed.records} | tick.gone
    kept = [
        r
        for r in (state.tables(metastore) if state is not None else [])
        if (r["namespace"], r["name"]) not in replaced and r["namespace"] not in tick.gone_namespaces
    ]
    return sorted([*kept, *observed.records], key=lambda r: (r["namespace"], r["name"]))


def observation_sensor(
    loaded: LoadedManifest,
    metastore: str,
    asset_keys: Iterable[AssetKey],
    names: DefinitionNames = UNSCOPED,
    translated: TranslatedSources | None = None,
) -> SensorDefinition:
    """The sensor that records changed data versions of ``metastore``'s source assets.

    ``translated``: the metastore's translated specs (dagster_stage/translator.py), whose keys
    the observations carry; without them, the manifest's keys.
    """
    entry = loaded.manifest.metastores[metastore]
    resource_key = names.metastore_resource(metastore)
    known = frozenset(asset_keys)
    keys: SourceKeys | Mapping[tuple[str, str], AssetKey] = (
        SourceKeys.of(loaded, metastore) if translated is None else translated.keys_by_table
    )
    default_path = default_state_path(loaded)

    @sensor(
        name=names.observation_sensor(metastore),
        minimum_interval_seconds=entry.observe_interval_seconds,
        required_resource_keys={resource_key},
        default_status=DefaultSensorStatus.RUNNING,
        description=(
            f"Lists metastore '{metastore}' in batches every {entry.observe_interval_seconds} s and"
            " records an observation (with its data version) for each table whose version changed."
            " Launches no run."
        ),
    )
    def observe_metastore(context: SensorEvaluationContext) -> SensorResult:
        resource = getattr(context.resources, resource_key)
        try:
            observed, tick, cursor = observe_through_feed(
                resource.connector(),
                resource.table_filter(),
                resource.batch_size(),
                metastore,
                context.cursor,
                entry.change_feed,
                known,
                keys,
            )
        except FloeError as exc:
            # The tick fails with this message and keeps its cursor: the next tick tries again.
            raise MetastoreError(
                unreachable_message(metastore, exc),
                provider=exc.provider,
                operation=exc.operation,
                retryable=exc.retryable,
            ) from exc
        how = "full scan" if tick.mode == "scan" else f"change feed, {tick.events} event(s)"
        # a feed tick describes only what changed; the metastore still has every table it knows
        total = observed.listed if tick.mode == "scan" else len(observed.versions) + len(observed.unknown)
        context.log.info(
            f"floe: {len(observed.events)} of {total} table(s) of metastore"
            f" '{metastore}' changed data version ({how}, {observed.listed} described)"
        )
        if listing_is_news(loaded, metastore, observed, default_path):
            records = listing_after(loaded, metastore, observed, tick, default_path)
            path = record_listing(loaded, metastore, records, default_path)
            context.log.info(
                f"floe: wrote the listing of metastore '{metastore}' ({len(observed.records)} table(s))"
                f" to the defs state {path}"
            )
        if observed.unknown:
            context.log.warning(
                f"floe: {len(observed.unknown)} table(s) of metastore '{metastore}' are not source"
                f" assets yet (e.g. {observed.unknown[0]}); they are in the defs state now and appear"
                " when the code location reloads"
            )
        # No run is ever requested, so Dagster records the tick as skipped whatever it returns;
        # the reason says what the tick did (without one, the daemon logs "Sensor function
        # returned an empty result", even after recording observations).
        return SensorResult(
            asset_events=observed.events,
            cursor=cursor,
            skip_reason=tick_summary(metastore, len(observed.events), total),
        )

    return observe_metastore


def tick_summary(metastore: str, changed: int, listed: int) -> str:
    """What an observation tick did, as its skip reason (observations launch no run)."""
    if changed:
        return (
            f"recorded {changed} observation(s): {changed} of {listed} table(s) of metastore"
            f" '{metastore}' changed data version (observations launch no run)"
        )
    return f"none of the {listed} table(s) of metastore '{metastore}' changed data version"
