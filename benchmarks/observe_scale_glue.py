"""How many Glue API calls and how long does one full observation of a big Glue catalog take?

Usage: .venv/bin/python benchmarks/observe_scale_glue.py [--tables 10000] [--databases 20]
       [--threads 8]

moto's server (Glue + S3) is started on 127.0.0.1 and stopped at the end. Setup (timed
separately): --databases databases and --tables unpartitioned Parquet tables spread evenly over
them, created with several boto3 clients in parallel (Glue has no batched CreateTable).

What is measured, in the same run, on the same catalog, with the same connector:

  scan    ``GlueMetastoreConnector.scan(TableFilter())``: GetDatabases pages, then per database
          its GetTables pages (``page_size`` 100), every table mapped with its data version;
  naive   the same listing, then one ``GetTable`` per table (the same connector and mapping).

Printed: API calls (every attempt) and wall seconds of each, the ratio naive / scan, and whether
the targets hold: GetTables calls <= databases + ceil(tables / 100), and >= 10x fewer calls than
the naive loop. Note: moto ignores the page size (one page per database however many tables),
so on moto GetTables calls = databases; against AWS the same code makes ceil(t / 100) calls per
database of t tables, within the same budget. Times depend on the machine: printed, not asserted.
"""

from __future__ import annotations

import argparse
import logging
import math
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

REGION = "us-east-1"
KEY, SECRET = "bench-access-key", "bench-secret-key"
PARQUET_SD = {
    "InputFormat": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat",
    "OutputFormat": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat",
    "SerdeInfo": {"SerializationLibrary": "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"},
}
COLUMNS = [
    {"Name": "id", "Type": "bigint"},
    {"Name": "name", "Type": "string"},
    {"Name": "amount", "Type": "double"},
    {"Name": "ts", "Type": "timestamp"},
]


def glue_client(endpoint: str) -> Any:
    import boto3

    return boto3.client(
        "glue", endpoint_url=endpoint, region_name=REGION, aws_access_key_id=KEY, aws_secret_access_key=SECRET
    )


def seed_glue(endpoint: str, tables: int, databases: int, threads: int, prefix: str = "obs") -> int:
    """Create the databases and tables; returns the number of tables created."""
    names = [f"{prefix}_{i:02d}" for i in range(databases)]
    per = [tables // databases + (1 if i < tables % databases else 0) for i in range(databases)]
    setup = glue_client(endpoint)
    for db in names:
        setup.create_database(DatabaseInput={"Name": db})
    work = [(db, f"t{j:05d}") for db, n in zip(names, per, strict=True) for j in range(n)]
    local = threading.local()

    def create(item: tuple[str, str]) -> None:
        if not hasattr(local, "client"):
            local.client = glue_client(endpoint)
        db, name = item
        local.client.create_table(
            DatabaseName=db,
            TableInput={
                "Name": name,
                "TableType": "EXTERNAL_TABLE",
                "Parameters": {"EXTERNAL": "TRUE", "numRows": "100", "classification": "parquet"},
                "StorageDescriptor": {
                    **PARQUET_SD,
                    "Columns": COLUMNS,
                    "Location": f"s3://bench/{db}/{name}",
                },
            },
        )

    with ThreadPoolExecutor(max_workers=threads) as pool:
        for _ in pool.map(create, work):
            pass
    return len(work)


def observe(endpoint: str, prefix: str) -> dict[str, Any]:
    from floe_dagster.metastores.glue import GlueMetastoreConnector
    from floe_dagster.plugins.factory import connect_metastore
    from floe_dagster.plugins.metastore import TableFilter

    options = {
        "region": REGION,
        "endpoint": endpoint,
        "access_key_id": KEY,
        "secret_access_key": SECRET,
    }
    glue = connect_metastore("bench", "glue", options, environ={})
    assert isinstance(glue, GlueMetastoreConnector)
    filter_ = TableFilter(include=(f"{prefix}_*",))
    glue.client  # noqa: B018 -- build the client outside the timings (both sides reuse it)

    started = time.perf_counter()
    scanned = list(glue.scan(filter_))
    scan_s = time.perf_counter() - started
    scan_counts = dict(glue.call_counts)

    glue.call_counts.clear()
    started = time.perf_counter()
    naive = []
    for db in glue.list_namespaces():
        if not filter_.may_match_namespace(db):
            continue
        for name in glue.list_tables(db):
            naive.append(glue.get_table(db, name))
    naive_s = time.perf_counter() - started
    naive_counts = dict(glue.call_counts)
    assert [t.data_version for t in scanned] == [t.data_version for t in naive], "scan and naive disagree"
    return {
        "tables": len(scanned),
        "scan_s": scan_s,
        "scan_counts": scan_counts,
        "naive_s": naive_s,
        "naive_counts": naive_counts,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tables", type=int, default=10_000)
    parser.add_argument("--databases", type=int, default=20)
    parser.add_argument("--threads", type=int, default=8, help="boto3 clients creating tables")
    parser.add_argument("--prefix", default="obs", help="database name prefix")
    args = parser.parse_args(argv)

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        started = time.perf_counter()
        created = seed_glue(endpoint, args.tables, args.databases, args.threads, args.prefix)
        setup_s = time.perf_counter() - started
        print(
            f"setup: {created} tables in {args.databases} databases on moto ({endpoint}) in {setup_s:.1f}s"
            f" ({created / setup_s:.0f} tables/s, {args.threads} threads)"
        )
        result = observe(endpoint, args.prefix)
    finally:
        server.stop()

    scan_calls = sum(result["scan_counts"].values())
    naive_calls = sum(result["naive_counts"].values())
    get_tables = result["scan_counts"].get("GetTables", 0)
    budget = args.databases + math.ceil(args.tables / 100)
    print()
    print(f"{'':8} {'tables':>7} {'API calls':>10} {'wall s':>8}")
    print(f"{'scan':8} {result['tables']:>7} {scan_calls:>10} {result['scan_s']:>8.2f}")
    print(f"{'naive':8} {result['tables']:>7} {naive_calls:>10} {result['naive_s']:>8.2f}")
    print()
    print(f"scan calls by API: {result['scan_counts']}")
    print(f"naive calls by API: {result['naive_counts']}")
    print(
        f"GetTables: {get_tables} <= databases + ceil(tables / 100) = {budget}:"
        f" {'yes' if get_tables <= budget else 'NO'}"
    )
    ratio_calls = naive_calls / max(scan_calls, 1)
    print(f"calls: naive / scan = {ratio_calls:.0f}x (target >= 10x): {'yes' if ratio_calls >= 10 else 'NO'}")
    print(f"time: naive / scan = {result['naive_s'] / result['scan_s']:.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
