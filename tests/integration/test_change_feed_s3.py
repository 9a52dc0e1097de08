"""S3 bucket event notifications on an SQS queue as the S3 metastore's change feed (moto's server
serves S3, SQS and the notifications between them)."""

from __future__ import annotations

import io
import time
import uuid
from typing import Any

import pytest

from floe_dagster.dagster_stage.sensors import (
    decode_cursor,
    decode_feed_state,
    observe_changes,
    observe_through_feed,
)
from floe_dagster.manifest.schema import ChangeFeedOptions
from floe_dagster.metastores.s3 import S3MetastoreConnector
from floe_dagster.plugins.factory import connect_metastore
from floe_dagster.plugins.table_model import TableFilter
from tests.fixtures.moto_server import MotoServer, moto_bucket, moto_server

pytestmark = pytest.mark.server
__all__ = ["moto_bucket", "moto_server"]

OPTIONS = ChangeFeedOptions.model_validate({})
EVERYTHING = TableFilter()


def _parquet(rows: int) -> bytes:
    import pyarrow as pa
    import pyarrow.parquet as pq

    sink = io.BytesIO()
    pq.write_table(pa.table({"id": list(range(rows))}), sink)
    return sink.getvalue()


def _queue(server: MotoServer, bucket: str) -> str:
    sqs = server.client("sqs")
    url = str(sqs.create_queue(QueueName=f"floe-{uuid.uuid4().hex[:8]}")["QueueUrl"])
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    server.client("s3").put_bucket_notification_configuration(
        Bucket=bucket,
        NotificationConfiguration={
            "QueueConfigurations": [{"QueueArn": arn, "Events": ["s3:ObjectCreated:*", "s3:ObjectRemoved:*"]}]
        },
    )
    return url


def _connector(server: MotoServer, bucket: str, queue: str | None, **extra: Any) -> S3MetastoreConnector:
    options = {
        "bucket": bucket,
        "region": server.region,
        "endpoint": server.endpoint,
        "access_key_id": server.access_key_id,
        "secret_access_key": server.secret_access_key,
        "notification_queue_url": queue,
        **extra,
    }
    made = connect_metastore("s3feed", "s3", options, environ={})
    assert isinstance(made, S3MetastoreConnector)
    return made


def _events(result: Any) -> set[tuple[str, str]]:
    return {(e.asset_key.to_user_string(), e.tags["dagster/data_version"]) for e in result.events}


def _queued(server: MotoServer, queue: str) -> int:
    attributes = server.client("sqs").get_queue_attributes(
        QueueUrl=queue,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]) + int(
        attributes["ApproximateNumberOfMessagesNotVisible"]
    )


class _Ticks:
    """Sensor ticks through the queue, each checked against a full scan of the bucket at the same
    moment (same versions, same events). A tick returns (observation, feed, the feed's connector)."""

    def __init__(self, server: MotoServer, bucket: str, queue: str, **extra: Any) -> None:
        self.server, self.bucket, self.queue, self.extra = server, bucket, queue, extra
        self.feed_cursor: str | None = None
        self.scan_versions: dict[str, str] = {}

    def __call__(self) -> tuple[Any, Any, S3MetastoreConnector]:
        connector = _connector(self.server, self.bucket, self.queue, **self.extra)
        observed, feed, self.feed_cursor = observe_through_feed(
            connector, EVERYTHING, 100, "s3feed", self.feed_cursor, OPTIONS
        )
        scan = _connector(self.server, self.bucket, None, **self.extra)
        scanned = observe_changes(scan, EVERYTHING, 100, "s3feed", self.scan_versions)
        self.scan_versions = scanned.versions
        assert observed.versions == scanned.versions
        assert _events(observed) == _events(scanned)
        return observed, feed, connector


def test_a_tick_reads_the_queue_not_the_bucket_and_records_what_a_listing_would(
    moto_server: MotoServer, moto_bucket: str
) -> None:
    s3 = moto_server.client("s3")
    queue = _queue(moto_server, moto_bucket)
    for prefix in ("sales", "users", "clicks"):
        for part in range(2):
            s3.put_object(Bucket=moto_bucket, Key=f"{prefix}/part-{part}.parquet", Body=_parquet(3))

    tick = _Ticks(moto_server, moto_bucket, queue)

    first, feed, _ = tick()
    assert feed.mode == "scan" and len(first.events) == 3

    # new objects under two prefixes, one replaced, one removed: read from the queue, no listing
    s3.put_object(Bucket=moto_bucket, Key="sales/part-2.parquet", Body=_parquet(5))
    s3.put_object(Bucket=moto_bucket, Key="users/part-0.parquet", Body=_parquet(9))
    s3.delete_object(Bucket=moto_bucket, Key="clicks/part-1.parquet")
    s3.put_object(Bucket=moto_bucket, Key="orders/2024/part-0.parquet", Body=_parquet(2))
    s3.put_object(Bucket=moto_bucket, Key="notes/readme.txt", Body=b"not a table")
    changed, feed, connector = tick()
    assert feed.mode == "feed", feed.reason
    assert connector.call_counts["list_objects"] == 0
    assert {key for key, _ in _events(changed)} == {
        "s3feed/" + f"{connector.config.table_namespace}/{t}"
        for t in ("sales", "users", "clicks", "orders_2024")
    }
    # footers read: the new or replaced objects only (the others' are known by ETag)
    assert connector.call_counts["get_object_range"] == 3

    quiet, feed, connector = tick()
    assert feed.mode == "feed" and quiet.events == [] and connector.call_counts["list_objects"] == 0
    assert decode_cursor(tick.feed_cursor) == tick.scan_versions
    assert _queued(moto_server, queue) == 0  # the committed tick's messages were deleted


def test_a_crash_before_the_commit_redelivers_the_messages_never_loses_them(
    moto_server: MotoServer, moto_bucket: str
) -> None:
    s3 = moto_server.client("s3")
    queue = _queue(moto_server, moto_bucket)
    s3.put_object(Bucket=moto_bucket, Key="sales/part-0.parquet", Body=_parquet(3))
    quick = {"notification_visibility_timeout_s": 1}

    def tick(cursor: str | None) -> tuple[Any, Any, str]:
        connector = _connector(moto_server, moto_bucket, queue, **quick)
        return observe_through_feed(connector, EVERYTHING, 100, "s3feed", cursor, OPTIONS)

    _, first, committed = tick(None)
    assert first.mode == "scan"
    s3.put_object(Bucket=moto_bucket, Key="sales/part-1.parquet", Body=_parquet(4))

    crashed, feed, lost_cursor = tick(committed)  # this tick's cursor is never committed
    assert feed.mode == "feed" and len(crashed.events) == 1 and decode_feed_state(lost_cursor).acks
    assert _queued(moto_server, queue) >= 1  # not deleted: the cursor carrying them was not committed

    time.sleep(1.5)  # the visibility timeout passes: the queue delivers the messages again
    again, feed, committed = tick(committed)
    assert feed.mode == "feed" and _events(again) == _events(crashed)

    _, feed, committed = tick(committed)  # starts from the committed cursor: deletes them
    assert feed.mode == "feed" and feed.events == 0
    assert _queued(moto_server, queue) == 0


def test_without_a_queue_the_s3_metastore_lists_every_tick(moto_server: MotoServer, moto_bucket: str) -> None:
    moto_server.client("s3").put_object(Bucket=moto_bucket, Key="a/p.parquet", Body=_parquet(1))
    connector = _connector(moto_server, moto_bucket, None)
    assert connector.change_feed() is None
    _, tick, _ = observe_through_feed(connector, EVERYTHING, 100, "s3feed", None, OPTIONS)
    assert tick.mode == "scan" and tick.reason == "no change feed"


def test_a_delta_commit_arrives_through_the_queue_as_a_new_version_of_its_table(
    moto_server: MotoServer, moto_bucket: str
) -> None:
    """``file_type: delta``: the feed keeps the files of each table's ``_delta_log/`` as the
    listing does (it used to keep only keys with a Parquet extension, so a commit, a JSON file in
    the log, never reached the table)."""
    from tests.fixtures.format_tables import delta_append, moto_storage_options

    queue = _queue(moto_server, moto_bucket)
    uri = f"s3://{moto_bucket}/lake/sales"
    delta_append(uri, range(3), moto_storage_options(moto_server))

    tick = _Ticks(moto_server, moto_bucket, queue, file_type="delta")

    first, feed, _ = tick()
    assert feed.mode == "scan" and len(first.events) == 1
    delta_append(uri, range(3, 5), moto_storage_options(moto_server))
    changed, feed, connector = tick()
    assert feed.mode == "feed", feed.reason
    assert connector.call_counts["list_objects"] == 0
    (event,) = changed.events
    assert event.asset_key.path[-1] == "lake_sales"
    assert event.tags["dagster/data_version"] != first.events[0].tags["dagster/data_version"]
