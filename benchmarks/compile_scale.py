"""Does floe's compile stay small next to `dbt parse` on a big project?

Usage: .venv/bin/python benchmarks/compile_scale.py [--models 10000] [--rules 50] [--repeat 3]
       [--verify] [--keep]

What is generated, in a temporary folder:

  dbt_project/   a real dbt project with --models models spread over 20 folders (models/f00 ..
                 models/f19), one source, `ref()` chains of ten models inside each folder plus a
                 ref from every 50th model to a model of the previous folder (so `+` graph operators
                 select long lineages), folder tags (`area_*`) from dbt_project.yml, model tags
                 (`t0`..`t9`, `heavy`), a mix of view/table/incremental materialisations and a few
                 models pinned with `meta: {floe: {compute: ...}}`;
  manifests/     a three-level governed chain: enterprise.yaml approves duckdb_a .. duckdb_f (all
                 `type: duckdb` with a `path`), domains/x.yaml narrows to duckdb_a .. duckdb_e,
                 manifest.yaml (product) narrows to duckdb_a .. duckdb_d and has --rules assignment
                 rules mixing tag:, path:, fqn / model names, config.materialized:, `,` intersections,
                 exclude and `+`/`@`/`n+` graph operators.

What is measured:

  dbt parse      `dbt parse --no-partial-parse --target <default compute>` of the generated
                 project, as a subprocess, with the profiles.yml floe writes (write_profiles): a
                 full parse, which is what floe runs when target/manifest.json is stale;
  floe compile   in this process: load_manifest() of the three-level chain, reading
                 target/manifest.json, and compile_plan() (every model -> one compute). The first
                 (cold) run includes the one-off imports of dbt's selection machinery that
                 compile_plan triggers (floe itself is already imported: it wrote the profiles);
                 then --repeat warm runs, of which the median is shown.

The two alternate (round 0: dbt parse, cold compile; then --repeat rounds of dbt parse, warm
compile), so a change of the machine's load hits both alike; dbt parse's median is the base.

Both are measured in wall seconds and in CPU seconds (user + system; for dbt, of the
subprocess): on a shared machine the wall times swing with the load, the CPU times much less.
The ratio `floe compile / dbt parse` is what matters (target: <= 0.10, floe adds at most 10% to
dbt's own parse); absolute times depend on the machine, so they are printed, never asserted.
--verify also checks, outside the timings, that every model got the compute dbt's selector engine
gives it when each rule is evaluated on its own with dagster_dbt's select_unique_ids.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

VENV_BIN = Path(sys.executable).parent
FOLDERS = 20
CHAIN = 10  # a model refs the one before it in its folder, except every CHAIN-th (reads the source)
CROSS_FOLDER_EVERY = 50  # ... and every 50th also refs a model of the previous folder
META_EVERY = 997  # models pinned to a compute with meta.floe.compute
ENTERPRISE_COMPUTES = ["duckdb_a", "duckdb_b", "duckdb_c", "duckdb_d", "duckdb_e", "duckdb_f"]
DOMAIN_COMPUTES = ENTERPRISE_COMPUTES[:5]
PRODUCT_COMPUTES = ENTERPRISE_COMPUTES[:4]
TARGET_RATIO = 0.10


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--models", type=int, default=10_000, help="dbt models (default: 10000)")
    parser.add_argument("--rules", type=int, default=50, help="assignment rules (default: 50)")
    parser.add_argument("--repeat", type=int, default=3, help="rounds: dbt parse + warm compile (default 3)")
    parser.add_argument(
        "--verify", action="store_true", help="check the plan against per-rule select_unique_ids"
    )
    parser.add_argument("--keep", action="store_true", help="keep the generated project")
    args = parser.parse_args(argv)
    if args.models < FOLDERS:
        parser.error(f"--models must be at least {FOLDERS}")
    if args.rules < 1 or args.repeat < 1:
        parser.error("--rules and --repeat must be at least 1")
    return args


# --- the generated dbt project ---------------------------------------------------------------


def folder_sizes(models: int) -> list[int]:
    return [models // FOLDERS + (1 if f < models % FOLDERS else 0) for f in range(FOLDERS)]


def model_name(folder: int, index: int) -> str:
    return f"m_f{folder:02d}_{index:05d}"


def materialization(folder: int, index: int) -> str:
    if (index + folder) % 25 == 7:
        return "incremental"
    return "table" if (index + folder) % 5 == 0 else "view"


def model_sql(folder: int, index: int) -> str:
    tags = [f"t{index % 10}"] + (["heavy"] if index % 13 == 0 else [])
    config = [f"materialized='{materialization(folder, index)}'", f"tags={tags!r}"]
    if (folder * 100_000 + index) % META_EVERY == 0:
        pinned = PRODUCT_COMPUTES[(folder + index) % len(PRODUCT_COMPUTES)]
        config.append(f"meta={{'floe': {{'compute': '{pinned}'}}}}")
    if index % CHAIN == 0:
        upstream = "{{ source('raw', 'events') }}"
    else:
        upstream = "{{ ref('" + model_name(folder, index - 1) + "') }}"
    lines = [
        "{{ config(" + ", ".join(config) + ") }}",
        f"select id, value, {index} as step",
        f"from {upstream}",
    ]
    if folder > 0 and index % CROSS_FOLDER_EVERY == CROSS_FOLDER_EVERY - 1:
        lines.append("union all")
        lines.append(
            f"select id, value, {index} as step from {{{{ ref('{model_name(folder - 1, index)}') }}}}"
        )
    return "\n".join(lines) + "\n"


def write_dbt_project(project: Path, models: int) -> list[int]:
    sizes = folder_sizes(models)
    project.mkdir(parents=True)
    folder_config = "".join(f"    f{f:02d}:\n      +tags: ['area_{f % 4}']\n" for f in range(FOLDERS))
    (project / "dbt_project.yml").write_text(
        "name: bench\n"
        "version: '1.0.0'\n"
        "config-version: 2\n"
        "profile: bench\n"
        "model-paths: ['models']\n"
        "flags:\n  send_anonymous_usage_stats: false\n"
        "models:\n  bench:\n    +materialized: view\n" + folder_config,
        encoding="utf-8",
    )
    (project / "models").mkdir()
    (project / "models" / "_sources.yml").write_text(
        "version: 2\nsources:\n  - name: raw\n    schema: raw\n    tables:\n      - name: events\n",
        encoding="utf-8",
    )
    for folder, size in enumerate(sizes):
        directory = project / "models" / f"f{folder:02d}"
        directory.mkdir()
        for index in range(size):
            (directory / f"{model_name(folder, index)}.sql").write_text(
                model_sql(folder, index), encoding="utf-8"
            )
    return sizes


# --- the governed manifest chain --------------------------------------------------------------


@dataclass(frozen=True)
class Rule:
    select: str
    compute: str
    exclude: str | None = None


def assignment_rules(count: int, sizes: list[int]) -> list[Rule]:
    """Selectors of every kind the README promises, cycling through the product's computes."""

    def name(folder: int, fraction: float, last_digit: int) -> str:
        """A model about `fraction` into its folder whose index ends in `last_digit` (its chain spot)."""
        folder %= FOLDERS
        chains = max(1, sizes[folder] // CHAIN)
        index = min(int(chains * fraction) % chains * CHAIN + last_digit, sizes[folder] - 1)
        return model_name(folder, index)

    rules: list[Rule] = []
    for i in range(count):
        f = (i * 7 + i // 10) % FOLDERS
        frac = ((i * 37) % 100) / 100
        compute = PRODUCT_COMPUTES[(i + i // 10) % len(PRODUCT_COMPUTES)]
        kind = i % 10
        if kind == 0:
            rules.append(Rule(f"tag:t{(i // 10) % 10},path:models/f{f:02d}", compute))
        elif kind == 1:
            rules.append(Rule(f"path:models/f{f:02d}", compute, exclude="tag:heavy"))
        elif kind == 2:  # ancestors: the chain, then through cross-folder refs into earlier folders
            rules.append(Rule(f"+{name(f, frac, CHAIN - 1)}", compute))
        elif kind == 3:
            rules.append(Rule(f"config.materialized:table,tag:area_{i % 4}", compute))
        elif kind == 4:  # descendants: the rest of the chain, then into later folders
            rules.append(Rule(f"{name(f, frac, 3)}+", compute))
        elif kind == 5:
            rules.append(
                Rule(f"bench.f{f:02d}.{name(f, frac, 4)} fqn:bench.f{(f + 1) % FOLDERS:02d}.*", compute)
            )
        elif kind == 6:
            rules.append(Rule(f"2+{name(f, frac, 5)}+3", compute))
        elif kind == 7:
            rules.append(Rule(f"@{name(f, frac, 7)}", compute))
        elif kind == 8:
            rules.append(
                Rule(f"tag:heavy,config.materialized:incremental tag:t{(i // 10 + 3) % 10}", compute)
            )
        else:
            rules.append(
                Rule(f"{name(f, frac, 1)} {name(f + 3, 1 - frac, 6)} {name(f + 5, frac / 2, 8)}", compute)
            )
    return rules


def target_yaml(computes: list[str]) -> str:
    return "".join(
        f"    {c}:\n      type: duckdb\n      workload_size: {('small', 'medium', 'large')[i % 3]}\n"
        f"      config:\n        path: ../.floe/duckdb/{c}.duckdb\n        extensions: []\n"
        for i, c in enumerate(computes)
    )


def write_manifests(manifests: Path, rules: list[Rule]) -> Path:
    (manifests / "domains").mkdir(parents=True)
    (manifests / "enterprise.yaml").write_text(
        "apiVersion: floe.dev/v1\nkind: Manifest\n"
        "metadata:\n  name: bench-enterprise\n  level: enterprise\n"
        f"computes:\n  approved: [{', '.join(ENTERPRISE_COMPUTES)}]\n  default: duckdb_a\n"
        f"  targets:\n{target_yaml(ENTERPRISE_COMPUTES)}",
        encoding="utf-8",
    )
    (manifests / "domains" / "x.yaml").write_text(
        "apiVersion: floe.dev/v1\nkind: Manifest\nextends: ../enterprise.yaml\n"
        "metadata:\n  name: x\n  level: domain\n"
        f"computes:\n  approved: [{', '.join(DOMAIN_COMPUTES)}]\n  default: duckdb_a\n",
        encoding="utf-8",
    )
    rule_lines = "".join(
        f"    - select: {json.dumps(r.select)}\n      compute: {r.compute}\n"
        + (f"      exclude: {json.dumps(r.exclude)}\n" if r.exclude else "")
        for r in rules
    )
    product = manifests / "manifest.yaml"
    product.write_text(
        "apiVersion: floe.dev/v1\nkind: Manifest\nextends: domains/x.yaml\n"
        "metadata:\n  name: bench-product\n  level: product\n"
        "state_dir: ../.floe\n"
        f"computes:\n  approved: [{', '.join(PRODUCT_COMPUTES)}]\n  default: duckdb_a\n"
        f"transforms:\n  dbt_project: ../dbt_project\n  assignments:\n{rule_lines}",
        encoding="utf-8",
    )
    return product


# --- measuring ---------------------------------------------------------------------------------


def dbt_parse(project: Path, profiles: Path, target: str, log: Path) -> tuple[float, float]:
    """Wall and CPU (user + system) seconds of one full `dbt parse` subprocess (no partial parse)."""
    command = [
        str(VENV_BIN / "dbt"),
        "parse",
        "--no-partial-parse",
        "--project-dir",
        str(project),
        "--profiles-dir",
        str(profiles),
        "--target",
        target,
    ]
    env = {key: value for key, value in os.environ.items() if not key.startswith(("FLOE_", "DBT_"))}
    env["DBT_SEND_ANONYMOUS_USAGE_STATS"] = "false"
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    with log.open("w", encoding="utf-8") as out:
        result = subprocess.run(command, cwd=project, env=env, stdout=out, stderr=subprocess.STDOUT)
    elapsed = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if result.returncode != 0:
        tail = "\n".join(log.read_text(encoding="utf-8").splitlines()[-20:])
        sys.exit(f"`dbt parse` failed (exit {result.returncode}) in {project}:\n{tail}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return elapsed, cpu


@dataclass(frozen=True)
class CompileTimes:
    load_manifest: float
    read_json: float
    compile_plan: float
    cpu: float

    @property
    def total(self) -> float:
        return self.load_manifest + self.read_json + self.compile_plan


def floe_compile(manifest: Path, dbt_manifest_json: Path) -> tuple[CompileTimes, Any]:
    from floe_dagster.manifest import load_manifest
    from floe_dagster.plan.compile import compile_plan
    from floe_dagster.transforms.dbt_manifest import read_dbt_manifest

    cpu_start, start = time.process_time(), time.perf_counter()
    loaded = load_manifest(manifest)
    loaded_at = time.perf_counter()
    # what build_definitions / floe compile read it with (manifest_json is where that is)
    assert dbt_manifest_json == loaded.dbt_project_dir / "target" / "manifest.json"
    dbt_manifest = read_dbt_manifest(loaded)
    assert dbt_manifest is not None
    read_at = time.perf_counter()
    plan = compile_plan(loaded, dbt_manifest)
    done, cpu = time.perf_counter(), time.process_time() - cpu_start
    return CompileTimes(loaded_at - start, read_at - loaded_at, done - read_at, cpu), plan


def verify(manifest: Path, dbt_manifest_json: Path, plan: Any) -> int:
    """Evaluate each rule on its own with dagster_dbt (dbt's selector engine); compare. Mismatches."""
    from dagster_dbt.utils import select_unique_ids

    from floe_dagster.manifest import load_manifest
    from floe_dagster.plan.compile import meta_compute, model_nodes

    loaded = load_manifest(manifest)
    dbt_manifest = json.loads(dbt_manifest_json.read_text(encoding="utf-8"))
    rules = loaded.manifest.transforms.assignments
    previous = Path.cwd()
    os.chdir(loaded.dbt_project_dir)
    try:
        matches = [set(select_unique_ids(r.select, r.exclude or "", "", None, dbt_manifest)) for r in rules]
    finally:
        os.chdir(previous)
    expected = {}
    for node in model_nodes(dbt_manifest):
        compute = meta_compute(node)
        if compute is None:
            index = next((i for i, m in enumerate(matches) if node["unique_id"] in m), None)
            compute = rules[index].compute if index is not None else loaded.manifest.computes.default
        expected[node["unique_id"]] = compute
    got = {t.unique_id: t.compute for t in plan.transforms}
    return sum(1 for uid in expected.keys() | got.keys() if expected.get(uid) != got.get(uid))


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="floe-compile-scale-"))
    try:
        print(f"generating {args.models} models and {args.rules} rules in {workdir} ...", flush=True)
        sizes = write_dbt_project(workdir / "dbt_project", args.models)
        rules = assignment_rules(args.rules, sizes)
        manifest = write_manifests(workdir / "manifests", rules)

        from floe_dagster.manifest import load_manifest
        from floe_dagster.transforms.profiles import write_profiles

        setup = load_manifest(manifest)
        profiles = write_profiles(setup)
        default = setup.manifest.computes.default
        dbt_manifest_json = setup.dbt_project_dir / "target" / "manifest.json"
        parses: list[tuple[float, float]] = []
        warm: list[CompileTimes] = []
        for round_ in range(args.repeat + 1):  # round 0: floe's cold compile
            print(f"round {round_}: dbt parse --target {default} (full parse) ...", flush=True)
            parses.append(dbt_parse(setup.dbt_project_dir, profiles, default, workdir / "dbt-parse.log"))
            times, plan = floe_compile(manifest, dbt_manifest_json)
            print(
                f"round {round_}: dbt parse {parses[-1][0]:.2f} s, floe compile {times.total:.2f} s"
                f" ({times.total / parses[-1][0]:.3f})",
                flush=True,
            )
            if round_ == 0:
                cold = times
            else:
                warm.append(times)
        median = _median(warm)
        parse_wall = statistics.median(wall for wall, _ in parses)
        parse_cpu = statistics.median(cpu for _, cpu in parses)

        reasons: dict[str, int] = {}
        for t in plan.transforms:
            kind = t.reason.split(" (")[0].split(" ")[0]
            reasons[kind] = reasons.get(kind, 0) + 1
        by_compute = {c: len(ts) for c, ts in sorted(plan.by_compute().items())}
        print()
        print(
            f"project: {len(plan.transforms)} models in {FOLDERS} folders, {len(rules)} rules,"
            " enterprise -> domain -> product"
        )
        print("assigned by: " + ", ".join(f"{k} {v}" for k, v in sorted(reasons.items())))
        print("per compute: " + ", ".join(f"{c} {n}" for c, n in by_compute.items()))
        print()
        print(f"{'wall seconds':<32} {'cold':>8} {'warm':>8}   (warm: median of {args.repeat})")
        for label, name in (
            ("load_manifest (3 levels)", "load_manifest"),
            ("read target/manifest.json", "read_json"),
            ("compile_plan", "compile_plan"),
        ):
            print(f"  {label:<30} {getattr(cold, name):>8.3f} {getattr(median, name):>8.3f}")
        print(f"{'floe compile':<32} {cold.total:>8.3f} {median.total:>8.3f}")
        print(f"{'dbt parse (subprocess)':<32} {parse_wall:>8.3f}   (median of {len(parses)})")
        print(f"{'cpu seconds: floe compile':<32} {cold.cpu:>8.3f} {median.cpu:>8.3f}")
        print(f"{'cpu seconds: dbt parse':<32} {parse_cpu:>8.3f}")
        print()
        print(f"floe compile / dbt parse   (target <= {TARGET_RATIO:.2f})")
        for label, ours, theirs in (
            ("wall, cold", cold.total, parse_wall),
            ("wall, warm", median.total, parse_wall),
            ("cpu,  cold", cold.cpu, parse_cpu),
            ("cpu,  warm", median.cpu, parse_cpu),
        ):
            ratio = ours / theirs
            verdict = "ok" if ratio <= TARGET_RATIO else "ABOVE target"
            print(f"  {label}  {ratio:6.3f}  {verdict}")
        if args.verify:
            mismatches = verify(manifest, dbt_manifest_json, plan)
            print(
                f"verify: {len(plan.transforms) - mismatches} of {len(plan.transforms)} models"
                " match per-rule select_unique_ids"
                + ("" if mismatches == 0 else f"; {mismatches} MISMATCH(ES)")
            )
    finally:
        if args.keep:
            print(f"\nkept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    return 0


def _median(runs: list[CompileTimes]) -> CompileTimes:
    return CompileTimes(
        statistics.median(r.load_manifest for r in runs),
        statistics.median(r.read_json for r in runs),
        statistics.median(r.compile_plan for r in runs),
        statistics.median(r.cpu for r in runs),
    )


if __name__ == "__main__":
    sys.exit(main())
