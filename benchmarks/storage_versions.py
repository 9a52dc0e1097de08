"""What does ``data_version: storage`` cost beside ``metadata``? (issue 18, item 3)

Usage: .venv/bin/python benchmarks/storage_versions.py [--tables 1000] [--files 10]
       [--databases 4] [--threads 8] [--rounds 3] [--quick]

moto's server (Glue + S3) is started on 127.0.0.1 and stopped at the end. Setup (timed
separately): --tables unpartitioned Parquet tables spread over --databases Glue databases, each
with --files data files (and a ``_SUCCESS`` marker) in moto's S3, under ``s3://bench/<db>/<table>``.

What is measured, in the same run, on the same catalog, with one connector each:

  metadata  ``scan(TableFilter())`` with ``data_version: metadata``: Glue pages only;
  storage   the same scan with ``data_version: storage``: plus the files' fingerprint of every
            table (S3 ``ListObjectsV2`` pages; table folders sharing a database folder are
            listed through it, on up to 8 threads).

A warm-up of each side, then --rounds rounds alternating which goes first; medians and spread
are printed with the load average before and after. Each round checks that both sides found the
same tables, that the storage side's versions differ from the metadata side's (they include the
fingerprint) and that they are stable from one round to the next (else exit 3).

Printed side by side: Glue API calls, S3 listing calls and median wall seconds of each, and the
ratios storage / metadata. Times depend on the machine: printed, not asserted.
"""

from __future__ import annotations

import argparse
import logging
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
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
    timed,
)

REGION = "us-east-1"
KEY, SECRET = "bench-access-key", "bench-secret-key"
BUCKET = "bench"
PARQUET_SD = {
    "InputFormat": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat",
    "OutputFormat": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat",
    "SerdeInfo": {"SerializationLibrary": "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"},
}


def client(service: str, endpoint: str) -> Any:
    import boto3

    return boto3.client(
        service,
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id=KEY,
        aws_secret_access_key=SECRET,
    )


def seed(endpoint: str, tables: int, files: int, databases: int, threads: int) -> tuple[int, int]:
    """The databases, tables and objects; (tables, objects) created."""
    client("s3", endpoint).create_bucket(Bucket=BUCKET)
    glue = client("glue", endpoint)
    names = [f"sv_{i:02d}" for i in range(databases)]
    for db in names:
        glue.create_database(DatabaseInput={"Name": db})
    work = [(names[i % databases], f"t{i:05d}") for i in range(tables)]
    local = threading.local()

    def create(item: tuple[str, str]) -> int:
        if not hasattr(local, "glue"):
            local.glue, local.s3 = client("glue", endpoint), client("s3", endpoint)
        db, name = item
        local.glue.create_table(
            DatabaseName=db,
            TableInput={
                "Name": name,
                "TableType": "EXTERNAL_TABLE",
                "Parameters": {"EXTERNAL": "TRUE"},
                "StorageDescriptor": {
                    **PARQUET_SD,
                    "Columns": [{"Name": "id", "Type": "bigint"}],
                    "Location": f"s3://{BUCKET}/{db}/{name}",
                },
            },
        )
        for f in range(files):
            local.s3.put_object(Bucket=BUCKET, Key=f"{db}/{name}/part-{f:05d}.parquet", Body=b"x" * (100 + f))
        local.s3.put_object(Bucket=BUCKET, Key=f"{db}/{name}/_SUCCESS", Body=b"")
        return files + 1

    with ThreadPoolExecutor(max_workers=threads) as pool:
        objects = sum(pool.map(create, work))
    return len(work), objects


def measure(endpoint: str, rounds: int) -> dict[str, Any]:
    options = {"region": REGION, "endpoint": endpoint, "s3_endpoint": endpoint}
    options |= {"access_key_id": KEY, "secret_access_key": SECRET}
    connectors = {
        mode: connect_metastore(f"bench_{mode}", "glue", options) for mode in ("metadata", "storage")
    }
    for mode, connector in connectors.items():
        connector.data_version_policy = type(connector.data_version_policy).of(mode)
        connector.client  # noqa: B018 -- built outside the timings
    everything = table_filter("sv_*")
    counts: dict[str, tuple[int, int]] = {}
    seen: dict[str, list[Any]] = {}

    def side(mode: str) -> Any:
        def run(_: str) -> Sample:
            connector = connectors[mode]
            connector.call_counts.clear()
            listing_before = connector.storage_listing_calls
            sample = timed(
                lambda: [(t.namespace, t.name, t.data_version) for t in connector.scan(everything)]
            )
            counts[mode] = (connector.api_calls, connector.storage_listing_calls - listing_before)
            if seen.get(mode) not in (None, sample.output):
                raise Mismatch(f"{mode}: the data versions changed between rounds with no change")
            seen[mode] = sample.output
            return sample

        return run

    def check(label: str, done: dict[str, Sample]) -> None:
        names = {m: [(ns, n) for ns, n, _ in done[m].output] for m in done}
        require_equal(f"{label}: tables", "metadata", names["metadata"], "storage", names["storage"])
        same = [
            a for a, b in zip(done["metadata"].output, done["storage"].output, strict=True) if a[2] == b[2]
        ]
        if same:
            raise Mismatch(f"{label}: {len(same)} storage version(s) equal the metadata ones: no fingerprint")

    results = alternate({"metadata": side("metadata"), "storage": side("storage")}, rounds, check=check)
    return {"results": results, "counts": counts, "tables": len(results["metadata"][0].output)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tables", type=int, default=1000)
    parser.add_argument("--files", type=int, default=10)
    parser.add_argument("--databases", type=int, default=4)
    parser.add_argument("--threads", type=int, default=8, help="boto3 clients seeding the catalog")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds after the warm-up")
    parser.add_argument("--quick", action="store_true", help="100 tables of 10 files, 3 rounds")
    args = parser.parse_args(argv)
    if args.quick:
        args.tables, args.rounds = 100, 3
    print_load("before")

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        started = time.perf_counter()
        tables, objects = seed(endpoint, args.tables, args.files, args.databases, args.threads)
        took = time.perf_counter() - started
        print(
            f"setup: {tables} tables, {objects} objects in {args.databases} databases on moto in {took:.1f}s"
        )
        result = measure(endpoint, args.rounds)
    finally:
        server.stop()

    medians = print_summary(result["results"], "metadata", target="storage / metadata: printed, not asserted")
    meta_calls, meta_lists = result["counts"]["metadata"]
    store_calls, store_lists = result["counts"]["storage"]
    print()
    print(f"{'':9} {'tables':>7} {'Glue calls':>11} {'S3 listing calls':>17} {'median s':>9}")
    print(
        f"{'metadata':9} {result['tables']:>7} {meta_calls:>11} {meta_lists:>17} {medians['metadata']:>9.2f}"
    )
    print(
        f"{'storage':9} {result['tables']:>7} {store_calls:>11} {store_lists:>17} {medians['storage']:>9.2f}"
    )
    print()
    print(f"time: storage / metadata = {medians['storage'] / medians['metadata']:.2f}x (medians)")
    print(
        f"calls: storage / metadata = {(store_calls + store_lists) / max(meta_calls + meta_lists, 1):.2f}x"
        f" (Glue + S3 listing); listing calls per table: {store_lists / max(result['tables'], 1):.3f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
