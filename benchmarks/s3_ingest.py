"""S3 -> Iceberg ingest throughput against a plain boto3 download + ``pyarrow.parquet.read_table``.

    .venv/bin/python benchmarks/s3_ingest.py                                  # 200 objects, ~200 MB, 5 rounds
    .venv/bin/python benchmarks/s3_ingest.py --objects 20 --mb 20 --rounds 1  # quick

Starts moto's S3 server on 127.0.0.1 (in this process, as the tests do), writes ``--objects``
Parquet objects (``--mb`` MB in all) under one prefix, then runs ``--rounds`` rounds, each

* the baseline: every object downloaded with boto3 ``get_object`` and decoded with
  ``pyarrow.parquet.read_table``, one after the other;
* the ingest: ``defs/ingest.py``'s ``ingest_table`` of the discovered table (listing included)
  into a fresh table of a SQLite ``SqlCatalog``: downloads, decoding into ``rows_per_record``
  batches, Parquet data files written and committed to Iceberg;

and after the last round a no-change run: the object reads (whole and ranged) a second ingest
of the same table makes (target 0).

Prints, per round and as medians, wall seconds, MB/s and CPU seconds (``time.process_time``:
every thread of the process, moto's server threads included, in both) of both, the median of
the rounds' throughput ratios (each ingest against the baseline run just before it; target
>= 0.8), where the ingest's time went (``IngestReport.timings``) and the load average, since
the cores are shared with whatever else runs. Numbers, never asserted.
"""

from __future__ import annotations

import argparse
import io
import logging
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from floe_dagster.catalogs.sql import SqlCatalogPlugin
from floe_dagster.dagster_stage.ingest import IngestReport, ingest_table
from floe_dagster.metastores.s3 import S3MetastoreConnector
from floe_dagster.plugins.factory import connect_metastore

REGION = "us-east-1"
KEY_ID, SECRET = "bench-key", "bench-secret"
TABLE = "bench_data"


def make_object(index: int, target_bytes: int) -> bytes:
    """A Parquet object of about ``target_bytes`` (random values, so compression cannot shrink it)."""
    rng = np.random.default_rng(index)
    rows = max(1, target_bytes // 24)
    table = pa.table(
        {
            "id": pa.array(np.arange(index * rows, (index + 1) * rows, dtype=np.int64)),
            "value": pa.array(rng.random(rows)),
            "code": pa.array(rng.integers(0, 1 << 62, rows, dtype=np.int64)),
        }
    )
    buffer = io.BytesIO()
    pq.write_table(table, buffer, compression="snappy")
    return buffer.getvalue()


def timed(call: Any) -> tuple[Any, float, float]:
    """(result, wall seconds, CPU seconds of the whole process)."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = call()
    return result, time.perf_counter() - wall, time.process_time() - cpu


def baseline(client: Any, bucket: str, keys: list[str]) -> int:
    rows = 0
    for key in keys:
        body = client.get_object(Bucket=bucket, Key=key)["Body"].read()
        rows += pq.read_table(pa.BufferReader(body)).num_rows
    return rows


def ingest(options: dict[str, Any], catalog: SqlCatalogPlugin, namespace: str, commit_mb: float) -> Any:
    connector = connect_metastore("bench", "s3", options, environ={})
    assert isinstance(connector, S3MetastoreConnector)
    report = ingest_table(
        connector,
        catalog,
        TABLE,
        connector.discover()[TABLE],
        namespace=namespace,
        commit_bytes=int(commit_mb * 1024 * 1024),
    )
    return connector, report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objects", type=int, default=200)
    parser.add_argument("--mb", type=float, default=200.0, help="total size of the objects in MB")
    parser.add_argument("--rounds", type=int, default=5, help="baseline + ingest rounds (medians)")
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--rows-per-record", type=int, default=500)
    parser.add_argument("--commit-mb", type=float, default=128.0, help="ingest.commit_mb (default 128)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("werkzeug").setLevel(logging.ERROR)

    import boto3
    from moto.server import ThreadedMotoServer

    load_before = " ".join(f"{x:.1f}" for x in os.getloadavg())  # other processes share the cores
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        client = boto3.client(
            "s3",
            endpoint_url=endpoint,
            region_name=REGION,
            aws_access_key_id=KEY_ID,
            aws_secret_access_key=SECRET,
        )
        bucket = "floe-bench"
        client.create_bucket(Bucket=bucket)
        per_object = int(args.mb * 1024 * 1024 / args.objects)
        keys, total = [], 0
        for index in range(args.objects):
            body = make_object(index, per_object)
            key = f"bench/data/part-{index:05d}.parquet"
            client.put_object(Bucket=bucket, Key=key, Body=body)
            keys.append(key)
            total += len(body)
        mb = total / 1024 / 1024
        print(f"{args.objects} objects, {mb:.1f} MB on moto at {endpoint}")
        options = {
            "bucket": bucket,
            "region": REGION,
            "endpoint": endpoint,
            "access_key_id": KEY_ID,
            "secret_access_key": SECRET,
            "concurrency": args.concurrency,
            "rows_per_record": args.rows_per_record,
        }

        with tempfile.TemporaryDirectory() as folder:
            catalog = SqlCatalogPlugin(
                "bench",
                SqlCatalogPlugin.config_model.model_validate(
                    {"uri": f"sqlite:///{folder}/catalog.db", "warehouse": f"{folder}/warehouse"}
                ),
            )

            # One-time process costs, not throughput: importing PyIceberg's writer (and rich, which
            # its schema compatibility check imports on first use: 0.3 s), opening the catalog and
            # parsing botocore's S3 service model (which the baseline's client, made before its
            # timing, has paid too). Timed and printed apart.
            def warm() -> None:
                __import__("pyiceberg.io.pyarrow")
                __import__("rich.console")
                __import__("rich.table")
                catalog.list_namespaces()
                connect_metastore("bench", "s3", options, environ={}).client()  # type: ignore[attr-defined]

            _, warm_up, _ = timed(warm)
            baselines: list[tuple[float, float]] = []
            ingests: list[tuple[float, float, IngestReport]] = []
            for round_ in range(args.rounds):
                rows, base_wall, base_cpu = timed(lambda: baseline(client, bucket, keys))
                (_, report), wall, cpu = timed(
                    lambda: ingest(options, catalog, f"raw_s3_{round_}", args.commit_mb)  # noqa: B023
                )
                assert report.rows == rows, (report.rows, rows)
                baselines.append((base_wall, base_cpu))
                ingests.append((wall, cpu, report))
                print(
                    f"round {round_ + 1}: baseline {base_wall:.2f} s ({base_cpu:.2f} CPU-s),"
                    f" ingest {wall:.2f} s ({cpu:.2f} CPU-s), ratio {base_wall / wall:.2f}"
                )
            (again, unchanged), no_change_seconds, _ = timed(
                lambda: ingest(options, catalog, f"raw_s3_{args.rounds - 1}", args.commit_mb)
            )
            reads = again.call_counts["get_object"] + again.call_counts["get_object_range"]

        load_after = [f"{x:.1f}" for x in os.getloadavg()]
        base_wall = statistics.median(w for w, _ in baselines)
        base_cpu = statistics.median(c for _, c in baselines)
        wall = statistics.median(w for w, _, _ in ingests)
        cpu = statistics.median(c for _, c, _ in ingests)
        report = sorted(ingests, key=lambda item: item[0])[len(ingests) // 2][2]
        print(f"medians of {args.rounds} round(s), {rows} rows:")
        print(
            f"baseline  boto3 get_object + pq.read_table: {mb / base_wall:7.1f} MB/s"
            f" ({base_wall:.2f} s, {base_cpu:.2f} CPU-s)"
        )
        print(
            f"ingest    list + read + Iceberg append:     {mb / wall:7.1f} MB/s"
            f" ({wall:.2f} s, {cpu:.2f} CPU-s; {report.commits} commit(s) of <= {args.commit_mb} MB,"
            f" concurrency {args.concurrency}, rows_per_record {args.rows_per_record},"
            f" {report.batches} batches)"
        )
        # Each round's ingest against its own baseline, measured moments apart under the same load.
        ratio = statistics.median(b / i for (b, _), (i, _, _) in zip(baselines, ingests, strict=True))
        cpu_ratio = statistics.median(i / b for (_, b), (_, i, _) in zip(baselines, ingests, strict=True))
        print(f"ratio     ingest / baseline throughput:     {ratio:7.2f}  (median of rounds; target >= 0.8)")
        print(f"          ingest / baseline CPU seconds:    {cpu_ratio:7.2f}")
        stages = ", ".join(f"{name} {seconds:.2f} s" for name, seconds in report.timings.items())
        print(f"ingest stages (median round): {stages}")
        print(
            f"(not in the ratio: PyIceberg import, catalog open, S3 service model, once per process:"
            f" {warm_up:.2f} s; load average {load_before} before, {' '.join(load_after)} after)"
        )
        print(
            f"no-change run: {reads} object read(s) (target 0), {unchanged.new} new object(s),"
            f" {no_change_seconds:.2f} s"
        )
    finally:
        server.stop()


if __name__ == "__main__":
    main()
