"""How long do `floe validate` and `floe plan` take on the demo when `--env` switches back and forth,
next to a partial `dbt parse` of the same project?

Usage: .venv/bin/python benchmarks/validate_speed.py [--rounds N] [--keep]

What is measured: the wall time (and the CPU time of the process tree) of each command below, each
a fresh process, on one temporary copy of the demo project (manifests/, dbt_project/ without
target/ and logs/, definitions.py):

  validate-dev   `floe validate manifests/manifest.yaml --env dev`
  validate-prod  `floe validate manifests/manifest.yaml --env prod`
  plan-dev       `floe plan manifests/manifest.yaml --env dev`
  plan-prod      `floe plan manifests/manifest.yaml --env prod`
  dbt-parse      plain `dbt parse --target duckdb` in the copy's dbt_project, with the dev
                 profiles.yml floe generates and a target folder of its own, after a first parse:
                 a partial parse with nothing changed (dbt's own floor for "check the project").

The two environments' profiles differ (prod's presets), and dbt keeps a partial parse for one
profile and target only: before floe kept a parse per environment and target, every switch of
`--env` re-parsed the whole project. Each command runs once untimed first (so each environment
was parsed once), then rounds alternate the environments (validate-dev, dbt-parse,
validate-prod, plan-dev, plan-prod, ...), so drift of the machine's load hits all alike. The
table shows medians and floe / dbt-parse; the "dbt ran" column counts the timed floe commands
that ran dbt at all (a stamp under .floe/dbt_parse/ rewritten), and the timed dbt parses that
re-parsed everything ("Unable to do partial parsing"): with the per-environment parse, 0 and 0.
Absolute times depend on the machine (the load average is printed), so nothing is asserted.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent
MANIFEST = "manifests/manifest.yaml"
REPARSE_MARKER = "Unable to do partial parsing"
TARGET_RATIO = 1.5  # floe validate / plan against a partial dbt parse


@dataclass
class Method:
    name: str
    command: list[str]
    cwd: str = "."
    wall: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)
    dbt_ran: int = 0


def copy_demo(root: Path) -> Path:
    shutil.copytree(REPO / "manifests", root / "manifests")
    ignored = shutil.ignore_patterns("target", "logs")
    shutil.copytree(REPO / "dbt_project", root / "dbt_project", ignore=ignored)
    shutil.copy(REPO / "definitions.py", root / "definitions.py")
    return root


def parse_stamps(root: Path) -> dict[str, int]:
    """The parse stamp of each environment and target floe keeps (rewritten when dbt ran)."""
    return {str(p): p.stat().st_mtime_ns for p in (root / ".floe" / "dbt_parse").glob("*/floe_parse.json")}


def run(method: Method, root: Path, env: dict[str, str], timed: bool) -> None:
    before_stamps = parse_stamps(root)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    result = subprocess.run(
        method.command, cwd=root / method.cwd, env=env, capture_output=True, text=True, check=False
    )
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if result.returncode != 0:
        sys.exit(f"{method.name} failed (exit {result.returncode}):\n{result.stdout}\n{result.stderr}")
    if not timed:
        return
    method.wall.append(wall)
    method.cpu.append((after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime))
    if method.name == "dbt-parse":
        method.dbt_ran += REPARSE_MARKER in result.stdout + result.stderr
    else:
        method.dbt_ran += parse_stamps(root) != before_stamps


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--keep", action="store_true", help="keep the temporary project copy")
    args = parser.parse_args()

    root = copy_demo(Path(tempfile.mkdtemp(prefix="floe-validate-speed-")) / "project")
    env = {
        **os.environ,
        "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
    }
    env.pop("FLOE_ENV", None)
    env.pop("FLOE_STATE_DIR", None)
    floe = str(VENV_BIN / "floe")
    validate_dev = Method("validate-dev", [floe, "validate", MANIFEST, "--env", "dev"])
    validate_prod = Method("validate-prod", [floe, "validate", MANIFEST, "--env", "prod"])
    plan_dev = Method("plan-dev", [floe, "plan", MANIFEST, "--env", "dev"])
    plan_prod = Method("plan-prod", [floe, "plan", MANIFEST, "--env", "prod"])
    load_start = os.getloadavg()
    print(f"demo copy: {root}; load average at start {load_start[0]:.2f} {load_start[1]:.2f}", flush=True)

    # The dbt baseline: the dev profiles floe writes, copied, and a target folder of its own.
    run(validate_dev, root, env, timed=False)
    baseline_profiles = root / "baseline_profiles"
    baseline_profiles.mkdir()
    shutil.copy(root / ".floe" / "dbt_profiles" / "profiles.yml", baseline_profiles / "profiles.yml")
    dbt_parse = Method(
        "dbt-parse",
        [
            str(VENV_BIN / "dbt"),
            "parse",
            "--target",
            "duckdb",
            "--profiles-dir",
            str(baseline_profiles),
            "--target-path",
            str(root / "baseline_target"),
        ],
        cwd="dbt_project",
    )
    order = [validate_dev, dbt_parse, validate_prod, plan_dev, plan_prod]
    for method in order[1:]:
        run(method, root, env, timed=False)
    for number in range(args.rounds):
        for method in order:
            run(method, root, env, timed=True)
        print(f"round {number + 1}/{args.rounds} done", flush=True)
    load_end = os.getloadavg()

    base_wall = statistics.median(dbt_parse.wall)
    base_cpu = statistics.median(dbt_parse.cpu)
    rows = [("COMMAND", "WALL s", "CPU s", "WALL / dbt-parse", "CPU / dbt-parse", "dbt ran")]
    for method in order:
        wall, cpu = statistics.median(method.wall), statistics.median(method.cpu)
        rows.append(
            (
                method.name,
                f"{wall:.2f}",
                f"{cpu:.2f}",
                f"{wall / base_wall:.2f}x",
                f"{cpu / base_cpu:.2f}x",
                f"{method.dbt_ran}/{len(method.wall)}"
                + (" full re-parses" if method is dbt_parse else " runs"),
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    print()
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)))
    worst = max(statistics.median(m.wall) for m in order if m is not dbt_parse) / base_wall
    print(
        f"\nmedians of {args.rounds} rounds; slowest floe command / partial dbt parse: {worst:.2f}x"
        f" (target: within {TARGET_RATIO}x)"
    )
    print(
        f"load average: start {load_start[0]:.2f} {load_start[1]:.2f} {load_start[2]:.2f},"
        f" end {load_end[0]:.2f} {load_end[1]:.2f} {load_end[2]:.2f} ({os.cpu_count()} CPUs)"
    )
    if args.keep:
        print(f"kept {root}")
    else:
        shutil.rmtree(root.parent, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
