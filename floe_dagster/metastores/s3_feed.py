"""S3 bucket event notifications on an SQS queue as the change feed of an ``s3`` metastore.

The bucket sends ``s3:ObjectCreated:*`` and ``s3:ObjectRemoved:*`` events to a queue
(``PutBucketNotificationConfiguration`` with a ``QueueConfiguration``); the metastore's
``notification_queue_url`` names it. A tick:

* receives every queued message (``ReceiveMessage``, 10 a call, no wait), keeps the records of
  keys under ``path_prefix`` with the file type's extension, and applies them in event-time
  order to the object index the cursor holds (key -> size and ETag: the event carries both, the
  same values a listing gives, so the data version is the one a full scan computes);
* names the tables (key prefixes) the events touched; only those are described, from the index:
  **no listing**, and only the new objects' footers are read (the others' are cached by ETag);
* returns the messages' receipt handles as acknowledgements: they are deleted
  (``DeleteMessageBatch``) by the next tick, which starts from the committed cursor. A crash
  before the commit leaves them in the queue; they are received again once their visibility
  timeout (``notification_visibility_timeout_s``) passes, and applying an event twice changes
  nothing: re-delivered, never lost.

The position is the object index itself (compact JSON). Its first value comes from a listing
(the first tick's full scan, and every reconciliation: ``change_feed.reconcile_interval_seconds``),
which also catches anything the queue missed (notifications configured late, messages that
expired after the queue's retention period).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote_plus

from floe_dagster.metastores.object_tables import S3Object
from floe_dagster.plugins.change_feed import ChangeFeed, FeedChanges, FeedUnavailable

if TYPE_CHECKING:
    from floe_dagster.metastores.s3 import S3MetastoreConnector

logger = logging.getLogger("floe_dagster.metastores.s3")

__all__ = ["S3NotificationFeed", "decode_index", "encode_index"]

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def encode_index(objects: Sequence[S3Object]) -> str:
    return json.dumps({o.key: [o.size, o.etag] for o in objects}, separators=(",", ":"), sort_keys=True)


def decode_index(position: str) -> dict[str, S3Object] | None:
    try:
        document = json.loads(position)
    except ValueError:
        return None
    if not isinstance(document, dict):
        return None
    return {
        str(key): S3Object(key=str(key), size=int(value[0]), etag=str(value[1]), last_modified=EPOCH)
        for key, value in document.items()
        if isinstance(value, list) and len(value) == 2
    }


class S3NotificationFeed(ChangeFeed):
    kind = "S3 event notifications"

    def __init__(self, connector: S3MetastoreConnector) -> None:
        self.connector = connector
        self._sqs: Any = None

    @property
    def queue_url(self) -> str:
        url = self.connector.config.notification_queue_url
        if not url:
            raise FeedUnavailable(
                f"metastore '{self.connector.name}' has no notification_queue_url (S3 event"
                " notifications to SQS)"
            )
        return url

    def sqs(self) -> Any:
        if self._sqs is None:
            config = self.connector.config
            self._sqs = self.connector.credentials.client(
                "sqs", region=config.region, endpoint=config.sqs_endpoint or config.endpoint, config=None
            )
        return self._sqs

    def position(self) -> str:
        self.queue_url  # noqa: B018 - raises FeedUnavailable without a queue
        objects = self.connector.list_objects("change_feed")
        self.connector.seed(objects)  # the full scan that follows reuses this listing
        return encode_index(objects)

    def changes_since(self, position: str, page_size: int) -> FeedChanges:
        index = decode_index(position)
        if index is None:
            return FeedChanges(position=position, rescan="the cursor holds no object index")
        changes = FeedChanges(position=position)
        records: list[tuple[str, str, S3Object | None]] = []  # (event time, key, object or removal)
        while True:
            self.connector.count("receive_message")
            answer = self.sqs().receive_message(
                QueueUrl=self.queue_url,
                MaxNumberOfMessages=10,
                WaitTimeSeconds=0,
                VisibilityTimeout=self.connector.config.notification_visibility_timeout_s,
            )
            messages = answer.get("Messages") or []
            for message in messages:
                changes.acks.append(message["ReceiptHandle"])
                records += self._records(message.get("Body") or "")
            if not messages or len(changes.acks) >= page_size * 10:
                break
        prefix = self.connector.config.path_prefix
        for _, key, obj in sorted(records, key=lambda r: r[0]):
            # the listing's rule: a file of file_type, or of a Delta/Hudi table's log
            table = self.connector.table_of(key) if key.startswith(prefix) else ""
            if not table:
                continue
            changes.events += 1
            if obj is None:
                index.pop(key, None)
            else:
                index[key] = obj
            changes.tables.add((self.connector.config.table_namespace, table))
        self.connector.seed(list(index.values()))
        changes.position = encode_index(list(index.values()))
        return changes

    def _records(self, body: str) -> list[tuple[str, str, S3Object | None]]:
        try:
            document = json.loads(body)
        except ValueError:
            logger.warning("s3 metastore '%s': ignored a queue message that is not JSON", self.connector.name)
            return []
        found: list[tuple[str, str, S3Object | None]] = []
        for record in document.get("Records") or [] if isinstance(document, dict) else []:
            s3 = record.get("s3") or {}
            if (s3.get("bucket") or {}).get("name") != self.connector.config.bucket:
                continue
            item = s3.get("object") or {}
            key = unquote_plus(str(item.get("key", "")))
            when = str(record.get("eventTime", ""))
            if str(record.get("eventName", "")).startswith("ObjectRemoved"):
                found.append((when, key, None))
            elif str(record.get("eventName", "")).startswith("ObjectCreated"):
                modified = _parse_time(when)
                obj = S3Object(key, int(item.get("size", 0)), str(item.get("eTag", "")).strip('"'), modified)
                found.append((when, key, obj))
        return found

    def acknowledge(self, acks: Sequence[str]) -> None:
        """Delete the messages of a committed tick, 10 per call (their receipt handles)."""
        for start in range(0, len(acks), 10):
            batch = acks[start : start + 10]
            self.connector.count("delete_message_batch")
            self.sqs().delete_message_batch(
                QueueUrl=self.queue_url,
                Entries=[{"Id": str(i), "ReceiptHandle": handle} for i, handle in enumerate(batch)],
            )


def _parse_time(text: str) -> datetime:
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)
    except ValueError:
        return EPOCH
