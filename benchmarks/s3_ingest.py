"""Object store -> Iceberg ingest throughput against a plain download + ``pyarrow.parquet.read_table``.

    .venv/bin/python benchmarks/s3_ingest.py                  # moto, 200 objects, ~200 MB, 3 rounds
    .venv/bin/python benchmarks/s3_ingest.py --quick          # 20 objects, 20 MB, 3 rounds
    .venv/bin/python benchmarks/s3_ingest.py --store all --quick   # every store in turn
    .venv/bin/python benchmarks/s3_ingest.py --store all --objects 1000 --mb 1000   # 1 GB each

Stores (``--store``): ``moto`` (moto's S3 server, in this process), ``s3rver`` (the second S3
server, npm, a process), ``azurite`` (Azure Blob, npm, a process) and ``gcs``
(gcp-storage-emulator, in this process, at ``--concurrency`` 4 unless given: it answers one request
at a time, see ``GCS_CONCURRENCY``); the npm servers come from ``.floe/npm``
(scripts/bootstrap.sh). Each is started on 127.0.0.1 and gets ``--objects`` Parquet objects
(``--mb`` MB in all) under one prefix. The baseline reads the same objects from the same server
with the store's own SDK (boto3, azure-storage-blob, google-cloud-storage) and PyArrow. Each
side is then a fresh process, as a Dagster run process is, so each pays its own one-off imports
(the SDK and pyarrow; floe's ingest and PyIceberg's writer) and client set-up:

* baseline: list the prefix, download every object with the store's SDK (boto3 ``get_object``,
  ``download_blob``, ``download_as_bytes``) and decode it with ``pyarrow.parquet.read_table``,
  one after the other;
* ingest: ``ingest_table`` of the table the ``s3`` / ``azure`` / ``gcs`` metastore discovers
  (listing included) into a fresh table of a SQLite ``SqlCatalog``: downloads, decoding into
  ``rows_per_record`` batches, Parquet data files written and committed to Iceberg.

A warm-up of each, then ``--rounds`` rounds (default 3), the order swapped every other round.
Every run is checked: the baseline must decode every source row; the ingest's Iceberg table is
read back (outside the timing) and must hold exactly the source rows (sorted by id, every
column compared); else the benchmark exits with status 3. After the rounds, a no-change run
of the last table counts the object reads a second ingest makes (target 0).

Printed: per round and as medians, wall seconds (of the process), MB/s and CPU seconds (of the
process: moto's server threads are in this process, not in theirs) of both, the median of the
rounds' throughput ratios (each ingest against the baseline of the same round; target >= 0.8),
the stages of each process (imports, client set-up, the work; for the ingest its own
``IngestReport.timings``) and the load average before and after. Numbers, never asserted.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import logging
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from _common import (
    Mismatch,
    Sample,
    Stopwatch,
    alternate,
    clean_env,
    connect_metastore,
    ingest_imports,
    ingest_table,
    print_load,
    print_summary,
    report_to_parent,
    require_equal,
    run_process,
    sql_catalog,
)

DEFAULT_CONCURRENCY = 50  # the source's default (metastores/s3.py)
REGION = "us-east-1"
KEY_ID, SECRET = "bench-key", "bench-secret"
TABLE = "bench_data"
BUCKET = "floe-bench"
PREFIX = "bench/data/"
STORES = ("moto", "s3rver", "azurite", "gcs")
SERVER_CPU = "server cpu"
# gcp-storage-emulator answers one request at a time (http.server.HTTPServer, a listen backlog of
# 5): with 50 downloads in flight, connections past the backlog are dropped and retried by TCP a
# second later, which measures the emulator rather than the ingest. Real GCS has no such limit.
GCS_CONCURRENCY = 4
S3RVER_KEY = "S3RVER"
AZURITE_ACCOUNT = "devstoreaccount1"
# Azurite's fixed, public development key
AZURITE_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
GCS_PROJECT = "floe-bench"
ROOT = Path(__file__).resolve().parents[1]


def s3_keys(store: str) -> tuple[str, str]:
    return (S3RVER_KEY, S3RVER_KEY) if store == "s3rver" else (KEY_ID, SECRET)


def s3_client(store: str, endpoint: str) -> Any:
    import boto3

    key, secret = s3_keys(store)
    return boto3.client(
        "s3", endpoint_url=endpoint, region_name=REGION, aws_access_key_id=key, aws_secret_access_key=secret
    )


def azure_container(endpoint: str) -> Any:
    from azure.storage.blob import BlobServiceClient

    connection = (
        f"DefaultEndpointsProtocol=http;AccountName={AZURITE_ACCOUNT};AccountKey={AZURITE_KEY};"
        f"BlobEndpoint={endpoint};"
    )
    return BlobServiceClient.from_connection_string(connection).get_container_client(BUCKET)


def gcs_bucket(endpoint: str) -> Any:
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    client = storage.Client(
        project=GCS_PROJECT, credentials=AnonymousCredentials(), client_options={"api_endpoint": endpoint}
    )
    return client.bucket(BUCKET)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def npm_server(name: str, args: list[str], port: int, env: dict[str, str] | None = None) -> Any:
    prefix = Path(os.environ.get("FLOE_NPM_PREFIX") or ROOT / ".floe" / "npm")
    binary = prefix / "node_modules" / ".bin" / name
    if not binary.exists():
        raise SystemExit(f"{name} is not installed under {prefix}: run scripts/bootstrap.sh")
    process = subprocess.Popen(
        [str(binary), *args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return process
        time.sleep(0.1)
    process.kill()
    raise SystemExit(f"{name} did not listen on 127.0.0.1:{port}")


@contextlib.contextmanager
def serve(store: str) -> Iterator[tuple[str, Callable[[str, bytes], None], Callable[[], float]]]:
    """The store's server on 127.0.0.1 with an empty bucket: (endpoint, put(key, body), cpu()).

    ``cpu()``: the CPU seconds the server has used so far. moto and the GCS emulator serve from
    threads of this process, which does nothing else while a side runs; the npm servers are
    processes of their own.
    """
    folder = Path(tempfile.mkdtemp(prefix=f"floe-bench-{store}-"))
    port = free_port()
    process: Any = None
    stop: Callable[[], None] = lambda: None  # noqa: E731
    try:
        if store == "moto":
            from moto.server import ThreadedMotoServer

            server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
            server.start()
            stop = server.stop
            host, port = server.get_host_and_port()
            endpoint = f"http://{host}:{port}"
        elif store == "s3rver":
            env = {**os.environ, "NODE_OPTIONS": "--openssl-legacy-provider"}
            args = ["-d", str(folder), "-a", "127.0.0.1", "-p", str(port), "--silent"]
            process = npm_server("s3rver", [*args, "--allow-mismatched-signatures"], port, env)
            endpoint = f"http://127.0.0.1:{port}"
        elif store == "azurite":
            args = ["--blobHost", "127.0.0.1", "--blobPort", str(port), "--location", str(folder)]
            process = npm_server("azurite-blob", [*args, "--silent", "--skipApiVersionCheck"], port)
            endpoint = f"http://127.0.0.1:{port}/{AZURITE_ACCOUNT}"
        else:
            from gcp_storage_emulator.server import create_server

            emulator = create_server("127.0.0.1", port, in_memory=True)
            emulator.start()
            stop = emulator.stop
            endpoint = f"http://127.0.0.1:{port}"
        if store in ("moto", "s3rver"):
            client = s3_client(store, endpoint)
            client.create_bucket(Bucket=BUCKET)

            def put(key: str, body: bytes) -> None:
                client.put_object(Bucket=BUCKET, Key=key, Body=body)

        elif store == "azurite":
            container = azure_container(endpoint)
            container.create_container()

            def put(key: str, body: bytes) -> None:
                container.upload_blob(key, body, overwrite=True)

        else:
            bucket = gcs_bucket(endpoint)
            bucket.client.create_bucket(BUCKET)

            def put(key: str, body: bytes) -> None:
                bucket.blob(key).upload_from_string(body)

        if process is not None:
            import psutil

            node = psutil.Process(process.pid)

            def cpu() -> float:
                times = node.cpu_times()
                return float(times.user + times.system + times.children_user + times.children_system)

        else:

            def cpu() -> float:
                return time.process_time()

        yield endpoint, put, cpu
    finally:
        stop()
        if process is not None:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:  # Azurite sometimes ignores SIGTERM while closing
                process.kill()
                process.wait(timeout=10)
        shutil.rmtree(folder, ignore_errors=True)


def make_object(index: int, target_bytes: int) -> Any:
    """A table of about ``target_bytes`` as Parquet (random values: compression cannot shrink it)."""
    import numpy as np
    import pyarrow as pa

    rng = np.random.default_rng(index)
    rows = max(1, target_bytes // 24)
    return pa.table(
        {
            "id": pa.array(np.arange(index * rows, (index + 1) * rows, dtype=np.int64)),
            "value": pa.array(rng.random(rows)),
            "code": pa.array(rng.integers(0, 1 << 62, rows, dtype=np.int64)),
        }
    )


# --- the two sides, each run as a fresh process ---------------------------------------------


def child_baseline(store: str, endpoint: str) -> None:
    watch = Stopwatch()
    import pyarrow as pa
    import pyarrow.parquet as pq

    if store in ("moto", "s3rver"):
        import boto3  # noqa: F401

        watch.lap("imports")
        client = s3_client(store, endpoint)
    elif store == "azurite":
        import azure.storage.blob  # noqa: F401

        watch.lap("imports")
        client = azure_container(endpoint)
    else:
        import google.cloud.storage  # noqa: F401

        watch.lap("imports")
        client = gcs_bucket(endpoint)
    watch.lap("client")
    if store in ("moto", "s3rver"):
        keys = [
            item["Key"]
            for page in client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=PREFIX)
            for item in page.get("Contents", [])
        ]

        def download(key: str) -> bytes:
            return bytes(client.get_object(Bucket=BUCKET, Key=key)["Body"].read())

    elif store == "azurite":
        keys = [blob.name for blob in client.list_blobs(name_starts_with=PREFIX)]

        def download(key: str) -> bytes:
            return bytes(client.download_blob(key).readall())

    else:
        keys = [blob.name for blob in client.client.list_blobs(client, prefix=PREFIX)]

        def download(key: str) -> bytes:
            return bytes(client.blob(key).download_as_bytes())

    rows = 0
    for key in keys:
        rows += pq.read_table(pa.BufferReader(download(key))).num_rows
    watch.lap("list + download + decode")
    report_to_parent(watch.stages, {"rows": rows, "objects": len(keys)})


def child_ingest(
    endpoint: str, folder: str, namespace: str, options: dict[str, Any], commit_mb: float
) -> None:
    watch = Stopwatch()
    ingest_imports()
    watch.lap("imports")
    catalog = sql_catalog("bench", f"sqlite:///{folder}/catalog.db", f"{folder}/warehouse")
    store = options.pop("store")
    connector = connect_metastore("bench", store_type(store), {**options, "endpoint": endpoint})
    catalog.list_namespaces()
    connector.client()
    watch.lap("catalog + client")
    report = ingest_table(connector, catalog, TABLE, namespace, int(commit_mb * 1024 * 1024))
    watch.lap("ingest")
    stages = {**watch.stages, **{f"  ingest: {k}": v for k, v in report.timings.items()}}
    reads = connector.call_counts["get_object"] + connector.call_counts["get_object_range"]
    output = {
        "rows": report.rows,
        "commits": report.commits,
        "batches": report.batches,
        "new": report.new,
        "reads": reads,
        "identifier": list(report.identifier),
    }
    report_to_parent(stages, output)


# --- the parent -----------------------------------------------------------------------------


def read_back(folder: Path, identifier: list[str]) -> Any:
    from pyiceberg.catalog.sql import SqlCatalog

    catalog = SqlCatalog(
        "bench", uri=f"sqlite:///{folder}/catalog.db", warehouse=f"file://{folder}/warehouse"
    )
    return catalog.load_table(tuple(identifier)).scan().to_arrow()


def same_rows(expected: Any, got: Any, label: str) -> None:
    """Every column of the Iceberg table equals the source's, both sorted by id."""
    import pyarrow.compute as pc

    require_equal(f"{label}: rows in the Iceberg table", "source", expected.num_rows, "iceberg", got.num_rows)
    require_equal(
        f"{label}: columns", "source", sorted(expected.column_names), "iceberg", sorted(got.column_names)
    )
    got = got.sort_by("id")
    for name in expected.column_names:
        left, right = expected[name], got[name].cast(expected[name].type)
        if not pc.all(pc.equal(left, right)).as_py():
            raise Mismatch(f"{label}: column {name!r} of the Iceberg table differs from the source rows")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--objects", type=int, default=200)
    parser.add_argument("--mb", type=float, default=200.0, help="total size of the objects in MB")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds after the warm-up")
    parser.add_argument(
        "--concurrency",
        type=int,
        help=f"the source's concurrency (default 50, the product's; gcs {GCS_CONCURRENCY}: GCS_CONCURRENCY)",
    )
    parser.add_argument("--rows-per-record", type=int, default=500)
    parser.add_argument("--commit-mb", type=float, default=128.0, help="ingest.commit_mb (default 128)")
    parser.add_argument("--quick", action="store_true", help="20 objects, 20 MB, 3 rounds")
    parser.add_argument("--store", choices=[*STORES, "all"], default="moto", help="the server (default moto)")
    parser.add_argument("--child", choices=["baseline", "ingest"], help=argparse.SUPPRESS)
    parser.add_argument("--endpoint", help=argparse.SUPPRESS)
    parser.add_argument("--folder", help=argparse.SUPPRESS)
    parser.add_argument("--namespace", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.quick:
        args.objects, args.mb, args.rounds = 20, 20.0, 3
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    return args


def print_cpu_budget(results: dict[str, list[Sample]]) -> None:
    """How busy the machine's cores were during each side: its process tree's CPU and the
    server's (on this machine too), over its wall time."""
    cores = os.cpu_count() or 1
    parts = []
    for name, runs in results.items():
        process = statistics.median(s.cpu for s in runs)
        server = statistics.median(s.stages.get(SERVER_CPU, 0.0) for s in runs)
        wall = statistics.median(s.wall for s in runs)
        parts.append(
            f"{name} {process:.2f} s + server {server:.2f} s over {wall:.2f} s wall"
            f" = {(process + server) / wall:.2f} of {cores} cores busy"
        )
    print(f"CPU (medians): {'; '.join(parts)}")


def store_type(store: str) -> str:
    return {"moto": "s3", "s3rver": "s3", "azurite": "azure", "gcs": "gcs"}[store]


def metastore_options(args: argparse.Namespace) -> dict[str, Any]:
    common = {"store": args.store, "concurrency": args.concurrency, "rows_per_record": args.rows_per_record}
    if args.store in ("moto", "s3rver"):
        key, secret = s3_keys(args.store)
        return {
            **common,
            "bucket": BUCKET,
            "region": REGION,
            "access_key_id": key,
            "secret_access_key": secret,
        }
    if args.store == "azurite":
        return {**common, "container": BUCKET, "account_name": AZURITE_ACCOUNT, "account_key": AZURITE_KEY}
    return {**common, "bucket": BUCKET, "anonymous": True, "project": GCS_PROJECT}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.child:
        if args.child == "baseline":
            child_baseline(args.store, args.endpoint)
        else:
            child_ingest(args.endpoint, args.folder, args.namespace, metastore_options(args), args.commit_mb)
        sys.stdout.flush()
        sys.stderr.flush()
        # google-cloud-storage's gRPC threads abort the interpreter at exit ("terminate called
        # without an active exception"): the child's report is out, leave without the teardown
        os._exit(0)

    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    for store in STORES if args.store == "all" else (args.store,):
        print(f"== {store} ==", flush=True)
        concurrency = args.concurrency or (GCS_CONCURRENCY if store == "gcs" else DEFAULT_CONCURRENCY)
        bench_store(argparse.Namespace(**{**vars(args), "store": store, "concurrency": concurrency}))
    return 0


def bench_store(args: argparse.Namespace) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    print_load("before")
    with serve(args.store) as (endpoint, put, server_cpu):
        per_object = int(args.mb * 1024 * 1024 / args.objects)
        tables, total = [], 0
        for index in range(args.objects):
            table = make_object(index, per_object)
            buffer = io.BytesIO()
            pq.write_table(table, buffer, compression="snappy")
            put(f"{PREFIX}part-{index:05d}.parquet", buffer.getvalue())
            tables.append(table)
            total += buffer.tell()
        source = pa.concat_tables(tables).sort_by("id")
        mb = total / 1024 / 1024
        print(
            f"{args.objects} objects, {mb:.1f} MB, {source.num_rows:,} rows on {args.store} at {endpoint}",
            flush=True,
        )

        me = [sys.executable, str(Path(__file__).resolve())]
        common = ["--store", args.store, "--endpoint", endpoint, "--concurrency", str(args.concurrency)]
        common += ["--rows-per-record", str(args.rows_per_record), "--commit-mb", str(args.commit_mb)]
        env = clean_env()
        with tempfile.TemporaryDirectory(prefix="floe-s3-ingest-") as tmp:
            folder = Path(tmp)
            logs = folder / "logs"
            logs.mkdir()
            namespaces: list[str] = []

            def served(command: list[str], log: Path) -> Sample:
                """The process's sample, with the server's CPU seconds while it ran as a stage."""
                before = server_cpu()
                sample = run_process([command], folder, env, log)
                sample.stages[SERVER_CPU] = server_cpu() - before
                return sample

            def baseline(label: str) -> Sample:
                sample = served([*me, "--child", "baseline", *common], logs / f"base-{label}.log")
                require_equal(
                    f"{label}: baseline rows", "source", source.num_rows, "baseline", sample.output["rows"]
                )
                return sample

            def ingest(label: str) -> Sample:
                namespaces.append(f"raw_s3_{label.replace('-', '_')}")
                command = [*me, "--child", "ingest", *common, "--folder", tmp, "--namespace", namespaces[-1]]
                sample = served(command, logs / f"ingest-{label}.log")
                same_rows(source, read_back(folder, sample.output["identifier"]), label)
                return sample

            results = alternate({"baseline": baseline, "ingest": ingest}, args.rounds)
            again = run_process(
                [[*me, "--child", "ingest", *common, "--folder", tmp, "--namespace", namespaces[-1]]],
                folder,
                env,
                logs / "no-change.log",
            )

        medians = print_summary(
            results, "baseline", target="baseline / ingest wall (throughput ratio) >= 0.8"
        )
        ratios = [b.wall / i.wall for b, i in zip(results["baseline"], results["ingest"], strict=True)]
        print(
            f"throughput: baseline {mb / medians['baseline']:.1f} MB/s,"
            f" ingest {mb / medians['ingest']:.1f} MB/s"
            f" (whole processes, imports included)"
        )
        last = results["ingest"][-1].output
        print(
            f"ratio ingest / baseline throughput: {statistics.median(ratios):.2f} (median of rounds"
            f" {', '.join(f'{r:.2f}' for r in ratios)}; target >= 0.8);"
            f" {last['commits']} commit(s) of"
            f" <= {args.commit_mb} MB, concurrency {args.concurrency},"
            f" rows_per_record {args.rows_per_record},"
            f" {last['batches']} batches"
        )
        work = [
            b.stages["list + download + decode"] / i.stages["ingest"]
            for b, i in zip(results["baseline"], results["ingest"], strict=True)
        ]
        print(
            f"the same ratio of the work stages alone (no imports, no client set-up; not the target's"
            f" figure): {statistics.median(work):.2f}"
        )
        print_cpu_budget(results)
        print(f"every ingest's Iceberg table read back: {source.num_rows:,} rows equal to the source's")
        verdict = "ok" if again.output["reads"] == 0 else "NOT 0"
        print(
            f"no-change run: {again.output['reads']} object read(s) (target 0: {verdict}),"
            f" {again.output['new']} new object(s), {again.wall:.2f} s (process)"
        )
    print_load("after")


if __name__ == "__main__":
    sys.exit(main())
