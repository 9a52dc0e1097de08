"""The Spark compute's views over metastore tables, run in a real local Spark session.

Tables of metastores the Spark session does not use as its catalog (Glue, Dataproc, S3 prefixes,
a second Hive Metastore) become Spark views over their storage locations
(``floe_dagster/readers/spark_scan.py``); the same conformance check DuckDB has
(``scan_description``) exists for Spark (``spark_scan``, ``floe conformance --engine spark``).
Tables come from a real Hive Metastore (ORC, Parquet partitioned, CSV, JSON, Avro, Iceberg) and
moto's Glue and S3 (``s3://`` locations, which pyspark's jars cannot read: a tagged refusal).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest

from floe_dagster.core.errors import NotSupportedError
from floe_dagster.metastores.conformance import (
    CHECKS,
    ENGINE_CHECKS,
    FAIL,
    PASS,
    check_connector,
    format_report,
    run_check,
)
from floe_dagster.readers.spark_scan import failing_view, spark_check_session, spark_path, view_statements
from tests.fixtures.glue_seed import glue_connector, seed_glue
from tests.fixtures.hive_metastore import SeededMetastore
from tests.fixtures.moto_server import MotoServer

pytestmark = pytest.mark.server


@pytest.fixture(scope="module")
def spark() -> Any:
    return spark_check_session()


@pytest.fixture(scope="module")
def hive(seeded_hive_metastore: SeededMetastore) -> Any:
    from floe_dagster.plugins.factory import connect_metastore

    with connect_metastore(
        "lake", "hive", {"uri": seeded_hive_metastore.metastore.uri}, environ={}
    ) as connector:  # type: ignore[attr-defined]
        yield connector


def rows(spark: Any, statements: list[str], relation: str) -> list[dict[str, Any]]:
    for statement in statements:
        spark.sql(statement)
    return [row.asDict() for row in spark.sql(f"SELECT * FROM {relation}").collect()]


def test_every_seeded_hive_table_passes_the_spark_check(
    hive: Any, seeded_hive_metastore: SeededMetastore, spark: Any
) -> None:
    results = [
        run_check(hive, "spark_scan", seeded_hive_metastore.db, t) for t in seeded_hive_metastore.tables
    ]
    assert all(r.passed for r in results), [str(r) for r in results if not r.passed]


def test_orc_csv_json_and_iceberg_views_return_the_tables_rows(
    hive: Any, seeded_hive_metastore: SeededMetastore, spark: Any
) -> None:
    db = seeded_hive_metastore.db
    orc = rows(spark, view_statements(hive.describe_scan(db, "orders_orc"), ("v", "orc")), "v.orc")
    assert sorted((r["id"], r["status"]) for r in orc) == [(1, "new"), (2, "paid"), (3, "sent")]
    csv = rows(spark, view_statements(hive.describe_scan(db, "people_csv"), ("v", "csv")), "v.csv")
    assert sorted((r["id"], r["name"], str(r["joined"])) for r in csv) == [
        (1, "ann", "2024-01-01"),
        (2, "bob", "None"),  # Hive's \N is NULL
    ]
    json = rows(spark, view_statements(hive.describe_scan(db, "clicks_json"), ("v", "json")), "v.json")
    assert sorted((r["id"], r["url"]) for r in json) == [(1, "/a"), (2, "/b")]
    ice = hive.describe_scan(db, "ice_customers")
    assert ice.format == "iceberg"
    assert rows(spark, view_statements(ice, ("v", "ice")), "v.ice")  # its current snapshot's rows


def test_partitioned_parquet_is_typed_and_pruned_to_the_selected_partitions(
    hive: Any, seeded_hive_metastore: SeededMetastore, spark: Any
) -> None:
    seeded = seeded_hive_metastore
    scan = hive.describe_scan(seeded.db, seeded.partitioned)
    every = rows(spark, view_statements(scan, ("v", "events")), "v.events")
    assert len(every) == seeded.partition_count * seeded.rows_per_partition
    assert {type(r["bucket"]) for r in every} == {int} and {r["ds"] for r in every} == set(seeded.days)
    # Spark prunes on a partition filter: the plan's partition filters name the column
    plan = spark.sql("EXPLAIN SELECT * FROM v.events WHERE ds = '2024-01-02'").collect()[0][0]
    assert "PartitionFilters: [isnotnull(ds" in plan and "2024-01-02" in plan

    partitions = hive.list_partitions(seeded.db, seeded.partitioned)[:2]
    selected = dataclasses.replace(scan, partitions=tuple(partitions), pruned=True)
    two = rows(spark, view_statements(selected, ("v", "two")), "v.two")
    assert len(two) == 2 * seeded.rows_per_partition
    assert {(r["ds"], r["bucket"]) for r in two} == {(p.values[0], int(p.values[1])) for p in partitions}
    none = rows(spark, view_statements(dataclasses.replace(scan, partitions=()), ("v", "none")), "v.none")
    assert none == [] and spark.table("v.none").columns == ["id", "amount", "ds", "bucket"]


def test_unreadable_schemes_and_formats_are_tagged_refusals(
    hive: Any, seeded_hive_metastore: SeededMetastore, moto_server: MotoServer
) -> None:
    seeded = seed_glue(moto_server)
    glue = glue_connector(moto_server)
    scan = glue.describe_scan(seeded.db, "orders")
    with pytest.raises(NotSupportedError) as info:
        view_statements(scan, ("v", "orders"))
    assert info.value.provider == "spark" and info.value.retryable is False
    assert "cannot read s3:// locations" in str(info.value) and "readable_schemes" in str(info.value)
    # a cluster with hadoop-aws: s3:// is read as s3a://
    assert f"s3a://{seeded.bucket}/" in view_statements(scan, ("v", "orders"), ("file", "s3a"))[1]
    assert spark_path("/data/t", "t") == "file:///data/t"
    with pytest.raises(NotSupportedError, match="spark-avro"):
        view_statements(hive.describe_scan(seeded_hive_metastore.db, "logs_avro"), ("v", "avro"))
    # the conformance check accepts exactly such refusals
    assert [r.status for r in check_connector(glue, seeded.db, "orders", ["spark_scan"])] == [PASS]


def test_a_failing_view_fails_when_read_with_the_reason(spark: Any) -> None:
    reason = "floe: dbt source source.x.s.t reads s.t of metastore 'glue_lake', which Spark cannot read: no"
    for statement in failing_view(("v", "broken"), reason):
        spark.sql(statement)
    with pytest.raises(Exception) as info:
        spark.sql("SELECT * FROM v.broken").collect()
    assert reason in str(info.value)


def test_floe_conformance_engine_spark_adds_the_spark_row(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, spark: Any
) -> None:
    from floe_dagster.cli import main
    from floe_dagster.demo import seed_demo
    from floe_dagster.manifest.loader import load_manifest
    from tests.helpers import copy_demo_project

    for name in ("FLOE_STATE_DIR", "FLOE_MANIFEST", "FLOE_ENV"):
        monkeypatch.delenv(name, raising=False)
    root = copy_demo_project(tmp_path / "project")
    manifest = root / "manifests" / "manifest.yaml"
    seed_demo(load_manifest(manifest))
    assert main(["conformance", str(manifest), "--engine", "spark"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["PROVIDER", "METASTORE", *(c.upper() for c in ENGINE_CHECKS["spark"])]
    assert lines[1].split() == ["iceberg", "lakehouse", *[PASS] * len(ENGINE_CHECKS["spark"])]

    # a stale Iceberg metadata file: Spark cannot open it, and the row says so
    from floe_dagster.plan.builders import build_metastore

    connector = build_metastore(load_manifest(manifest), "lakehouse")
    real = connector.describe_scan

    def stale(*args: Any, **kwargs: Any) -> Any:
        return dataclasses.replace(real(*args, **kwargs), metadata_location=str(tmp_path / "gone.json"))

    connector.describe_scan = stale  # type: ignore[method-assign]
    result = run_check(connector, "spark_scan", "raw", "orders")
    assert result.status == FAIL and "cannot open its Iceberg metadata" in result.detail
    assert "SPARK_SCAN" not in format_report([run_check(connector, c, "raw", "orders") for c in CHECKS[:1]])


def test_dbt_sources_of_a_glue_metastore_become_views_failing_with_the_reason(
    moto_server: MotoServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, spark: Any
) -> None:
    """``source_items``: one batched lookup per namespace; an ``s3://`` table Spark cannot open
    becomes a view whose reading fails naming the source, the metastore and the setting."""
    from floe_dagster.manifest.loader import load_manifest
    from floe_dagster.readers.spark_scan import source_items
    from tests.helpers import copy_demo_project

    for name in ("FLOE_STATE_DIR", "FLOE_MANIFEST", "FLOE_ENV"):
        monkeypatch.delenv(name, raising=False)
    seeded = seed_glue(moto_server)
    root = copy_demo_project(tmp_path / "project")
    manifest = root / "manifests" / "manifest.yaml"
    glue_block = (
        "metastores:\n"
        "  glue_lake:\n"
        "    type: glue\n"
        "    config:\n"
        f"      region: {moto_server.region}\n"
        f"      endpoint: {moto_server.endpoint}\n"
        f"      s3_endpoint: {moto_server.endpoint}\n"
        f"      access_key_id: {moto_server.access_key_id}\n"
        f"      secret_access_key: {moto_server.secret_access_key}\n"
    )
    manifest.write_text(manifest.read_text().replace("metastores:\n", glue_block, 1))
    loaded = load_manifest(manifest)
    source = {
        "name": "orders",
        "schema": seeded.db,
        "identifier": "orders",
        "database": None,
        "meta": {"floe": {"metastore": "glue_lake"}},
    }
    dbt_manifest = {"sources": {"source.floe_demo.glue.orders": source}}
    [item] = source_items(loaded, dbt_manifest)
    assert item["relation"] == f"{seeded.db}.orders"
    for statement in item["sql"]:
        spark.sql(statement)
    with pytest.raises(Exception) as info:
        spark.sql(f"SELECT * FROM {seeded.db}.orders").collect()
    text = str(info.value)
    assert "dbt source source.floe_demo.glue.orders reads" in text and "metastore 'glue_lake'" in text
    assert "cannot read s3:// locations" in text and "readable_schemes" in text
    assert moto_server.secret_access_key not in text

    # with s3a readable (a cluster with hadoop-aws), the same source is a view over s3a://
    [readable] = source_items(loaded, dbt_manifest, schemes=("file", "s3a"))
    assert f"s3a://{seeded.bucket}/" in readable["sql"][1] and "raise_error" not in readable["sql"][1]
    # sources of the session's own Hive Metastore and of Iceberg catalogs need no view
    assert source_items(loaded, dbt_manifest, session_metastore="glue_lake") == []
