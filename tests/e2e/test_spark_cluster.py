"""The Spark compute on a real Spark standalone cluster (master + worker JVMs from pyspark's jars).

Both tests copy the demo, add the test manifests of ``tests/spark_manifests/`` with the Spark
compute's ``master`` set to the cluster (``spark://127.0.0.1:<port>``) and materialise the main
job through Dagster. The proof that the work ran on the cluster is the cluster's own: the
master's JSON status lists floe's application, the worker's lists that application's executors,
and the executors' logs hold the tasks they ran. The outputs reach the Iceberg catalog as with a
local session.

The second test adds a Hive Metastore to the manifest: the Spark session uses it as its catalog,
so a dbt source linked to it is the real Hive table (ORC, partitioned; a corrupt file in a
partition the model filters out proves that Spark pruned it), read together with a model
DuckDB wrote to the Iceberg catalog in the same run.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.fixtures.hive_metastore import ORC, HiveMetastore, create_database, thrift_partition, thrift_table
from tests.fixtures.spark_cluster import SparkCluster, spark_cluster  # noqa: F401 (a fixture)

SPARK_MANIFESTS = Path(__file__).resolve().parents[1] / "spark_manifests"
APP_NAME = "floe-spark"  # the Spark compute names its application floe-<compute>


def cluster_manifests(
    project: Path, cluster: SparkCluster, extra_product: dict[str, Any] | None = None
) -> Path:
    """The spark test manifests in ``project``, the compute pointed at ``cluster`` (small heaps)."""
    for path in SPARK_MANIFESTS.glob("*.yaml"):
        shutil.copy(path, project / "manifests" / path.name)
    domain_path = project / "manifests" / "spark_domain.yaml"
    domain = yaml.safe_load(domain_path.read_text())
    domain["computes"]["targets"]["spark"]["config"] = {
        "method": "session",
        "master": cluster.master_url,
        "spark_conf": {
            # executors on the worker reach the driver (the dbt process) on loopback
            "spark.driver.host": "127.0.0.1",
            "spark.driver.bindAddress": "127.0.0.1",
            "spark.driver.memory": "512m",
            "spark.executor.memory": "512m",
            "spark.cores.max": "1",
        },
    }
    domain_path.write_text(yaml.safe_dump(domain, sort_keys=False))
    product_path = project / "manifests" / "spark_product.yaml"
    if extra_product:
        product = yaml.safe_load(product_path.read_text())
        for key, value in extra_product.items():
            if isinstance(value, dict):
                product.setdefault(key, {}).update(value)
            else:
                product[key] = value
        product_path.write_text(yaml.safe_dump(product, sort_keys=False))
    return product_path


def cluster_application(cluster: SparkCluster, known: set[str]) -> dict[str, Any]:
    """floe's application of this run in the master's JSON status (one not seen before)."""
    apps = [a for a in cluster.applications() if a.get("name") == APP_NAME and a["id"] not in known]
    assert len(apps) == 1, cluster.applications()
    return apps[0]


def assert_ran_on_executors(cluster: SparkCluster, app: dict[str, Any]) -> None:
    executors = cluster.executors_of(app["id"])
    assert executors, f"no executor of {app['id']} on the worker: {cluster.worker_status()}"
    assert all(e["appid"] == app["id"] for e in executors)
    logs = cluster.executor_logs(app["id"])
    assert "Running task" in logs and "Finished task" in logs, logs[-2000:]


@pytest.mark.e2e
@pytest.mark.server
def test_spark_group_runs_on_the_standalone_clusters_executors(
    demo_project: Path,
    spark_cluster: SparkCluster,  # noqa: F811 (the fixture imported above)
) -> None:
    from floe_dagster import load_manifest
    from floe_dagster.dagster_stage.run import run_main_job
    from floe_dagster.demo import seed_demo
    from floe_dagster.plan.builders import build_catalog

    known = {a["id"] for a in spark_cluster.applications()}
    loaded = load_manifest(cluster_manifests(demo_project, spark_cluster))
    seed_demo(loaded)
    summary = run_main_job(loaded)
    assert summary.success

    app = cluster_application(spark_cluster, known)
    assert app["state"] in ("RUNNING", "FINISHED"), app
    assert_ran_on_executors(spark_cluster, app)
    # the worker really hosted them: its work folder has the application's executor folders
    assert any((spark_cluster.worker_dir / app["id"]).iterdir())

    catalog = build_catalog(loaded, "lakehouse")
    orders = catalog.load_table(("marts", "orders")).scan().to_arrow()
    assert orders.num_rows == 300
    payments = catalog.load_table(("raw", "payments")).scan().to_arrow()
    assert sum(orders.column("amount").to_pylist()) * 100 == sum(payments.column("amount_cents").to_pylist())
    # DuckDB read Spark's committed output through the catalog
    customers = catalog.load_table(("marts", "customers")).scan().to_arrow()
    assert sum(customers.column("lifetime_value").to_pylist()) == sum(orders.column("amount").to_pylist())


# --- Spark reads the Hive Metastore's own tables ----------------------------------------------

HMS_SOURCES = """version: 2
sources:
  - name: hms_sales
    schema: {db}
    meta:
      floe:
        metastore: hms
    tables:
      - name: order_regions
"""

# stg_orders is written by DuckDB (an Iceberg table of the catalog); order_regions is the Hive
# ORC table, partitioned by region; the model filters region 'zz' out, whose file is not ORC
REGION_MODEL = """{{ config(schema='marts', tags=['hms']) }}
select r.region, count(*) as orders, sum(case when o.status = 'completed' then 1 else 0 end) as completed
from {{ ref('stg_orders') }} as o
join {{ source('hms_sales', 'order_regions') }} as r on r.order_id = o.order_id
where r.region in ('eu', 'us')
group by r.region
"""


def seed_orc_regions(metastore: HiveMetastore, db: str) -> dict[str, list[int]]:
    """``db.order_regions`` (ORC, partitioned by region): orders 1-150 in eu, 151-300 in us, and
    a partition zz whose only file is not ORC (reading it fails)."""
    import pyarrow as pa
    import pyarrow.orc as orc

    client = metastore.client()
    root = create_database(client, db, metastore.warehouse) / "order_regions"
    table = thrift_table(
        db,
        "order_regions",
        [("order_id", "bigint")],
        ORC,
        f"file://{root}",
        partition_keys=[("region", "string")],
    )
    client.create_table(table)
    regions = {"eu": list(range(1, 151)), "us": list(range(151, 301))}
    partitions = []
    for region, ids in regions.items():
        folder = root / f"region={region}"
        folder.mkdir(parents=True)
        orc.write_table(pa.table({"order_id": pa.array(ids, pa.int64())}), folder / "000000_0")
        partitions.append(thrift_partition(table, [region], f"file://{folder}"))
    corrupt = root / "region=zz"
    corrupt.mkdir()
    (corrupt / "000000_0").write_bytes(b"not an ORC file")
    partitions.append(thrift_partition(table, ["zz"], f"file://{corrupt}"))
    client.add_partitions(partitions)
    return regions


@pytest.mark.e2e
@pytest.mark.server
def test_spark_on_the_cluster_reads_a_hive_orc_table_and_duckdbs_iceberg_output(
    demo_project: Path,
    spark_cluster: SparkCluster,  # noqa: F811 (the fixture imported above)
    hive_metastore: HiveMetastore,
) -> None:
    from floe_dagster import load_manifest
    from floe_dagster.dagster_stage.run import run_main_job
    from floe_dagster.demo import seed_demo
    from floe_dagster.plan.builders import build_catalog

    db = "floe_spark_sales"
    regions = seed_orc_regions(hive_metastore, db)
    models = demo_project / "dbt_project" / "models" / "hms"
    models.mkdir()
    (models / "_hms_sources.yml").write_text(HMS_SOURCES.format(db=db))
    (models / "region_orders.sql").write_text(REGION_MODEL)
    product = cluster_manifests(
        demo_project,
        spark_cluster,
        {
            "metastores": {
                "hms": {"type": "hive", "config": {"uri": hive_metastore.uri}, "include": [f"{db}.*"]}
            },
        },
    )
    raw = yaml.safe_load(product.read_text())
    raw["transforms"]["assignments"].insert(0, {"select": "region_orders", "compute": "spark"})
    product.write_text(yaml.safe_dump(raw, sort_keys=False))

    known = {a["id"] for a in spark_cluster.applications()}
    loaded = load_manifest(product)
    seed_demo(loaded)
    summary = run_main_job(loaded)
    assert summary.success

    catalog = build_catalog(loaded, "lakehouse")
    stg_orders = catalog.load_table(("staging", "stg_orders")).scan().to_arrow().to_pylist()
    completed = {row["order_id"] for row in stg_orders if row["status"] == "completed"}
    expected = {
        region: {"orders": len(ids), "completed": len(completed & set(ids))}
        for region, ids in regions.items()
    }
    committed = catalog.load_table(("marts", "region_orders")).scan().to_arrow().to_pylist()
    got = {row["region"]: {"orders": row["orders"], "completed": row["completed"]} for row in committed}
    assert got == expected
    assert 0 < sum(v["completed"] for v in got.values()) < 300

    # the session's catalog was the Hive Metastore: the model's table is registered there (at the
    # session's warehouse, where floe committed it from), and the source needed no view of floe's
    client = hive_metastore.client()
    registered = client.get_table("marts", "region_orders")
    warehouse = demo_project / ".floe" / "spark" / "spark" / "warehouse"
    assert registered.sd.location.replace("file:", "").lstrip("/") == str(
        warehouse / "marts.db" / "region_orders"
    ).lstrip("/")
    attach = (warehouse.parent / "attach.jsonl").read_text()
    assert f"{db}.order_regions" not in attach and "staging.stg_orders" in attach

    apps = [a for a in spark_cluster.applications() if a.get("name") == APP_NAME and a["id"] not in known]
    assert apps, spark_cluster.applications()
    for app in apps:
        assert_ran_on_executors(spark_cluster, app)
