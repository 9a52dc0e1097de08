"""Delta Lake tables (written by delta-rs, ``deltalake``) registered in a real Hive Metastore and
moto's Glue, and under S3 prefixes: read by DuckDB's delta extension through the source views,
versioned by the Delta log, and read at an earlier version (``meta: {floe: {as_of: N}}``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import duckdb
import pytest

from floe_dagster.computes.duckdb_extensions import connect_with_extensions
from floe_dagster.core.errors import NotSupportedError
from floe_dagster.manifest.loader import LoadedManifest, load_manifest
from floe_dagster.metastores.s3 import S3MetastoreConnector
from floe_dagster.plugins.factory import connect_metastore
from floe_dagster.plugins.table_model import ScanDescription, TableFilter
from floe_dagster.readers.duckdb_scan import default_extension_dir
from floe_dagster.readers.formats import create_view, detect_table_format, storage_properties
from floe_dagster.readers.metastore_views import create_source_views, resolve_source_views
from floe_dagster.transforms.dbt_manifest import run_dbt
from floe_dagster.transforms.profiles import write_profiles
from tests.contract.contracts import unique
from tests.fixtures.format_tables import SPARK_DELTA_SD, delta_append, glue_table, moto_storage_options
from tests.fixtures.glue_seed import glue_options
from tests.fixtures.hive_metastore import HiveMetastore, create_database, thrift_table
from tests.fixtures.moto_server import MotoServer

pytestmark = pytest.mark.server


def write_project(root: Path, metastores: str, sources: str) -> Path:
    (root / "dbt" / "models").mkdir(parents=True)
    (root / "dbt" / "dbt_project.yml").write_text(
        "name: deltas\nversion: '1.0.0'\nconfig-version: 2\nprofile: deltas\nmodel-paths: [models]\n"
    )
    (root / "dbt" / "models" / "_sources.yml").write_text(sources)
    manifest = root / "manifest.yaml"
    manifest.write_text(
        "apiVersion: floe.dev/v1\nkind: Manifest\nmetadata: {name: deltas}\nstate_dir: .floe\n"
        "computes:\n  approved: [duckdb]\n  default: duckdb\n  targets:\n"
        "    duckdb:\n      type: duckdb\n"
        "      config: {path: .floe/warehouse.duckdb, extensions: [httpfs]}\n"
        f"{metastores}transforms:\n  dbt_project: dbt\n"
    )
    return manifest


def dbt_manifest_for(loaded: LoadedManifest) -> dict[str, Any]:
    run_dbt(loaded, ["parse"], write_profiles(loaded))
    return dict(json.loads((loaded.dbt_project_dir / "target" / "manifest.json").read_text()))


def sources_yml(schema: str, metastore: str, tables: dict[str, str]) -> str:
    """``tables``: name -> extra YAML for the table (e.g. its meta)."""
    listed = "".join(f"      - name: {t}\n{extra}" for t, extra in tables.items())
    return (
        f"version: 2\nsources:\n  - name: src\n    schema: {schema}\n"
        f"    meta: {{floe: {{metastore: {metastore}}}}}\n    tables:\n{listed}"
    )


AS_OF_1 = "        meta: {floe: {as_of: 1}}\n"


@pytest.mark.parametrize(
    ("params", "serde_params", "handler_params"),
    [
        ({"spark.sql.sources.provider": "delta"}, {"path": "PATH"}, {}),  # Spark / Databricks
        ({"spark.sql.sources.provider": "DELTA"}, {}, {}),  # Trino's Delta connector
        ({"table_type": "DELTA"}, {}, {}),  # Athena
        ({"classification": "delta"}, {}, {}),  # Glue crawlers
        ({}, {}, {"storage_handler": "io.delta.hive.DeltaStorageHandler"}),  # the Hive connector
    ],
)
def test_the_ways_engines_register_a_delta_table_are_recognised(
    params: dict[str, str], serde_params: dict[str, str], handler_params: dict[str, str]
) -> None:
    serde = SPARK_DELTA_SD["SerdeInfo"]["SerializationLibrary"]
    detected = detect_table_format(
        {**params, **handler_params}, serde, SPARK_DELTA_SD["InputFormat"], serde_params
    )
    assert detected is not None and detected[0] == "delta"
    assert detected[1] == ({"path": "PATH"} if serde_params else {})
    assert detect_table_format({"classification": "parquet"}, serde, None, {}) is None


def seed_hms_delta(metastore: HiveMetastore, root: Path) -> tuple[str, Path]:
    """``orders``: three Delta commits (versions 0-2), registered the way Spark registers it."""
    client = metastore.client()
    db = unique("delta")
    create_database(client, db, metastore.warehouse)
    folder = root / "orders_delta"
    for start in (0, 10, 20):
        delta_append(str(folder), range(start, start + 3))
    table = thrift_table(
        db,
        "orders",
        [("col", "array<string>")],  # Spark's placeholder column of a data source table
        (
            SPARK_DELTA_SD["SerdeInfo"]["SerializationLibrary"],
            SPARK_DELTA_SD["InputFormat"],
            SPARK_DELTA_SD["OutputFormat"],
        ),
        f"file://{root}/orders_delta-__PLACEHOLDER__",
        serde_params={"path": f"file://{folder}"},
        params={"spark.sql.sources.provider": "delta"},
    )
    client.create_table(table)
    metastore.close_clients()
    return db, folder


def test_a_delta_table_in_a_hive_metastore_is_read_versioned_by_its_log_and_read_at_version_n_minus_1(
    hive_metastore: HiveMetastore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("FLOE_STATE_DIR", raising=False)
    db, folder = seed_hms_delta(hive_metastore, tmp_path)
    hms = connect_metastore("legacy", "hive", {"uri": hive_metastore.uri}, environ={})
    try:
        table = hms.get_table(db, "orders")
        assert table.storage.format == "delta" and table.data_version == "2"  # the Delta log version
        assert hms.get_table(db, "orders").data_version == "2"  # unchanged without a commit
        delta_append(str(folder), range(30, 32))
        assert hms.get_table(db, "orders").data_version == "3"  # changes on append
    finally:
        hms.close()

    metastores = f'metastores:\n  legacy:\n    config: {{uri: "{hive_metastore.uri}"}}\n'
    counts = {}
    for name, extra in (("latest", ""), ("pinned", AS_OF_1)):
        loaded = load_manifest(
            write_project(tmp_path / name, metastores, sources_yml(db, "legacy", {"orders": extra}))
        )
        resolved = resolve_source_views(loaded, dbt_manifest_for(loaded))
        assert all(v.scan is not None for v in resolved.views), [v.error for v in resolved.views]
        con = duckdb.connect()
        con.execute("ATTACH ':memory:' AS warehouse")
        create_source_views(con, resolved)
        counts[name] = con.sql(f'SELECT count(*), sum(id) FROM warehouse."{db}".orders').fetchone()
    assert counts["latest"] == (11, 3 + 33 + 63 + 61)  # version 3: four commits
    assert counts["pinned"] == (6, 3 + 33)  # as_of 1: the first two commits


def test_a_delta_table_read_at_version_n_minus_1_through_a_dbt_source(tmp_path: Path) -> None:
    folder = tmp_path / "events"
    for start in (0, 10, 20):
        delta_append(str(folder), range(start, start + 2))
    scan = ScanDescription(table="lake.events", format="delta", location=f"file://{folder}")
    con = duckdb.connect()
    create_view(con, "latest", scan, None, None, {}, {})
    pinned = ScanDescription(
        table="lake.events", format="delta", location=str(folder), options={"as_of": "1"}
    )
    create_view(con, "previous", pinned, None, None, {}, {})
    assert con.sql("SELECT count(*), max(id) FROM latest").fetchone() == (6, 21)
    assert con.sql("SELECT count(*), max(id) FROM previous").fetchone() == (4, 11)
    with pytest.raises(NotSupportedError) as info:
        bad = ScanDescription(
            table="lake.events", format="delta", location=str(folder), options={"as_of": "yesterday"}
        )
        create_view(con, "bad", bad, None, None, {}, {})
    assert "lake.events" in str(info.value) and "version" in str(info.value)


def test_a_pin_on_a_format_without_versions_is_refused_naming_the_table() -> None:
    from floe_dagster.readers.formats import pinned

    scan = ScanDescription(table="lake.orders", format="parquet", location="/data/orders")
    manifest = {"sources": {"source.p.src.orders": {"meta": {"floe": {"as_of": 3}}}}}
    refused = pinned(scan, manifest, "source.p.src.orders")
    assert isinstance(refused, NotSupportedError)
    assert "lake.orders" in str(refused) and "parquet" in str(refused) and "as_of" in str(refused)
    assert pinned(scan, {"sources": {}}, "source.p.src.orders") is scan


def test_delta_tables_in_glue_and_under_an_s3_prefix_on_moto(
    moto_server: MotoServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("FLOE_STATE_DIR", raising=False)
    glue = moto_server.client("glue")
    bucket = moto_server.create_bucket("delta")
    options = moto_storage_options(moto_server)
    uri = f"s3://{bucket}/lake/sales/eu"
    for start in (0, 10):
        delta_append(uri, range(start, start + 3), options)
    db = unique("glue_delta")
    glue.create_database(DatabaseInput={"Name": db})
    athena = glue_table("sales", {"SerdeInfo": {}}, uri, params={"table_type": "DELTA"})
    glue.create_table(DatabaseName=db, TableInput=athena)

    lake = connect_metastore("lake", "glue", glue_options(moto_server), environ={})
    assert lake.get_table(db, "sales").data_version == "1"
    delta_append(uri, range(20, 22), options)
    assert lake.get_table(db, "sales").data_version == "2"

    config = "".join(f"      {k}: {json.dumps(v)}\n" for k, v in glue_options(moto_server).items())
    metastores = f"metastores:\n  lake:\n    type: glue\n    config:\n{config}"
    loaded = load_manifest(write_project(tmp_path, metastores, sources_yml(db, "lake", {"sales": ""})))
    resolved = resolve_source_views(loaded, dbt_manifest_for(loaded))
    con = connect_with_extensions(":memory:", default_extension_dir(), ["httpfs"])
    con.execute("ATTACH ':memory:' AS warehouse")
    create_source_views(con, resolved)
    assert con.sql(f'SELECT count(*) FROM warehouse."{db}".sales').fetchone() == (8,)

    # the same folder found by the S3 source: one table per _delta_log/, versioned from the listing
    prefix = connect_metastore(
        "s3lake",
        "s3",
        {
            "bucket": bucket,
            "region": moto_server.region,
            "endpoint": moto_server.endpoint,
            "access_key_id": moto_server.access_key_id,
            "secret_access_key": moto_server.secret_access_key,
            "path_prefix": "lake/",
            "file_type": "delta",
        },
        environ={},
    )
    assert isinstance(prefix, S3MetastoreConnector)
    (found,) = prefix.scan(TableFilter())
    assert (found.name, found.storage.format, found.storage.location) == ("lake_sales_eu", "delta", uri)
    assert found.data_version == "2" and [c.name for c in found.storage.columns] == ["id", "label"]
    con.execute(prefix.credentials.duckdb_secret_sql("s3src", scopes=[f"s3://{bucket}"]))
    create_view(
        con,
        "prefix_sales",
        ScanDescription.from_table(found),
        None,
        None,
        storage_properties(prefix.credentials),
        {},
    )
    assert con.sql("SELECT count(*) FROM prefix_sales").fetchone() == (8,)
    assert prefix.call_counts["get_object"] == 0  # versioned from the listing alone


def test_a_dbt_var_pins_a_delta_source_for_one_dbt_build(
    hive_metastore: HiveMetastore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``dbt build --vars '{floe_as_of: {src.orders: 1}}'`` reads version 1 of a table at version 2."""
    for name in ("FLOE_STATE_DIR", "FLOE_ENV", "DBT_TARGET_PATH"):
        monkeypatch.delenv(name, raising=False)
    db, _ = seed_hms_delta(hive_metastore, tmp_path)
    metastores = f'metastores:\n  legacy:\n    config: {{uri: "{hive_metastore.uri}"}}\n'
    root = tmp_path / "project"
    loaded = load_manifest(write_project(root, metastores, sources_yml(db, "legacy", {"orders": ""})))
    (root / "dbt" / "models" / "counted.sql").write_text(
        "{{ config(materialized='table') }}\nselect count(*) as n from {{ source('src', 'orders') }}"
    )
    profiles = write_profiles(loaded)
    counts = []
    for extra in ([], ["--vars", "{floe_as_of: {src.orders: 1}}"]):
        run_dbt(loaded, ["build", *extra], profiles)
        with duckdb.connect(str(root / ".floe" / "warehouse.duckdb"), read_only=True) as con:
            counts.append(con.sql("SELECT n FROM main.counted").fetchone())
    assert counts == [(9,), (6,)]  # version 2 (three commits), then version 1 (two)
