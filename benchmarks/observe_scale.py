"""How many Thrift calls and how long does one full observation of a big Hive Metastore take?

Usage: .venv/bin/python benchmarks/observe_scale.py [--tables 10000] [--databases 20]
       [--batch 100] [--pool 4] [--threads 4] [--repeat 3] [--rounds 3] [--mode both]
       [--uri thrift://host:9083] [--quick]

Without --uri a real Hive Metastore is started from the pyspark jars (tests/fixtures/
hive_metastore.py: in-memory Derby, 127.0.0.1, ephemeral port) and stopped before the load rounds; with
--uri an existing, empty-enough metastore is used (databases ``obs_00`` .. are created in it).

Setup (timed separately, not part of the comparison): ``seed_hms`` creates --databases databases
and --tables unpartitioned Parquet tables spread evenly over them, with several Thrift clients
in parallel (Hive 2.3 has no batched create_table).

What is measured, in the same run, on the same metastore, with equal parallelism on both sides:

  parallel    scan: ``HiveMetastoreConnector.scan(TableFilter(), batch_size=--batch)`` with
              ``pool_size`` --pool (one get_all_databases, one get_all_tables per database, one
              get_table_objects_by_name per batch, --pool batches in flight), against naive: the
              same listing, then one ``get_table`` per table over --pool threads sharing the
              same connector's pool;
  sequential  the same two with ``pool_size: 1`` and a plain loop: one call at a time on both.

--mode picks one comparison or both (default). Each side is warmed up by one full pass (JIT,
connections, the metastore's caches), then --repeat rounds (default 3) alternate the sides, the
order reversed every other round; medians and spread are printed. Every round checks that all
sides returned the same tables with the same data versions (else exit 3).

Printed: Thrift calls and wall seconds of each, the ratios naive / scan, and whether the targets
hold (calls <= 1 + databases + ceil(tables / batch); scan >= 10x faster than naive).

Then the code-location load with those tables as source assets, from cached state: a temp copy
of the demo project gets a ``hive`` metastore ``hms`` on this metastore (include ``<prefix>_*``,
batch --batch) beside the demo's own; its defs state is written as ``floe refresh`` writes it
(``write_state``, timed and printed). The metastore is then stopped (when this script started
it; with --uri it stays up) and a fresh process loading ``definitions.py`` is timed against fresh
processes loading as many bare ``AssetSpec``s (``benchmarks/_common.py``, shared with
``load_scale.py``: warm-up, --rounds alternating rounds, medians, stages, the same asset keys
checked). No connector may be built and no Thrift connection opened during the load (checked).
Target: floe / bare <= 1.5.

Absolute times depend on the machine (2 shared cores here): they are printed, never asserted.

``seed_hms(uri, tables, databases)`` is importable for other benchmarks.
"""

from __future__ import annotations

import argparse
import math
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from _common import (
    Sample,
    alternate,
    compare_load,
    connect_metastore,
    copy_demo_project,
    prepare_dbt_manifest,
    print_load,
    print_load_comparison,
    print_summary,
    require_equal,
    running_hive_metastore,
    state_module,
    table_filter,
    timed,
)

PARQUET = (
    "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe",
    "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat",
    "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat",
)
# The test fixture stops the JIT at C1 for a fast start; a benchmark wants a server's throughput.
SERVER_JVM_FLAGS = ["-XX:+UseSerialGC", "-Xmx1g", "-XX:-UsePerfData"]
COLUMNS = [("id", "bigint"), ("name", "string"), ("amount", "double"), ("ts", "timestamp")]


def database_names(databases: int, prefix: str = "obs") -> list[str]:
    return [f"{prefix}_{i:02d}" for i in range(databases)]


def table_names(tables: int, databases: int) -> list[list[str]]:
    """Per database, its table names: ``tables`` spread as evenly as possible."""
    per = [tables // databases + (1 if i < tables % databases else 0) for i in range(databases)]
    return [[f"t{j:05d}" for j in range(n)] for n in per]


def _client(uri: str, timeout_s: float = 120.0) -> tuple[Any, Any]:
    from hive_metastore.ThriftHiveMetastore import Client
    from thrift.protocol import TBinaryProtocol
    from thrift.transport import TSocket, TTransport

    parts = urlsplit(uri.split(",")[0])
    sock = TSocket.TSocket(parts.hostname, parts.port)
    sock.setTimeout(timeout_s * 1000)
    transport = TTransport.TBufferedTransport(sock)
    transport.open()
    return Client(TBinaryProtocol.TBinaryProtocolAccelerated(transport)), transport


def seed_hms(
    uri: str,
    tables: int,
    databases: int,
    *,
    warehouse: str | None = None,
    threads: int = 4,
    prefix: str = "obs",
) -> dict[str, list[str]]:
    """Create ``databases`` databases holding ``tables`` unpartitioned Parquet tables in total.

    Tables are external, at ``<warehouse>/<db>.db/<table>`` (the metastore's own warehouse when
    ``warehouse`` is None), with ``DO_NOT_UPDATE_STATS`` so the metastore does not list their
    folders. Work is split over ``threads`` Thrift connections. Returns {database: [tables]}.
    """
    from hive_metastore.ttypes import Database, FieldSchema, SerDeInfo, StorageDescriptor, Table

    names = dict(zip(database_names(databases, prefix), table_names(tables, databases), strict=True))
    client, transport = _client(uri)
    try:
        for db in names:
            location = f"{warehouse.rstrip('/')}/{db}.db" if warehouse else None
            client.create_database(Database(name=db, locationUri=location, parameters={}))
        locations = {db: client.get_database(db).locationUri for db in names}
    finally:
        transport.close()

    work = [(db, t) for db, ts in names.items() for t in ts]
    local = threading.local()
    opened: list[Any] = []
    lock = threading.Lock()

    def create(item: tuple[str, str]) -> None:
        if not hasattr(local, "client"):
            local.client, transport = _client(uri)
            with lock:
                opened.append(transport)
        db, name = item
        local.client.create_table(
            Table(
                tableName=name,
                dbName=db,
                owner="floe",
                tableType="EXTERNAL_TABLE",
                partitionKeys=[],
                parameters={"EXTERNAL": "TRUE", "DO_NOT_UPDATE_STATS": "true", "numRows": "100"},
                sd=StorageDescriptor(
                    cols=[FieldSchema(n, t, None) for n, t in COLUMNS],
                    location=f"{locations[db]}/{name}",
                    inputFormat=PARQUET[1],
                    outputFormat=PARQUET[2],
                    serdeInfo=SerDeInfo(
                        serializationLib=PARQUET[0], parameters={"serialization.format": "1"}
                    ),
                ),
            )
        )

    try:
        with ThreadPoolExecutor(max_workers=threads) as pool:
            for _ in pool.map(create, work):
                pass
    finally:
        for transport in opened:
            transport.close()
    return names


@contextmanager
def metastore(uri: str | None) -> Iterator[tuple[str, str | None]]:
    """(uri, warehouse) of the given metastore, or of one started from the pyspark jars."""
    if uri:
        yield uri, None
        return
    with tempfile.TemporaryDirectory(prefix="floe-observe-scale-") as workdir:
        started = time.perf_counter()
        with running_hive_metastore(Path(workdir), SERVER_JVM_FLAGS) as hms:
            print(f"metastore started in {time.perf_counter() - started:.1f}s at {hms.uri}")
            yield hms.uri, hms.warehouse_uri


def observe(uri: str, batch: int, prefix: str, pool: int, repeat: int, mode: str) -> dict[str, Any]:
    """The sides of the chosen comparisons, warmed up by a full pass, then ``repeat`` alternating rounds."""
    filter_ = table_filter(f"{prefix}_*")
    parallel: Any = connect_metastore("bench", "hive", {"uri": uri, "batch_size": batch, "pool_size": pool})
    sequential: Any = connect_metastore("bench", "hive", {"uri": uri, "batch_size": batch, "pool_size": 1})
    calls: dict[str, tuple[int, dict[str, int]]] = {}

    def listed(hms: Any) -> list[tuple[str, str]]:
        return [
            (db, name)
            for db in hms.list_namespaces()
            if filter_.may_match_namespace(db)
            for name in hms.list_tables(db)
            if filter_.matches(db, name)
        ]

    def scan(name: str, hms: Any) -> Callable[[str], Sample]:
        def run(_: str) -> Sample:
            hms.call_counts.clear()
            sample = timed(
                lambda: [(t.namespace, t.name, t.data_version) for t in hms.scan(filter_, batch_size=batch)]
            )
            calls[name] = (hms.api_calls, dict(hms.call_counts))
            return sample

        return run

    def naive(name: str, hms: Any, threads: int) -> Callable[[str], Sample]:
        def one(item: tuple[str, str]) -> tuple[str, str, Any]:
            table = hms.get_table(*item)
            return (table.namespace, table.name, table.data_version)

        def loop() -> list[tuple[str, str, Any]]:
            names = listed(hms)
            if threads == 1:
                return [one(item) for item in names]
            with ThreadPoolExecutor(max_workers=threads) as workers:
                return list(workers.map(one, names))

        def run(_: str) -> Sample:
            hms.call_counts.clear()
            sample = timed(loop)
            calls[name] = (hms.api_calls, dict(hms.call_counts))
            return sample

        return run

    sides: dict[str, Callable[[str], Sample]] = {}
    if mode in ("both", "parallel"):
        sides[f"scan x{pool}"] = scan(f"scan x{pool}", parallel)
        sides[f"naive x{pool}"] = naive(f"naive x{pool}", parallel, pool)
    if mode in ("both", "sequential"):
        sides["scan x1"] = scan("scan x1", sequential)
        sides["naive x1"] = naive("naive x1", sequential, 1)

    def check(label: str, done: dict[str, Sample]) -> None:
        first = next(iter(done))
        for name, sample in done.items():
            require_equal(
                f"{label}: tables and data versions", first, done[first].output, name, sample.output
            )

    with parallel, sequential:
        results = alternate(sides, repeat, check=check)
    return {"results": results, "calls": calls, "tables": len(next(iter(results.values()))[0].output)}


def demo_project_on(directory: Path, uri: str, prefix: str, batch: int) -> Any:
    """A copy of the demo project whose manifest adds the ``hive`` metastore ``hms`` at ``uri``."""
    from floe_dagster import load_manifest

    root = copy_demo_project(directory / "project")
    manifest = root / "manifests" / "manifest.yaml"
    hms = (
        "metastores:\n  hms:\n    type: hive\n"
        f'    config: {{uri: "{uri}", batch_size: {batch}}}\n'
        f'    include: ["{prefix}_*"]\n    batch_size: {batch}\n'
    )
    manifest.write_text(manifest.read_text().replace("metastores:\n", hms, 1))
    return load_manifest(manifest)


def refresh(loaded: Any) -> Any:
    """The defs state as ``floe refresh`` writes it (every metastore of the manifest listed)."""
    started = time.perf_counter()
    result = state_module().write_state(loaded)
    seconds = time.perf_counter() - started
    if result.failed:
        raise SystemExit(f"floe refresh failed: {result.failed}")
    listed = ", ".join(f"{m}: {len(result.state.tables(m)):,}" for m in result.state.metastores)
    size = result.path.stat().st_size / 1e6
    print(f"floe refresh: tables listed ({listed}) in {seconds:.1f}s; state {size:.1f} MB")
    return result.state


def refuses_connections(uri: str) -> bool:
    parts = urlsplit(uri.split(",")[0])
    try:
        socket.create_connection((parts.hostname, parts.port), timeout=2).close()
    except OSError:
        return True
    return False


def print_observation(result: dict[str, Any], args: argparse.Namespace) -> None:
    budget = 1 + args.databases + math.ceil(args.tables / args.batch)
    medians = print_summary(result["results"], next(iter(result["results"])))
    print()
    print(f"{'':10} {'tables':>7} {'thrift calls':>13} {'median s':>9}")
    for name, (count, _) in result["calls"].items():
        print(f"{name:10} {result['tables']:>7} {count:>13} {medians[name]:>9.2f}")
    rtt = args.rtt_ms / 1000
    for width, label in ((args.pool, "parallel"), (1, "sequential")):
        scan, naive = f"scan x{width}", f"naive x{width}"
        if scan not in medians:
            continue
        scan_calls, counts = result["calls"][scan]
        ratio = medians[naive] / medians[scan]
        print()
        print(f"{label} ({width} connection(s) on both sides):")
        print(f"  scan calls by method: {counts}")
        print(
            f"  calls: {scan_calls} <= 1 + databases + ceil(tables / batch) = {budget}:"
            f" {'yes' if scan_calls <= budget else 'NO'}"
        )
        print(f"  speed: naive / scan = {ratio:.1f}x (target >= 10x): {'yes' if ratio >= 10 else 'NO'}")
        naive_calls = result["calls"][naive][0]
        scan_remote = medians[scan] + scan_calls * rtt / width
        naive_remote = medians[naive] + naive_calls * rtt / width
        print(
            f"  estimate, not measured: with a {args.rtt_ms:g} ms round trip per call (a metastore across"
            f" the network), scan {scan_remote:.2f}s, naive {naive_remote:.2f}s,"
            f" {naive_remote / scan_remote:.1f}x"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tables", type=int, default=10_000)
    parser.add_argument("--databases", type=int, default=20)
    parser.add_argument("--batch", type=int, default=100, help="tables per get_table_objects_by_name")
    parser.add_argument("--threads", type=int, default=4, help="Thrift clients creating tables")
    parser.add_argument(
        "--pool", type=int, default=4, help="connections of the parallel comparison (both sides)"
    )
    parser.add_argument("--mode", choices=["both", "parallel", "sequential"], default="both")
    parser.add_argument("--quick", action="store_true", help="300 tables in 3 databases, 3 rounds")
    parser.add_argument("--uri", help="an existing metastore (default: start one from the pyspark jars)")
    parser.add_argument("--prefix", default="obs", help="database name prefix")
    parser.add_argument(
        "--repeat", type=int, default=3, help="observation rounds after the warm-up (alternating); medians"
    )
    parser.add_argument(
        "--rounds", type=int, default=3, help="code-location load rounds after the warm-up (alternating)"
    )
    parser.add_argument(
        "--rtt-ms",
        type=float,
        default=1.0,
        help="network round trip to model for a remote metastore (an estimate, printed apart)",
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.tables, args.databases, args.repeat, args.rounds = 300, 3, 3, 3
    print_load("before")

    with tempfile.TemporaryDirectory(prefix="floe-observe-scale-project-") as project_dir:
        with metastore(args.uri) as (uri, warehouse):
            started = time.perf_counter()
            seed_hms(
                uri,
                args.tables,
                args.databases,
                warehouse=warehouse,
                threads=args.threads,
                prefix=args.prefix,
            )
            setup_s = time.perf_counter() - started
            print(
                f"setup: {args.tables} tables in {args.databases} databases created in {setup_s:.1f}s"
                f" ({args.tables / setup_s:.0f} tables/s, {args.threads} threads)"
            )
            result = observe(uri, args.batch, args.prefix, args.pool, args.repeat, args.mode)
            print_observation(result, args)

            print()
            loaded = demo_project_on(Path(project_dir), uri, args.prefix, args.batch)
            refresh(loaded)
        if args.uri:
            print(f"metastore {uri} left running (--uri); the load rounds must not call it (checked)")
        elif refuses_connections(uri):
            print(f"metastore stopped: {uri} refuses connections during the load rounds")
        else:
            raise SystemExit(f"the metastore at {uri} still answers after it was stopped")

        prepare_dbt_manifest(loaded)  # what a deploy does once (dbt parse), not part of a load
        print("code-location load of definitions.py from cached state (fresh processes):", flush=True)
        load = compare_load(loaded.path.parent.parent, args.rounds, Path(project_dir))
        print_load_comparison(load)
        print("metastore calls during the load rounds: 0")
    print_load("after")
    return 0


if __name__ == "__main__":
    sys.exit(main())
