"""Code-location load time with 10,000 metastore tables, from cached defs state.

Side by side in one process, alternating, median of ``--rounds``:

- floe:  ``build_definitions(manifest)`` of the demo project whose defs state lists
         ``--tables`` tables (over ``--namespaces`` namespaces) in its metastore, plus the
         3 demo tables and the dbt models reading them;
- bare:  ``Definitions(assets=[AssetSpec(key) for key in the same keys])``.

Each load is what a code server does with a definitions module (``benchmarks/_common.py``:
build, repository, snapshot; imports warm). This is the quick synthetic variant: the state file
is synthesised (columns, location, format, partition keys and count, DDL time per table) and
nothing is listed. ``benchmarks/observe_scale.py`` measures the same load from the state
``floe refresh`` writes for a real Hive Metastore. During the rounds no metastore connector may
be built and no Thrift connection opened (checked): the load must not need one.

    .venv/bin/python benchmarks/load_scale.py [--tables 10000] [--namespaces 20] [--rounds 5]

Target: floe / bare <= 1.5.

Also measured in the same rounds (issue 15): Dagster's own floor for the same source assets with
the same metadata (``floor``: floe's source specs, as built by floe, as one
``multi_observable_source_asset`` per metastore, with no job, sensor or check), in wall and CPU
seconds. Target: floe / floor <= 1.3 (CPU medians; the machine is shared, CPU seconds swing less).
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from _common import LoadComparison, no_metastore_calls, print_load, quiet_loads, state_asset_keys

FLOOR_TARGET = 1.3  # floe / Dagster's floor with the same metadata


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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tables", type=int, default=10_000)
    parser.add_argument("--namespaces", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    quiet_loads()

    from floe_dagster import load_manifest
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
        keys = state_asset_keys(state)
        print(f"load average before: {load_average()}")
        with no_metastore_calls() as calls:
            result, cpu = compare_with_floor(loaded.path, keys, args.rounds)
        assert not calls, f"the load called the metastore: {calls}"
        print(f"load average after:  {load_average()}")
        print(f"state file: {path.stat().st_size / 1e6:.1f} MB ({len(keys):,} tables)")
        print_load(result)
        print_floor(result, cpu)
    return 0


def load_average() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def snapshot(defs: Any) -> int:
    """What a code server does with the Definitions: resolve the repository, take its snapshot."""
    from dagster._core.remote_representation.external_data import RepositorySnap

    repository = defs.get_repository_def()
    RepositorySnap.from_def(repository)
    return len(repository.asset_graph.get_all_asset_keys())


def same_metadata_floor(manifest: Path) -> Callable[[], Any]:
    """Dagster's own floor for floe's source assets with the same metadata: the specs floe builds
    (key, group, kinds, description, metadata, freshness policy), as one
    ``multi_observable_source_asset`` per metastore, and nothing else (no job, sensor, check)."""
    from dagster import AssetSpec, Definitions, multi_observable_source_asset

    from floe_dagster import build_definitions

    defs = build_definitions(manifest)
    groups = [
        [
            dict(
                key=s.key,
                group_name=s.group_name,
                kinds=set(s.kinds),
                description=s.description,
                metadata=dict(s.metadata),
                freshness_policy=s.freshness_policy,
            )
            for s in assets_def.specs
        ]
        for assets_def in defs.assets or []
        if getattr(assets_def, "is_observable", False)
    ]

    def floor() -> Any:
        observables = []
        for index, specs in enumerate(groups):

            @multi_observable_source_asset(
                name=f"observe_{index}", specs=[AssetSpec(**spec) for spec in specs], can_subset=True
            )
            def observe(context):  # type: ignore[no-untyped-def]  # dagster rejects `context: Any`
                return None

            observables.append(observe)
        return Definitions(assets=observables)

    return floor


def compare_with_floor(
    manifest: Path, keys: list[Any], rounds: int
) -> tuple[LoadComparison, dict[str, list[float]]]:
    """``_common.compare_load``'s rounds (floe, bare, the floor without metadata) plus the floor
    with the same metadata, each timed in wall and CPU seconds; returns the comparison and the
    CPU seconds by variant (and the wall times of ``floor`` under the key ``floor wall``)."""
    from dagster import AssetSpec, Definitions, multi_observable_source_asset

    from floe_dagster import build_definitions

    def observable() -> Any:
        @multi_observable_source_asset(specs=[AssetSpec(key) for key in keys], can_subset=True)
        def observe(context):  # type: ignore[no-untyped-def]
            return None

        return Definitions(assets=[observe])

    variants: dict[str, Callable[[], Any]] = {
        "floe": lambda: build_definitions(manifest),
        "bare": lambda: Definitions(assets=[AssetSpec(key) for key in keys]),
        "observable": observable,
        "floor": same_metadata_floor(manifest),
    }
    counts = {name: snapshot(load()) for name, load in variants.items()}  # warm imports and caches
    wall: dict[str, list[float]] = {name: [] for name in variants}
    cpu: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(rounds):
        for name, load in variants.items():
            gc.collect()
            started = time.perf_counter(), time.process_time()
            snapshot(load())
            wall[name].append(time.perf_counter() - started[0])
            cpu[name].append(time.process_time() - started[1])
    cpu["floor wall"] = wall["floor"]
    comparison = LoadComparison(
        wall["floe"], wall["bare"], counts["floe"], counts["bare"], wall["observable"]
    )
    return comparison, cpu


def print_floor(result: LoadComparison, cpu: dict[str, list[float]]) -> None:
    floor_wall = statistics.median(cpu["floor wall"])
    medians = {name: statistics.median(times) for name, times in cpu.items()}
    ratio = medians["floe"] / medians["floor"]
    holds = "yes" if ratio <= FLOOR_TARGET else "NO"
    print(
        f"Dagster's floor with the same metadata (floe's source specs as one observable multi-asset"
        f" per metastore, no job/sensor/check): {floor_wall:.2f} s"
        f" ({' '.join(f'{t:.2f}' for t in cpu['floor wall'])}); floe / that ="
        f" {result.floe_median / floor_wall:.2f}x wall"
    )
    print(
        "CPU medians (s): "
        + ", ".join(f"{name} {medians[name]:.2f}" for name in ("floe", "floor", "observable", "bare"))
    )
    print(
        f"CPU ratio floe / floor with the same metadata: {ratio:.2f}x (target <= {FLOOR_TARGET}x):"
        f" {holds}; floe / bare: {medians['floe'] / medians['bare']:.2f}x"
    )


if __name__ == "__main__":
    sys.exit(main())
