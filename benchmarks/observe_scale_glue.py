"""How many Glue API calls and how long does one full observation of a big Glue catalog take?

Usage: .venv/bin/python benchmarks/observe_scale_glue.py [--tables 10000] [--databases 20]
       [--threads 8] [--rounds 3] [--quick]

moto's server (Glue + S3) is started on 127.0.0.1 and stopped at the end. Setup (timed
separately): --databases databases and --tables unpartitioned Parquet tables spread evenly over
them, created with several boto3 clients in parallel (Glue has no batched CreateTable).

What is measured, in the same run, on the same catalog, with the same connector:

  scan    ``GlueMetastoreConnector.scan(TableFilter())``: GetDatabases pages, then per database
          its GetTables pages (``page_size`` 100), every table mapped with its data version;
  naive   the same listing, then one ``GetTable`` per table (the same connector and mapping).

Both run sequentially (one request at a time; the connector reuses one boto3 client, built
before the timings). A warm-up of each side, then --rounds rounds (default 3) alternating which
goes first; medians and spread are printed with the load average before and after. Every round
checks that both sides returned the same tables with the same data versions (else exit 3).

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
from typing import Any

from _common import (
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


def observe(endpoint: str, prefix: str, rounds: int) -> dict[str, Any]:
    options = {
        "region": REGION,
        "endpoint": endpoint,
        "access_key_id": KEY,
        "secret_access_key": SECRET,
    }
    glue = connect_metastore("bench", "glue", options)
    filter_ = table_filter(f"{prefix}_*")
    glue.client  # noqa: B018 -- build the client outside the timings (both sides reuse it)
    counts: dict[str, dict[str, int]] = {}

    def scan(_: str) -> Sample:
        glue.call_counts.clear()
        sample = timed(lambda: [(t.namespace, t.name, t.data_version) for t in glue.scan(filter_)])
        counts["scan"] = dict(glue.call_counts)
        return sample

    def naive(_: str) -> Sample:
        def loop() -> list[tuple[str, str, Any]]:
            found = []
            for db in glue.list_namespaces():
                if not filter_.may_match_namespace(db):
                    continue
                for name in glue.list_tables(db):
                    table = glue.get_table(db, name)
                    found.append((table.namespace, table.name, table.data_version))
            return found

        glue.call_counts.clear()
        sample = timed(loop)
        counts["naive"] = dict(glue.call_counts)
        return sample

    def check(label: str, done: dict[str, Sample]) -> None:
        require_equal(
            f"{label}: tables and data versions", "scan", done["scan"].output, "naive", done["naive"].output
        )

    results = alternate({"scan": scan, "naive": naive}, rounds, check=check)
    return {"results": results, "counts": counts, "tables": len(results["scan"][0].output)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tables", type=int, default=10_000)
    parser.add_argument("--databases", type=int, default=20)
    parser.add_argument("--threads", type=int, default=8, help="boto3 clients creating tables")
    parser.add_argument("--prefix", default="obs", help="database name prefix")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds after the warm-up")
    parser.add_argument("--quick", action="store_true", help="500 tables in 5 databases, 3 rounds")
    args = parser.parse_args(argv)
    if args.quick:
        args.tables, args.databases, args.rounds = 500, 5, 3
    print_load("before")

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
        result = observe(endpoint, args.prefix, args.rounds)
    finally:
        server.stop()

    medians = print_summary(result["results"], "scan", target="naive / scan: >= 10x fewer calls")
    scan_calls = sum(result["counts"]["scan"].values())
    naive_calls = sum(result["counts"]["naive"].values())
    get_tables = result["counts"]["scan"].get("GetTables", 0)
    budget = args.databases + math.ceil(args.tables / 100)
    print()
    print(f"{'':8} {'tables':>7} {'API calls':>10} {'median s':>9}")
    print(f"{'scan':8} {result['tables']:>7} {scan_calls:>10} {medians['scan']:>9.2f}")
    print(f"{'naive':8} {result['tables']:>7} {naive_calls:>10} {medians['naive']:>9.2f}")
    print()
    print(f"scan calls by API: {result['counts']['scan']}")
    print(f"naive calls by API: {result['counts']['naive']}")
    print(
        f"GetTables: {get_tables} <= databases + ceil(tables / 100) = {budget}:"
        f" {'yes' if get_tables <= budget else 'NO'}"
    )
    ratio_calls = naive_calls / max(scan_calls, 1)
    print(f"calls: naive / scan = {ratio_calls:.0f}x (target >= 10x): {'yes' if ratio_calls >= 10 else 'NO'}")
    print(f"time: naive / scan = {medians['naive'] / medians['scan']:.1f}x (medians, both sequential)")
    print_load("after")
    return 0


if __name__ == "__main__":
    sys.exit(main())
