"""Does a big dbt project load as fast through floe as through plain dagster-dbt?

Usage: .venv/bin/python benchmarks/load_dbt_scale.py [--models 2000] [--rounds 3] [--quick]
       [--models 10000] [--dagster-dev] [--keep]

What is generated, in a temporary folder (tests/generated_dbt.py): a copy of the demo project
(manifests/, dbt_project/) whose dbt project gets 3 seeds and --models views over them, half under
models/staging/gen/ (the default compute, ``duckdb``), half under models/marts/gen/ (``tag:marts``
-> ``duckdb_analytics``): two compute groups, as in the demo, with dbt tests (asset checks),
ephemeral models and dependencies across the groups. dbt parses it once
(``prepare_dbt_manifest``), and the plan is compiled once for the FLOE_PLAN variant.

What is measured, each load in a FRESH Python process (after one warm-up process of each, so
the OS file cache and the bytecode are warm alike), rounds alternating the three:

  floe       ``build_definitions(manifest.yaml)`` (what ``definitions.py`` runs);
  floe-plan  the same from the compiled plan (``compiled_plan=``, what FLOE_PLAN does);
  dbt        plain dagster-dbt: ``@dbt_assets(manifest=<target/manifest.json>)`` with a
             ``DbtCliResource``, in a ``Definitions``.

Each child times, after its imports (dagster, dagster-dbt and floe are imported in every child,
so imports cost the same and are reported apart): the load (build the Definitions, resolve the
repository, take its snapshot ``RepositorySnap.from_def`` as a code server does), in wall and
CPU seconds. Printed: per-round times, medians, spread, ratios floe / dbt (wall and CPU), the
load average before and after, a check that both sides give every dbt model the same asset key,
and where floe's time goes (stage timings of one more floe child, plus a cProfile top list).

--dagster-dev also times ``dagster dev`` on the project: seconds from start until the code
location is loaded (polling the GraphQL endpoint), for floe's definitions.py and for a module
with the plain dagster-dbt definitions.

Targets: floe / dbt <= 1.2 (wall medians). Absolute times depend on the machine: printed,
never asserted.
"""

import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

TARGET = 1.2
KINDS = ("floe", "floe-plan", "dbt")


# --- the generated project -----------------------------------------------------------------------


def prepare(manifest: Path, plan_out: Path) -> dict[str, Any]:
    """dbt parse (once) and the compiled plan; returns counts for the header."""
    from floe_dagster import load_manifest
    from floe_dagster.plan.artifact import write_plan
    from floe_dagster.plan.compile import compile_plan
    from floe_dagster.transforms.dbt_manifest import prepare_dbt_manifest

    loaded = load_manifest(manifest)
    started = time.perf_counter()
    dbt_manifest = prepare_dbt_manifest(loaded)
    parse = time.perf_counter() - started
    plan = compile_plan(loaded, dbt_manifest)
    write_plan(plan, plan_out)
    return {
        "parse": parse,
        "nodes": len(dbt_manifest["nodes"]),
        "models": len(plan.transforms),
        "groups": {c: len(ts) for c, ts in sorted(plan.by_compute().items())},
    }


# --- one load, in a child process ----------------------------------------------------------------


def child(kind: str, manifest: Path, plan: Path, stages: bool) -> None:
    """Import, then load ``kind`` once; print one JSON line (timings and the dbt models' keys)."""
    import logging
    import warnings

    warnings.simplefilter("ignore")
    logging.getLogger("floe_dagster").setLevel(logging.ERROR)
    started = time.perf_counter(), time.process_time()
    import dagster  # noqa: F401
    import dagster_dbt  # noqa: F401
    from dagster._core.remote_representation.external_data import RepositorySnap

    import floe_dagster.dagster_stage.definitions  # noqa: F401

    imports = time.perf_counter() - started[0], time.process_time() - started[1]
    timings: dict[str, float] = {}
    if stages:
        timings = stage_timers()

    begin = time.perf_counter(), time.process_time()
    if kind == "dbt":
        defs = plain_dagster_dbt(manifest.parent.parent / "dbt_project")
    else:
        from floe_dagster import build_definitions

        defs = build_definitions(manifest, compiled_plan=plan if kind == "floe-plan" else None)
    built = time.perf_counter()
    repository = defs.get_repository_def()
    RepositorySnap.from_def(repository)
    load = time.perf_counter() - begin[0], time.process_time() - begin[1]
    timings["repository + snapshot"] = time.perf_counter() - built
    print(
        json.dumps(
            {
                "kind": kind,
                "imports": imports[0],
                "imports_cpu": imports[1],
                "load": load[0],
                "load_cpu": load[1],
                "stages": timings,
                "models": model_keys(repository),
            }
        )
    )


def plain_dagster_dbt(project_dir: Path) -> Any:
    """What a plain dagster-dbt code location over the same manifest.json does."""
    from dagster import AssetExecutionContext, Definitions
    from dagster_dbt import DbtCliResource, dbt_assets

    manifest = json.loads((project_dir / "target" / "manifest.json").read_bytes())

    @dbt_assets(manifest=manifest)
    def dbt_models(context: AssetExecutionContext, dbt: DbtCliResource):  # type: ignore[no-untyped-def]
        yield from dbt.cli(["build"], context=context).stream()

    return Definitions(assets=[dbt_models], resources={"dbt": DbtCliResource(project_dir=str(project_dir))})


def model_keys(repository: Any) -> dict[str, str]:
    """dbt model unique id -> its asset key, over every dbt multi-asset of the repository."""
    found: dict[str, str] = {}
    for assets_def in set(repository.assets_defs_by_key.values()):
        for spec in assets_def.specs:
            unique_id = spec.metadata.get("dagster_dbt/unique_id")
            if isinstance(unique_id, str) and unique_id.startswith("model."):
                found[unique_id] = spec.key.to_user_string()
    return found


def stage_timers() -> dict[str, float]:
    """Wrap floe's load stages (as named in defs/definitions.py) to time them in this child."""
    import functools

    import floe_dagster.dagster_stage.definitions as definitions

    timings: dict[str, float] = {}
    for name in (
        "load_manifest",
        "prepare_dbt_manifest",
        "compile_plan",
        "read_plan",
        "current_plan",
        "load_sources_state",
        "dbt_source_refs",
        "translate_sources",
        "observable_source_assets",
        "dbt_asset_groups",
        "transform_policies",
        "source_freshness_checks",
        "compute_health",
        "build_resources",
    ):
        original = getattr(definitions, name)

        def timed(*args: Any, _original: Any = original, _name: str = name, **kwargs: Any) -> Any:
            begin = time.perf_counter()
            try:
                return _original(*args, **kwargs)
            finally:
                timings[_name] = timings.get(_name, 0.0) + time.perf_counter() - begin

        setattr(definitions, name, functools.wraps(original)(timed))
    return timings


def run_child(kind: str, manifest: Path, plan: Path, stages: bool = False) -> dict[str, Any]:
    command = [sys.executable, __file__, "--child", kind, "--manifest", str(manifest), "--plan", str(plan)]
    if stages:
        command.append("--stages")
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env=child_env(), check=False)
    if done.returncode != 0:
        raise SystemExit(f"{kind} load failed (exit {done.returncode}):\n{done.stderr[-3000:]}")
    result = dict(json.loads(done.stdout.strip().splitlines()[-1]))
    result["process"] = time.perf_counter() - started
    return result


def child_env() -> dict[str, str]:
    """The venv's bin on PATH (``dbt`` for both sides' resources), the repository importable."""
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    return {**os.environ, "DBT_SEND_ANONYMOUS_USAGE_STATS": "false", "PYTHONPATH": str(REPO), "PATH": path}


def profile_floe(manifest: Path, top: int = 18) -> str:
    """cProfile of one floe load (imports excluded), the top entries by cumulative time."""
    code = (
        "import cProfile, pstats, io, logging, warnings, sys\n"
        "warnings.simplefilter('ignore'); logging.getLogger('floe_dagster').setLevel(logging.ERROR)\n"
        "import dagster, dagster_dbt\n"
        "from dagster._core.remote_representation.external_data import RepositorySnap\n"
        "from floe_dagster import build_definitions\n"
        "profiler = cProfile.Profile(); profiler.enable()\n"
        f"RepositorySnap.from_def(build_definitions({str(manifest)!r}).get_repository_def())\n"
        "profiler.disable(); out = io.StringIO()\n"
        f"pstats.Stats(profiler, stream=out).sort_stats('cumulative').print_stats({top})\n"
        "print(out.getvalue())\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=child_env(), check=False
    )
    text = done.stdout if done.returncode == 0 else done.stderr[-3000:]
    lines = text.splitlines()
    start = next((i for i, line in enumerate(lines) if "ncalls" in line), 0)
    return "\n".join(lines[start : start + top + 1])


# --- dagster dev ---------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def dagster_dev_seconds(workdir: Path, module_file: Path, env: dict[str, str], timeout: float = 900) -> float:
    """Seconds from starting ``dagster dev -f module_file`` until its code location is LOADED."""
    port = free_port()
    home = workdir / f"dagster_home_{port}"
    home.mkdir()
    command = [
        str(Path(sys.executable).parent / "dagster"),
        "dev",
        "-f",
        str(module_file),
        "-h",
        "127.0.0.1",
        "-p",
        str(port),
    ]
    query = json.dumps(
        {
            "query": "{ workspaceOrError { ... on Workspace { locationEntries { name loadStatus"
            " locationOrLoadError { __typename } } } } }"
        }
    ).encode()
    started = time.perf_counter()
    process = subprocess.Popen(
        command,
        cwd=workdir,
        env={**env, "DAGSTER_HOME": str(home)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        while time.perf_counter() - started < timeout:
            time.sleep(0.5)
            try:
                request = urllib.request.Request(
                    f"http://127.0.0.1:{port}/graphql",
                    data=query,
                    headers={"Content-Type": "application/json"},
                )
                with urllib.request.urlopen(request, timeout=5) as response:
                    entries = json.loads(response.read())["data"]["workspaceOrError"]["locationEntries"]
            except Exception:
                continue
            if entries and all(e["loadStatus"] == "LOADED" for e in entries):
                kinds = {e["locationOrLoadError"]["__typename"] for e in entries}
                if kinds != {"RepositoryLocation"}:
                    raise SystemExit(f"dagster dev could not load {module_file}: {kinds}")
                return time.perf_counter() - started
        raise SystemExit(f"dagster dev did not load {module_file} within {timeout:.0f} s")
    finally:
        os.killpg(process.pid, signal.SIGINT)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def time_dagster_dev(root: Path, manifest: Path) -> None:
    plain = root / "plain_dbt_definitions.py"
    plain.write_text(
        "import sys\n"
        f"sys.path.insert(0, {str(REPO / 'benchmarks')!r})\n"
        "from pathlib import Path\n"
        "from load_dbt_scale import plain_dagster_dbt\n"
        f"defs = plain_dagster_dbt(Path({str(root / 'dbt_project')!r}))\n",
        encoding="utf-8",
    )
    env = {**child_env(), "FLOE_MANIFEST": str(manifest)}
    print("\ndagster dev: seconds until the code location is loaded (GraphQL loadStatus LOADED)")
    for name, module in (("floe", root / "definitions.py"), ("dbt", plain)):
        print(f"  {name:5} {dagster_dev_seconds(root, module, env):7.1f} s   load average {load_average()}")


# --- the comparison ------------------------------------------------------------------------------


def load_average() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def spread(values: list[float]) -> str:
    return f"{min(values):.2f}-{max(values):.2f}"


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--models", type=int, default=None, help="generated dbt models (default 2000)")
    parser.add_argument("--rounds", type=int, default=None, help="alternating rounds (default 3)")
    parser.add_argument("--quick", action="store_true", help="smoke run: 200 models, 1 round")
    parser.add_argument("--dagster-dev", action="store_true", help="also time `dagster dev` until loaded")
    parser.add_argument("--no-profile", action="store_true", help="skip the cProfile top list")
    parser.add_argument("--keep", action="store_true", help="keep the generated project")
    parser.add_argument("--child", choices=KINDS, help=argparse.SUPPRESS)
    parser.add_argument("--manifest", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--plan", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--stages", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.manifest, args.plan, args.stages)
        return 0
    models = args.models or (200 if args.quick else 2000)
    rounds = args.rounds or (1 if args.quick else 3)

    tmp = Path(tempfile.mkdtemp(prefix="floe_load_dbt_"))
    try:
        root = tmp / "project"
        from tests.generated_dbt import generate_project

        manifest = generate_project(root, models)
        plan = root / "plan.json"
        print(f"generated {models:,} views in {root}; dbt parse ...")
        info = prepare(manifest, plan)
        print(
            f"dbt parse {info['parse']:.1f} s: {info['nodes']:,} dbt nodes, {info['models']:,} models,"
            f" compute groups {info['groups']}"
        )
        print(f"load average before: {load_average()}")
        for kind in KINDS:  # warm-up: OS file cache, bytecode
            run_child(kind, manifest, plan)
        results: dict[str, list[dict[str, Any]]] = {kind: [] for kind in KINDS}
        for _ in range(rounds):
            for kind in KINDS:
                results[kind].append(run_child(kind, manifest, plan))
        print(f"load average after:  {load_average()}")

        print(f"\n{'':10} {'load s':>8} {'cpu s':>8} {'process s':>10} {'imports s':>10}  load per round")
        medians: dict[str, tuple[float, float]] = {}
        for kind in KINDS:
            rows = results[kind]
            loads, cpus = [r["load"] for r in rows], [r["load_cpu"] for r in rows]
            medians[kind] = statistics.median(loads), statistics.median(cpus)
            print(
                f"{kind:10} {medians[kind][0]:8.2f} {medians[kind][1]:8.2f}"
                f" {statistics.median(r['process'] for r in rows):10.2f}"
                f" {statistics.median(r['imports'] for r in rows):10.2f}"
                f"  {' '.join(f'{x:.2f}' for x in loads)} (spread {spread(loads)})"
            )
        for kind in ("floe", "floe-plan"):
            wall = medians[kind][0] / medians["dbt"][0]
            cpu = medians[kind][1] / medians["dbt"][1]
            holds = "yes" if wall <= TARGET else "NO"
            print(f"ratio {kind} / dbt: {wall:.2f}x wall, {cpu:.2f}x CPU (target <= {TARGET}x): {holds}")

        floe_keys, dbt_keys = results["floe"][-1]["models"], results["dbt"][-1]["models"]
        plan_keys = results["floe-plan"][-1]["models"]
        same = floe_keys == dbt_keys == plan_keys
        print(f"same asset key for every dbt model ({len(dbt_keys):,}): {'yes' if same else 'NO'}")
        if not same:
            differ = sorted(set(floe_keys.items()) ^ set(dbt_keys.items()))[:10]
            print(f"  first differences: {differ}")

        staged = run_child("floe", manifest, plan, stages=True)
        print(f"\nwhere floe's load goes (one more child, {staged['load']:.2f} s; stages nest, in s):")
        for name, seconds in sorted(staged["stages"].items(), key=lambda kv: -kv[1]):
            print(f"  {name:24} {seconds:7.2f}")
        if not args.no_profile:
            print("\ncProfile of one floe load, top by cumulative time:")
            print(profile_floe(manifest))
        if args.dagster_dev:
            time_dagster_dev(root, manifest)
        return 0 if same else 1
    finally:
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
