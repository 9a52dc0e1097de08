"""ORC and Avro tables in a real Hive Metastore and moto's Glue/S3, read by DuckDB dbt models.

Real files (PyArrow's ORC writer, fastavro), real registrations, the views floe creates for dbt
sources (``readers/metastore_views.py`` + ``readers/formats.py``), and one real ``dbt build``.
ORC is a PyArrow dataset registered on the DuckDB connection: the tests check the rows, the
projection and filter pushed into the scan, and partition pruning (a corrupt file in a partition
the filter rules out is never opened).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import duckdb
import pytest

from floe_dagster.computes.duckdb_extensions import connect_with_extensions
from floe_dagster.manifest.loader import LoadedManifest, load_manifest
from floe_dagster.plugins.factory import connect_metastore
from floe_dagster.plugins.table_model import PartitionPredicate
from floe_dagster.readers.duckdb_scan import default_extension_dir
from floe_dagster.readers.formats import create_view
from floe_dagster.readers.metastore_views import create_source_views, resolve_source_views
from floe_dagster.transforms.dbt_manifest import run_dbt
from floe_dagster.transforms.profiles import write_profiles
from tests.contract.contracts import unique
from tests.fixtures.format_tables import (
    AVRO_SD,
    COLUMNS,
    ORC_SD,
    avro_bytes,
    glue_table,
    orc_bytes,
    write_partitioned,
)
from tests.fixtures.glue_seed import glue_options
from tests.fixtures.hive_metastore import (
    AVRO,
    ORC,
    HiveMetastore,
    create_database,
    thrift_partition,
    thrift_table,
)
from tests.fixtures.moto_server import MotoServer

pytestmark = pytest.mark.server

DAYS = {"2024-03-01": range(0, 3), "2024-03-02": range(10, 14), "2024-03-03": range(20, 22)}


def write_project(root: Path, metastores: str, sources: str, models: dict[str, str]) -> Path:
    (root / "dbt" / "models").mkdir(parents=True)
    (root / "dbt" / "dbt_project.yml").write_text(
        "name: formats\nversion: '1.0.0'\nconfig-version: 2\nprofile: formats\n"
        "model-paths: [models]\nmodels:\n  formats:\n    +materialized: table\n"
    )
    (root / "dbt" / "models" / "_sources.yml").write_text(sources)
    for name, sql in models.items():
        (root / "dbt" / "models" / f"{name}.sql").write_text(sql)
    manifest = root / "manifest.yaml"
    manifest.write_text(
        "apiVersion: floe.dev/v1\nkind: Manifest\nmetadata: {name: formats}\nstate_dir: .floe\n"
        "computes:\n  approved: [duckdb]\n  default: duckdb\n  targets:\n"
        "    duckdb:\n      type: duckdb\n"
        "      config: {path: .floe/warehouse.duckdb, extensions: [httpfs]}\n"
        f"{metastores}transforms:\n  dbt_project: dbt\n"
    )
    return manifest


def sources_yml(schema: str, metastore: str, tables: list[str]) -> str:
    listed = "".join(f"      - name: {t}\n" for t in tables)
    return (
        f"version: 2\nsources:\n  - name: src\n    schema: {schema}\n"
        f"    meta: {{floe: {{metastore: {metastore}}}}}\n    tables:\n{listed}"
    )


def dbt_manifest_for(loaded: LoadedManifest) -> dict[str, Any]:
    run_dbt(loaded, ["parse"], write_profiles(loaded))
    return dict(json.loads((loaded.dbt_project_dir / "target" / "manifest.json").read_text()))


def seed_hms_formats(metastore: HiveMetastore) -> str:
    """orders_orc (two files), events_orc (partitioned by ds, one partition's file corrupt:
    reading it fails), logs_avro: a database of their own."""
    client = metastore.client()
    db = unique("fmt")
    root = create_database(client, db, metastore.warehouse)
    orders = root / "orders_orc"
    orders.mkdir()
    (orders / "000000_0").write_bytes(orc_bytes(range(0, 3)))
    (orders / "000001_0").write_bytes(orc_bytes(range(3, 5)))
    (orders / "_SUCCESS").touch()
    client.create_table(thrift_table(db, "orders_orc", COLUMNS, ORC, f"file://{orders}"))

    events = root / "events_orc"
    write_partitioned(events, DAYS, orc_bytes)
    (events / "ds=2024-03-03" / "000000_0").write_bytes(b"not an orc file at all")
    table = thrift_table(
        db, "events_orc", COLUMNS, ORC, f"file://{events}", partition_keys=[("ds", "string")]
    )
    client.create_table(table)
    client.add_partitions([thrift_partition(table, [day], f"file://{events / f'ds={day}'}") for day in DAYS])

    logs = root / "logs_avro"
    logs.mkdir()
    (logs / "000000_0").write_bytes(avro_bytes(range(0, 4)))
    (logs / "000001_0").write_bytes(avro_bytes(range(4, 6)))
    client.create_table(thrift_table(db, "logs_avro", COLUMNS, AVRO, f"file://{logs}"))
    metastore.close_clients()
    return db


@pytest.fixture(scope="module")
def hms_formats(hive_metastore: HiveMetastore) -> str:
    return seed_hms_formats(hive_metastore)


def test_orc_and_avro_tables_of_a_hive_metastore_read_through_the_source_views(
    hive_metastore: HiveMetastore, hms_formats: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("FLOE_STATE_DIR", raising=False)
    db = hms_formats
    metastores = f'metastores:\n  legacy:\n    config: {{uri: "{hive_metastore.uri}"}}\n'
    tables = ["orders_orc", "events_orc", "logs_avro"]
    loaded = load_manifest(write_project(tmp_path, metastores, sources_yml(db, "legacy", tables), {}))
    resolved = resolve_source_views(loaded, dbt_manifest_for(loaded))
    # one batched table lookup, and the registered partitions of the one partitioned table
    assert resolved.api_calls == {"legacy": 2}
    assert all(v.scan is not None for v in resolved.views), [v.error for v in resolved.views]

    con = duckdb.connect()
    con.execute("ATTACH ':memory:' AS warehouse")
    create_source_views(con, resolved)
    orders = con.sql(f'SELECT id, label FROM warehouse."{db}".orders_orc ORDER BY id').fetchall()
    assert orders == [(i, f"l{i}") for i in range(5)]
    logs = con.sql(f'SELECT sum(id), count(*) FROM warehouse."{db}".logs_avro').fetchone()
    assert logs == (sum(range(6)), 6)

    events = f'warehouse."{db}".events_orc'
    # pruning: the corrupt file of 2024-03-03 is never opened when the filter rules it out
    pruned = con.sql(
        f"SELECT ds, count(*), sum(id) FROM {events} WHERE ds < '2024-03-03' GROUP BY ds ORDER BY ds"
    )
    assert pruned.fetchall() == [("2024-03-01", 3, 3), ("2024-03-02", 4, 46)]
    with pytest.raises(duckdb.Error):
        con.sql(f"SELECT count(*) FROM {events}").fetchall()
    # projection and filter go into the Arrow scan
    plan = "".join(
        row[1] for row in con.sql(f"EXPLAIN SELECT id FROM {events} WHERE ds = '2024-03-01'").fetchall()
    )
    assert "ARROW_SCAN" in plan and "ds='2024-03-01'" in plan.replace(" ", "")


def test_orc_partitions_at_registered_locations_prune_before_any_file_is_listed(
    hive_metastore: HiveMetastore, hms_formats: str, tmp_path: Path
) -> None:
    """A scan of listed partitions (one of them outside the table folder) reads exactly those."""
    client = hive_metastore.client()
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "part-0").write_bytes(orc_bytes(range(100, 107)))
    table = client.get_table(hms_formats, "events_orc")
    client.add_partitions([thrift_partition(table, ["2024-04-01"], f"file://{outside}")])
    hive_metastore.close_clients()
    built = connect_metastore("legacy", "hive", {"uri": hive_metastore.uri}, environ={})
    try:
        scan = built.describe_scan(
            hms_formats, "events_orc", [PartitionPredicate("ds", "in", ("2024-03-02", "2024-04-01"))]
        )
    finally:
        built.close()
    assert scan.pruned and sorted(p.values[0] for p in scan.partitions or ()) == ["2024-03-02", "2024-04-01"]
    con = duckdb.connect()
    registered: dict[str, Any] = {}
    create_view(con, "events", scan, None, None, {}, registered)
    rows = con.sql("SELECT ds, count(*), min(id) FROM events GROUP BY ds ORDER BY ds").fetchall()
    assert rows == [("2024-03-02", 4, 10), ("2024-04-01", 7, 100)]  # the corrupt partition is not read
    cursor = con.cursor()  # a cursor is another connection: the dataset is registered again on it
    from floe_dagster.readers.formats import register_all

    register_all(cursor, registered)
    assert cursor.sql("SELECT count(*) FROM events").fetchone() == (11,)


def test_dbt_build_reads_an_orc_table_of_a_hive_metastore(
    hive_metastore: HiveMetastore, hms_formats: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """End to end: dbt-duckdb opens cursors after floe's plugin made the views; each one reads ORC."""
    for name in ("FLOE_STATE_DIR", "FLOE_ENV", "DBT_TARGET_PATH"):
        monkeypatch.delenv(name, raising=False)
    metastores = f'metastores:\n  legacy:\n    config: {{uri: "{hive_metastore.uri}"}}\n'
    models = {
        "early_events": "select ds, count(*) as n, sum(id) as total from {{ source('src', 'events_orc') }}"
        " where ds <= '2024-03-02' group by ds",
        "all_logs": "select count(*) as n from {{ source('src', 'logs_avro') }}",
    }
    sources = sources_yml(hms_formats, "legacy", ["events_orc", "logs_avro"])
    loaded = load_manifest(write_project(tmp_path, metastores, sources, models))
    run_dbt(loaded, ["build"], write_profiles(loaded))
    with duckdb.connect(str(tmp_path / ".floe" / "warehouse.duckdb"), read_only=True) as con:
        assert con.sql("SELECT ds, n, total FROM main.early_events ORDER BY ds").fetchall() == [
            ("2024-03-01", 3, 3),
            ("2024-03-02", 4, 46),
        ]
        assert con.sql("SELECT n FROM main.all_logs").fetchone() == (6,)


def seed_glue_formats(server: MotoServer) -> tuple[str, str]:
    glue, s3 = server.client("glue"), server.client("s3")
    bucket = server.create_bucket("fmt")
    db = unique("glue_fmt")
    glue.create_database(DatabaseInput={"Name": db})
    base = f"s3://{bucket}/{db}"
    s3.put_object(Bucket=bucket, Key=f"{db}/orders/part-0.orc", Body=orc_bytes(range(0, 5)))
    s3.put_object(Bucket=bucket, Key=f"{db}/orders/_SUCCESS", Body=b"")
    glue.create_table(DatabaseName=db, TableInput=glue_table("orders_orc", ORC_SD, f"{base}/orders"))
    glue.create_table(
        DatabaseName=db, TableInput=glue_table("events_orc", ORC_SD, f"{base}/events", partitioned=True)
    )
    partitions = []
    for day, ids in DAYS.items():
        s3.put_object(Bucket=bucket, Key=f"{db}/events/ds={day}/part-0.orc", Body=orc_bytes(ids))
        partitions.append(
            {
                "Values": [day],
                "StorageDescriptor": {**ORC_SD, "Location": f"{base}/events/ds={day}"},
            }
        )
    glue.batch_create_partition(DatabaseName=db, TableName="events_orc", PartitionInputList=partitions)
    s3.put_object(Bucket=bucket, Key=f"{db}/logs/part-0.avro", Body=avro_bytes(range(0, 6)))
    glue.create_table(DatabaseName=db, TableInput=glue_table("logs_avro", AVRO_SD, f"{base}/logs"))
    return bucket, db


def test_orc_and_avro_tables_of_glue_read_from_s3_with_the_chokepoint_credentials(
    moto_server: MotoServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("FLOE_STATE_DIR", raising=False)
    bucket, db = seed_glue_formats(moto_server)
    config = "".join(f"      {k}: {json.dumps(v)}\n" for k, v in glue_options(moto_server).items())
    metastores = f"metastores:\n  lake:\n    type: glue\n    config:\n{config}"
    sources = sources_yml(db, "lake", ["orders_orc", "events_orc", "logs_avro"])
    loaded = load_manifest(write_project(tmp_path, metastores, sources, {}))
    resolved = resolve_source_views(loaded, dbt_manifest_for(loaded))
    assert all(v.scan is not None for v in resolved.views), [v.error for v in resolved.views]
    assert moto_server.secret_access_key not in repr(resolved)  # storage properties are never in a repr

    con = connect_with_extensions(":memory:", default_extension_dir(), ["httpfs", "avro"])
    con.execute("ATTACH ':memory:' AS warehouse")
    create_source_views(con, resolved)
    assert con.sql(f'SELECT count(*), sum(id) FROM warehouse."{db}".orders_orc').fetchone() == (5, 10)
    assert con.sql(f'SELECT count(*), sum(id) FROM warehouse."{db}".logs_avro').fetchone() == (6, 15)
    events = f'warehouse."{db}".events_orc'
    rows = con.sql(
        f"SELECT ds, count(*) FROM {events} WHERE ds >= '2024-03-02' GROUP BY ds ORDER BY ds"
    ).fetchall()
    assert rows == [("2024-03-02", 4), ("2024-03-03", 2)]


CANARY = "CANARY-format-views-secret-Zx91-do-not-leak"


def test_storage_credentials_of_the_format_readers_leak_nowhere(
    moto_server: MotoServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """ORC (PyArrow's S3 filesystem) and Delta (the DuckDB secret) read with a canary secret key:
    it is in no repr, no view definition (DuckDB keeps them in the database file) and no log."""
    import logging

    from tests.fixtures.format_tables import delta_append, moto_storage_options

    monkeypatch.delenv("FLOE_STATE_DIR", raising=False)
    caplog.set_level(logging.DEBUG)
    bucket, db = seed_glue_formats(moto_server)
    delta_uri = f"s3://{bucket}/{db}/sales_delta"
    delta_append(delta_uri, range(3), moto_storage_options(moto_server))
    moto_server.client("glue").create_table(
        DatabaseName=db,
        TableInput=glue_table("sales_delta", {"SerdeInfo": {}}, delta_uri, params={"table_type": "DELTA"}),
    )
    options = glue_options(moto_server, secret_access_key=CANARY)  # moto takes any secret
    config = "".join(f"      {k}: {json.dumps(v)}\n" for k, v in options.items())
    metastores = f"metastores:\n  lake:\n    type: glue\n    config:\n{config}"
    sources = sources_yml(db, "lake", ["orders_orc", "sales_delta"])
    loaded = load_manifest(write_project(tmp_path, metastores, sources, {}))
    resolved = resolve_source_views(loaded, dbt_manifest_for(loaded))
    assert all(v.scan is not None for v in resolved.views), [v.error for v in resolved.views]
    con = connect_with_extensions(":memory:", default_extension_dir(), ["httpfs"])
    con.execute("ATTACH ':memory:' AS warehouse")
    create_source_views(con, resolved)
    assert con.sql(f'SELECT count(*) FROM warehouse."{db}".orders_orc').fetchone() == (5,)
    assert con.sql(f'SELECT count(*) FROM warehouse."{db}".sales_delta').fetchone() == (3,)
    definitions = " ".join(str(row[0]) for row in con.sql("SELECT sql FROM duckdb_views()").fetchall())
    assert CANARY not in repr(resolved)
    assert CANARY not in definitions
    assert CANARY not in caplog.text
