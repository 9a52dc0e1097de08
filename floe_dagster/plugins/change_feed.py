"""The change-feed contract: what changed in a metastore since a position, without a full scan.

A metastore connector may declare a change feed (``MetastoreConnector.change_feed()``, and
``Capability.CHANGE_FEED``). The observation sensor then asks it, each tick, for the tables
that changed since the position its cursor holds, and re-describes only those; a full scan
stays the safety net (see ``metastores/feed_tick.py`` and docs/change-feeds.md).

Positions are opaque strings the feed gives and takes back (a Hive notification event id; the
S3 feed has none: its queue holds what was not acknowledged yet). ``acknowledge`` is called
with a tick's ``acks`` only after the observation that used them was committed (the next tick
finds them in the committed cursor): a crash in between re-delivers, never loses.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from dataclasses import dataclass, field

__all__ = ["ChangeFeed", "FeedChanges", "FeedUnavailable"]


@dataclass
class FeedChanges:
    """What changed since a position.

    ``tables``: (namespace, table) pairs to describe again (created, altered, renamed to or from,
    partitions added, altered or dropped, data inserted, dropped: a table that is gone is found
    gone when it is described). ``namespaces``: namespaces dropped or emptied as a whole.
    ``rescan``: the changes cannot be known from the feed (events expired before they were read,
    the log was reset): the caller scans everything, and says why.
    """

    position: str
    tables: set[tuple[str, str]] = field(default_factory=set)
    namespaces: set[str] = field(default_factory=set)
    events: int = 0
    acks: list[str] = field(default_factory=list)
    rescan: str | None = None


class FeedUnavailable(Exception):
    """The metastore has no usable change feed now (notifications off, no queue); a full scan it is."""


class ChangeFeed(abc.ABC):
    """One metastore's change feed."""

    kind: str = "change feed"  # what the feed is, for messages ("Hive notification log", ...)

    @abc.abstractmethod
    def position(self) -> str:
        """The current position (the feed's head), read BEFORE a full scan so that changes made
        during the scan are read again by the next tick. ``FeedUnavailable`` when there is none."""

    @abc.abstractmethod
    def changes_since(self, position: str, page_size: int) -> FeedChanges:
        """What changed after ``position``; ``FeedUnavailable`` when the feed went away."""

    def acknowledge(self, acks: Sequence[str]) -> None:  # noqa: B027 - optional hook
        """Forget ``acks`` (a queue deletes its messages): called once they are committed."""
