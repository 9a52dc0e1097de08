"""``method: thrift``: dbt-spark's PyHive client against Spark's own Thrift server on a real cluster.

The Thrift server (HiveThriftServer2 from pyspark's jars) is an application of the standalone
cluster of ``tests/fixtures/spark_cluster.py``; dbt runs the Spark group's models through it
(dbt-spark's ``thrift`` method: PyHive, thrift 0.22, thrift-sasl and pure-sasl), the models'
Parquet tables land in the compute's ``shared_warehouse`` and floe commits them to the Iceberg
catalog, where DuckDB reads them. The cluster's worker ran the tasks (the executors' logs).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from tests.fixtures.spark_cluster import (  # noqa: F401 (fixtures)
    SparkCluster,
    ThriftServer,
    spark_cluster,
    spark_thrift_server_on_cluster,
)

SPARK_MANIFESTS = Path(__file__).resolve().parents[1] / "spark_manifests"


@pytest.mark.e2e
@pytest.mark.server
def test_thrift_method_runs_the_spark_group_through_the_thrift_server_on_the_cluster(
    demo_project: Path,
    spark_cluster: SparkCluster,  # noqa: F811
    spark_thrift_server_on_cluster: ThriftServer,  # noqa: F811
) -> None:
    from floe_dagster import load_manifest
    from floe_dagster.computes.spark import SparkComputePlugin
    from floe_dagster.dagster_stage.run import run_main_job
    from floe_dagster.demo import seed_demo
    from floe_dagster.plan.builders import build_catalog, build_compute

    server = spark_thrift_server_on_cluster
    for path in SPARK_MANIFESTS.glob("*.yaml"):
        shutil.copy(path, demo_project / "manifests" / path.name)
    domain_path = demo_project / "manifests" / "spark_domain.yaml"
    domain = yaml.safe_load(domain_path.read_text())
    shared = demo_project / "shared-warehouse"
    domain["computes"]["targets"]["spark"]["config"] = {
        "method": "thrift",
        "host": "127.0.0.1",
        "port": server.port,
        "user": "floe",
        "connect_timeout": 60,
        "shared_warehouse": str(shared),
    }
    domain_path.write_text(yaml.safe_dump(domain, sort_keys=False))
    loaded = load_manifest(demo_project / "manifests" / "spark_product.yaml")
    plugin, config = build_compute(loaded, "spark")
    assert isinstance(plugin, SparkComputePlugin)
    assert plugin.validate_connection(config).ok

    seed_demo(loaded)
    summary = run_main_job(loaded)
    assert summary.success

    # the Thrift server wrote the models into the shared warehouse; floe committed them
    assert (shared / "marts.db" / "orders").is_dir()
    catalog = build_catalog(loaded, "lakehouse")
    orders = catalog.load_table(("marts", "orders")).scan().to_arrow()
    payments = catalog.load_table(("raw", "payments")).scan().to_arrow()
    assert orders.num_rows == 300
    assert sum(orders.column("amount").to_pylist()) * 100 == sum(payments.column("amount_cents").to_pylist())
    customers = catalog.load_table(("marts", "customers")).scan().to_arrow()
    assert sum(customers.column("lifetime_value").to_pylist()) == sum(orders.column("amount").to_pylist())

    # the Thrift server's queries ran on the cluster's executors
    [app] = [a for a in spark_cluster.applications() if a.get("name") == server.app_name]
    assert spark_cluster.executors_of(app["id"])
    logs = spark_cluster.executor_logs(app["id"])
    assert "Running task" in logs and "Finished task" in logs
