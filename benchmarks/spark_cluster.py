"""A Spark group on a Spark standalone cluster vs the same models in a local Spark session.

Usage: .venv/bin/python benchmarks/spark_cluster.py [--rounds N] [--quick]

Setup (untimed): a real standalone cluster (master + one worker, from pyspark's jars, on
127.0.0.1: ``tests/fixtures/spark_cluster.py``) and two copies of the demo with the test
manifests of ``tests/spark_manifests/`` (stg_payments and orders on the Spark compute, the other
models on DuckDB): in one copy the Spark compute's ``master`` is the cluster, in the other
``local[1]``. Both are seeded with the same demo data and run once in full (``floe run``), so
the DuckDB models the Spark group reads are in each copy's catalog.

Timed, each side a fresh process (``python benchmarks/spark_cluster.py --child MANIFEST``) doing
what the Dagster step of the Spark group does: floe's prepare step (views over the catalog's
current snapshots), ``dbt build --target spark --select stg_payments orders`` (a fresh dbt
process, whose Spark session is local or the cluster's application), then floe's commit of the
outputs to the Iceberg catalog. Stages: prepare, dbt, commit.

Same work: after every round the rows of ``marts.orders`` and ``staging.stg_payments`` in both
catalogs must be equal (and written by that round: a new snapshot), else exit status 3.
Cluster and local session use one core each (``spark.cores.max`` 1 / ``local[1]``) and 512 MB
heaps, so the ratio shows what the cluster's scheduling costs (an application registered with
the master, an executor JVM launched by the worker, tasks shipped over RPC) at this size, not
more parallelism.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import (
    REPO,
    Mismatch,
    Sample,
    Stopwatch,
    alternate,
    clean_env,
    copy_demo_project,
    print_load,
    print_summary,
    report_to_parent,
    require_equal,
    run_process,
    running_spark_cluster,
)

SPARK_MANIFESTS = REPO / "tests" / "spark_manifests"
SELECT = ["stg_payments", "orders"]
TABLES = (("marts", "orders"), ("staging", "stg_payments"))
SMALL = {"spark.driver.memory": "512m", "spark.executor.memory": "512m", "spark.cores.max": "1"}


def make_project(root: Path, master: str) -> Path:
    import yaml

    project = copy_demo_project(root)
    for path in SPARK_MANIFESTS.glob("*.yaml"):
        shutil.copy(path, project / "manifests" / path.name)
    domain_path = project / "manifests" / "spark_domain.yaml"
    domain = yaml.safe_load(domain_path.read_text())
    conf = dict(SMALL)
    if master.startswith("spark://"):
        conf.update({"spark.driver.host": "127.0.0.1", "spark.driver.bindAddress": "127.0.0.1"})
    domain["computes"]["targets"]["spark"]["config"] = {
        "method": "session",
        "master": master,
        "spark_conf": conf,
    }
    domain_path.write_text(yaml.safe_dump(domain, sort_keys=False))
    return project / "manifests" / "spark_product.yaml"


def child(manifest: str) -> None:
    """One run of the Spark group, as the Dagster step runs it (prepare, dbt build, commit)."""
    import os

    from floe_dagster import load_manifest
    from floe_dagster.computes.spark import SparkComputePlugin
    from floe_dagster.plan.builders import build_compute
    from floe_dagster.transforms.dbt_manifest import dbt_executable
    from floe_dagster.transforms.profiles import profile_context, write_profiles

    watch = Stopwatch()
    loaded = load_manifest(manifest)
    plugin, config = build_compute(loaded, "spark")
    assert isinstance(plugin, SparkComputePlugin)
    context = profile_context(loaded, "spark")
    profiles = write_profiles(loaded)
    env = {**os.environ, **plugin.prepare_dbt_run(config, context), **plugin.dbt_env(config, "spark")}
    watch.lap("prepare")
    command = [
        dbt_executable(),
        "build",
        "--target",
        "spark",
        "--select",
        *SELECT,
        "--profiles-dir",
        str(profiles),
    ]
    result = subprocess.run(command, cwd=loaded.dbt_project_dir, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        print(result.stdout[-4000:], result.stderr[-2000:], file=sys.stderr)
        raise SystemExit(result.returncode)
    watch.lap("dbt")
    plugin.finish_dbt_run(config, context)
    watch.lap("commit")
    report_to_parent(watch.stages, None)


def outputs(manifest: Path) -> dict[str, Any]:
    """Rows (sorted) and the current snapshot id of each output table."""
    from floe_dagster import load_manifest
    from floe_dagster.plan.builders import build_catalog

    catalog = build_catalog(load_manifest(manifest), "lakehouse")
    found: dict[str, Any] = {}
    for identifier in TABLES:
        table = catalog.load_table(identifier)
        rows = table.scan().to_arrow().to_pylist()
        found[".".join(identifier)] = {
            "rows": sorted(rows, key=lambda r: sorted((k, str(v)) for k, v in r.items())),
            "snapshot": table.current_snapshot().snapshot_id,  # type: ignore[union-attr]
        }
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="the same, 3 rounds (the work is already small)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(args.child)
        return 0
    rounds = 3 if args.quick else max(args.rounds, 3)
    load_before = print_load("before")
    workdir = Path(tempfile.mkdtemp(prefix="floe-bench-spark-"))
    try:
        with running_spark_cluster(workdir / "cluster") as cluster:
            print(f"cluster: {cluster.master_url} (started in {cluster.startup_s:.1f} s)", flush=True)
            manifests = {
                "cluster": make_project(workdir / "cluster-project", cluster.master_url),
                "local": make_project(workdir / "local-project", "local[1]"),
            }
            env = clean_env()
            for name, manifest in manifests.items():
                started = time.perf_counter()
                run_process(
                    [[str(Path(sys.executable).parent / "floe"), "demo", str(manifest)]],
                    manifest.parents[1],
                    env,
                    workdir / f"setup-{name}.log",
                )
                print(f"setup ({name}): floe demo in {time.perf_counter() - started:.1f} s", flush=True)
            previous: dict[str, dict[str, Any]] = {name: outputs(m) for name, m in manifests.items()}

            def side(name: str) -> Any:
                def run(label: str) -> Sample:
                    manifest = manifests[name]
                    command = [sys.executable, str(Path(__file__).resolve()), "--child", str(manifest)]
                    return run_process([command], manifest.parents[1], env, workdir / f"{name}-{label}.log")

                return run

            def check(label: str, done: dict[str, Sample]) -> None:
                now = {name: outputs(m) for name, m in manifests.items()}
                for name in manifests:
                    for table, value in now[name].items():
                        if value["snapshot"] == previous[name][table]["snapshot"]:
                            raise Mismatch(f"{label}: {name} wrote no new snapshot of {table}")
                for table in now["cluster"]:
                    require_equal(
                        f"{label}: rows of {table}",
                        "cluster",
                        now["cluster"][table]["rows"],
                        "local",
                        now["local"][table]["rows"],
                    )
                previous.update(now)

            results = alternate({"cluster": side("cluster"), "local": side("local")}, rounds, check=check)
            apps = [a for a in cluster.applications() if a.get("name") == "floe-spark"]
            print(f"cluster applications of floe-spark in the master's status: {len(apps)}", flush=True)
        print_summary(
            results, "local", target="none (context: what the standalone cluster costs at this size)"
        )
        load_after = print_load("after")
        print(f"load average: {load_before} -> {load_after}")
    finally:
        if args.keep:
            print(f"kept: {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
