"""S3 -> Iceberg ingest throughput against a plain boto3 download + ``pyarrow.parquet.read_table``.

    .venv/bin/python benchmarks/s3_ingest.py                  # 200 objects, about 200 MB
    .venv/bin/python benchmarks/s3_ingest.py --objects 20 --mb 20   # quick

Starts moto's S3 server on 127.0.0.1, writes ``--objects`` Parquet objects (``--mb`` MB in all)
under one prefix, then in the same run measures

* the baseline: every object downloaded with boto3 ``get_object`` and decoded with
  ``pyarrow.parquet.read_table``, one after the other (run before and after the ingest; the
  faster of the two is used);
* the ingest: ``defs/ingest.py``'s ``ingest_table`` of the discovered table into a SQLite
  ``SqlCatalog`` (reads, Arrow batches of ``rows_per_record``, Iceberg commits);
* a no-change run: the object reads (whole and ranged) a second ingest makes (target 0).

Prints MB/s of both and their ratio (target >= 0.8). Numbers, never asserted.
"""

from __future__ import annotations

import argparse
import io
import logging
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from floe_dagster.catalogs.sql import SqlCatalogPlugin
from floe_dagster.defs.ingest import ingest_table
from floe_dagster.metastores.s3 import S3MetastoreConnector
from floe_dagster.plugins.factory import connect_metastore

REGION = "us-east-1"
KEY_ID, SECRET = "bench-key", "bench-secret"


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


def baseline(client, bucket: str, keys: list[str]) -> tuple[float, int]:
    started, rows = time.perf_counter(), 0
    for key in keys:
        body = client.get_object(Bucket=bucket, Key=key)["Body"].read()
        rows += pq.read_table(pa.BufferReader(body)).num_rows
    return time.perf_counter() - started, rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objects", type=int, default=200)
    parser.add_argument("--mb", type=float, default=200.0, help="total size of the objects in MB")
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--rows-per-record", type=int, default=500)
    parser.add_argument("--commit-mb", type=float, default=128.0, help="ingest.commit_mb (default 128)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("werkzeug").setLevel(logging.ERROR)

    import boto3
    from moto.server import ThreadedMotoServer

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

        base_before, rows = baseline(client, bucket, keys)

        with tempfile.TemporaryDirectory() as folder:
            catalog = SqlCatalogPlugin(
                "bench",
                SqlCatalogPlugin.config_model.model_validate(
                    {"uri": f"sqlite:///{folder}/catalog.db", "warehouse": f"{folder}/warehouse"}
                ),
            )
            options = {
                "bucket": bucket,
                "region": REGION,
                "endpoint": endpoint,
                "access_key_id": KEY_ID,
                "secret_access_key": SECRET,
                "concurrency": args.concurrency,
                "rows_per_record": args.rows_per_record,
            }
            # One-time process costs, not throughput: importing PyIceberg's writer and opening the
            # catalog (about 2-4 s here). Paid once per process, timed and printed apart.
            started = time.perf_counter()
            import pyiceberg.io.pyarrow  # noqa: F401

            catalog.list_namespaces()
            warm_up = time.perf_counter() - started
            connector = connect_metastore("bench", "s3", options, environ={})
            assert isinstance(connector, S3MetastoreConnector)
            started = time.perf_counter()
            objects = connector.discover()["bench_data"]
            commit_bytes = int(args.commit_mb * 1024 * 1024)
            report = ingest_table(
                connector, catalog, "bench_data", objects, namespace="raw_s3", commit_bytes=commit_bytes
            )
            ingest_seconds = time.perf_counter() - started
            assert report.rows == rows, (report.rows, rows)

            again = connect_metastore("bench", "s3", options, environ={})
            assert isinstance(again, S3MetastoreConnector)
            started = time.perf_counter()
            unchanged = ingest_table(
                again,
                catalog,
                "bench_data",
                again.discover()["bench_data"],
                namespace="raw_s3",
                commit_bytes=commit_bytes,
            )
            no_change_seconds = time.perf_counter() - started
            reads = again.call_counts["get_object"] + again.call_counts["get_object_range"]

        base_after, _ = baseline(client, bucket, keys)
        base = min(base_before, base_after)
        print(
            f"baseline  boto3 get_object + pq.read_table: {mb / base:7.1f} MB/s"
            f" ({base:.2f} s; runs {base_before:.2f} s / {base_after:.2f} s), {rows} rows"
        )
        print(
            f"ingest    list + read + Iceberg append:     {mb / ingest_seconds:7.1f} MB/s"
            f" ({ingest_seconds:.2f} s, {report.commits} commit(s) of <= {args.commit_mb} MB,"
            f" concurrency {args.concurrency}, rows_per_record"
            f" {args.rows_per_record})"
        )
        print(f"ratio     ingest / baseline throughput:     {base / ingest_seconds:7.2f}  (target >= 0.8)")
        print(f"(not in the ratio: PyIceberg import + catalog open, once per process: {warm_up:.2f} s)")
        print(
            f"no-change run: {reads} object read(s) (target 0), {unchanged.new} new object(s),"
            f" {no_change_seconds:.2f} s"
        )
    finally:
        server.stop()


if __name__ == "__main__":
    main()
