"""What does an observation tick cost through a change feed, against a full scan, in one run?

Usage: .venv/bin/python benchmarks/change_feeds.py [--tables 10000] [--databases 20] [--batch 500]
       [--pages 1000] [--changes 10,100,1000] [--rounds 3] [--objects 10000] [--prefixes 100]
       [--skip-naive] [--skip-s3] [--quick]

Hive Metastore (a real Hive 2.3 metastore from the pyspark jars whose notification log is filled
as production metastores fill it: tests/fixtures/hms/FloeNotificationListener.java):

  seeding  --databases databases holding --tables unpartitioned Parquet tables
           (``observe_scale.seed_hms``: Hive 2.3 has no batched create_table, so the creates are
           spread over 4 parallel Thrift connections); timed apart, not compared;
  full     a tick of the observation sensor from an empty cursor (``observe_through_feed``): the
           feed's position, then ``HiveMetastoreConnector.scan`` in batches of --batch (what
           every tick costs without a feed);
  naive    the listing, then one ``get_table`` per table (--skip-naive leaves it out);
  no-change  a tick when nothing changed: target <= 2 calls, >= 100x faster than the full scan.
           These three are warmed up once, then run in --rounds alternating rounds (the order
           reversed every other round; ``_common.alternate``), and the full scan's and the
           no-change tick's versions must be equal each round (else exit 3);
  k changed  for each k of --changes: k tables get a new ``numRows`` (alter_table, as a load's
           statistics update does), then one tick; target: calls <= 2 + ceil(k / batch) + event
           pages (ceil(k / --pages)); the changed tables are consecutive, so at most two
           databases hold them (``get_table_objects_by_name`` is per database).

After the last tick the feed's versions are compared with a full scan's (same keys, same data
versions; exit 3 if not).

S3 (moto's server: S3, SQS and the notifications between them): --objects small Parquet objects
under --prefixes prefixes, the bucket's ObjectCreated/ObjectRemoved notifications configured to
an SQS queue after seeding; the first tick lists and reads every footer; then 10 new objects
and one tick: target 0 listings, 10 footers read.

Every figure is printed with the load average (2 shared cores here): ratios, never asserted.
"""

from __future__ import annotations

import argparse
import io
import math
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from _common import (
    Mismatch,
    Sample,
    alternate,
    connect_metastore,
    print_load,
    print_summary,
    require_equal,
    table_filter,
)
from observe_scale import SERVER_JVM_FLAGS, _client, seed_hms


def _feed_tick(uri: str, batch: int, pages: int, cursor: str | None) -> tuple[float, Any, Any, str, Any]:
    from floe_dagster.dagster_stage.sensors import observe_through_feed
    from floe_dagster.manifest.schema import ChangeFeedOptions

    options = ChangeFeedOptions.model_validate({"page_size": pages})
    connector: Any = connect_metastore("bench", "hive", {"uri": uri, "batch_size": batch, "pool_size": 4})
    started = time.perf_counter()
    observed, tick, new_cursor = observe_through_feed(
        connector, table_filter("cf_*"), batch, "hms", cursor, options
    )
    wall = time.perf_counter() - started
    connector.close()
    return wall, observed, tick, new_cursor, connector


def _naive(uri: str) -> tuple[float, int]:
    connector: Any = connect_metastore("bench", "hive", {"uri": uri, "pool_size": 1})
    started = time.perf_counter()
    count = 0
    for namespace in connector.list_namespaces():
        if namespace.startswith("cf_"):
            for name in connector.list_tables(namespace):
                connector.get_table(namespace, name)
                count += 1
    wall = time.perf_counter() - started
    connector.close()
    return wall, connector.api_calls


def _alter(uri: str, tables: list[tuple[str, str]], round_: int) -> None:
    def change(chunk: list[tuple[str, str]]) -> None:
        client, transport = _client(uri)
        try:
            for db, name in chunk:
                table = client.get_table(db, name)
                table.parameters["numRows"] = str(1000 + round_)
                client.alter_table(db, name, table)
        finally:
            transport.close()

    chunks = [tables[i::4] for i in range(4)]
    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(change, chunks))


def hms(args: argparse.Namespace) -> None:
    from floe_dagster.dagster_stage.sensors import decode_cursor, observe_changes
    from tests.fixtures.hive_metastore import running_hive_metastore

    with (
        tempfile.TemporaryDirectory(prefix="floe-change-feeds-") as workdir,
        running_hive_metastore(Path(workdir), jvm_flags=SERVER_JVM_FLAGS, notifications=True) as metastore,
    ):
        uri = metastore.uri
        started = time.perf_counter()
        names = seed_hms(uri, args.tables, args.databases, prefix="cf")
        print(
            f"seeded {args.tables} tables over {args.databases} databases"
            f" in {time.perf_counter() - started:.1f}s"
        )
        ordered = [(db, t) for db, ts in names.items() for t in ts]

        full_s, first, tick, cursor, connector = _feed_tick(uri, args.batch, args.pages, None)
        assert tick.mode == "scan", tick.reason
        print(
            f"first tick (full scan, the feed's position read first): {full_s:.2f}s,"
            f" {connector.api_calls} calls, {first.listed} tables"
        )
        quiet_cursor = cursor
        calls: dict[str, int] = {}

        def full_side(label: str) -> Sample:
            cpu = time.process_time()
            wall, observed, tick, _, connector = _feed_tick(uri, args.batch, args.pages, None)
            calls["full scan"] = connector.api_calls
            return Sample(wall, time.process_time() - cpu, output=observed.versions)

        def quiet_side(label: str) -> Sample:
            cpu = time.process_time()
            wall, observed, tick, after, connector = _feed_tick(uri, args.batch, args.pages, quiet_cursor)
            assert tick.mode == "feed" and not observed.events, tick.reason
            calls["no-change tick"] = max(calls.get("no-change tick", 0), connector.api_calls)
            return Sample(wall, time.process_time() - cpu, output=decode_cursor(after))

        def naive_side(label: str) -> Sample:
            cpu = time.process_time()
            wall, count = _naive(uri)
            calls["naive"] = count
            return Sample(wall, time.process_time() - cpu, output=None)

        sides: dict[str, Callable[[str], Sample]] = {"full scan": full_side, "no-change tick": quiet_side}
        if not args.skip_naive:
            sides["naive"] = naive_side

        def same(label: str, done: dict[str, Sample]) -> None:
            require_equal(
                "data versions",
                "full scan",
                done["full scan"].output,
                "no-change tick",
                done["no-change tick"].output,
            )

        results = alternate(sides, args.rounds, check=same)
        medians = print_summary(results, "no-change tick")
        full_s, quiet_s = medians["full scan"], medians["no-change tick"]
        rows: list[tuple[str, int, int, float, str]] = [
            ("full scan", len(ordered), calls["full scan"], full_s, "-")
        ]
        if "naive" in medians:
            rows.append(("naive get_table loop", len(ordered), calls["naive"], medians["naive"], "-"))
        quiet_calls = calls["no-change tick"]
        rows.append(
            (
                "no-change tick (median)",
                0,
                quiet_calls,
                quiet_s,
                f"<= 2: {'yes' if quiet_calls <= 2 else 'NO'}",
            )
        )

        for round_, k in enumerate(k for k in args.changes if k <= len(ordered)):
            _alter(uri, ordered[:k], round_)
            wall, observed, tick, cursor, connector = _feed_tick(uri, args.batch, args.pages, cursor)
            assert tick.mode == "feed", tick.reason
            if len(observed.events) != k:
                raise Mismatch(f"{k} tables changed, the tick recorded {len(observed.events)}")
            budget = 2 + math.ceil(k / args.batch) + math.ceil(tick.events / args.pages)
            ok = "yes" if connector.api_calls <= budget else "NO"
            rows.append((f"tick after {k} changed", k, connector.api_calls, wall, f"<= {budget}: {ok}"))
            print(f"  k={k}: calls by method {dict(connector.call_counts)}")

        with connect_metastore(
            "check", "hive", {"uri": uri, "batch_size": args.batch, "pool_size": 4}
        ) as check:
            scanned = observe_changes(check, table_filter("cf_*"), args.batch, "hms", {})
        if scanned.versions != decode_cursor(cursor):
            raise Mismatch("the change feed's versions differ from a full scan's")
        print("the feed's versions equal a full scan's (same keys, same data versions)")

        print()
        print(f"{'Hive Metastore':<26} {'tables':>7} {'calls':>7} {'seconds':>9} {'full / this':>12}  target")
        for name, tables, calls, wall, target in rows:
            print(f"{name:<26} {tables:>7} {calls:>7} {wall:>9.3f} {full_s / wall:>11.1f}x  {target}")
        ratio = full_s / quiet_s
        print(
            f"no-change tick vs full scan: {ratio:.0f}x faster (target >= 100x):"
            f" {'yes' if ratio >= 100 else 'NO'}"
        )


def _parquet(rows: int) -> bytes:
    import pyarrow as pa
    import pyarrow.parquet as pq

    sink = io.BytesIO()
    pq.write_table(pa.table({"id": list(range(rows))}), sink)
    return sink.getvalue()


def s3(args: argparse.Namespace) -> None:
    import logging

    from moto.server import ThreadedMotoServer

    from floe_dagster.dagster_stage.sensors import observe_through_feed
    from floe_dagster.manifest.schema import ChangeFeedOptions

    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        import boto3

        kw = {
            "endpoint_url": endpoint,
            "region_name": "us-east-1",
            "aws_access_key_id": "k",
            "aws_secret_access_key": "s",
        }
        s3c, sqs = boto3.client("s3", **kw), boto3.client("sqs", **kw)
        bucket = f"cf-{uuid.uuid4().hex[:8]}"
        s3c.create_bucket(Bucket=bucket)
        body = _parquet(10)
        started = time.perf_counter()

        def put(i: int) -> None:
            s3c.put_object(Bucket=bucket, Key=f"p{i % args.prefixes:03d}/part-{i:05d}.parquet", Body=body)

        with ThreadPoolExecutor(max_workers=4) as pool:
            list(pool.map(put, range(args.objects)))
        print(
            f"\nseeded {args.objects} objects under {args.prefixes} prefixes"
            f" in {time.perf_counter() - started:.1f}s"
        )
        queue = sqs.create_queue(QueueName="cf-bench")["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        s3c.put_bucket_notification_configuration(
            Bucket=bucket,
            NotificationConfiguration={
                "QueueConfigurations": [
                    {"QueueArn": arn, "Events": ["s3:ObjectCreated:*", "s3:ObjectRemoved:*"]}
                ]
            },
        )
        options = ChangeFeedOptions.model_validate({})
        config = {
            "bucket": bucket,
            "region": "us-east-1",
            "endpoint": endpoint,
            "access_key_id": "k",
            "secret_access_key": "s",
            "notification_queue_url": queue,
        }

        def tick(cursor: str | None) -> tuple[float, Any, Any, str, Any]:
            connector: Any = connect_metastore("s3bench", "s3", config)
            begin = time.perf_counter()
            observed, feed, new_cursor = observe_through_feed(
                connector, table_filter("*"), 100, "s3", cursor, options
            )
            return time.perf_counter() - begin, observed, feed, new_cursor, connector

        full_s, first, feed, cursor, connector = tick(None)
        full_counts = dict(connector.call_counts)
        for i in range(10):
            s3c.put_object(Bucket=bucket, Key=f"p{i:03d}/new-{i:02d}.parquet", Body=_parquet(20))
        wall, observed, feed, cursor, connector = tick(cursor)
        counts = dict(connector.call_counts)
        print(
            f"{'S3 + SQS':<26} {'objects':>7} {'listings':>9} {'footers':>8} {'seconds':>9}"
            f" {'full / this':>12}"
        )
        print(
            f"{'full scan (first tick)':<26} {args.objects:>7} {full_counts.get('list_objects', 0):>9}"
            f" {full_counts.get('get_object_range', 0):>8} {full_s:>9.3f} {1.0:>11.1f}x"
        )
        print(
            f"{'tick after 10 new objects':<26} {10:>7} {counts.get('list_objects', 0):>9}"
            f" {counts.get('get_object_range', 0):>8} {wall:>9.3f} {full_s / wall:>11.1f}x"
        )
        ok = counts.get("list_objects", 0) == 0 and counts.get("get_object_range", 0) == 10
        print(f"  mode {feed.mode}, {len(observed.events)} observation(s), calls {counts}")
        print(f"  target (0 listings, 10 footers): {'yes' if ok else 'NO'}")
    finally:
        server.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tables", type=int, default=10_000)
    parser.add_argument("--databases", type=int, default=20)
    parser.add_argument("--batch", type=int, default=500, help="tables per get_table_objects_by_name")
    parser.add_argument("--pages", type=int, default=1000, help="events per get_next_notification")
    parser.add_argument("--changes", type=lambda v: [int(x) for x in v.split(",")], default=[10, 100, 1000])
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds after a warm-up")
    parser.add_argument("--quick", action="store_true", help="1,000 tables, k = 10 and 100, 500 objects")
    parser.add_argument("--objects", type=int, default=10_000)
    parser.add_argument("--prefixes", type=int, default=100)
    parser.add_argument("--skip-naive", action="store_true")
    parser.add_argument("--skip-s3", action="store_true")
    args = parser.parse_args(argv)
    if args.quick:
        args.tables, args.changes, args.objects, args.prefixes = 1000, [10, 100], 500, 20
    print_load("before")
    hms(args)  # a disagreement raises Mismatch (exit 3)
    if not args.skip_s3:
        s3(args)
    print_load("after")
    return 0


if __name__ == "__main__":
    sys.exit(main())
