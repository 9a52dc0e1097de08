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
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from _common import compare_load, no_metastore_calls, print_load, quiet_loads, state_asset_keys


def synthesise_state(loaded, tables: int, namespaces: int):  # type: ignore[no-untyped-def]
    from floe_dagster.metastores.state import (
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
    from floe_dagster.metastores.state import default_state_path, save_state
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
        with no_metastore_calls() as calls:
            result = compare_load(loaded.path, keys, args.rounds)
        assert not calls, f"the load called the metastore: {calls}"
        print(f"state file: {path.stat().st_size / 1e6:.1f} MB ({len(keys):,} tables)")
        print_load(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
