"""Shared by every benchmark: alternation, warm-ups, medians and spread, the load average,
fresh-process timing, output checks, and the code-location load of ``load_scale.py`` and
``observe_scale.py``.

The rules every benchmark follows (``benchmarks/README.md``):

- both sides do the same work, and their outputs are compared (``require_equal``): a fast wrong
  answer exits non-zero;
- a side runs the way the user runs it: a fresh process (``run_process``) wherever the user's path
  starts one;
- each side runs once untimed first (warm-up), then at least 3 rounds alternate the sides, the
  order reversed every other round (``alternate``), and medians and spread are printed
  (``print_summary``) with the load average before and after (``load_average``);
- stage timings are printed wherever one figure would hide stages.

Imports of floe_dagster modules that are not its public surface (``floe_dagster.build_definitions``,
``floe_dagster.load_manifest``, the ``floe`` CLI) are all in this file, in the section "floe_dagster
internals", so that a module moving inside the package needs one fix here. This module imports
nothing but the standard library at its top, so that the fresh processes it starts
(``python benchmarks/_common.py load ...``) time their own imports honestly.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import json
import os
import resource
import shlex
import statistics
import subprocess
import sys
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))
# The folder of the interpreter running this script (the venv's bin), not its resolved target.
VENV_BIN = Path(sys.executable).parent
THIS = Path(__file__).resolve()
CHILD_MARKER = "FLOE-BENCH-JSON "  # a fresh process reports its stages and output on this line

LOAD_TARGET = 1.5  # code-location load, floe / bare
FLOOR_TARGET = 1.3  # code-location load, floe / Dagster's floor for the same assets and metadata
# Imported by every load of the demo's definitions (tests/e2e/test_load_imports.py checks it);
# the floe side imports them before the definitions so that the stage shows their cost.
LOAD_IMPORTS = ("dagster_dbt", "duckdb", "networkx")


class Mismatch(SystemExit):
    """The two sides of a benchmark disagree: the figures would mean nothing. Exit code 3."""

    def __init__(self, message: str) -> None:
        print(f"\nMISMATCH: {message}", file=sys.stderr, flush=True)
        super().__init__(3)


# --- load average, samples, alternation, summaries --------------------------------------------


def load_average() -> str:
    """``os.getloadavg()`` as printed before and after every benchmark (the cores are shared)."""
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def print_load(label: str) -> str:
    value = load_average()
    print(f"load average {label}: {value} (1, 5, 15 min; {os.cpu_count()} cores)", flush=True)
    return value


@dataclass
class Sample:
    """One timed run of one side: wall and CPU seconds, named stages, and what it produced."""

    wall: float
    cpu: float = 0.0
    stages: dict[str, float] = field(default_factory=dict)
    output: Any = None


def timed(call: Callable[[], Any]) -> Sample:
    """Run ``call`` in this process; its result becomes the sample's output."""
    gc.collect()
    wall, cpu = time.perf_counter(), time.process_time()
    output = call()
    return Sample(time.perf_counter() - wall, time.process_time() - cpu, output=output)


def alternate(
    sides: dict[str, Callable[[str], Sample]],
    rounds: int,
    *,
    warm_up: bool = True,
    check: Callable[[str, dict[str, Sample]], None] | None = None,
) -> dict[str, list[Sample]]:
    """Each side once untimed (``warm-up``), then ``rounds`` rounds; the order of the sides is
    reversed every other round, so neither always runs first. A side is called with its run's
    label (``warm-up``, ``round-1``, ...). ``check(label, {side: sample})`` is called after each
    round (the warm-up included) to compare the outputs; it raises ``Mismatch`` when they differ."""
    names = list(sides)
    results: dict[str, list[Sample]] = {name: [] for name in names}
    plan = [("warm-up", names)] if warm_up else []
    plan += [(f"round-{r + 1}", names if r % 2 == 0 else names[::-1]) for r in range(rounds)]
    for label, order in plan:
        done: dict[str, Sample] = {}
        for name in order:
            sample = sides[name](label)
            done[name] = sample
            stages = "".join(f", {k} {v:.2f}" for k, v in sample.stages.items())
            print(
                f"{label:>8}  {name:<12} {sample.wall:8.2f} s wall {sample.cpu:7.2f} s cpu{stages}",
                flush=True,
            )
            if label != "warm-up":
                results[name].append(sample)
        if check is not None:
            check(label, done)
    return results


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def spread(values: Sequence[float]) -> str:
    """min-max and the range as a share of the median."""
    mid = statistics.median(values)
    share = (max(values) - min(values)) / mid * 100 if mid else 0.0
    return f"{min(values):.2f}-{max(values):.2f} (±{share / 2:.0f}%)"


def print_summary(
    results: dict[str, list[Sample]], base: str, *, target: str = "", unit: str = "s"
) -> dict[str, float]:
    """Per side: rounds, median wall, spread, median CPU and the ratio to ``base``; then the median
    of each stage. Returns {side: median wall}."""
    medians = {name: median([s.wall for s in runs]) for name, runs in results.items()}
    cpus = {name: median([s.cpu for s in runs]) for name, runs in results.items()}
    print()
    print(
        f"{'side':<12} {'rounds':>6} {'median ' + unit:>9} {'spread (min-max)':>24} {'cpu s':>7}"
        f"  ratio to {base}"
    )
    for name, runs in results.items():
        ratio = medians[name] / medians[base] if medians[base] else float("nan")
        cpu_ratio = f" (cpu {cpus[name] / cpus[base]:.2f}x)" if cpus[base] else ""
        print(
            f"{name:<12} {len(runs):>6} {medians[name]:>9.2f} {spread([s.wall for s in runs]):>24}"
            f" {cpus[name]:>7.2f}  {ratio:.2f}x{cpu_ratio}"
        )
    for name, runs in results.items():
        stage_names = list(dict.fromkeys(k for s in runs for k in s.stages))
        if stage_names:
            stages = ", ".join(f"{k} {median([s.stages.get(k, 0.0) for s in runs]):.2f}" for k in stage_names)
            print(f"stages of {name} (medians, s): {stages}")
    if target:
        print(f"target: {target}")
    return medians


def require_equal(what: str, left_name: str, left: Any, right_name: str, right: Any) -> None:
    """Raise ``Mismatch`` naming what differs (a few items of each side) unless ``left == right``."""
    if left == right:
        return
    if isinstance(left, set | frozenset) and isinstance(right, set | frozenset):
        only_left, only_right = sorted(left - right)[:5], sorted(right - left)[:5]
        raise Mismatch(
            f"{what}: {len(left - right)} only in {left_name} (e.g. {only_left}),"
            f" {len(right - left)} only in {right_name} (e.g. {only_right})"
        )
    if isinstance(left, dict) and isinstance(right, dict):
        keys = sorted(k for k in left.keys() | right.keys() if left.get(k) != right.get(k))
        detail = "; ".join(
            f"{k}: {left_name} {left.get(k)!r:.80} vs {right_name} {right.get(k)!r:.80}" for k in keys[:5]
        )
        raise Mismatch(f"{what}: {len(keys)} differ ({detail})")
    raise Mismatch(f"{what}: {left_name} {left!r:.200} vs {right_name} {right!r:.200}")


# --- fresh processes ---------------------------------------------------------------------------


def clean_env(**extra: str) -> dict[str, str]:
    """This environment without FLOE_/DBT_ settings, the venv's bin first on PATH, no dbt telemetry."""
    env = {key: value for key, value in os.environ.items() if not key.startswith(("FLOE_", "DBT_"))}
    env["PATH"] = os.pathsep.join([str(VENV_BIN), env.get("PATH", "")])
    env["DBT_SEND_ANONYMOUS_USAGE_STATS"] = "false"
    env["PYTHONWARNINGS"] = "ignore"
    env.update(extra)
    return env


def run_process(commands: Sequence[Sequence[str]], cwd: Path, env: dict[str, str], log: Path) -> Sample:
    """Run the commands one after the other as fresh processes (output to ``log``); wall and CPU
    (user + system of the process trees) of all. A line ``FLOE-BENCH-JSON {...}`` a process prints
    gives its ``stages`` (merged) and ``output`` (the last one). A failing command exits."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    stages: dict[str, float] = {}
    output: Any = None
    with log.open("w", encoding="utf-8") as out:
        for command in commands:
            result = subprocess.run(
                list(command), cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=out, text=True
            )
            out.write(result.stdout)
            out.flush()
            for line in result.stdout.splitlines():
                if line.startswith(CHILD_MARKER):
                    reported = json.loads(line[len(CHILD_MARKER) :])
                    for key, value in reported.get("stages", {}).items():
                        stages[key] = stages.get(key, 0.0) + value
                    output = reported.get("output", output)
            if result.returncode != 0:
                tail = "\n".join(log.read_text(encoding="utf-8").splitlines()[-25:])
                raise SystemExit(
                    f"`{shlex.join(command)}` failed (exit {result.returncode}) in {cwd}:\n{tail}"
                )
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return Sample(wall, cpu, stages, output)


def report_to_parent(stages: dict[str, float], output: Any) -> None:
    """What a fresh process started by ``run_process`` prints last: its stages and its output."""
    print(CHILD_MARKER + json.dumps({"stages": stages, "output": output}), flush=True)


class Stopwatch:
    """Consecutive stages of one process: ``lap(name)`` ends the stage that began at the last lap."""

    def __init__(self) -> None:
        self.stages: dict[str, float] = {}
        self._last = time.perf_counter()

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.stages[name] = self.stages.get(name, 0.0) + now - self._last
        self._last = now

    def skip(self) -> None:
        """What ran since the last lap belongs to no stage."""
        self._last = time.perf_counter()


# --- floe_dagster internals (modules may move while the package is layered: fix them here) ----


def compute_health_check(loaded: Any, name: str) -> Any:
    """One compute's row of `floe health`: the call ``cmd_health`` makes (package check, span,
    ``validate_connection``); returns the ``ConnectionResult``."""
    from floe_dagster.dagster_stage.resources import ComputeResource

    return ComputeResource.for_manifest(loaded, name).validate()


def load_manifest(path: Path, environment: str | None = None) -> Any:
    from floe_dagster.manifest.loader import load_manifest as load

    return load(path, environment=environment)


def copy_demo_project(destination: Path) -> Path:
    from tests.helpers import copy_demo_project as copy

    return copy(destination)


def prepare_dbt_manifest(loaded: Any) -> Any:
    """``dbt parse`` of the manifest's project and the ``profiles.yml`` floe writes (a deploy's work)."""
    from floe_dagster.transforms.dbt_manifest import prepare_dbt_manifest as prepare

    return prepare(loaded)


def compile_plan(loaded: Any, dbt_manifest: Any) -> Any:
    from floe_dagster.plan.compile import compile_plan as compile_

    return compile_(loaded, dbt_manifest)


def write_plan(plan: Any, path: Path) -> None:
    from floe_dagster.plan.artifact import write_plan as write

    write(plan, path)


def meta_compute(node: Any) -> Any:
    from floe_dagster.plan.model import meta_compute as compute

    return compute(node)


def model_nodes(dbt_manifest: Any) -> Any:
    from floe_dagster.plan.model import model_nodes as nodes

    return nodes(dbt_manifest)


def write_profiles(loaded: Any) -> Path:
    from floe_dagster.transforms.profiles import write_profiles as write

    return write(loaded)


def state_module() -> Any:
    """``floe_dagster.metastores.state``: SourcesState, MetastoreState, save_state, write_state, ..."""
    import floe_dagster.metastores.state as state

    return state


def connect_metastore(name: str, type_: str, options: dict[str, Any]) -> Any:
    from floe_dagster.plugins.factory import connect_metastore as connect

    return connect(name, type_, options, environ={})


def table_filter(*include: str) -> Any:
    from floe_dagster.plugins.table_model import TableFilter

    return TableFilter(include=include)


def sql_catalog(name: str, uri: str, warehouse: str) -> Any:
    from floe_dagster.catalogs.sql import SqlCatalogPlugin

    return SqlCatalogPlugin(
        name, SqlCatalogPlugin.config_model.model_validate({"uri": uri, "warehouse": warehouse})
    )


def ingest_table(connector: Any, catalog: Any, table: str, namespace: str, commit_bytes: int) -> Any:
    from floe_dagster.ingest.table import ingest_table as ingest

    return ingest(
        connector, catalog, table, connector.discover()[table], namespace=namespace, commit_bytes=commit_bytes
    )


def format_source_view(
    con: Any, view: str, table: str, fmt: str, location: str, partition_keys: Sequence[str] = ()
) -> str:
    """The view floe creates for a dbt source over a table of format ``fmt`` (readers/formats.py)."""
    from floe_dagster.plugins.table_model import Column, ScanDescription
    from floe_dagster.readers.formats import create_view

    scan = ScanDescription(
        table=table,
        format=fmt,
        location=location,
        partition_columns=tuple(Column(k, "string") for k in partition_keys),
    )
    return create_view(con, view, scan, None, None, {}, {})


def duckdb_with_extensions(names: Sequence[str]) -> Any:
    """An in-memory DuckDB connection with ``names`` loaded from the offline extension folder."""
    from floe_dagster.computes.duckdb_extensions import connect_with_extensions
    from floe_dagster.readers.duckdb_scan import default_extension_dir

    return connect_with_extensions(":memory:", default_extension_dir(), list(names))


def ingest_imports() -> None:
    """What a run process that ingests imports (timed as one of its stages)."""
    import pyiceberg.io.pyarrow  # noqa: F401

    import floe_dagster.ingest.table
    import floe_dagster.metastores.s3  # noqa: F401


@contextmanager
def running_spark_cluster(workdir: Path) -> Iterator[Any]:
    from tests.fixtures.spark_cluster import running_spark_cluster as running

    workdir.mkdir(parents=True, exist_ok=True)
    with running(workdir) as cluster:
        yield cluster


@contextmanager
def running_hive_metastore(workdir: Path, jvm_flags: list[str]) -> Iterator[Any]:
    from tests.fixtures.hive_metastore import running_hive_metastore as running

    with running(workdir, jvm_flags=jvm_flags) as hms:
        yield hms


@contextmanager
def no_metastore_calls() -> Iterator[list[str]]:
    """Inside: building a metastore connector from the defs state module, or opening any Thrift
    socket, is recorded in the yielded list and fails. The caller asserts the list stays empty
    (a failure may be caught and logged by a load that falls back to dbt-named sources)."""
    from thrift.transport import TSocket

    state = state_module()
    calls: list[str] = []
    original_build, original_open = state.build_metastore, TSocket.TSocket.open

    def no_connector(*_: object, **__: object) -> None:
        calls.append("build_metastore")
        raise AssertionError("the load built a metastore connector")

    def no_socket(sock: Any) -> None:
        calls.append(f"thrift connect {sock.host}:{sock.port}")
        raise AssertionError("the load opened a Thrift connection")

    state.build_metastore = no_connector
    TSocket.TSocket.open = no_socket  # type: ignore[method-assign]
    try:
        yield calls
    finally:
        state.build_metastore = original_build
        TSocket.TSocket.open = original_open  # type: ignore[method-assign]


def state_asset_keys(state: Any) -> list[list[str]]:
    """The default asset key of every table the defs state lists, over all its metastores."""
    return [
        [metastore, *t["namespace"].split("."), t["name"]]
        for metastore in state.metastores
        for t in state.tables(metastore)
    ]


# --- the code-location load, each side a fresh process ---------------------------------------


def compare_load(project: Path, rounds: int, workdir: Path) -> dict[str, list[Sample]]:
    """A code server's load of ``project/definitions.py`` in a fresh process, against fresh
    processes loading the same asset keys: as bare ``AssetSpec``s, as one observable multi-asset
    without metadata, and as Dagster's own floor for the same assets with the same metadata (the
    ``floor``: floe's source specs, with their metadata, group, kinds, tags and freshness policy,
    as one ``multi_observable_source_asset``, beside plain dagster-dbt's ``@dbt_assets`` over the
    same dbt ``manifest.json``). Each load: imports, the definitions, the repository (asset graph,
    jobs, sensors) and its snapshot (``RepositorySnap.from_def``, what the webserver and daemon
    receive). The other sides' keys and specs are what floe's warm-up load produced; every round
    checks that all sides loaded the same keys, and that floe's load made no metastore call."""
    env = clean_env(FLOE_MANIFEST=str(project / "manifests" / "manifest.yaml"))
    keys_file = workdir / "asset_keys.json"
    specs_file = workdir / "source_specs.json"
    python = [sys.executable, str(THIS), "load"]

    def floe(label: str) -> Sample:
        dump = [] if keys_file.exists() else ["--dump-specs", str(specs_file)]
        command = [*python, "floe", str(project / "definitions.py"), *dump]
        sample = run_process([command], project, env, workdir / f"floe-{label}.log")
        if not keys_file.exists():
            keys_file.write_text(json.dumps(sample.output["keys"]), encoding="utf-8")
        return sample

    def other(kind: str) -> Callable[[str], Sample]:
        path = specs_file if kind == "floor" else keys_file
        extra = ["--dbt-project", str(project / "dbt_project")] if kind == "floor" else []
        return lambda label: run_process(
            [[*python, kind, str(path), *extra]], project, env, workdir / f"{kind}-{label}.log"
        )

    def check(label: str, done: dict[str, Sample]) -> None:
        calls = done["floe"].output["metastore_calls"]
        if calls:
            raise Mismatch(f"{label}: floe's load called the metastore: {calls}")
        floe_keys = {tuple(k) for k in done["floe"].output["keys"]}
        require_equal(
            f"{label}: source asset keys loaded",
            "floe",
            {tuple(s["key"]) for s in json.loads(specs_file.read_text(encoding="utf-8"))},
            "floor",
            {tuple(k) for k in done["floor"].output["keys"]},
        )
        for name in ("bare", "observable"):
            require_equal(
                f"{label}: asset keys loaded",
                "floe",
                floe_keys,
                name,
                {tuple(k) for k in done[name].output["keys"]},
            )

    return alternate(
        {"floe": floe, "bare": other("bare"), "observable": other("observable"), "floor": other("floor")},
        rounds,
        check=check,
    )


def print_load_comparison(results: dict[str, list[Sample]]) -> float:
    """The summary (process wall, with the stages each process reported); returns floe / bare."""
    for runs in results.values():  # the process's own start-up: wall minus what it timed inside
        for sample in runs:
            sample.stages["python start + exit"] = sample.wall - sum(sample.stages.values())
    medians = print_summary(results, "bare", target=f"floe / bare <= {LOAD_TARGET}x (fresh processes)")
    keys = len(results["floe"][0].output["keys"])
    ratio = medians["floe"] / medians["bare"]
    print(f"{keys:,} asset keys on every side; floe's load made 0 metastore calls")
    print(
        f"load ratio floe / bare: {ratio:.2f}x (target <= {LOAD_TARGET}x):"
        f" {'yes' if ratio <= LOAD_TARGET else 'NO'}"
    )
    bare_floor = medians["observable"] / medians["bare"]
    print(
        "the same keys as one multi_observable_source_asset (no metadata, no job)"
        f" / bare = {bare_floor:.2f}x;"
        f" floe / that = {medians['floe'] / medians['observable']:.2f}x"
    )
    floor = medians["floe"] / medians["floor"]
    print(
        f"Dagster's own floor (floe's source specs with their metadata as one multi_observable_source_asset,"
        f" plain dagster-dbt over the same manifest.json) / bare = {medians['floor'] / medians['bare']:.2f}x;"
        f" floe / floor = {floor:.2f}x (target <= {FLOOR_TARGET}x):"
        f" {'yes' if floor <= FLOOR_TARGET else 'NO'}"
    )
    return ratio


def _load_child(argv: list[str]) -> None:
    """``python benchmarks/_common.py load {floe DEFINITIONS.py [--dump-specs F] | bare KEYS.json |
    observable KEYS.json | floor SPECS.json --dbt-project DIR}``: what a code server does in a fresh
    process, with stage timings, reported to the parent."""
    parser = argparse.ArgumentParser(prog="_common.py load")
    parser.add_argument("kind", choices=["floe", "bare", "observable", "floor"])
    parser.add_argument("path")
    parser.add_argument("--dump-specs", type=Path, help="floe: write its source specs here (for the floor)")
    parser.add_argument("--dbt-project", type=Path, help="floor: the dbt project (its target/manifest.json)")
    args = parser.parse_args(argv)
    watch = Stopwatch()
    warnings.simplefilter("ignore")
    import logging

    import dagster
    from dagster._core.remote_representation.external_data import RepositorySnap

    logging.getLogger("floe_dagster").setLevel(logging.ERROR)
    watch.lap("import dagster")
    calls: list[str] = []
    if args.kind == "floe":
        import runpy

        import floe_dagster  # noqa: F401

        watch.lap("import floe_dagster")
        for module in LOAD_IMPORTS:  # what the demo's load imports anyway, timed apart
            importlib.import_module(module)
        watch.lap("import " + ", ".join(LOAD_IMPORTS))
        with no_metastore_calls() as calls:
            watch.skip()  # the patch's own imports are not a stage (the process wall has them)
            defs = runpy.run_path(args.path)["defs"]
            watch.lap("definitions")
            repository = defs.get_repository_def()
            watch.lap("repository")
            RepositorySnap.from_def(repository)
            watch.lap("snapshot")
        if args.dump_specs is not None:
            dump_source_specs(repository, args.dump_specs)
            watch.skip()
    elif args.kind == "floor":
        import dagster_dbt

        watch.lap("import dagster_dbt")
        specs = load_source_specs(args.path)
        manifest = json.loads((args.dbt_project / "target" / "manifest.json").read_bytes())

        @dagster.multi_observable_source_asset(specs=specs, can_subset=True)
        def observe(context):  # type: ignore[no-untyped-def]  # dagster rejects `context: Any`
            return None

        def dbt_models(context, dbt):  # type: ignore[no-untyped-def]
            yield from dbt.cli(["build"], context=context).stream()

        # real classes, not the strings this module's annotations would be: dagster reads them
        dbt_models.__annotations__ = {
            "context": dagster.AssetExecutionContext,
            "dbt": dagster_dbt.DbtCliResource,
        }
        dbt_models = dagster_dbt.dbt_assets(manifest=manifest)(dbt_models)
        defs = dagster.Definitions(
            assets=[observe, dbt_models],
            resources={
                "dbt": dagster_dbt.DbtCliResource(
                    project_dir=str(args.dbt_project), dbt_executable=str(Path(sys.executable).parent / "dbt")
                )
            },
        )
        watch.lap("definitions")
        repository = defs.get_repository_def()
        watch.lap("repository")
        RepositorySnap.from_def(repository)
        watch.lap("snapshot")
    else:
        keys = [dagster.AssetKey(k) for k in json.loads(Path(args.path).read_text(encoding="utf-8"))]
        specs = [dagster.AssetSpec(k) for k in keys]
        if args.kind == "bare":
            defs = dagster.Definitions(assets=specs)
        else:

            @dagster.multi_observable_source_asset(specs=specs, can_subset=True)
            def observe(context):  # type: ignore[no-untyped-def]  # dagster rejects `context: Any`
                return None

            defs = dagster.Definitions(assets=[observe])
        watch.lap("definitions")
        repository = defs.get_repository_def()
        watch.lap("repository")
        RepositorySnap.from_def(repository)
        watch.lap("snapshot")
    if args.kind == "floor":  # its dbt models are keyed by plain dagster-dbt: compare the sources
        keys_loaded = sorted(s.key.path for s in specs)
    else:
        keys_loaded = sorted(k.path for k in repository.asset_graph.get_all_asset_keys())
    report_to_parent(watch.stages, {"keys": keys_loaded, "metastore_calls": calls})


def dump_source_specs(repository: Any, path: Path) -> None:
    """The specs of the observable source assets of ``repository`` (what the floor loads), with
    their metadata (plain values, timestamps and paths as such; anything else in Dagster's own
    serialisation) and freshness policies."""
    from dagster import PathMetadataValue, TimestampMetadataValue
    from dagster._serdes import serialize_value

    def value(v: Any) -> Any:
        if isinstance(v, str | int | float | bool):
            return v
        if isinstance(v, TimestampMetadataValue):
            return {"timestamp": v.value}
        if isinstance(v, PathMetadataValue):
            return {"path": v.value}
        return {"serdes": serialize_value(v)}

    specs = [
        {
            "key": spec.key.path,
            "description": spec.description,
            "group_name": spec.group_name,
            "tags": dict(spec.tags),
            "kinds": sorted(spec.kinds),
            "owners": list(spec.owners),
            "metadata": {k: value(v) for k, v in spec.metadata.items()},
            "freshness_policy": serialize_value(spec.freshness_policy) if spec.freshness_policy else None,
        }
        for assets_def in {id(a): a for a in repository.assets_defs_by_key.values()}.values()
        if assets_def.is_observable
        for spec in assets_def.specs
    ]
    path.write_text(json.dumps(specs), encoding="utf-8")


def load_source_specs(path: str) -> list[Any]:
    """The floor's specs, from ``dump_source_specs``: what a plain Dagster code location would
    build from a listing of its tables (read here from JSON, as floe reads its defs state)."""
    import dagster
    from dagster._serdes import deserialize_value

    def value(v: Any) -> Any:
        if not isinstance(v, dict):
            return v
        if "timestamp" in v:
            return dagster.MetadataValue.timestamp(v["timestamp"])
        if "path" in v:
            return dagster.MetadataValue.path(v["path"])
        return deserialize_value(v["serdes"])

    return [
        dagster.AssetSpec(
            dagster.AssetKey(s["key"]),
            description=s["description"],
            group_name=s["group_name"],
            tags=s["tags"],
            kinds=set(s["kinds"]),
            owners=s["owners"],
            metadata={k: value(v) for k, v in s["metadata"].items()},
            freshness_policy=deserialize_value(s["freshness_policy"]) if s["freshness_policy"] else None,
        )
        for s in json.loads(Path(path).read_text(encoding="utf-8"))
    ]


if __name__ == "__main__":
    if sys.argv[1:2] == ["load"]:
        _load_child(sys.argv[2:])
    else:
        sys.exit(
            "usage: python benchmarks/_common.py load {floe|bare|observable} PATH (started by the benchmarks)"
        )
