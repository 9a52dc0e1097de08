"""One observation tick through a metastore's change feed, with the full scan as the safety net.

``feed_tick`` decides, from the feed state the sensor's cursor keeps (``FeedState``), between:

* **a feed tick**: the connector's change feed (plugins/change_feed.py) names the tables that
  changed since the cursor's position; only those are described, in batches of ``batch_size``
  per namespace (a table found gone was dropped or renamed away). When nothing changed this is
  the feed's one call (``get_current_notificationEventId`` for Hive);
* **a full scan** (``connector.scan``, what a tick without a feed does): when there is no
  position yet, every ``reconcile_interval_seconds`` (writers that bypass the metastore), when
  the feed is unavailable (notifications off, no queue) or when it cannot tell what changed
  (events expired before they were read). The feed's position is read *before* the scan, so
  changes made during the scan are read again by the next tick; describing a table twice gives
  the same data version, so that is harmless. A fallback's reason is logged once (at warning),
  not every tick: the cursor remembers it.

Acknowledgements (an S3 feed's queue messages) are returned with the tick and kept in the
cursor; the next tick, which can only start from the committed cursor, acknowledges them:
a crash before the commit re-delivers them, never loses them.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from floe_dagster.core.errors import FloeError, NotFoundError
from floe_dagster.manifest.schema import ChangeFeedOptions
from floe_dagster.plugins.change_feed import ChangeFeed, FeedChanges, FeedUnavailable
from floe_dagster.plugins.metastore import MetastoreConnector
from floe_dagster.plugins.table_model import Table, TableFilter

logger = logging.getLogger("floe_dagster.change_feeds")

__all__ = ["FeedState", "FeedTick", "feed_tick"]


@dataclass
class FeedState:
    """What a sensor cursor keeps for the feed besides the data versions."""

    position: str | None = None
    reconciled_at: float | None = None  # epoch seconds of the last full scan
    acks: list[str] = field(default_factory=list)  # to acknowledge once this state is committed
    fallback: str | None = None  # the last fallback reason logged (logged once)

    def to_json(self) -> dict[str, Any]:
        document: dict[str, Any] = {"p": self.position, "r": self.reconciled_at}
        if self.acks:
            document["a"] = list(self.acks)
        if self.fallback:
            document["l"] = self.fallback
        return document

    @classmethod
    def from_json(cls, document: object) -> FeedState:
        if not isinstance(document, dict):
            return cls()
        position = document.get("p")
        reconciled = document.get("r")
        acks = document.get("a")
        fallback = document.get("l")
        return cls(
            position=str(position) if position is not None else None,
            reconciled_at=float(reconciled) if isinstance(reconciled, int | float) else None,
            acks=[str(a) for a in acks] if isinstance(acks, list) else [],
            fallback=str(fallback) if fallback else None,
        )


@dataclass
class FeedTick:
    """What a tick found: the tables it described and those it found gone."""

    mode: Literal["feed", "scan"]
    reason: str  # why a scan (empty for a feed tick)
    state: FeedState
    tables: list[Table] = field(default_factory=list)  # described this tick (every table for a scan)
    gone: set[tuple[str, str]] = field(default_factory=set)  # (namespace, table) no longer there
    gone_namespaces: set[str] = field(default_factory=set)
    events: int = 0
    problems: list[FloeError] = field(default_factory=list)


def feed_tick(
    connector: MetastoreConnector,
    table_filter: TableFilter,
    batch_size: int,
    state: FeedState,
    options: ChangeFeedOptions,
    now: Callable[[], float] = time.time,
) -> FeedTick:
    """One tick: through the change feed when it can tell what changed, else a full scan."""
    feed = connector.change_feed() if options.enabled else None
    if feed is None:
        reason = "change feed disabled in the manifest" if options.enabled is False else "no change feed"
        return _scan(connector, table_filter, batch_size, FeedState(), reason)
    if state.acks:
        feed.acknowledge(state.acks)  # the cursor that carried them was committed
    started = now()
    due = state.reconciled_at is None or started - state.reconciled_at >= options.reconcile_interval_seconds
    if state.position is None or due:
        why = "first tick" if state.position is None else "periodic reconciliation"
        return _scan_from_head(connector, feed, table_filter, batch_size, state, why, started)
    try:
        changes = feed.changes_since(state.position, options.page_size)
    except FeedUnavailable as exc:
        return _fallback(connector, table_filter, batch_size, state, str(exc), None, started)
    if changes.rescan is not None:
        return _fallback(connector, table_filter, batch_size, state, changes.rescan, changes, started)
    return _describe_changes(connector, feed, table_filter, batch_size, state, changes)


def _scan(
    connector: MetastoreConnector,
    table_filter: TableFilter,
    batch_size: int,
    state: FeedState,
    reason: str,
) -> FeedTick:
    tables = list(connector.scan(table_filter, batch_size=batch_size))
    return FeedTick("scan", reason, state, tables, problems=list(connector.scan_problems))


def _scan_from_head(
    connector: MetastoreConnector,
    feed: ChangeFeed,
    table_filter: TableFilter,
    batch_size: int,
    state: FeedState,
    why: str,
    started: float,
) -> FeedTick:
    try:
        position = feed.position()  # before the scan: changes during it are read next tick
    except FeedUnavailable as exc:
        return _fallback(connector, table_filter, batch_size, state, str(exc), None, started)
    except FloeError as exc:
        if not exc.retryable:
            raise
        # the metastore did not answer: the scan says so (or, if it answers now, the next tick
        # reads the position again), like a tick without a feed
        logger.info("metastore '%s': %s unreadable (%s); scanning", connector.name, feed.kind, exc)
        return _scan(connector, table_filter, batch_size, FeedState(fallback=state.fallback), why)
    logger.info("metastore '%s': full scan (%s); %s at %s", connector.name, why, feed.kind, position)
    return _scan(
        connector,
        table_filter,
        batch_size,
        FeedState(position=position, reconciled_at=started, fallback=state.fallback),
        why,
    )


def _fallback(
    connector: MetastoreConnector,
    table_filter: TableFilter,
    batch_size: int,
    state: FeedState,
    reason: str,
    changes: FeedChanges | None,
    started: float,
) -> FeedTick:
    """A full scan because the feed cannot tell what changed; the reason is logged once."""
    if state.fallback != reason:
        logger.warning(
            "metastore '%s': %s cannot tell what changed (%s); observing by full scans until it can",
            connector.name,
            "the change feed",
            reason,
        )
    position = None
    if changes is not None:  # the feed works, it lost events: continue after the scan from its head
        position = changes.position
    tick = _scan(
        connector,
        table_filter,
        batch_size,
        FeedState(position=position, reconciled_at=started if position else None, fallback=reason),
        reason,
    )
    if changes is not None:
        tick.state.acks = list(changes.acks)
    return tick


def _describe_changes(
    connector: MetastoreConnector,
    feed: ChangeFeed,
    table_filter: TableFilter,
    batch_size: int,
    state: FeedState,
    changes: FeedChanges,
) -> FeedTick:
    """Describe only the tables the feed named, ``batch_size`` per batched call and namespace."""
    if state.fallback is not None:
        logger.info("metastore '%s': %s works again; observing what changed", connector.name, feed.kind)
    tick = FeedTick(
        "feed",
        "",
        FeedState(position=changes.position, reconciled_at=state.reconciled_at, acks=list(changes.acks)),
        gone_namespaces={ns for ns in changes.namespaces if table_filter.may_match_namespace(ns)},
        events=changes.events,
    )
    # a dropped namespace's tables are gone, unless it was created again since (one listing)
    existing = set(connector.list_namespaces()) if tick.gone_namespaces else set()
    by_namespace: dict[str, list[str]] = defaultdict(list)
    for namespace, name in sorted(changes.tables):
        if namespace in tick.gone_namespaces and namespace not in existing:
            continue
        if table_filter.may_match_namespace(namespace) and table_filter.matches(namespace, name):
            by_namespace[namespace].append(name)
    for namespace, names in by_namespace.items():
        for start in range(0, len(names), batch_size):
            chunk = names[start : start + batch_size]
            for name, result in zip(chunk, connector.get_tables_or_errors(namespace, chunk), strict=True):
                if isinstance(result, Table):
                    tick.tables.append(result)
                    continue
                tick.gone.add((namespace, name))
                if not isinstance(result, NotFoundError):  # a full scan skips it too
                    logger.warning("metastore '%s': skipped a table: %s", connector.name, result)
                    tick.problems.append(result)
    return tick


def merge_versions(
    previous: Mapping[str, str], tick: FeedTick, qualified: Callable[[str, str], str]
) -> dict[str, str]:
    """``previous`` without the tables ``tick`` found gone (for a feed tick; a scan starts empty)."""
    if tick.mode == "scan":
        return {}
    gone = {qualified(ns, name) for ns, name in tick.gone}
    prefixes = tuple(f"{ns}." for ns in tick.gone_namespaces)
    return {k: v for k, v in previous.items() if k not in gone and not (prefixes and k.startswith(prefixes))}
