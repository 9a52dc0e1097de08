"""The `floe` command: validate, plan, compile, seed, run and demo a manifest.

Every failure a user can cause prints `file:line:col: message` (or one plain line) on stderr
and exits 1; no traceback.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Callable, Sequence

from floe_dagster.console import quiet_console
from floe_dagster.core.errors import FloeError
from floe_dagster.manifest.errors import ManifestError
from floe_dagster.manifest.loader import DEFAULT_MANIFEST, LoadedManifest
from floe_dagster.manifest.schema import manifest_json_schema
from floe_dagster.plan import load_manifest
from floe_dagster.plan.artifact import write_plan
from floe_dagster.plan.builders import build_catalog, check_dbt_packages
from floe_dagster.plan.compile import compile_plan
from floe_dagster.plan.model import Plan
from floe_dagster.plan.render import model_edges, render_plan
from floe_dagster.plugins.registry import KINDS, available_types, get_plugin_class
from floe_dagster.plugins.unsupported import UNSUPPORTED_COMPUTES

EXIT_OK, EXIT_FAILED = 0, 1


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    before = list(logging.getLogger().handlers)
    logging.basicConfig(
        level=logging.INFO if getattr(args, "verbose", False) else logging.WARNING, format="%(message)s"
    )
    with quiet_console(h for h in logging.getLogger().handlers if h not in before):
        return run_command(args)


def run_command(args: argparse.Namespace) -> int:
    try:
        return int(args.handler(args) or EXIT_OK)
    except ManifestError as exc:
        for problem in exc.problems:
            print(str(problem), file=sys.stderr)
        return EXIT_FAILED
    except FloeError as exc:
        print(f"floe: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print("floe: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # output piped into `head` and the like
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115
        return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="floe", description="Run a governed Iceberg lakehouse from Dagster."
    )
    commands = parser.add_subparsers(dest="command", required=True)

    def command(
        name: str, handler: Callable[[argparse.Namespace], int | None], help_text: str
    ) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_text, description=help_text)
        sub.add_argument(
            "manifest",
            nargs="?",
            default=str(DEFAULT_MANIFEST),
            help=f"path to manifest.yaml (default: {DEFAULT_MANIFEST})",
        )
        sub.add_argument("-v", "--verbose", action="store_true", help="log progress")
        sub.set_defaults(handler=handler)
        return sub

    validate = command(
        "validate",
        cmd_validate,
        "Check a manifest and compile its plan (parses the dbt project); print every problem as"
        " file:line:col.",
    )
    validate.add_argument("--env", help="environment to check (default: $FLOE_ENV or dev)")
    plan = command("plan", cmd_plan, "Show which compute each dbt model runs on, and why.")
    plan.add_argument(
        "--format",
        choices=["table", "json", "mermaid", "dot"],
        default="table",
        help="table (default), json, or a picture: mermaid or dot (models grouped by compute)",
    )
    plan.add_argument("--env", help="environment to plan for (default: $FLOE_ENV or dev)")
    plan.add_argument("--diff", metavar="OTHER_MANIFEST", help="show only the models whose compute changes")
    compile_ = command("compile", cmd_compile, "Write the plan as a versioned JSON artifact.")
    compile_.add_argument("--out", required=True, help="where to write the plan JSON")
    compile_.add_argument("--env", help="environment to compile for (default: $FLOE_ENV or dev)")
    health = command("health", cmd_health, "Check every catalog and approved compute; exit 1 if any fails.")
    health.add_argument("--env", help="environment to check (default: $FLOE_ENV or dev)")
    health.add_argument("--timeout", type=float, default=10.0, help="seconds per catalog check (at most 10)")
    command("seed", cmd_seed, "Create the demo's raw Iceberg tables (skips existing ones).")
    refresh = command(
        "refresh", cmd_refresh, "List every metastore and cache its tables as Dagster defs state."
    )
    refresh.add_argument("--metastore", metavar="NAME", help="refresh only this metastore")
    refresh.add_argument("--env", help="environment (default: $FLOE_ENV or dev)")
    observe = command(
        "observe", cmd_observe, "Print every metastore table's asset key and data version (no Dagster)."
    )
    observe.add_argument("--metastore", metavar="NAME", help="observe only this metastore")
    observe.add_argument("--format", choices=["table", "json"], default="table")
    observe.add_argument("--env", help="environment (default: $FLOE_ENV or dev)")
    conformance = command(
        "conformance",
        cmd_conformance,
        "Run the metastore conformance checks; print PASS/FAIL per provider and check.",
    )
    conformance.add_argument("--metastore", metavar="NAME", help="check only this metastore")
    conformance.add_argument("--env", help="environment (default: $FLOE_ENV or dev)")
    conformance.add_argument(
        "--engine",
        choices=("duckdb", "spark"),
        default="duckdb",
        help="spark: also read each table through the Spark compute's views (a local Spark session)",
    )
    pools = command(
        "pools",
        cmd_pools,
        "Set each compute's Dagster pool limit on the instance ($DAGSTER_HOME, else"
        " <state_dir>/dagster_home); `make dev` runs it before `dagster dev`.",
    )
    pools.add_argument("--env", help="environment (default: $FLOE_ENV or dev)")
    command("run", cmd_run, "Materialise every asset of the manifest's definitions (the main job).")
    command("demo", cmd_demo, "Seed the demo data, run the main job and show where the outputs are.")
    schema = commands.add_parser("schema", help="Print the manifest's JSON Schema (for editor completion).")
    schema.set_defaults(handler=cmd_schema)
    plugins = commands.add_parser("plugins", help="List installed plugin types per kind.")
    plugins.set_defaults(handler=cmd_plugins)
    return parser


def cmd_validate(args: argparse.Namespace) -> int:
    """Everything `floe plan` checks: the manifest, then the plan over the parsed dbt project
    (selectors, meta.floe.compute, environment parity), and that every approved compute's dbt
    adapter and driver are installed."""
    loaded, plan = planned(args.manifest, args.env, check_packages=True)
    m = loaded.manifest
    print(
        f"{loaded.source_map.file}: ok ({m.metadata.name}: {len(m.catalogs)} catalog(s),"
        f" {len(m.computes.approved)} approved compute(s), {len(m.metastores)} metastore(s),"
        f" {len(plan.transforms)} transform(s) planned; environment {plan.environment})"
    )
    return EXIT_OK


def planned(
    manifest: str, environment: str | None, check_packages: bool = False
) -> tuple[LoadedManifest, Plan]:
    # lazy: dbt plumbing (subprocess, orjson) only for the commands that read the dbt project
    from floe_dagster.transforms.dbt_manifest import prepare_dbt_manifest

    # Manifest problems (unapproved rules included) are reported before dbt parses anything,
    # so a manifest that fails to load writes nothing.
    loaded = load_manifest(manifest, environment=environment)
    if check_packages:  # before dbt parses with an adapter that may be the missing one
        check_dbt_packages(loaded)
    return loaded, compile_plan(loaded, prepare_dbt_manifest(loaded))


def compiled_plan(manifest: str, environment: str | None) -> Plan:
    return planned(manifest, environment)[1]


def cmd_plan(args: argparse.Namespace) -> int:
    from pathlib import Path

    if args.format in ("mermaid", "dot"):
        if args.diff:
            print(f"floe: --diff prints a table or json, not {args.format}", file=sys.stderr)
            return EXIT_FAILED
        return print_plan_picture(args.manifest, args.env, args.format)
    plan = compiled_plan(args.manifest, args.env)
    if args.diff:
        return print_plan_diff(plan, compiled_plan(args.diff, args.env), args.format)
    if args.format == "json":
        print(plan.to_json(relative_to=Path.cwd()))
        return EXIT_OK
    print(plan_table(plan))
    print(
        f"\n{len(plan.transforms)} model(s); environment {plan.environment};"
        f" default compute {plan.default_compute}; CPU and MEMORY: the preset's Kubernetes"
        " requests/limits"
    )
    return EXIT_OK


def print_plan_picture(manifest: str, environment: str | None, fmt: str) -> int:
    """The plan as a Mermaid or DOT graph: one coloured group per compute, dbt edges between models."""
    # lazy: dbt plumbing (subprocess, orjson) only for the commands that read the dbt project
    from floe_dagster.transforms.dbt_manifest import prepare_dbt_manifest

    loaded = load_manifest(manifest, environment=environment)
    dbt_manifest = prepare_dbt_manifest(loaded)
    plan = compile_plan(loaded, dbt_manifest)
    print(render_plan(plan, model_edges(dbt_manifest, (t.unique_id for t in plan.transforms)), fmt))
    return EXIT_OK


def plan_table(plan: Plan) -> str:
    rows = [("UNIQUE ID", "COMPUTE", "TYPE", "PRESET", "CPU", "MEMORY", "REASON")]
    for t in sorted(plan.transforms, key=lambda t: t.unique_id):
        requests, limits = t.resources.get("requests", {}), t.resources.get("limits", {})
        rows.append(
            (
                t.unique_id,
                t.compute,
                t.compute_type,
                t.workload_size,
                f"{requests.get('cpu', '-')}/{limits.get('cpu', '-')}",
                f"{requests.get('memory', '-')}/{limits.get('memory', '-')}",
                t.reason,
            )
        )
    return format_table(rows)


def print_plan_diff(plan: Plan, other: Plan, output: str) -> int:
    """The models whose compute differs between two plans ('-': absent from that plan)."""
    mine = {t.unique_id: t for t in plan.transforms}
    theirs = {t.unique_id: t for t in other.transforms}
    changes = []
    for unique_id in sorted(set(mine) | set(theirs)):
        before = mine[unique_id].compute if unique_id in mine else "-"
        after = theirs[unique_id].compute if unique_id in theirs else "-"
        if before != after:
            changes.append(((mine.get(unique_id) or theirs[unique_id]).name, before, after))
    if output == "json":
        print(json_dumps([{"model": n, "from": a, "to": b} for n, a, b in changes]))
    elif changes:
        print(format_table([("MODEL", "FROM", "TO"), *changes]))
    else:
        print("no model changes compute")
    return EXIT_OK


def cmd_compile(args: argparse.Namespace) -> int:
    from pathlib import Path

    plan = compiled_plan(args.manifest, args.env)
    out = Path(args.out)
    write_plan(plan, out)
    print(
        f"wrote {out} ({len(plan.transforms)} transform(s), environment {plan.environment});"
        f" load it with FLOE_PLAN={out}"
    )
    return EXIT_OK


def cmd_pools(args: argparse.Namespace) -> int:
    # lazy (heavy): the Dagster stage imports dagster, dagster-dbt and dbt
    from floe_dagster.dagster_stage.run import apply_pool_limits, dagster_home, dagster_instance

    loaded = load_manifest(args.manifest, environment=args.env)
    with dagster_instance(loaded) as instance:
        limits = apply_pool_limits(loaded, instance)
    rows = [("POOL", "LIMIT")]
    rows += [(pool, "unlimited" if limit is None else str(limit)) for pool, limit in sorted(limits.items())]
    print(format_table(rows))
    print(f"\ndagster instance: DAGSTER_HOME={dagster_home()}")
    return EXIT_OK


def cmd_schema(args: argparse.Namespace) -> int:
    print(json_dumps(manifest_json_schema()))
    return EXIT_OK


def cmd_health(args: argparse.Namespace) -> int:
    # lazy (heavy): the Dagster stage imports dagster, dagster-dbt and dbt
    from floe_dagster.dagster_stage.resources import ComputeResource

    # lazy (heavy): the OpenTelemetry SDK, for `floe health` only
    from floe_dagster.plugins.telemetry import configure_from_environment

    configure_from_environment()
    loaded = load_manifest(args.manifest, environment=args.env)
    rows = [("KIND", "NAME", "TYPE", "STATUS", "MS", "MESSAGE")]
    failed = 0
    for name in sorted(loaded.manifest.catalogs):
        catalog = build_catalog(loaded, name)
        health = catalog.health_check(timeout=args.timeout)
        failed += not health.healthy
        rows.append(
            ("catalog", name, catalog.type_name, health.status, f"{health.response_ms:.0f}", health.message)
        )
    for name in loaded.manifest.computes.approved:
        # the compute's resource, as Dagster's `connection` check uses it (a plugin that cannot
        # be built is a failed row, not a traceback)
        compute = ComputeResource.for_manifest(loaded, name)
        result = compute.validate()
        failed += not result.ok
        rows.append(
            ("compute", name, compute.plugin_type, result.status, f"{result.latency_ms:.0f}", result.message)
        )
    print(format_table(rows))
    if failed:
        print(f"\n{failed} check(s) failed", file=sys.stderr)
    return EXIT_FAILED if failed else EXIT_OK


def cmd_seed(args: argparse.Namespace) -> int:
    # lazy (heavy): PyIceberg and PyArrow, for the demo only
    from floe_dagster.demo import seed_demo

    loaded = load_manifest(args.manifest)
    created = seed_demo(loaded)
    print(f"created {len(created)} raw table(s): {', '.join(created) or 'none (all present)'}")
    refresh_after_seed(loaded, created)
    return EXIT_OK


def refresh_after_seed(loaded: LoadedManifest, created: Sequence[str]) -> None:
    """New tables become source assets: refresh a defs state written before they existed."""
    # lazy (heavy): the metastore connectors' SDKs (Thrift, boto3, PyArrow)
    from floe_dagster.metastores.state import default_state_path, write_state

    if created and default_state_path(loaded).exists():
        write_state(loaded)


def cmd_refresh(args: argparse.Namespace) -> int:
    # lazy (heavy): the metastore connectors' SDKs (Thrift, boto3, PyArrow)
    from floe_dagster.metastores.state import select_metastores, write_state

    loaded = load_manifest(args.manifest, environment=args.env)
    names = select_metastores(loaded, args.metastore)
    result = write_state(loaded, metastores=names)
    for name in names:
        if name in result.failed:
            print(f"floe: metastore '{name}': {result.failed[name]} (state kept)", file=sys.stderr)
        else:
            print(f"metastore '{name}': {len(result.state.tables(name))} table(s)")
    print(f"defs state: {result.path}")
    return EXIT_FAILED if result.failed else EXIT_OK


def cmd_observe(args: argparse.Namespace) -> int:
    # lazy (heavy): the metastore connectors' SDKs (Thrift, boto3, PyArrow)
    from floe_dagster.metastores.state import observe_metastore, select_metastores, unreachable_message

    loaded = load_manifest(args.manifest, environment=args.env)
    observed, failed = [], 0
    for name in select_metastores(loaded, args.metastore):
        try:
            observed += observe_metastore(loaded, name)
        except FloeError as exc:
            failed += 1
            print(f"floe: {unreachable_message(name, exc)}", file=sys.stderr)
    if args.format == "json":
        print(
            json_dumps(
                [
                    {
                        "metastore": t.metastore,
                        "key": t.key,
                        "data_version": t.data_version,
                        "readable": t.unreadable_reason is None,
                        **({"unreadable_reason": t.unreadable_reason} if t.unreadable_reason else {}),
                    }
                    for t in observed
                ]
            )
        )
    else:
        print(format_table([("KEY", "DATA VERSION"), *((t.key, t.data_version) for t in observed)]))
        print(f"\n{len(observed)} table(s)")
    return EXIT_FAILED if failed else EXIT_OK


def cmd_conformance(args: argparse.Namespace) -> int:
    # lazy (heavy): the metastore connectors' SDKs and DuckDB
    from floe_dagster.metastores.conformance import (
        ENGINE_CHECKS,
        failures,
        format_report,
        manifest_conformance,
    )

    # lazy (heavy): the format readers (PyArrow, DuckDB's extensions, hudi-rs)
    from floe_dagster.metastores.format_conformance import format_format_report, manifest_format_conformance

    loaded = load_manifest(args.manifest, environment=args.env)
    results = manifest_conformance(loaded, args.metastore, ENGINE_CHECKS[args.engine])
    print(format_report(results))
    by_format = manifest_format_conformance(loaded, args.metastore)  # a row per format held
    print("\n" + format_format_report(by_format))
    failed_formats = [r for r in by_format if r.status == "FAIL"]  # "-": not run, said, not failed
    return EXIT_FAILED if failures(results) or failed_formats else EXIT_OK


def cmd_run(args: argparse.Namespace) -> int:
    # lazy (heavy): the Dagster stage imports dagster, dagster-dbt and dbt
    from floe_dagster.dagster_stage.run import run_main_job

    loaded = load_manifest(args.manifest)
    summary = run_main_job(loaded, progress=progress)
    print(
        f"run {summary.run_id}: {'success' if summary.success else 'FAILED'};"
        f" {len(summary.materialized)} asset(s) materialised"
    )
    print_outputs(loaded)
    return EXIT_OK if summary.success else EXIT_FAILED


def cmd_demo(args: argparse.Namespace) -> int:
    # lazy (heavy): PyIceberg and PyArrow, for the demo only
    from floe_dagster.demo import seed_demo

    loaded = load_manifest(args.manifest)
    progress("seeding the demo's raw Iceberg tables (kept when present)")
    created = seed_demo(loaded)
    print(f"raw data: {len(created)} table(s) created" if created else "raw data: present (reused)")
    refresh_after_seed(loaded, created)
    return cmd_run(args)


def progress(step: str) -> None:
    """One line per long step of `floe run` / `floe demo`, shown as it starts."""
    print(f"floe: {step} ...", flush=True)


def print_outputs(loaded: LoadedManifest) -> None:
    # lazy (heavy): the Dagster stage imports dagster, dagster-dbt and dbt
    from floe_dagster.dagster_stage.run import dagster_home

    m = loaded.manifest
    if m.transforms.catalog:
        catalog = build_catalog(loaded, m.transforms.catalog)
        rows = [("ICEBERG TABLE", "ROWS", "METADATA")]
        for namespace in sorted(catalog.list_namespaces()):
            for identifier in sorted(catalog.list_tables(namespace)):
                table = catalog.load_table(identifier)
                snapshot = table.current_snapshot()
                count = snapshot.summary.get("total-records", "?") if snapshot and snapshot.summary else "0"
                rows.append((".".join(identifier), str(count), table.metadata_location))
        print(f"\noutputs in catalog '{m.transforms.catalog}':")
        print(format_table(rows))
    for name in m.computes.approved:
        path = getattr(loaded.plugin_config("computes", name), "path", None)
        if path:
            print(f"compute '{name}' database: {path}")
    home = dagster_home()
    if home:
        print(f"dagster runs: DAGSTER_HOME={home}")
        print(f"see them in the Dagster UI: {dev_command(home, loaded.path)}")


def dev_command(home: os.PathLike[str] | str, manifest: os.PathLike[str] | str) -> str:
    """The command that shows this instance's runs in the UI, with the code location named: `make dev`
    from the project folder when that is what it runs, else `dagster dev -f definitions.py`
    (definitions.py reads FLOE_MANIFEST when the manifest is not the default one)."""
    from pathlib import Path

    here = Path.cwd()
    variables = f"DAGSTER_HOME={home}"
    default_manifest = Path(manifest).resolve() == (here / DEFAULT_MANIFEST).resolve()
    if not default_manifest:
        variables += f" FLOE_MANIFEST={Path(manifest).resolve()}"
    dagster = Path(sys.executable).parent / "dagster"
    if (here / ".venv" / "bin" / "dagster").exists():  # the project's venv, as the Makefile runs it
        dagster = here / ".venv" / "bin" / "dagster"
    shown = dagster.relative_to(here) if dagster.is_relative_to(here) else dagster
    target = "definitions.py" if (here / "definitions.py").is_file() else "<your definitions.py>"
    command = f"{variables} {shown} dev -f {target}"
    if default_manifest and (here / "Makefile").is_file() and Path(home) == here / ".floe" / "dagster_home":
        return f"make dev (runs {command} -h 127.0.0.1 -p 3000)"
    return command


def cmd_plugins(args: argparse.Namespace) -> int:
    for kind in KINDS:
        print(f"{kind}: {', '.join(available_types(kind))}")
    # what each compute can do here (its support note), and the engines that are not supported
    for name in available_types("computes"):
        try:
            note = getattr(get_plugin_class("computes", name), "support_note", "")
        except FloeError as exc:
            note = f"cannot be loaded: {exc}"
        if note:
            print(f"  {name}: {note}")
    for name, reason in sorted(UNSUPPORTED_COMPUTES.items()):
        print(f"  {name}: not supported: {reason}")
    return EXIT_OK


def format_table(rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows
    )


def json_dumps(value: object) -> str:
    return json.dumps(value, indent=2, sort_keys=True, default=str)


if __name__ == "__main__":
    sys.exit(main())
