"""How much slower is materialising the demo's dbt models through Dagster than plain `dbt build`?

Usage: .venv/bin/python benchmarks/materialize_overhead.py [--repeat N] [--no-floe-run] [--keep] [--quick]

What is measured: the wall time of each method below, each a fresh process (as a user starts
it), on one isolated temporary copy of the demo project (manifests/, dbt_project/ without target/
and logs/, definitions.py), seeded with `floe seed`:

  dagster    `dagster asset materialize -f definitions.py --select kind:dbt` in the copy, with
             DAGSTER_HOME set to a temporary folder holding an empty dagster.yaml. Its dbt runs
             inside the run's own process (floe's in-process dbt for DuckDB computes), one
             `dbt build --target <compute> --select ...` invocation per compute group;
  dbt        plain `dbt build --target duckdb` of exactly the nodes (models and data tests) the
             Dagster warm-up run executed, named with `--select ... --indirect-selection empty`,
             with the profiles.yml floe generates: the same models and tests on one compute in
             one dbt process (the baseline). A bare `dbt build` would also run the six data tests
             on the raw source tables, which the Dagster run does not: more work, flattering Dagster;
  dbt-split  the same, as one plain `dbt build` process per Dagster invocation (its target and
             its nodes): the same dbt work as Dagster does, split as Dagster splits it;
  floe       `floe run manifests/manifest.yaml` (observes the raw tables, then the main job).

Same work, checked every round (the warm-up included): the set of dbt nodes each method executed
(from the run_results.json of each of its dbt invocations) must equal the Dagster run's, every
node must have passed, and the rows of every output table (the Iceberg tables in the demo's
catalog; each must have a new snapshot, written by this run) must equal those the plain dbt
warm-up wrote. A difference exits with status 3.

Why: whatever Dagster takes beyond plain dbt is orchestration overhead (Python and Dagster
start-up, loading definitions.py, dagster-dbt's per-invocation work, event storage, process
exit) plus what splitting the models over several computes costs. dagster/dbt shows both;
dagster/dbt-split only the first. Stages are printed: for dbt, dbt's own execution (the
`elapsed_time` of its run_results.json, Iceberg commits included) and the rest (start-up,
imports, parse); for the Dagster methods, from the run's event log, the time before the run
began (imports, loading the definitions, creating the run), dbt's execution, the rest of the run
(event handling, observation, step orchestration) and the time after the run (process exit).
After the rounds, one fresh process loads definitions.py alone to split the time before the
run into imports and definitions load.

Every method runs once untimed first, then the methods alternate for --repeat rounds (default
3), the order reversed every other round, so drift of the machine's load hits all of them alike.
The table shows the median and spread of the wall time and the median CPU time of each
method's process tree. It also counts the timed runs in which dbt re-parsed the whole project
("Unable to do partial parsing" in the run's output, or in a dbt.log of the run): with partial
parsing working, that count is 0 everywhere. Absolute times depend on the machine: printed,
never asserted.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from _common import (
    REPO,
    VENV_BIN,
    Mismatch,
    Sample,
    alternate,
    clean_env,
    print_load,
    print_summary,
    require_equal,
    run_process,
)

MANIFEST = Path("manifests") / "manifest.yaml"
DBT_SELECTION = "kind:dbt"
REPARSE_MARKER = "Unable to do partial parsing"
# dagster-dbt logs every dbt command it starts like this.
DAGSTER_DBT_COMMAND = re.compile(r"Running dbt command: `([^`]+)`")


@dataclass(frozen=True)
class Method:
    name: str
    commands: list[list[str]]  # run one after the other; timed together
    cwd: Path
    dagster: bool = False  # its stages come from a Dagster event log


@dataclass(frozen=True)
class Invocation:
    """One dbt invocation: its target and the unique ids of the nodes it executed."""

    target: str
    nodes: frozenset[str]
    elapsed: float


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="timed rounds (default: 3)")
    parser.add_argument("--no-floe-run", action="store_true", help="skip `floe run`")
    parser.add_argument("--keep", action="store_true", help="keep the temporary copy and its logs")
    parser.add_argument("--quick", action="store_true", help="3 rounds, without `floe run`")
    args = parser.parse_args(argv)
    if args.quick:
        args.repeat, args.no_floe_run = 3, True
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    return args


def copy_project(workdir: Path) -> Path:
    """The demo project's inputs, without any dbt artifacts or state of earlier runs."""
    copy = workdir / "project"
    copy.mkdir()
    shutil.copytree(REPO / "manifests", copy / "manifests")
    shutil.copytree(
        REPO / "dbt_project",
        copy / "dbt_project",
        ignore=shutil.ignore_patterns("target", "logs", "__pycache__"),
    )
    shutil.copy2(REPO / "definitions.py", copy / "definitions.py")
    return copy


def make_environment(workdir: Path) -> dict[str, str]:
    """The venv's bin first on PATH, a fresh DAGSTER_HOME, nothing pointing at the real project."""
    home = workdir / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").touch()
    return clean_env(DAGSTER_HOME=str(home))


def profiles_dir(copy: Path) -> Path:
    return copy / ".floe" / "dbt_profiles"


def prepare(copy: Path, env: dict[str, str], logs: Path) -> None:
    """Seed the raw tables, then write profiles.yml and dbt's manifest the way floe does."""
    run_process([[str(VENV_BIN / "floe"), "seed", str(MANIFEST)]], copy, env, logs / "seed.log")
    script = (
        "import sys; sys.path.insert(0, 'benchmarks_dir')\n"
        "from _common import prepare_dbt_manifest\n"
        "from floe_dagster import load_manifest\n"
        f"prepare_dbt_manifest(load_manifest({str(MANIFEST)!r}))\n"
    ).replace("benchmarks_dir", str(Path(__file__).resolve().parent))
    run_process([[sys.executable, "-c", script]], copy, env, logs / "prepare.log")


# --- what each run did --------------------------------------------------------------------------


def run_results(copy: Path) -> dict[Path, float]:
    """Every run_results.json under the copy's dbt target folder, with its modification time."""
    return {p: p.stat().st_mtime for p in (copy / "dbt_project" / "target").rglob("run_results.json")}


def invocations(copy: Path, known: dict[Path, float]) -> list[Invocation]:
    """The dbt invocations whose run_results.json appeared or changed since ``known``, in order;
    a node that did not pass fails the benchmark."""
    found = []
    for path, mtime in sorted(run_results(copy).items(), key=lambda item: item[1]):
        if known.get(path) == mtime:
            continue
        data = json.loads(path.read_text(encoding="utf-8"))
        bad = [
            (r["unique_id"], r["status"]) for r in data["results"] if r["status"] not in ("success", "pass")
        ]
        if bad:
            raise Mismatch(f"{path}: nodes did not pass: {bad}")
        target = data.get("args", {}).get("target") or "default"
        nodes = frozenset(r["unique_id"] for r in data["results"])
        found.append(Invocation(target, nodes, float(data.get("elapsed_time", 0.0))))
    return found


def iceberg_tables(copy: Path) -> dict[str, tuple[int | None, str]]:
    """Every non-raw table of the demo's Iceberg catalog: (current snapshot id, digest of its rows)."""
    import pyarrow as pa
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
            arrow: pa.Table = table.scan().to_arrow()
            rows = sorted(json.dumps(row, sort_keys=True, default=str) for row in arrow.to_pylist())
            digest = hashlib.sha256("\n".join(rows).encode()).hexdigest()[:16]
            tables[".".join(identifier)] = (
                snapshot.snapshot_id if snapshot else None,
                f"{len(rows)} rows {digest}",
            )
    return tables


def dagster_stages(home: Path, started: float, ended: float, dbt_elapsed: float) -> dict[str, float]:
    """From the event log of the runs a Dagster process made between ``started`` and ``ended``
    (epoch seconds): before the first run began, dbt's execution, the rest of the runs, after."""
    import logging

    from dagster import DagsterEventType, DagsterInstance

    logging.getLogger("dagster").setLevel(logging.ERROR)
    with DagsterInstance.from_config(str(home)) as instance:
        runs = [r for r in instance.get_run_records() if r.create_timestamp.timestamp() >= started - 1]
        if not runs:
            raise Mismatch(f"no Dagster run was recorded in {home}")
        begins, ends = [], []
        for record in runs:
            for event in instance.all_logs(record.dagster_run.run_id):
                kind = event.dagster_event.event_type if event.dagster_event else None
                if kind == DagsterEventType.RUN_START:
                    begins.append(event.timestamp)
                elif kind in (DagsterEventType.RUN_SUCCESS, DagsterEventType.RUN_FAILURE):
                    ends.append(event.timestamp)
    first, last = min(begins), max(ends)
    return {
        "before run": first - started,
        "dbt execution": dbt_elapsed,
        "rest of run": (last - first) - dbt_elapsed,
        "after run": ended - last,
    }


# --- the methods ---------------------------------------------------------------------------------


def dbt_command(copy: Path, target: str, nodes: frozenset[str], target_path: str | None = None) -> list[str]:
    """`dbt build` of exactly these nodes (by name; tests too, so no indirect selection)."""
    names = sorted(
        {uid.split(".")[2] for uid in nodes if not uid.startswith("operation.")}
    )  # hooks run anyway
    command = [str(VENV_BIN / "dbt"), "build", "--profiles-dir", str(profiles_dir(copy)), "--target", target]
    command += ["--select", *names, "--indirect-selection", "empty"]
    return command + (["--target-path", target_path] if target_path else [])


def measure(
    copy: Path, include_floe_run: bool, repeat: int, env: dict[str, str], logs: Path
) -> tuple[dict[str, list[Sample]], list[Invocation]]:
    """A warm-up of Dagster (which tells the others what to run), then of every other method,
    then ``repeat`` alternating rounds. Every run's nodes and output rows are checked."""
    home = Path(env["DAGSTER_HOME"])
    expected: dict[str, Any] = {}

    def timed(method: Method, label: str) -> Sample:
        known, before_tables = run_results(copy), iceberg_tables(copy)
        dbt_logs = set((copy / "dbt_project" / "target").rglob("dbt.log"))
        log = logs / f"{method.name}-{label}.log"
        started = time.time()
        sample = run_process(method.commands, method.cwd, env, log)
        ended = time.time()
        ran = invocations(copy, known)
        nodes = frozenset().union(*(i.nodes for i in ran)) if ran else frozenset()
        elapsed = sum(i.elapsed for i in ran)
        if method.dagster:
            sample.stages = dagster_stages(home, started, ended, elapsed)
        else:
            sample.stages = {"dbt execution": elapsed, "start-up + parse": sample.wall - elapsed}
        new_logs = set((copy / "dbt_project" / "target").rglob("dbt.log")) - dbt_logs
        texts = [log.read_text(encoding="utf-8")] + [p.read_text(encoding="utf-8") for p in new_logs]
        reparsed = any(REPARSE_MARKER in text for text in texts)
        tables = iceberg_tables(copy)
        stale = sorted(
            name for name, (snapshot, _) in tables.items() if before_tables.get(name, (None,))[0] == snapshot
        )
        if stale:
            raise Mismatch(f"{method.name} {label}: these output tables got no new snapshot: {stale}")
        rows = {name: digest for name, (_, digest) in tables.items()}
        sample.output = {"nodes": nodes, "rows": rows, "invocations": ran, "reparsed": reparsed}
        if "nodes" in expected:
            require_equal(
                f"{method.name} {label}: dbt nodes executed", "dagster", expected["nodes"], method.name, nodes
            )
        if "rows" in expected:
            require_equal(
                f"{method.name} {label}: output table rows", "first run", expected["rows"], method.name, rows
            )
        else:
            expected["rows"] = rows
        return sample

    def side(method: Method) -> Callable[[str], Sample]:
        return lambda label: timed(method, label)

    methods: dict[str, Method] = {}
    orchestrated = Method(
        "dagster",
        [
            [
                str(VENV_BIN / "dagster"),
                "asset",
                "materialize",
                "-f",
                "definitions.py",
                "--select",
                DBT_SELECTION,
            ]
        ],
        copy,
        dagster=True,
    )
    print("warm-up dagster (its dbt invocations tell the other methods what to run) ...", flush=True)
    first = timed(orchestrated, "first")
    dagster_runs: list[Invocation] = first.output["invocations"]
    expected["nodes"] = first.output["nodes"]
    if len(dagster_runs) < 1:
        raise Mismatch("the Dagster run made no dbt invocation")
    methods["dbt"] = Method("dbt", [dbt_command(copy, "duckdb", expected["nodes"])], copy / "dbt_project")
    methods["dbt-split"] = Method(
        "dbt-split",
        [dbt_command(copy, i.target, i.nodes, f"target/split-{i.target}") for i in dagster_runs],
        copy / "dbt_project",
    )
    methods["dagster"] = orchestrated
    if include_floe_run:
        methods["floe"] = Method("floe", [[str(VENV_BIN / "floe"), "run", str(MANIFEST)]], copy, dagster=True)
    tests = sum(1 for n in expected["nodes"] if n.startswith("test."))
    models = sum(1 for n in expected["nodes"] if n.startswith("model."))
    print(
        f"same work on every side: {models} models and {tests} data tests"
        f" ({len(dagster_runs)} dbt invocation(s) in the Dagster run: "
        + ", ".join(f"{i.target} {len(i.nodes)} nodes" for i in dagster_runs)
        + ")",
        flush=True,
    )
    results = alternate({name: side(method) for name, method in methods.items()}, repeat)
    return results, dagster_runs


def load_stages(copy: Path, env: dict[str, str], logs: Path) -> dict[str, float]:
    """One fresh process loading definitions.py alone: what the time before a run is made of."""
    common = Path(__file__).resolve().parent / "_common.py"
    command = [sys.executable, str(common), "load", "floe", str(copy / "definitions.py")]
    sample = run_process([command], copy, {**env, "FLOE_MANIFEST": str(copy / MANIFEST)}, logs / "load.log")
    stages = dict(sample.stages)
    stages["python start + exit"] = sample.wall - sum(stages.values())
    return stages


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="floe-bench-"))
    print_load("before")
    try:
        copy = copy_project(workdir)
        env = make_environment(workdir)
        logs = workdir / "logs"
        logs.mkdir()
        print(f"preparing a copy of the demo project in {copy} ...", flush=True)
        prepare(copy, env, logs)
        results, _ = measure(copy, not args.no_floe_run, args.repeat, env, logs)
        print_summary(results, "dbt", target="dagster / dbt <= 1.5x")
        medians = {n: sorted(s.wall for s in runs)[len(runs) // 2] for n, runs in results.items()}
        if "dbt-split" in medians:
            print(
                f"dagster / dbt-split: {medians['dagster'] / medians['dbt-split']:.2f}x (orchestration alone)"
            )
        for name, runs in results.items():
            print(
                f"{name}: dbt re-parsed the project in"
                f" {sum(s.output['reparsed'] for s in runs)}/{len(runs)} runs"
            )
        stages = load_stages(copy, env, logs)
        print(
            "a fresh process loading definitions.py alone (what 'before run' holds, once, s): "
            + ", ".join(f"{k} {v:.2f}" for k, v in stages.items())
        )
    finally:
        if args.keep:
            print(f"\nkept {workdir} (logs in {workdir / 'logs'})")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    print_load("after")
    return 0


if __name__ == "__main__":
    sys.exit(main())
