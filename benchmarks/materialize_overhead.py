"""How much slower is materialising the demo's dbt models through Dagster than plain `dbt build`?

Usage: .venv/bin/python benchmarks/materialize_overhead.py [--repeat N] [--no-floe-run] [--keep]

What is measured: the wall time of each method below, run as subprocesses on one isolated
temporary copy of the demo project (manifests/, dbt_project/ without target/ and logs/,
definitions.py), seeded with `floe seed`:

  dbt        plain `dbt build --target duckdb` in the copy's dbt_project, with the profiles.yml
             floe generates: every model on one compute, one dbt process (the baseline);
  dbt-split  the very `dbt build --target <compute> --select ...` commands Dagster ran in its
             warm-up run (one per compute of floe's plan), replayed in order as plain
             subprocesses: the same dbt work as Dagster does, without Dagster;
  dagster    `dagster asset materialize -f definitions.py --select kind:dbt` in the copy, with
             DAGSTER_HOME set to a temporary folder holding an empty dagster.yaml;
  floe       `floe run manifests/manifest.yaml` (observes the raw tables, then the main job).

Why: Dagster runs dbt in subprocesses, so whatever it takes beyond plain dbt is orchestration
overhead (Python and Dagster start-up, loading definitions.py, dagster-dbt's per-invocation
work, event storage, process exit) plus what splitting the models over several computes
costs (one dbt process per compute). dagster/dbt shows both; dagster/dbt-split only the first.
Absolute times depend on the machine, so they are printed, never asserted.

Every method runs once untimed first (so each has parsed the dbt project once and DuckDB's
files exist), then the methods alternate (dbt, dbt-split, dagster, floe, dbt, ...) for
--repeat rounds, so drift of the machine's load hits all of them alike. The table shows the
median wall time and, steadier on a busy machine, the median CPU time of each method's
process tree. It also counts the timed runs in which dbt re-parsed the whole project ("Unable
to do partial parsing" in the run's output, or in the dbt.log of a target folder dagster-dbt
made for the run): with partial parsing working, that count is 0 everywhere.
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# The folder of the interpreter running this script (the venv's bin), not its resolved target.
VENV_BIN = Path(sys.executable).parent
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


@dataclass(frozen=True)
class Timing:
    wall: float
    cpu: float
    reparsed: bool


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="timed rounds (default: 3)")
    parser.add_argument("--no-floe-run", action="store_true", help="skip `floe run`")
    parser.add_argument("--keep", action="store_true", help="keep the temporary copy and its logs")
    args = parser.parse_args(argv)
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
    env = {key: value for key, value in os.environ.items() if not key.startswith(("FLOE_", "DBT_"))}
    env["PATH"] = os.pathsep.join([str(VENV_BIN), env.get("PATH", "")])
    env["DAGSTER_HOME"] = str(home)
    env["DBT_SEND_ANONYMOUS_USAGE_STATS"] = "false"
    return env


def run(commands: list[list[str]], cwd: Path, env: dict[str, str], log: Path) -> tuple[float, float]:
    """Run the commands in turn, output to `log`; return wall and CPU seconds, or exit on failure."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    with log.open("w", encoding="utf-8") as out:
        for command in commands:
            result = subprocess.run(command, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT)
            if result.returncode != 0:
                break
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if result.returncode != 0:
        tail = "\n".join(log.read_text(encoding="utf-8").splitlines()[-20:])
        sys.exit(f"`{shlex.join(command)}` failed (exit {result.returncode}) in {cwd}:\n{tail}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def invocation_logs(copy: Path) -> set[Path]:
    """The dbt.log of every target folder dagster-dbt has made in the copy so far."""
    return set((copy / "dbt_project" / "target").glob("*/dbt.log"))


def timed_run(method: Method, copy: Path, env: dict[str, str], log: Path) -> Timing:
    known = invocation_logs(copy)
    wall, cpu = run(method.commands, method.cwd, env, log)
    outputs = [log, *sorted(invocation_logs(copy) - known)]
    reparsed = any(REPARSE_MARKER in path.read_text(encoding="utf-8") for path in outputs)
    return Timing(wall, cpu, reparsed)


def prepare(copy: Path, env: dict[str, str], logs: Path) -> None:
    """Seed the raw tables, then write profiles.yml and dbt's manifest the way floe does."""
    run([[str(VENV_BIN / "floe"), "seed", str(MANIFEST)]], copy, env, logs / "seed.log")
    script = (
        "from floe_dagster.manifest.loader import load_manifest\n"
        "from floe_dagster.transforms.dbt_manifest import prepare_dbt_manifest\n"
        f"prepare_dbt_manifest(load_manifest({str(MANIFEST)!r}))\n"
    )
    run([[sys.executable, "-c", script]], copy, env, logs / "prepare.log")


def profiles_dir(copy: Path) -> Path:
    return copy / ".floe" / "dbt_profiles"


def plain_dbt(copy: Path) -> Method:
    command = [str(VENV_BIN / "dbt"), "build", "--profiles-dir", str(profiles_dir(copy))]
    return Method("dbt", [[*command, "--target", "duckdb"]], copy / "dbt_project")


def dagster(copy: Path) -> Method:
    command = ["dagster", "asset", "materialize", "-f", "definitions.py", "--select", DBT_SELECTION]
    return Method("dagster", [[str(VENV_BIN / command[0]), *command[1:]]], copy)


def floe_run(copy: Path) -> Method:
    return Method("floe", [[str(VENV_BIN / "floe"), "run", str(MANIFEST)]], copy)


def dbt_split(copy: Path, dagster_log: Path) -> Method:
    """Dagster's own dbt commands (read from its log), as plain dbt with floe's profiles.

    Each --target gets its own target folder, as dbt keeps a partial parse for one target only:
    sharing `target/` would make these commands and plain dbt re-parse each other's work.
    """
    found = DAGSTER_DBT_COMMAND.findall(dagster_log.read_text(encoding="utf-8"))
    if not found:
        sys.exit(f"no `Running dbt command` line in {dagster_log}: did dagster-dbt change its log?")
    commands = []
    for line in found:
        command = shlex.split(line)
        target = command[command.index("--target") + 1] if "--target" in command else "default"
        commands.append(
            [*command, "--profiles-dir", str(profiles_dir(copy)), "--target-path", f"target/split-{target}"]
        )
    return Method("dbt-split", commands, copy / "dbt_project")


def measure(
    copy: Path,
    include_floe_run: bool,
    repeat: int,
    env: dict[str, str],
    logs: Path,
    progress: Callable[[str], None],
) -> dict[str, list[Timing]]:
    """One untimed warm-up of each method, then `repeat` alternating timed rounds."""

    def warm_up(method: Method) -> None:
        timing = timed_run(method, copy, env, logs / f"{method.name}-warmup.log")
        progress(f"warm-up  {describe(method.name, timing)}")

    plain, orchestrated = plain_dbt(copy), dagster(copy)
    warm_up(plain)
    warm_up(orchestrated)  # its log tells which dbt commands Dagster runs
    split = dbt_split(copy, logs / "dagster-warmup.log")
    warm_up(split)
    todo = [plain, split, orchestrated]
    if include_floe_run:
        todo.append(floe_run(copy))
        warm_up(todo[-1])
    timings: dict[str, list[Timing]] = {method.name: [] for method in todo}
    for round_ in range(1, repeat + 1):
        for method in todo:
            timing = timed_run(method, copy, env, logs / f"{method.name}-{round_}.log")
            timings[method.name].append(timing)
            progress(f"round {round_}  {describe(method.name, timing)}")
    return timings


def describe(name: str, timing: Timing) -> str:
    reparsed = "  (dbt re-parsed the project)" if timing.reparsed else ""
    return f"{name:<9} {timing.wall:6.2f} s wall {timing.cpu:6.2f} s cpu{reparsed}"


def report(timings: dict[str, list[Timing]]) -> str:
    wall = {name: statistics.median(t.wall for t in runs) for name, runs in timings.items()}
    cpu = {name: statistics.median(t.cpu for t in runs) for name, runs in timings.items()}
    lines = [
        f"{'method':<9} {'runs':>4} {'wall s':>7} {'min s':>6} {'max s':>6} {'cpu s':>6} {'re-parsed':>9}"
        "  median wall ratio (cpu ratio)"
    ]
    for name, runs in timings.items():
        walls = [t.wall for t in runs]
        reparsed = f"{sum(t.reparsed for t in runs)}/{len(runs)}"
        bases = ["dbt"] if name in ("dbt", "dbt-split") else ["dbt", "dbt-split"]
        ratios = [
            f"{name}/{base} = {wall[name] / wall[base]:.2f}x ({cpu[name] / cpu[base]:.2f}x)" for base in bases
        ]
        lines.append(
            f"{name:<9} {len(runs):>4} {wall[name]:>7.2f} {min(walls):>6.2f} {max(walls):>6.2f}"
            f" {cpu[name]:>6.2f} {reparsed:>9}  {'   '.join(ratios)}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="floe-bench-"))
    try:
        copy = copy_project(workdir)
        env = make_environment(workdir)
        logs = workdir / "logs"
        logs.mkdir()
        print(f"preparing a copy of the demo project in {copy} ...", flush=True)
        prepare(copy, env, logs)
        timings = measure(
            copy, not args.no_floe_run, args.repeat, env, logs, lambda line: print(line, flush=True)
        )
        print()
        print(report(timings))
    finally:
        if args.keep:
            print(f"\nkept {workdir} (logs in {workdir / 'logs'})")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
