"""How long does `floe health` take per engine, next to a bare driver connect to the same server?

Usage: .venv/bin/python benchmarks/health_latency.py [--rounds N] [--checks N] [--quick]

The engines that run on this machine, each on a real server started here (the test fixtures'
start functions): DuckDB (embedded), PostgreSQL 15 (and Redshift's plugin over the same wire
protocol), Doris and StarRocks over MariaDB's MySQL protocol (their plugins' connection check),
ClickHouse over the native protocol on Debian's 18.16. TiDB and OceanBase are left out: their
dbt adapters do not install beside the pins, so their health check reports the missing adapter
without connecting (docs/engines.md).

Per engine, two sides do the same work, a new connection and a trivial query, ``--checks`` times
per sample:

  floe   one row of `floe health`: ``ComputeResource.for_manifest(loaded, name).validate()``, the
         call ``floe health`` makes per compute (the dbt-package check, the telemetry span,
         the plugin's ``validate_connection``: TCP pre-check where the plugin has one, connect,
         ``SELECT 1`` / ``SELECT VERSION()``, close) on a manifest that approves every engine;
  bare   the driver alone: ``duckdb.connect``, ``psycopg2.connect``, ``mysql.connector.connect``,
         ``clickhouse_driver.Client`` + the same query, then close.

Both must succeed every time (a failed check exits with MISMATCH). Each side runs once untimed,
then ``--rounds`` rounds alternate them (order reversed every other round); the table shows the
median milliseconds per check and floe / bare. Last, one real `floe health` process runs on the
same manifest and its MS column is printed (what the user reads). Nothing is asserted.
"""

from __future__ import annotations

import argparse
import contextlib
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from _common import (
    REPO,
    VENV_BIN,
    Mismatch,
    Sample,
    alternate,
    compute_health_check,
    load_manifest,
    median,
    print_load,
    spread,
)

MANIFEST = """\
apiVersion: floe.dev/v1
kind: Manifest
metadata:
  name: health-latency
catalogs:
  lakehouse:
    type: sql
    config:
      uri: sqlite:///{root}/catalog.db
      warehouse: {root}/warehouse
computes:
  approved: [{approved}]
  default: duckdb
  targets:
{targets}
transforms:
  dbt_project: {dbt_project}
"""


def target(name: str, type_: str, config: dict[str, Any]) -> str:
    lines = [f"    {name}:", f"      type: {type_}", "      config:"]
    lines += [
        f"        {key}: {value!r}" if isinstance(value, str) else f"        {key}: {value}"
        for key, value in config.items()
    ]
    return "\n".join(lines)


def bare_duckdb(path: str) -> Callable[[], object]:
    def connect() -> object:
        import duckdb

        con = duckdb.connect(path)
        try:
            return con.execute("SELECT 1").fetchall()
        finally:
            con.close()

    return connect


def bare_postgres(server: Any) -> Callable[[], object]:
    def connect() -> object:
        import psycopg2

        con = psycopg2.connect(
            host=server.host,
            port=server.port,
            user=server.user,
            password=server.password,
            dbname=server.database,
            connect_timeout=10,
        )
        try:
            with con.cursor() as cur:
                cur.execute("SELECT 1")
                return cur.fetchall()
        finally:
            con.close()

    return connect


def bare_mysql(server: Any) -> Callable[[], object]:
    def connect() -> object:
        import mysql.connector

        con = mysql.connector.connect(
            host=server.host,
            port=server.port,
            user=server.user,
            password=server.password,
            connection_timeout=10,
            charset="utf8mb4",
            use_pure=True,
        )
        try:
            cur = con.cursor()
            cur.execute("SELECT VERSION()")
            return cur.fetchall()
        finally:
            con.close()

    return connect


def bare_clickhouse(server: Any) -> Callable[[], object]:
    def connect() -> object:
        from clickhouse_driver import Client

        client = Client(
            host=server.host,
            port=server.native_port,
            user=server.user,
            password=server.password,
            connect_timeout=10,
        )
        try:
            return client.execute("SELECT 1")
        finally:
            client.disconnect()

    return connect


@contextlib.contextmanager
def servers() -> Iterator[dict[str, Any]]:
    """The fixtures' servers, started once for the whole benchmark (each skipped when missing)."""
    from tests.fixtures.clickhouse import start_clickhouse
    from tests.fixtures.mariadb import start_mariadb
    from tests.fixtures.postgres import start_postgres

    with contextlib.ExitStack() as stack:
        found: dict[str, Any] = {}
        for name, start in (
            ("postgres", start_postgres),
            ("mariadb", start_mariadb),
            ("clickhouse", start_clickhouse),
        ):
            try:
                found[name] = stack.enter_context(contextlib.contextmanager(start)())
            except BaseException as exc:  # pytest.skip outside pytest is an exception too
                print(
                    f"{name}: not started ({type(exc).__name__}: {exc}); its engines are left out", flush=True
                )
        yield found


def engines(root: Path, found: dict[str, Any]) -> dict[str, tuple[str, dict[str, Any], Callable[[], object]]]:
    """name -> (compute type, config, bare driver call)."""
    db = str(root / "health.duckdb")
    chosen: dict[str, tuple[str, dict[str, Any], Callable[[], object]]] = {
        "duckdb": ("duckdb", {"path": db, "threads": 1}, bare_duckdb(db)),
    }
    if "postgres" in found:
        pg = found["postgres"]
        wire = {
            "host": pg.host,
            "port": pg.port,
            "user": pg.user,
            "password": pg.password,
            "dbname": pg.database,
        }
        chosen["postgres"] = ("postgres", wire, bare_postgres(pg))
        chosen["redshift"] = ("redshift", {**wire, "sslmode": "disable"}, bare_postgres(pg))
    if "mariadb" in found:
        md = found["mariadb"]
        mysql = {
            "host": md.host,
            "port": md.port,
            "user": md.user,
            "password": md.password,
            "schema": "mysql",
        }
        chosen["doris"] = ("doris", mysql, bare_mysql(md))
        chosen["starrocks"] = ("starrocks", mysql, bare_mysql(md))
    if "clickhouse" in found:
        ch = found["clickhouse"]
        native = {
            "driver": "native",
            "host": ch.host,
            "port": ch.native_port,
            "user": ch.user,
            "password": ch.password,
            "schema": "default",
        }
        chosen["clickhouse"] = ("clickhouse", native, bare_clickhouse(ch))
    return chosen


def sampler(call: Callable[[], object], checks: int) -> Callable[[str], Sample]:
    def run(label: str) -> Sample:
        times: list[float] = []
        for _ in range(checks):
            started = time.perf_counter()
            outcome = call()
            times.append(time.perf_counter() - started)
            if outcome is False:
                raise Mismatch(f"{label}: a check failed")
        return Sample(wall=median(times))  # seconds per check (the table prints milliseconds)

    return run


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--checks", type=int, default=20, help="checks per sample (its median is the sample)")
    parser.add_argument("--quick", action="store_true", help="3 rounds of 10 checks")
    args = parser.parse_args()
    if args.quick:
        args.rounds, args.checks = 3, 10
    before = print_load("before")
    with tempfile.TemporaryDirectory(prefix="floe-health-bench-") as tmp, servers() as found:
        root = Path(tmp)
        chosen = engines(root, found)
        manifest = root / "manifest.yaml"
        manifest.write_text(
            MANIFEST.format(
                root=root,
                approved=", ".join(chosen),
                targets="\n".join(target(n, t, c) for n, (t, c, _) in chosen.items()),
                dbt_project=REPO / "dbt_project",
            )
        )
        loaded = load_manifest(manifest)
        rows: list[tuple[str, float, str, float, str, float]] = []
        for name, (_type, _config, bare) in chosen.items():
            print(f"\n== {name}", flush=True)

            def floe_check(name: str = name) -> object:
                result = compute_health_check(loaded, name)
                if not result.ok:
                    raise Mismatch(f"floe health of {name} failed: {result.message}")
                return True

            results = alternate(
                {"floe": sampler(floe_check, args.checks), "bare": sampler(bare, args.checks)}, args.rounds
            )
            floe_runs = [s.wall * 1000 for s in results["floe"]]
            bare_runs = [s.wall * 1000 for s in results["bare"]]
            floe_ms, bare_ms = median(floe_runs), median(bare_runs)
            rows.append(
                (
                    name,
                    floe_ms,
                    spread(floe_runs),
                    bare_ms,
                    spread(bare_runs),
                    floe_ms / bare_ms if bare_ms else float("nan"),
                )
            )
        print(f"\nmedian ms per check ({args.rounds} rounds of {args.checks} checks each, after a warm-up)")
        print(
            f"{'engine':<11} {'floe health':>11} {'spread':>22} {'bare driver':>12} {'spread':>22}  floe/bare"
        )
        for name, floe_ms, floe_spread, bare_ms, bare_spread, ratio in rows:
            print(
                f"{name:<11} {floe_ms:>11.2f} {floe_spread:>22} {bare_ms:>12.2f} {bare_spread:>22}"
                f"  {ratio:.2f}x"
            )
        # what the user reads: one real `floe health` process on the same manifest
        started = time.perf_counter()
        health = subprocess.run(
            [str(VENV_BIN / "floe"), "health", str(manifest)], capture_output=True, text=True, timeout=600
        )
        wall = time.perf_counter() - started
        print(
            f"\n`floe health` as a fresh process: exit {health.returncode}, {wall:.2f} s wall"
            " (imports included)"
        )
        print(health.stdout.rstrip())
        if health.returncode != 0:
            print(health.stderr[-2000:], file=sys.stderr)
    after = print_load("after")
    print(f"(load average before {before}, after {after})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
