"""The Spark compute: contract, bad input, honest catalog reads, and a real local Spark run in Dagster.

The end-to-end test copies the demo, adds the test manifests of ``tests/spark_manifests/`` next
to ``manifests/enterprise.yaml`` (stg_payments and orders on a local Spark session, the other
models on DuckDB), and materialises everything through Dagster's main job: Spark reads the raw
Iceberg table and DuckDB's staging output of the same run, and DuckDB reads Spark's output.

The ``thrift`` method's validation is a real HiveServer2 handshake, tested against Spark's own
Thrift server (HiveThriftServer2 from pyspark's jars, started on 127.0.0.1); ``http`` is checked
for reachability only, and its test says so.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shutil
import signal
import socket
import subprocess
import time
from collections import defaultdict
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
import yaml
from pydantic import ValidationError

from floe_dagster.catalogs.sql import SqlCatalogConfig, SqlCatalogPlugin
from floe_dagster.computes.spark import PRESETS, SparkComputePlugin, SparkConfig
from floe_dagster.computes.spark_views import attachment_items, snapshot_select
from floe_dagster.plugins import ConfigurationError, DbtProfileContext, NotSupportedError
from tests.contract.contracts import ComputeContract
from tests.helpers import REPO

CANARY = "canary-Sp4rk-t0ken-91c2"
SPARK_MANIFESTS = Path(__file__).resolve().parents[1] / "spark_manifests"


def context(tmp_path: Path, compute_name: str = "spark", size: str = "small") -> DbtProfileContext:
    return DbtProfileContext(
        compute_name, str(tmp_path / "manifest.yaml"), "dev", str(tmp_path / "state"), (), None, size
    )


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def spark_credential_keys() -> set[str]:
    from dbt.adapters.spark.connections import SparkCredentials

    return {f.name for f in dataclasses.fields(SparkCredentials)} | {"type", "threads"}


# --- the contract (a real local session for validate_connection) -------------------------------


@pytest.mark.e2e
class TestSparkSessionCompute(ComputeContract):
    @pytest.fixture
    def compute(self) -> SparkComputePlugin:
        return SparkComputePlugin()

    @pytest.fixture
    def compute_config(self) -> SparkConfig:
        return SparkConfig.model_validate({"method": "session", "master": "local[1]"})


# --- profiles --------------------------------------------------------------------------------


def test_session_profile_is_accepted_by_dbt_spark_and_keeps_scratch_in_state(tmp_path: Path) -> None:
    from dbt.adapters.spark.connections import SparkCredentials

    config = SparkConfig.model_validate({"method": "session"})
    output = SparkComputePlugin().generate_dbt_profile(config, context(tmp_path, size="medium"))
    assert set(output) <= spark_credential_keys(), set(output) - spark_credential_keys()
    params = output["server_side_parameters"]
    assert params["spark.executor.memory"] == "4g" and params["spark.driver.memory"] == "2g"
    assert params["spark.executor.cores"] == "2"
    scratch = tmp_path / "state" / "spark" / "spark"
    assert params["spark.sql.warehouse.dir"] == str(scratch / "warehouse")
    assert params["spark.sql.catalogImplementation"] == "in-memory"  # no Derby metastore_db
    # no stage progress bar on stdout, where it would prefix (and so hide) dbt's JSON events
    assert params["spark.ui.showConsoleProgress"] == "false"
    rendered = {k: v for k, v in output.items() if k not in ("type", "threads")}
    credentials = SparkCredentials.from_dict(rendered)
    assert credentials.method == "session" and credentials.schema == "default"


def test_http_and_thrift_profiles_use_dbt_spark_keys_and_no_secret(tmp_path: Path) -> None:
    plugin = SparkComputePlugin()
    http = SparkConfig.model_validate(
        {"method": "http", "host": "dbc.example.net", "cluster": "0123-abc", "token": CANARY}
    )
    output = plugin.generate_dbt_profile(http, context(tmp_path, "spark-prod", "large"))
    assert set(output) <= spark_credential_keys(), set(output) - spark_credential_keys()
    assert output["port"] == 443 and output["cluster"] == "0123-abc"
    assert output["token"] == "{{ env_var('FLOE_SECRET_SPARK_PROD_TOKEN') }}"
    assert output["server_side_parameters"]["spark.executor.memory"] == "8g"
    assert "spark.master" not in output["server_side_parameters"]
    assert CANARY not in yaml.safe_dump(output) and CANARY not in repr(http)
    assert plugin.dbt_env(http, "spark-prod") == {"FLOE_SECRET_SPARK_PROD_TOKEN": CANARY}

    thrift = SparkConfig.model_validate(
        {
            "method": "thrift",
            "host": "sts.internal",
            "user": "etl",
            "auth": "LDAP",
            "password": CANARY,
            "timeout_seconds": 600,
        }
    )
    output = plugin.generate_dbt_profile(thrift, context(tmp_path))
    assert set(output) <= spark_credential_keys(), set(output) - spark_credential_keys()
    assert (output["port"], output["auth"], output["query_timeout"]) == (10000, "LDAP", 600)
    assert output["password"] == "{{ env_var('FLOE_SECRET_SPARK_PASSWORD') }}"
    assert CANARY not in yaml.safe_dump(output)


# --- bad input -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ({"method": "jdbc"}, "method"),
        ({"method": "thrift"}, "needs 'host'"),
        ({"method": "http", "host": "h", "cluster": "c"}, "needs 'token'"),
        ({"method": "http", "host": "h", "token": CANARY}, "needs 'cluster'"),
        ({"method": "session", "timeout_seconds": 5}, "only the thrift and http"),
        ({"method": "thrift", "host": "h", "auth": "LDAP"}, "needs 'password'"),
    ],
)
def test_bad_config_is_rejected_with_the_field_named(raw: dict[str, object], expected: str) -> None:
    with pytest.raises(ValidationError) as info:
        SparkConfig.model_validate(raw)
    assert expected in str(info.value)
    assert CANARY not in str(info.value)


def test_unknown_workload_size_lists_the_presets() -> None:
    with pytest.raises(ConfigurationError) as info:
        SparkComputePlugin().get_resource_requirements("xl")
    assert "xl" in str(info.value) and all(size in str(info.value) for size in PRESETS)
    with pytest.raises(ConfigurationError):
        SparkComputePlugin().spark_conf_for("xl")


@pytest.mark.parametrize("method", ["thrift", "http"])
def test_unreachable_endpoint_fails_fast_naming_it_without_the_secret(method: str) -> None:
    port = closed_port()
    raw: dict[str, object] = {"method": method, "host": "127.0.0.1", "port": port, "connect_timeout": 3}
    if method == "http":
        raw.update({"cluster": "c", "token": CANARY})
    result = SparkComputePlugin().validate_connection(SparkConfig.model_validate(raw))
    assert result.status == "failed"
    assert f"spark ({method}) 127.0.0.1:{port}" in result.message and "cannot connect" in result.message
    assert result.latency_ms < 3000
    assert CANARY not in result.message and CANARY not in repr(result)


def test_http_endpoint_is_checked_for_reachability_only_and_says_so() -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        port = server.getsockname()[1]
        config = SparkConfig.model_validate(
            {"method": "http", "host": "127.0.0.1", "port": port, "cluster": "c", "token": CANARY}
        )
        result = SparkComputePlugin().validate_connection(config)
    assert result.ok and result.latency_ms > 0, result.message
    assert result.message == (
        f"spark (http) 127.0.0.1:{port} accepted a TCP connection (reachability only: floe opens no session"
        " over the http method)"
    )


def test_a_port_that_is_no_thrift_server_fails_the_handshake_at_connect_timeout() -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        port = server.getsockname()[1]
        config = SparkConfig.model_validate(
            {"method": "thrift", "host": "127.0.0.1", "port": port, "connect_timeout": 1}
        )
        started = time.monotonic()
        result = SparkComputePlugin().validate_connection(config)
    assert 0.9 < time.monotonic() - started < 6
    assert result.message == (
        f"spark (thrift) 127.0.0.1:{port}: HiveServer2 handshake failed: no HiveServer2 answer within"
        " connect_timeout=1s (is this a Spark Thrift server?)"
    )


# --- a real Spark Thrift server: the HiveServer2 handshake ----------------------------------------


@pytest.fixture(scope="module")
def spark_thrift_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """Spark's own Thrift server (HiveThriftServer2, shipped in pyspark's jars) on 127.0.0.1, auth NONE."""
    import pyspark

    spark_home = Path(pyspark.__file__).parent
    work = tmp_path_factory.mktemp("spark-thrift")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    log = (work / "server.log").open("w")
    process = subprocess.Popen(
        [
            str(spark_home / "bin" / "spark-submit"),
            "--class",
            "org.apache.spark.sql.hive.thriftserver.HiveThriftServer2",
            "--master",
            "local[1]",
            "--driver-memory",
            "512m",
            "--conf",
            "spark.ui.enabled=false",
            "--conf",
            f"spark.sql.warehouse.dir={work / 'warehouse'}",
            "--driver-java-options",
            f"-Dderby.system.home={work / 'derby'} -XX:TieredStopAtLevel=1 -XX:+UseSerialGC",
            "--hiveconf",
            f"hive.server2.thrift.port={port}",
            "--hiveconf",
            "hive.server2.thrift.bind.host=127.0.0.1",
            "spark-internal",
        ],
        cwd=work,
        env={**os.environ, "SPARK_HOME": str(spark_home)},
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            if process.poll() is not None:
                pytest.fail(f"the Spark Thrift server exited: {(work / 'server.log').read_text()[-3000:]}")
            if "HiveThriftServer2 started" in (work / "server.log").read_text(errors="replace"):
                break
            time.sleep(0.5)
        else:
            pytest.fail(f"the Spark Thrift server did not start: {(work / 'server.log').read_text()[-3000:]}")
        yield port
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)
        log.close()


@pytest.mark.server
def test_thrift_validation_opens_and_closes_a_real_hiveserver2_session(spark_thrift_server: int) -> None:
    from floe_dagster.plugins.telemetry import validate_compute

    port = spark_thrift_server
    for raw in ({}, {"user": "analyst"}, {"auth": "LDAP", "user": "analyst", "password": CANARY}):
        config = SparkConfig.model_validate({"method": "thrift", "host": "127.0.0.1", "port": port, **raw})
        result = validate_compute(SparkComputePlugin(), config, "cluster")
        assert result.ok, result.message
        assert result.message == (
            f"compute 'cluster' (spark): spark (thrift) 127.0.0.1:{port}: opened and closed a HiveServer2"
            " session (server protocol V10)"
        )
        assert CANARY not in result.message


@pytest.mark.server
def test_thrift_validation_with_the_wrong_transport_fails_naming_auth_and_ssl(
    spark_thrift_server: int,
) -> None:
    from floe_dagster.plugins.telemetry import validate_compute

    port = spark_thrift_server
    config = SparkConfig.model_validate(
        {"method": "thrift", "host": "127.0.0.1", "port": port, "auth": "NOSASL", "connect_timeout": 5}
    )
    result = validate_compute(SparkComputePlugin(), config, "cluster")
    assert not result.ok
    assert result.message.startswith(
        f"compute 'cluster' (spark): spark (thrift) 127.0.0.1:{port}: HiveServer2 handshake failed: "
    )
    assert "check that auth (NOSASL) and use_ssl (false) match the Thrift server's settings" in result.message
    assert result.message.endswith(f"(correlation id {result.correlation_id})")


# --- reading the catalog: exactly the current snapshot ------------------------------------------


@pytest.fixture
def catalog(tmp_path: Path) -> SqlCatalogPlugin:
    config = SqlCatalogConfig.model_validate(
        {"uri": "sqlite:///catalog.db", "warehouse": "warehouse"}, context={"base_dir": tmp_path}
    )
    return SqlCatalogPlugin("lake", config)


def test_views_read_only_the_current_snapshots_files(catalog: SqlCatalogPlugin) -> None:
    schema = pa.schema([("id", pa.int64()), ("name", pa.string())])
    catalog.create_namespace(("raw",))
    table = catalog.create_table(("raw", "t"), schema=schema)
    table.append(pa.table({"id": [1, 2], "name": ["a", "b"]}, schema=schema))
    table.append(pa.table({"id": [3], "name": ["c"]}, schema=schema))
    old_files = {task.file.file_path for task in table.scan().plan_files()}
    table.overwrite(pa.table({"id": [9], "name": ["z"]}, schema=schema))
    table = catalog.load_table(("raw", "t"))
    current = {task.file.file_path for task in table.scan().plan_files()}
    assert len(old_files) == 2 and len(current) == 1 and not old_files & current

    sql = snapshot_select(table)
    assert all(f"parquet.`{path}`" in sql for path in current)
    assert not any(path in sql for path in old_files)
    assert sql.startswith("SELECT `id`, `name` FROM")
    [item] = attachment_items(catalog)
    assert item["relation"] == "raw.t"
    assert item["sql"] == [
        "CREATE DATABASE IF NOT EXISTS `raw`",
        f"CREATE OR REPLACE VIEW `raw`.`t` AS {sql}",
    ]


def test_empty_snapshot_is_a_typed_empty_view_and_unwritten_tables_are_skipped(
    catalog: SqlCatalogPlugin,
) -> None:
    schema = pa.schema([("id", pa.int64()), ("amount", pa.decimal128(10, 2)), ("at", pa.timestamp("us"))])
    catalog.create_namespace(("raw",))
    catalog.create_table(("raw", "never_written"), schema=schema)
    catalog.create_table(("raw", "empty"), schema=schema).append(schema.empty_table())
    [item] = attachment_items(catalog)
    assert item["relation"] == "raw.empty"
    assert item["sql"][1].endswith(
        "SELECT CAST(NULL AS bigint) AS `id`, CAST(NULL AS decimal(10,2)) AS `amount`,"
        " CAST(NULL AS timestamp_ntz) AS `at` WHERE 1 = 0"
    )


def test_evolved_schema_is_refused_not_guessed(catalog: SqlCatalogPlugin) -> None:
    schema = pa.schema([("id", pa.int64())])
    catalog.create_namespace(("raw",))
    table = catalog.create_table(("raw", "t"), schema=schema)
    table.append(pa.table({"id": [1]}, schema=schema))
    with table.update_schema() as update:
        update.rename_column("id", "key")
    with pytest.raises(NotSupportedError) as info:
        snapshot_select(catalog.load_table(("raw", "t")))
    assert "evolved schema" in str(info.value) and info.value.operation == "spark_attach"


# --- end to end: a local Spark session runs demo models through Dagster -------------------------


def current_payments_by_order(catalog: SqlCatalogPlugin) -> dict[int, Decimal]:
    payments = catalog.load_table(("raw", "payments")).scan().to_arrow().to_pylist()
    amounts: dict[int, Decimal] = defaultdict(Decimal)
    for row in payments:
        amounts[row["order_id"]] += Decimal(row["amount_cents"]) / 100
    return amounts


@pytest.mark.e2e
def test_spark_session_runs_demo_models_through_dagster(demo_project: Path) -> None:
    from floe_dagster import load_manifest
    from floe_dagster.dagster_stage.run import run_main_job
    from floe_dagster.demo import seed_demo
    from floe_dagster.plan.builders import build_catalog

    for path in SPARK_MANIFESTS.glob("*.yaml"):
        shutil.copy(path, demo_project / "manifests" / path.name)
    loaded = load_manifest(demo_project / "manifests" / "spark_product.yaml")
    seed_demo(loaded)
    catalog = build_catalog(loaded, "lakehouse")
    # a second snapshot of raw.payments: its first snapshot's files stay on disk and must not be read
    payments = catalog.load_table(("raw", "payments"))
    kept = payments.scan().to_arrow()
    kept = kept.filter(pc.less(kept["order_id"], 200))
    payments.overwrite(kept)
    expected = current_payments_by_order(catalog)

    summary = run_main_job(loaded)
    assert summary.success

    # Spark's own output (the Parquet table its session wrote), row by row
    warehouse = demo_project / ".floe" / "spark" / "spark" / "warehouse"
    spark_orders = pq.read_table(warehouse / "marts.db" / "orders").to_pylist()
    assert len(spark_orders) == 300
    for row in spark_orders:
        assert row["amount"] == expected.get(row["order_id"], Decimal(0)), row
    assert sum(1 for r in spark_orders if r["amount"] > 0) == len(expected)
    spark_payments = pq.read_table(warehouse / "staging.db" / "stg_payments")
    assert spark_payments.num_rows == kept.num_rows
    assert set(spark_payments.column("payment_id").to_pylist()) == set(kept.column("id").to_pylist())

    # committed to the catalog, and read from there by DuckDB (customers on duckdb_analytics)
    iceberg_orders = catalog.load_table(("marts", "orders")).scan().to_arrow().to_pylist()
    assert sorted(iceberg_orders, key=lambda r: r["order_id"]) == sorted(
        spark_orders, key=lambda r: r["order_id"]
    )
    customers = catalog.load_table(("marts", "customers")).scan().to_arrow()
    assert customers.num_rows == 100
    assert sum(customers.column("lifetime_value").to_pylist()) == sum(expected.values())

    # Spark's scratch stays in the state dir: nothing next to the project or the repository
    for root in (demo_project, demo_project / "dbt_project", REPO, REPO / "dbt_project"):
        for name in ("metastore_db", "spark-warehouse", "derby.log"):
            assert not (root / name).exists(), root / name
