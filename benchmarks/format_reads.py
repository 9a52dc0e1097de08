"""ORC and Delta tables read through floe's source views against the same query on the same files
by DuckDB / PyArrow directly.

    .venv/bin/python benchmarks/format_reads.py            # 4M rows per table, 3 rounds
    .venv/bin/python benchmarks/format_reads.py --quick    # 400k rows, 3 rounds

Writes, in a temporary folder, one ORC table (PyArrow, Hive-style ``ds=`` partitions, one file
each) and one Delta table (delta-rs, partitioned by ``ds``) of the same rows (``amount`` in
eighths, so sums are exact in any order), then times a dbt-model-like query (a filter on
the partition column and on a data column, a projection of two columns, an aggregate) both
ways, each in this process on a fresh in-memory DuckDB connection per run:

* ``orc-view``: the view floe creates for a dbt source over the ORC table (``readers/orc.py``:
  a PyArrow dataset registered on the connection), view creation included; ``orc-direct``: the
  same query over ``pyarrow.dataset.dataset(path, format="orc", partitioning="hive")`` handed to
  DuckDB by hand;
* ``delta-view``: floe's view (``readers/delta.py``, the delta extension, loading it included);
  ``delta-direct``: ``delta_scan('<path>')`` in DuckDB with the extension already loaded.

A warm-up of each side, then ``--rounds`` rounds alternating the order; every run's result is
compared with the other side's (a mismatch exits with status 3). Printed: per round and as
medians, wall and CPU seconds, the ratio view / direct (target <= 1.2) and the load average
before and after. Numbers, never asserted.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as bench

DAYS = 20
QUERY = (
    "SELECT ds, count(*) AS n, sum(amount) AS amount FROM {relation}"
    " WHERE ds >= '2024-01-11' AND id % 3 = 0 GROUP BY ds ORDER BY ds"
)


def write_tables(root: Path, rows: int) -> tuple[Path, Path]:
    import numpy as np
    import pyarrow as pa
    import pyarrow.orc as orc
    from deltalake import write_deltalake

    per_day = rows // DAYS
    orc_root, delta_root = root / "orders_orc", root / "orders_delta"
    for day in range(DAYS):
        ds = f"2024-01-{day + 1:02d}"
        ids = np.arange(day * per_day, (day + 1) * per_day, dtype=np.int64)
        table = pa.table(
            {"id": ids, "amount": ids.astype(np.float64) / 8, "label": pa.array(ids.astype(str))}
        )
        folder = orc_root / f"ds={ds}"
        folder.mkdir(parents=True)
        orc.write_table(table, folder / "000000_0")
        write_deltalake(
            str(delta_root),
            table.append_column("ds", pa.array([ds] * len(ids))),
            mode="append",
            partition_by=["ds"],
        )
    return orc_root, delta_root


def run_query(con: Any, relation: str) -> list[tuple[Any, ...]]:
    return [
        tuple(round(v, 6) if isinstance(v, float) else v for v in row)
        for row in con.sql(QUERY.format(relation=relation)).fetchall()
    ]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=4_000_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="400k rows")
    args = parser.parse_args()
    rows = 400_000 if args.quick else args.rows
    bench.print_load("before")
    with tempfile.TemporaryDirectory(prefix="floe-format-reads-") as tmp:
        orc_root, delta_root = write_tables(Path(tmp), rows)
        bench.duckdb_with_extensions(["delta"]).close()  # the offline extension folder, filled once

        def orc_view(_: str) -> bench.Sample:
            def call() -> Any:
                con = bench.duckdb_with_extensions([])
                bench.format_source_view(con, "orders", "lake.orders_orc", "orc", str(orc_root), ["ds"])
                return run_query(con, "orders")

            return bench.timed(call)

        def orc_direct(_: str) -> bench.Sample:
            def call() -> Any:
                import pyarrow.dataset as ds

                con = bench.duckdb_with_extensions([])
                dataset = ds.dataset(str(orc_root), format="orc", partitioning="hive")
                con.register("orders", dataset)
                return run_query(con, "orders")

            return bench.timed(call)

        def delta_view(_: str) -> bench.Sample:
            def call() -> Any:
                con = bench.duckdb_with_extensions([])
                bench.format_source_view(con, "orders", "lake.orders_delta", "delta", str(delta_root))
                return run_query(con, "orders")

            return bench.timed(call)

        def delta_direct(_: str) -> bench.Sample:
            def call() -> Any:
                con = bench.duckdb_with_extensions(["delta"])
                return run_query(con, f"delta_scan('{delta_root}')")

            return bench.timed(call)

        def check(pair: tuple[str, str]) -> Any:
            def compare(label: str, done: dict[str, bench.Sample]) -> None:
                left, right = pair
                bench.require_equal(f"{label} rows", left, done[left].output, right, done[right].output)

            return compare

        print(f"\n{rows:,} rows, {DAYS} partitions; query: {QUERY.format(relation='<table>')}\n")
        orc = bench.alternate(
            {"orc-direct": orc_direct, "orc-view": orc_view},
            args.rounds,
            check=check(("orc-direct", "orc-view")),
        )
        bench.print_summary(orc, "orc-direct", target="orc-view / orc-direct <= 1.2")
        print()
        delta = bench.alternate(
            {"delta-direct": delta_direct, "delta-view": delta_view},
            args.rounds,
            check=check(("delta-direct", "delta-view")),
        )
        bench.print_summary(delta, "delta-direct", target="delta-view / delta-direct <= 1.2")
    print()
    bench.print_load("after")


if __name__ == "__main__":
    main()
