"""The Hive Metastore's notification log as a change feed (plugins/change_feed.py).

Production metastores fill the log when their notification listener is on (Hive's
``DbNotificationListener`` in ``hive.metastore.[transactional.]event.listeners``): one event per
change, with the database and table it concerns and a JSON message built by Hive's
``MessageFactory``. Two Thrift calls of the Hive 2.3 API read it:

* ``get_current_notificationEventId``: the newest event id. A tick whose cursor holds that id
  is over after this one call.
* ``get_next_notification(lastEvent, maxEvents)``: the events after an id, ``page_size`` per call.

Events name what changed: ``CREATE_TABLE``, ``ALTER_TABLE`` (a rename names the new table in its
message's ``tableObjAfterJson``), ``DROP_TABLE``, ``ADD_PARTITION``, ``ALTER_PARTITION``,
``DROP_PARTITION`` and ``INSERT`` name one table; ``DROP_DATABASE`` a whole database. Anything
else (functions, indexes, a new empty database) changes no table.

When the log cannot say what changed, the caller scans everything: the log is empty (id 0: the
listener is off, so the metastore records nothing), the first event after the cursor's id is not
the next id (events expired, ``hive.metastore.event.db.listener.timetolive``, before they were
read; or an id repeated, HIVE-16886), the newest id is below the cursor's (the metastore's
database was replaced), or a rename's message cannot be read.
"""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, Any

from floe_dagster.core.errors import NotSupportedError
from floe_dagster.plugins.change_feed import ChangeFeed, FeedChanges, FeedUnavailable

if TYPE_CHECKING:
    from floe_dagster.metastores.hive import HiveMetastoreConnector

logger = logging.getLogger("floe_dagster.metastores.hive")

TABLE_EVENTS = frozenset(
    {
        "CREATE_TABLE",
        "ALTER_TABLE",
        "DROP_TABLE",
        "ADD_PARTITION",
        "ALTER_PARTITION",
        "DROP_PARTITION",
        "INSERT",
    }
)
NAMESPACE_EVENTS = frozenset({"DROP_DATABASE"})

__all__ = ["HiveNotificationFeed", "renamed_to"]


class HiveNotificationFeed(ChangeFeed):
    kind = "Hive notification log"

    def __init__(self, connector: HiveMetastoreConnector) -> None:
        self.connector = connector

    def _current(self) -> int:
        try:
            answer = self.connector._call("change_feed", "get_current_notificationEventId")
        except NotSupportedError as exc:
            raise FeedUnavailable(f"the metastore has no notification log ({exc})") from None
        return int(answer.eventId)

    def position(self) -> str:
        current = self._current()
        if current == 0:
            raise FeedUnavailable(
                "the metastore's notification log is empty (id 0): its notification listener"
                " (DbNotificationListener in hive.metastore.event.listeners) is off"
            )
        return str(current)

    def changes_since(self, position: str, page_size: int) -> FeedChanges:
        from hive_metastore.ttypes import NotificationEventRequest

        last = int(position)
        current = self._current()
        if current == last:
            return FeedChanges(position=position)
        if current == 0:
            raise FeedUnavailable("the metastore's notification log is empty (id 0): its listener is off")
        if current < last:
            return FeedChanges(
                position=str(current),
                rescan=f"the notification log restarted (newest event {current} < the cursor's {last})",
            )
        changes = FeedChanges(position=position)
        expected = last + 1
        while last < current:
            request = NotificationEventRequest(lastEvent=last, maxEvents=page_size)
            answer = self.connector._call("change_feed", "get_next_notification", request)
            events = list(answer.events or [])
            if not events:  # the log's head is ahead, yet nothing after the cursor is left
                return FeedChanges(
                    position=str(current),
                    rescan=f"notification events {expected}..{current} expired before they were read",
                )
            for event in events:
                if event.eventId != expected:
                    return FeedChanges(
                        position=str(current),
                        rescan=(
                            f"notification events {expected}..{event.eventId - 1} expired before they"
                            " were read"
                        ),
                    )
                expected += 1
                last = event.eventId
                changes.events += 1
                reason = self._apply(event, changes)
                if reason is not None:
                    return FeedChanges(position=str(current), rescan=reason)
            if len(events) < page_size:
                break
        changes.position = str(last)
        return changes

    def _apply(self, event: Any, changes: FeedChanges) -> str | None:
        """Add what ``event`` names to ``changes``; the reason to rescan when it cannot tell."""
        kind = (event.eventType or "").upper()
        db = (event.dbName or "").lower()
        if kind in NAMESPACE_EVENTS and db:
            changes.namespaces.add(db)
        elif kind in TABLE_EVENTS and db and event.tableName:
            changes.tables.add((db, event.tableName.lower()))
            if kind == "ALTER_TABLE":
                after = renamed_to(event.message)
                if after is None:
                    return (
                        f"event {event.eventId} (ALTER_TABLE of {db}.{event.tableName}) has no"
                        " readable message"
                    )
                changes.tables.add(after)
        return None


def renamed_to(message: str | None) -> tuple[str, str] | None:
    """(database, table) after an ``ALTER_TABLE`` event, from Hive's JSON message
    (``tableObjAfterJson``: the Thrift table in Thrift's JSON protocol); None if unreadable."""
    from hive_metastore.ttypes import Table as ThriftTable
    from thrift.protocol.TJSONProtocol import TJSONProtocolFactory
    from thrift.TSerialization import deserialize

    try:
        document = json.loads(message or "")
        after = deserialize(ThriftTable(), document["tableObjAfterJson"].encode(), TJSONProtocolFactory())
    except Exception as exc:  # any malformed message: the caller rescans
        logger.debug("unreadable ALTER_TABLE message: %s", type(exc).__name__)
        return None
    if not after.dbName or not after.tableName:
        return None
    return after.dbName.lower(), after.tableName.lower()
