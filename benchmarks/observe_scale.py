"""How many Thrift calls and how long does one full observation of a big Hive Metastore take?

Usage: .venv/bin/python benchmarks/observe_scale.py [--tables 10000] [--databases 20]
       [--batch 100] [--threads 4] [--rounds 5] [--uri thrift://host:9083]

Without --uri a real Hive Metastore is started from the pyspark jars (tests/fixtures/
hive_metastore.py: in-memory Derby, 127.0.0.1, ephemeral port) and stopped before the load rounds; with
--uri an existing, empty-enough metastore is used (databases ``obs_00`` .. are created in it).

Setup (timed separately, not part of the comparison): ``seed_hms`` creates --databases databases
and --tables unpartitioned Parquet tables spread evenly over them, with several Thrift clients
in parallel (Hive 2.3 has no batched create_table).

What is measured, in the same run, on the same metastore:

  scan    ``HiveMetastoreConnector.scan(TableFilter(), batch_size=--batch)``: one
          get_all_databases, one get_all_tables per database, one get_table_objects_by_name per
          batch, every table mapped to the neutral model with its data version;
  naive   the same listing, then one ``get_table`` per table (the same connector and mapping).

Both paths are warmed up on the first database first (JIT, connections); with --repeat N the
rounds alternate scan and naive and the medians are compared.

Printed: Thrift calls and wall seconds of each, the ratio naive / scan, and whether the targets
hold (calls <= 1 + databases + ceil(tables / batch); scan >= 10x faster than naive).

Then the code-location load with those tables as source assets, from cached state: a temp copy
of the demo project gets a ``hive`` metastore ``hms`` on this metastore (include ``<prefix>_*``,
batch --batch) beside the demo's own; its defs state is written as ``floe refresh`` writes it
(``write_state``, timed and printed). The metastore is then stopped (when this script started
it; with --uri it stays up) and ``build_definitions`` of that manifest (what ``definitions.py``
runs) is timed against a ``Definitions`` of as many bare ``AssetSpec``s, --rounds alternating
rounds, medians (``benchmarks/_common.py``, shared with ``load_scale.py``). No connector may be
built and no Thrift connection opened during the rounds (checked). Target: floe / bare <= 1.5.

Absolute times depend on the machine (2 shared cores here): they are printed, never asserted.

``seed_hms(uri, tables, databases)`` is importable for other benchmarks.
"""

from __future__ import annotations

import argparse
import math
import socket
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from _common import compare_load, no_metastore_calls, print_load, quiet_loads, state_asset_keys

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
    from tests.fixtures.hive_metastore import running_hive_metastore

    with tempfile.TemporaryDirectory(prefix="floe-observe-scale-") as workdir:
        started = time.perf_counter()
        with running_hive_metastore(Path(workdir), jvm_flags=SERVER_JVM_FLAGS) as hms:
            print(f"metastore started in {time.perf_counter() - started:.1f}s at {hms.uri}")
            yield hms.uri, hms.warehouse_uri


def observe(uri: str, batch: int, prefix: str, repeat: int = 1) -> dict[str, Any]:
    """Warm both paths up on the first database, then time scan and naive ``repeat`` times, alternating."""
    from floe_dagster.plugins.factory import connect_metastore
    from floe_dagster.plugins.metastore import TableFilter

    filter_ = TableFilter(include=(f"{prefix}_*",))
    hms: Any = connect_metastore("bench", "hive", {"uri": uri, "batch_size": max(batch, 1)}, environ={})

    def naive_pass(only: TableFilter) -> list[Any]:
        found = []
        for db in hms.list_namespaces():
            if only.may_match_namespace(db):
                found += [hms.get_table(db, name) for name in hms.list_tables(db)]
        return found

    with hms:
        warm = TableFilter(include=(f"{prefix}_00.*",))
        list(hms.scan(warm, batch_size=batch))  # JIT, connections and caches warm for both paths
        naive_pass(warm)
        scans, naives = [], []
        for _ in range(repeat):
            hms.call_counts.clear()
            started = time.perf_counter()
            scanned = list(hms.scan(filter_, batch_size=batch))
            scans.append(time.perf_counter() - started)
            scan_calls, scan_counts = hms.api_calls, dict(hms.call_counts)

            hms.call_counts.clear()
            started = time.perf_counter()
            naive = naive_pass(filter_)
            naives.append(time.perf_counter() - started)
            naive_calls = hms.api_calls
    assert [t.data_version for t in scanned] == [t.data_version for t in naive], "scan and naive disagree"
    return {
        "tables": len(scanned),
        "scan_s": statistics.median(scans),
        "scan_runs": scans,
        "scan_calls": scan_calls,
        "scan_counts": scan_counts,
        "naive_s": statistics.median(naives),
        "naive_runs": naives,
        "naive_calls": naive_calls,
    }


def demo_project_on(directory: Path, uri: str, prefix: str, batch: int) -> Any:
    """A copy of the demo project whose manifest adds the ``hive`` metastore ``hms`` at ``uri``."""
    from floe_dagster import load_manifest
    from tests.helpers import copy_demo_project

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
    from floe_dagster.metastores.state import write_state

    started = time.perf_counter()
    result = write_state(loaded)
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
    ratio = result["naive_s"] / result["scan_s"]
    print()
    print(f"{'':8} {'tables':>7} {'thrift calls':>13} {'wall s':>8}")
    print(f"{'scan':8} {result['tables']:>7} {result['scan_calls']:>13} {result['scan_s']:>8.2f}")
    print(f"{'naive':8} {result['tables']:>7} {result['naive_calls']:>13} {result['naive_s']:>8.2f}")
    print()
    print(f"scan calls by method: {result['scan_counts']}")
    runs = ", ".join(
        f"{a:.2f}/{b:.2f}" for a, b in zip(result["scan_runs"], result["naive_runs"], strict=True)
    )
    print(f"rounds (scan/naive s): {runs}; medians above")
    print(
        f"calls: {result['scan_calls']} <= 1 + databases + ceil(tables / batch) = {budget}:"
        f" {'yes' if result['scan_calls'] <= budget else 'NO'}"
    )
    print(f"speed: naive / scan = {ratio:.1f}x (target >= 10x): {'yes' if ratio >= 10 else 'NO'}")
    rtt = args.rtt_ms / 1000
    scan_remote = result["scan_s"] + result["scan_calls"] * rtt
    naive_remote = result["naive_s"] + result["naive_calls"] * rtt
    print(
        f"estimate, not measured: with a {args.rtt_ms:g} ms round trip per call (a metastore across the"
        f" network), scan {scan_remote:.2f}s, naive {naive_remote:.2f}s, {naive_remote / scan_remote:.1f}x"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tables", type=int, default=10_000)
    parser.add_argument("--databases", type=int, default=20)
    parser.add_argument("--batch", type=int, default=100, help="tables per get_table_objects_by_name")
    parser.add_argument("--threads", type=int, default=4, help="Thrift clients creating tables")
    parser.add_argument("--uri", help="an existing metastore (default: start one from the pyspark jars)")
    parser.add_argument("--prefix", default="obs", help="database name prefix")
    parser.add_argument(
        "--repeat", type=int, default=1, help="timed rounds (scan, naive alternating); medians"
    )
    parser.add_argument(
        "--rounds", type=int, default=5, help="code-location load rounds (floe, bare alternating); medians"
    )
    parser.add_argument(
        "--rtt-ms",
        type=float,
        default=1.0,
        help="network round trip to model for a remote metastore (an estimate, printed apart)",
    )
    args = parser.parse_args(argv)
    quiet_loads()

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
            result = observe(uri, args.batch, args.prefix, args.repeat)
            print_observation(result, args)

            print()
            loaded = demo_project_on(Path(project_dir), uri, args.prefix, args.batch)
            state = refresh(loaded)
        if args.uri:
            print(f"metastore {uri} left running (--uri); the load rounds must not call it (checked)")
        elif refuses_connections(uri):
            print(f"metastore stopped: {uri} refuses connections during the load rounds")
        else:
            raise SystemExit(f"the metastore at {uri} still answers after it was stopped")

        from floe_dagster.transforms.dbt_manifest import prepare_dbt_manifest

        prepare_dbt_manifest(loaded)  # what a deploy does once (dbt parse), not part of a load
        keys = state_asset_keys(state)
        print(f"code-location load of definitions.py with {len(keys):,} source tables from cached state:")
        with no_metastore_calls() as calls:
            load = compare_load(loaded.path, keys, args.rounds)
        assert not calls, f"the load called the metastore: {calls}"
        print_load(load)
        print("metastore calls during the load rounds: 0")
    return 0


if __name__ == "__main__":
    sys.exit(main())
