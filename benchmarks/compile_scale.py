"""Does floe's compile stay small next to `dbt parse` on a big project?

Usage: .venv/bin/python benchmarks/compile_scale.py [--models 10000] [--rules 50] [--repeat 3]
       [--verify] [--keep] [--quick]

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

What is measured, each a fresh process as the user starts it, with the profiles.yml floe writes:

  floe compile        `floe compile manifests/manifest.yaml --out plan.json`: imports, the
                      three-level chain, the freshness walk over the dbt project (target/
                      manifest.json is fresh: no dbt parse), the profiles.yml write, reading
                      manifest.json, compile_plan, writing the plan;
  dbt parse (full)    `dbt parse --no-partial-parse --target <default compute>`: what floe runs
                      when target/manifest.json is stale;
  dbt parse (partial) `dbt parse --target <default compute>` with dbt's partial parse of an
                      unchanged project (its own --target-path outside the project, so the full
                      parse does not invalidate it): dbt's fastest parse.

floe compile must not run dbt parse here (checked: manifest.json is untouched by it).

A warm-up of each, then --repeat rounds (default 3), the order reversed every other round; medians,
spread and CPU seconds (user + system of the process) are printed, and the ratios
`floe compile / dbt parse` against both parses (target: <= 0.10 against the full parse).
Every round checks that floe's plan holds exactly the models of dbt's manifest.json (of both
parses), and that the partial parse did not re-parse. Then one instrumented fresh process runs
floe compile's steps with a stopwatch (imports, load_manifest, freshness walk + profiles.yml +
reading manifest.json, compile_plan, writing the plan), and dbt's own perf_info.json (full parse)
gives dbt's phases. --verify also checks that every model got the compute dbt's selector engine
gives it when each rule is evaluated on its own with dagster_dbt's select_unique_ids.
Absolute times depend on the machine: printed, never asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from _common import (
    VENV_BIN,
    Mismatch,
    Sample,
    alternate,
    clean_env,
    median,
    prepare_dbt_manifest,
    print_load,
    print_summary,
    require_equal,
    run_process,
    write_profiles,
)

REPARSE = "Unable to do partial parsing"
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
    parser.add_argument(
        "--repeat", type=int, default=3, help="alternating rounds after the warm-up (default 3)"
    )
    parser.add_argument(
        "--verify", action="store_true", help="check the plan against per-rule select_unique_ids"
    )
    parser.add_argument("--keep", action="store_true", help="keep the generated project")
    parser.add_argument("--quick", action="store_true", help="500 models, 10 rules, 3 rounds, --verify")
    args = parser.parse_args(argv)
    if args.quick:
        args.models, args.rules, args.repeat, args.verify = 500, 10, 3, True
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


def plan_models(plan_json: Path) -> dict[str, str]:
    """{unique id: compute} of a plan `floe compile` wrote."""
    data = json.loads(plan_json.read_text(encoding="utf-8"))
    return {t["unique_id"]: t["compute"] for t in data["transforms"]}


def dbt_models(manifest_json: Path) -> set[str]:
    data = json.loads(manifest_json.read_text(encoding="utf-8"))
    return {uid for uid, node in data["nodes"].items() if node.get("resource_type") == "model"}


def instrumented_compile(manifest: Path, out: Path) -> None:
    """`floe compile`'s steps with a stopwatch (``--instrumented``): run as a fresh process."""
    from _common import Stopwatch, report_to_parent

    watch = Stopwatch()
    import floe_dagster.cli  # noqa: F401  (what the `floe` entry point imports)

    watch.lap("import floe_dagster.cli")
    from _common import compile_plan, write_plan

    from floe_dagster.manifest.loader import load_manifest

    watch.skip()
    loaded = load_manifest(manifest)
    watch.lap("load_manifest (3 levels)")
    dbt_manifest = prepare_dbt_manifest(loaded)
    watch.lap("freshness walk + profiles.yml + read manifest.json")
    plan = compile_plan(loaded, dbt_manifest)
    watch.lap("compile_plan")
    write_plan(plan, out)
    watch.lap("write plan")
    report_to_parent(watch.stages, None)


def verify(manifest: Path, dbt_manifest_json: Path, got: dict[str, str]) -> int:
    """Evaluate each rule on its own with dagster_dbt (dbt's selector engine); compare. Mismatches."""
    from _common import meta_compute, model_nodes
    from dagster_dbt.utils import select_unique_ids

    from floe_dagster import load_manifest

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
    return sum(1 for uid in expected.keys() | got.keys() if expected.get(uid) != got.get(uid))


def main(argv: list[str] | None = None) -> int:
    if argv is None and sys.argv[1:2] == ["--instrumented"]:
        instrumented_compile(Path(sys.argv[2]), Path(sys.argv[3]))
        return 0
    args = parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="floe-compile-scale-"))
    print_load("before")
    try:
        print(f"generating {args.models} models and {args.rules} rules in {workdir} ...", flush=True)
        sizes = write_dbt_project(workdir / "dbt_project", args.models)
        rules = assignment_rules(args.rules, sizes)
        manifest = write_manifests(workdir / "manifests", rules)

        from floe_dagster import load_manifest

        setup = load_manifest(manifest)
        profiles = write_profiles(setup)
        print(
            "setup: a first dbt parse, as a deploy runs it (floe compile then finds it fresh) ...", flush=True
        )
        prepare_dbt_manifest(setup)
        default = setup.manifest.computes.default
        project = setup.dbt_project_dir
        env = clean_env()
        plan_json = workdir / "plan.json"
        logs = workdir / "logs"
        logs.mkdir()
        dbt = [str(VENV_BIN / "dbt"), "parse", "--project-dir", str(project), "--profiles-dir", str(profiles)]
        dbt += ["--target", default]
        commands = {
            "floe compile": [str(VENV_BIN / "floe"), "compile", str(manifest), "--out", str(plan_json)],
            "dbt full": [*dbt, "--no-partial-parse"],
            # outside the dbt project: files written inside it would make floe's manifest.json stale
            "dbt partial": [*dbt, "--target-path", str(workdir / "target_partial")],
        }
        manifest_json = project / "target" / "manifest.json"

        def side(name: str) -> Callable[[str], Sample]:
            def run(label: str) -> Sample:
                log = logs / f"{name.replace(' ', '-')}-{label}.log"
                parsed_at = manifest_json.stat().st_mtime
                sample = run_process([commands[name]], workdir, env, log)
                if name == "floe compile" and manifest_json.stat().st_mtime != parsed_at:
                    raise Mismatch(f"{label}: floe compile ran dbt parse (it found manifest.json stale)")
                if (
                    name == "dbt partial"
                    and label != "warm-up"
                    and REPARSE in log.read_text(encoding="utf-8")
                ):
                    raise Mismatch(f"{label}: the partial parse re-parsed the unchanged project ({log})")
                return sample

            return run

        def check(label: str, _: dict[str, Sample]) -> None:
            compiled = set(plan_models(plan_json))
            for name, parsed_json in (
                ("full", manifest_json),
                ("partial", workdir / "target_partial" / "manifest.json"),
            ):
                parsed = dbt_models(parsed_json)
                require_equal(f"{label}: models", "floe's plan", compiled, f"dbt parse ({name})", parsed)

        results = alternate({name: side(name) for name in commands}, args.repeat, check=check)
        got = plan_models(plan_json)
        print(
            f"project: {len(got)} models in {FOLDERS} folders, {len(rules)} rules,"
            " enterprise -> domain -> product"
        )
        by_compute: dict[str, int] = {}
        for compute in got.values():
            by_compute[compute] = by_compute.get(compute, 0) + 1
        print("per compute: " + ", ".join(f"{c} {n}" for c, n in sorted(by_compute.items())))
        medians = print_summary(results, "dbt full", target=f"floe compile / dbt full <= {TARGET_RATIO:.2f}")
        cpus = {name: median([s.cpu for s in runs]) for name, runs in results.items()}
        for base in ("dbt full", "dbt partial"):
            wall = medians["floe compile"] / medians[base]
            cpu = cpus["floe compile"] / cpus[base]
            verdict = "" if base != "dbt full" else ("  ok" if wall <= TARGET_RATIO else "  ABOVE target")
            print(f"floe compile / {base:<12} wall {wall:6.3f}  cpu {cpu:6.3f}{verdict}")

        instrumented = run_process(
            [
                [
                    sys.executable,
                    str(Path(__file__).resolve()),
                    "--instrumented",
                    str(manifest),
                    str(plan_json),
                ]
            ],
            workdir,
            env,
            logs / "instrumented.log",
        )
        require_equal(
            "instrumented compile: plan", "floe compile", got, "instrumented", plan_models(plan_json)
        )
        stages = dict(instrumented.stages)
        stages["python start + exit"] = instrumented.wall - sum(stages.values())
        print("floe compile's stages (one instrumented fresh process, s): " + _stages(stages))
        perf = project / "target" / "perf_info.json"
        if perf.exists():
            info = json.loads(perf.read_text(encoding="utf-8"))
            phases = {k: v for k, v in info.items() if k.endswith("_elapsed") and isinstance(v, int | float)}
            print("dbt parse (full)'s own phases (its perf_info.json, last run, s): " + _stages(phases))
        if args.verify:
            mismatches = verify(manifest, project / "target" / "manifest.json", got)
            print(
                f"verify: {len(got) - mismatches} of {len(got)} models match per-rule select_unique_ids"
                + ("" if mismatches == 0 else f"; {mismatches} MISMATCH(ES)")
            )
            if mismatches:
                raise Mismatch(f"{mismatches} model(s) got another compute than dbt's selector engine gives")
    finally:
        if args.keep:
            print(f"\nkept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    print_load("after")
    return 0


def _stages(stages: dict[str, float]) -> str:
    return ", ".join(f"{k} {v:.2f}" for k, v in stages.items())


if __name__ == "__main__":
    sys.exit(main())
