"""The demo under each executor: `multiprocess` vs `in_process` vs plain `dbt build`.

Usage: .venv/bin/python benchmarks/executors.py [--repeat N] [--quick] [--keep]

What is measured: the wall (and CPU) time of each side below, each a fresh process as a user
starts it, side by side in one run, on one isolated temporary copy of the demo project (seeded
with `floe seed`), whose manifest gets two environments that differ only in their executor:

  in_process    `floe run` with FLOE_ENV=bench_in_process (`executor: in_process`, the default):
                every step in the run's process;
  multiprocess  `floe run` with FLOE_ENV=bench_multiprocess (`executor: multiprocess`): each
                compute group's `dbt build` in a process of its own;
  dbt           plain `dbt build --target duckdb` of exactly the nodes (models and data tests)
                the in_process warm-up executed (`--select ... --indirect-selection empty`), with
                the profiles.yml floe generates: the same dbt work in one dbt process.

Same work, checked every round (the warm-up included): the dbt nodes each side executed (from the
run_results.json of its dbt invocations) equal the in_process warm-up's, every node passed, and
the rows of every output Iceberg table (each with a new snapshot) equal those of the first run.
A difference exits with status 3.

Each side runs once untimed first, then the sides alternate for --repeat rounds (default 3), the
order reversed every other round (--quick: no warm-up of the sides beyond the first run, and one
round: indicative only); medians, spread and the ratios to in_process are printed with
the load average before and after. Absolute times depend on the machine: printed, never asserted.
Both `floe run` sides also observe the raw tables first (the same on both).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from _common import (
    VENV_BIN,
    Mismatch,
    Sample,
    alternate,
    clean_env,
    copy_demo_project,
    print_load,
    print_summary,
    require_equal,
    run_process,
)

MANIFEST = Path("manifests") / "manifest.yaml"
ENVIRONMENTS = {"in_process": "bench_in_process", "multiprocess": "bench_multiprocess"}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="timed rounds (default: 3)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary copy and its logs")
    parser.add_argument("--quick", action="store_true", help="one round, no warm-up (indicative)")
    args = parser.parse_args(argv)
    if args.quick:
        args.repeat = 1
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    return args


def add_environments(copy: Path) -> None:
    """Two environments that differ from the demo's dev only in their executor."""
    manifest = copy / MANIFEST
    text = manifest.read_text(encoding="utf-8")
    if text.count("  dev: {}\n") != 1:
        raise SystemExit(f"{manifest}: expected one `  dev: {{}}` line under environments")
    added = "".join(f"  {env}:\n    executor: {kind}\n" for kind, env in ENVIRONMENTS.items())
    manifest.write_text(text.replace("  dev: {}\n", "  dev: {}\n" + added), encoding="utf-8")


def run_results(copy: Path) -> dict[Path, float]:
    return {p: p.stat().st_mtime for p in (copy / "dbt_project" / "target").rglob("run_results.json")}


def executed_nodes(copy: Path, known: dict[Path, float]) -> frozenset[str]:
    """The nodes of the dbt invocations whose run_results.json appeared or changed since ``known``;
    a node that did not pass fails the benchmark."""
    nodes: set[str] = set()
    for path, mtime in run_results(copy).items():
        if known.get(path) == mtime:
            continue
        data = json.loads(path.read_text(encoding="utf-8"))
        results = data["results"]
        bad = [(r["unique_id"], r["status"]) for r in results if r["status"] not in ("success", "pass")]
        if bad:
            raise Mismatch(f"{path}: nodes did not pass: {bad}")
        nodes.update(r["unique_id"] for r in data["results"])
    return frozenset(nodes)


def output_tables(copy: Path) -> dict[str, tuple[int | None, str]]:
    """Every non-raw table of the demo's Iceberg catalog: (current snapshot id, digest of its rows)."""
    from pyiceberg.catalog.sql import SqlCatalog

    floe = copy / ".floe"
    catalog = SqlCatalog(
        "lakehouse", uri=f"sqlite:///{floe / 'catalog.db'}", warehouse=f"file://{floe / 'warehouse'}"
    )
    tables: dict[str, tuple[int | None, str]] = {}
    for namespace in catalog.list_namespaces():
        if namespace[-1] == "raw":
            continue
        for identifier in catalog.list_tables(namespace):
            table = catalog.load_table(identifier)
            snapshot = table.current_snapshot()
            arrow = table.scan().to_arrow()
            rows = sorted(json.dumps(r, sort_keys=True, default=str) for r in arrow.to_pylist())
            digest = hashlib.sha256("\n".join(rows).encode()).hexdigest()[:16]
            snapshot_id = snapshot.snapshot_id if snapshot else None
            tables[".".join(identifier)] = (snapshot_id, f"{len(rows)} rows {digest}")
    return tables


def dbt_command(copy: Path, nodes: frozenset[str]) -> list[str]:
    """`dbt build` of exactly these nodes by name (tests too, so no indirect selection); hooks run anyway."""
    names = sorted({uid.split(".")[2] for uid in nodes if not uid.startswith("operation.")})
    profiles = copy / ".floe" / "dbt_profiles"
    return [
        str(VENV_BIN / "dbt"),
        *("build", "--profiles-dir", str(profiles), "--target", "duckdb"),
        *("--select", *names, "--indirect-selection", "empty"),
    ]


def measure(
    copy: Path, repeat: int, env: dict[str, str], logs: Path, warm_up: bool = True
) -> dict[str, list[Sample]]:
    expected: dict[str, Any] = {}

    def timed(name: str, command: list[str], cwd: Path, side_env: dict[str, str], label: str) -> Sample:
        known, before = run_results(copy), output_tables(copy)
        sample = run_process([command], cwd, side_env, logs / f"{name}-{label}.log")
        nodes = executed_nodes(copy, known)
        tables = output_tables(copy)
        stale = sorted(t for t, (snapshot, _) in tables.items() if before.get(t, (None,))[0] == snapshot)
        if stale:
            raise Mismatch(f"{name} {label}: these output tables got no new snapshot: {stale}")
        rows = {t: digest for t, (_, digest) in tables.items()}
        if "nodes" in expected:
            require_equal(f"{name} {label}: dbt nodes executed", "in_process", expected["nodes"], name, nodes)
        if "rows" in expected:
            require_equal(f"{name} {label}: output table rows", "first run", expected["rows"], name, rows)
        else:
            expected["rows"] = rows
        sample.output = nodes
        return sample

    def floe_side(kind: str) -> Callable[[str], Sample]:
        side_env = {**env, "FLOE_ENV": ENVIRONMENTS[kind]}
        command = [str(VENV_BIN / "floe"), "run", str(MANIFEST)]
        return lambda label: timed(kind, command, copy, side_env, label)

    print("first run: in_process (its dbt nodes are what every side must execute) ...", flush=True)
    first_env = {**env, "FLOE_ENV": ENVIRONMENTS["in_process"]}
    first = timed("in_process", [str(VENV_BIN / "floe"), "run", str(MANIFEST)], copy, first_env, "first")
    expected["nodes"] = first.output
    dbt = dbt_command(copy, expected["nodes"])
    models = sum(1 for n in expected["nodes"] if n.startswith("model."))
    tests = sum(1 for n in expected["nodes"] if n.startswith("test."))
    print(f"same work on every side: {models} models and {tests} data tests", flush=True)
    sides = {
        "in_process": floe_side("in_process"),
        "multiprocess": floe_side("multiprocess"),
        "dbt": lambda label: timed("dbt", dbt, copy / "dbt_project", env, label),
    }
    return alternate(sides, repeat, warm_up=warm_up)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="floe-bench-executors-"))
    try:
        copy = copy_demo_project(workdir / "project")
        add_environments(copy)
        logs = workdir / "logs"
        logs.mkdir()
        home = workdir / "dagster_home"
        home.mkdir()
        (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
        env = clean_env(DAGSTER_HOME=str(home))
        print_load("before")
        run_process([[str(VENV_BIN / "floe"), "seed", str(MANIFEST)]], copy, env, logs / "seed.log")
        results = measure(copy, args.repeat, env, logs, warm_up=not args.quick)
        print_summary(results, "in_process")
        print_load("after")
        if args.keep:
            print(f"kept: {workdir}")
        return 0
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
