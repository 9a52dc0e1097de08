"""Code-location load time with 10,000 metastore tables, from cached defs state.

Side by side in one process, alternating, median of ``--rounds``:

- floe:  ``build_definitions(manifest)`` of the demo project whose defs state lists
         ``--tables`` tables (over ``--namespaces`` namespaces) in its metastore, plus the
         3 demo tables and the dbt models reading them;
- bare:  ``Definitions(assets=[AssetSpec(key) for key in the same keys])``.

Each load is what a code server does with a definitions module: build the ``Definitions``,
resolve the repository (asset graph, jobs, sensors) and take its snapshot
(``RepositorySnap.from_def``), which is what the webserver and daemon receive. Imports are warm
in both (measured once before the rounds). The state file is synthesised (columns, location,
format, partition keys and count, DDL time per table); nothing is listed, and no metastore is
reachable during the rounds: the load must not need one.

    .venv/bin/python benchmarks/load_scale.py [--tables 10000] [--namespaces 20] [--rounds 5]

Target: floe / bare <= 1.5.
"""

from __future__ import annotations

import argparse
import gc
import logging
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def synthesise_state(loaded, tables: int, namespaces: int):  # type: ignore[no-untyped-def]
    from floe_dagster.defs.state import (
        MetastoreState,
        SourcesState,
        TableRecord,
        metastore_fingerprint,
    )

    now = time.time()
    records: list[TableRecord] = []
    for raw in ("customers", "orders", "payments"):  # the demo's tables, read by dbt
        records.append(table_record("raw", raw, now, partitioned=False))
    for i in range(tables):
        namespace = f"db_{i % namespaces:02d}"
        records.append(table_record(namespace, f"table_{i:05d}", now, partitioned=i % 4 == 0))
    name = next(iter(loaded.manifest.metastores))
    state = SourcesState(manifest=loaded.name, environment=loaded.environment)
    state.metastores[name] = MetastoreState(
        type=loaded.manifest.metastores[name].type,
        fingerprint=metastore_fingerprint(loaded, name),
        refreshed_at=now,
        tables=records,
    )
    return state


def table_record(namespace: str, name: str, now: float, partitioned: bool):  # type: ignore[no-untyped-def]
    columns = [
        ["id", "bigint", "primary key"],
        ["customer_id", "bigint", None],
        ["amount", "decimal(18,2)", None],
        ["status", "string", None],
        ["created_at", "timestamp", None],
        ["updated_at", "timestamp", None],
        ["payload", "string", None],
        ["score", "double", None],
    ]
    return {
        "namespace": namespace,
        "name": name,
        "format": "parquet",
        "location": f"s3://warehouse/{namespace}/{name}",
        "columns": columns,
        "partition_keys": [["dt", "string"]] if partitioned else [],
        "partition_count": 365 if partitioned else 0,
        "last_ddl_time": now,
        "table_type": "EXTERNAL",
    }


def timed(load: Callable[[], int]) -> tuple[float, int]:
    gc.collect()
    started = time.perf_counter()
    count = load()
    return time.perf_counter() - started, count


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tables", type=int, default=10_000)
    parser.add_argument("--namespaces", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    logging.getLogger("floe_dagster").setLevel(logging.ERROR)

    from dagster import AssetKey, AssetSpec, Definitions
    from dagster._core.remote_representation.external_data import RepositorySnap

    import floe_dagster.defs.state as state_module
    from floe_dagster import build_definitions, load_manifest
    from floe_dagster.defs.state import default_state_path, save_state
    from floe_dagster.transforms.dbt_manifest import prepare_dbt_manifest
    from tests.helpers import copy_demo_project

    with tempfile.TemporaryDirectory() as tmp:
        root = copy_demo_project(Path(tmp) / "project")
        loaded = load_manifest(root / "manifests" / "manifest.yaml")
        print(f"preparing: dbt parse of the demo project, state with {args.tables:,} tables ...")
        prepare_dbt_manifest(loaded)
        state = synthesise_state(loaded, args.tables, args.namespaces)
        path = save_state(state, default_state_path(loaded))
        metastore = next(iter(state.metastores))
        keys = [AssetKey([metastore, *t["namespace"].split("."), t["name"]]) for t in state.tables(metastore)]

        def no_metastore(*_: object, **__: object) -> None:
            raise AssertionError("the load called the metastore")

        state_module.build_metastore = no_metastore  # type: ignore[assignment]

        def floe() -> int:
            defs = build_definitions(loaded.path)
            repository = defs.get_repository_def()
            RepositorySnap.from_def(repository)
            return len(repository.asset_graph.get_all_asset_keys())

        def bare() -> int:
            defs = Definitions(assets=[AssetSpec(key) for key in keys])
            repository = defs.get_repository_def()
            RepositorySnap.from_def(repository)
            return len(repository.asset_graph.get_all_asset_keys())

        floe(), bare()  # warm imports and caches
        floe_times, bare_times = [], []
        for _ in range(args.rounds):
            seconds, floe_assets = timed(floe)
            floe_times.append(seconds)
            seconds, bare_assets = timed(bare)
            bare_times.append(seconds)

        floe_median, bare_median = statistics.median(floe_times), statistics.median(bare_times)
        print(f"state file: {path.stat().st_size / 1e6:.1f} MB ({len(keys):,} tables)")
        print(f"{'':6} {'assets':>7} {'median s':>9}  rounds")
        print(f"{'floe':6} {floe_assets:>7,} {floe_median:>9.2f}  {' '.join(f'{t:.2f}' for t in floe_times)}")
        print(f"{'bare':6} {bare_assets:>7,} {bare_median:>9.2f}  {' '.join(f'{t:.2f}' for t in bare_times)}")
        ratio = floe_median / bare_median
        print(f"ratio floe / bare: {ratio:.2f}x (target <= 1.5x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
