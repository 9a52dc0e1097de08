"""Code-location load time with 10,000 metastore tables, from cached defs state.

Each side is a fresh process, as a code server is (``benchmarks/_common.py``, ``compare_load``):

- floe:        ``definitions.py`` of a copy of the demo project (``build_definitions``) whose defs
               state lists ``--tables`` tables (over ``--namespaces`` namespaces) in its
               metastore, plus the 3 demo tables and the dbt models reading them; the process
               imports dagster, floe_dagster (with dagster-dbt, dbt and PyIceberg as it needs them),
               builds the definitions, the repository and its snapshot;
- bare:        ``Definitions(assets=[AssetSpec(key) ...])`` of exactly the keys floe's load produced;
- observable:  the same keys as one ``multi_observable_source_asset``, without metadata;
- floor:       Dagster's own floor for the same assets with the same metadata: floe's source
               specs (metadata, group, kinds, tags, freshness policy, dumped by floe's warm-up)
               as one ``multi_observable_source_asset``, beside plain dagster-dbt's
               ``@dbt_assets`` over the same dbt ``manifest.json``.

A warm-up of each side, then ``--rounds`` rounds alternating the order; the process wall
times are compared (medians, spread) and each process's stages are printed (imports,
definitions, repository, snapshot, Python's start and exit). Every round checks that the three
loaded the same asset keys and that floe's load built no metastore connector and opened no
Thrift connection. This is the quick synthetic variant: the state file is synthesised
(columns, location, format, partition keys and count, DDL time per table) and nothing is
listed; ``benchmarks/observe_scale.py`` measures the same load from the state ``floe refresh``
writes for a real Hive Metastore.

    .venv/bin/python benchmarks/load_scale.py [--tables 10000] [--namespaces 20] [--rounds 3] [--quick]

Targets: floe / floor <= 1.3 (issue 15), floe / bare <= 1.5.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from _common import (
    compare_load,
    copy_demo_project,
    prepare_dbt_manifest,
    print_load,
    print_load_comparison,
    state_module,
)


def synthesise_state(loaded, tables: int, namespaces: int):  # type: ignore[no-untyped-def]
    state_ = state_module()
    MetastoreState, SourcesState = state_.MetastoreState, state_.SourcesState
    now = time.time()
    records: list[dict] = []
    for raw in ("customers", "orders", "payments"):  # the demo's tables, read by dbt
        records.append(table_record("raw", raw, now, partitioned=False))
    for i in range(tables):
        namespace = f"db_{i % namespaces:02d}"
        records.append(table_record(namespace, f"table_{i:05d}", now, partitioned=i % 4 == 0))
    name = next(iter(loaded.manifest.metastores))
    state = SourcesState(manifest=loaded.name, environment=loaded.environment)
    state.metastores[name] = MetastoreState(
        type=loaded.manifest.metastores[name].type,
        fingerprint=state_.metastore_fingerprint(loaded, name),
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--tables", type=int, default=10_000)
    parser.add_argument("--namespaces", type=int, default=20)
    parser.add_argument(
        "--rounds", type=int, default=3, help="alternating rounds after the warm-up (default 3)"
    )
    parser.add_argument("--quick", action="store_true", help="500 tables, 3 rounds")
    args = parser.parse_args(argv)
    if args.quick:
        args.tables, args.rounds = 500, 3
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")

    from floe_dagster import load_manifest

    print_load("before")
    with tempfile.TemporaryDirectory(prefix="floe-load-scale-") as tmp:
        root = copy_demo_project(Path(tmp) / "project")
        loaded = load_manifest(root / "manifests" / "manifest.yaml")
        print(f"preparing: dbt parse of the demo project, state with {args.tables:,} tables ...", flush=True)
        prepare_dbt_manifest(loaded)
        state = synthesise_state(loaded, args.tables, args.namespaces)
        path = state_module().save_state(state, state_module().default_state_path(loaded))
        print(f"state file: {path.stat().st_size / 1e6:.1f} MB", flush=True)
        results = compare_load(root, args.rounds, Path(tmp))
        print_load_comparison(results)
    print_load("after")
    return 0


if __name__ == "__main__":
    sys.exit(main())
