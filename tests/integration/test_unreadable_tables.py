"""An unreadable table is still an asset (issue 18, item 5), on the real Hive Metastore and moto Glue.

Views, unknown serdes and storage-handler tables stay observable source assets, versioned from
what the metastore reports, with ``floe/readable: false`` and ``floe/unreadable_reason``; only
reading them (the DuckDB source view a dbt model selects from) fails, with that reason; a table
that cannot be described at all fails its own observation, never another table's.
"""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from dagster import AssetKey

from floe_dagster.cli import main
from floe_dagster.core.errors import ConfigurationError, NotSupportedError
from floe_dagster.manifest.loader import load_manifest
from floe_dagster.plan.builders import build_metastore
from floe_dagster.plugins.table_model import ScanDescription, TableFilter
from floe_dagster.readers.metastore_views import create_source_views, resolve_source_views
from floe_dagster.transforms.dbt_manifest import run_dbt
from floe_dagster.transforms.profiles import write_profiles
from tests.contract.contracts import unique
from tests.fixtures.glue_seed import PARQUET_SD, glue_options, parquet_bytes
from tests.fixtures.hive_metastore import (
    PARQUET,
    SEQUENCE,
    HiveMetastore,
    create_database,
    thrift_table,
)
from tests.fixtures.metastore_projects import (
    dbt_sources,
    glue_block,
    hive_block,
    observe_in_dagster,
    write_project,
)
from tests.fixtures.moto_server import MotoServer

pytestmark = pytest.mark.server

HBASE = (
    "org.apache.hadoop.hive.hbase.HBaseSerDe",
    "org.apache.hadoop.hive.hbase.HiveHBaseTableInputFormat",
    "org.apache.hadoop.hive.hbase.HiveHBaseTableOutputFormat",
)


def seed_hms(metastore: HiveMetastore) -> str:
    """A database with a readable Parquet table, an unknown serde, a view, an HBase storage-handler
    table and an Iceberg table without its metadata location (which cannot be described at all)."""
    client = metastore.client()
    db = unique("floe_unreadable")
    root = create_database(client, db, metastore.warehouse)
    (root / "plain").mkdir()
    pq.write_table(pa.table({"id": [1, 2, 3]}), root / "plain" / "part-0.parquet")
    client.create_table(thrift_table(db, "plain", [("id", "bigint")], PARQUET, f"file://{root / 'plain'}"))
    client.create_table(thrift_table(db, "seq", [("k", "string")], SEQUENCE, f"file://{root / 'seq'}"))
    client.create_table(
        thrift_table(
            db,
            "hbase",
            [("k", "string")],
            HBASE,
            None,
            params={"storage_handler": "org.apache.hadoop.hive.hbase.HBaseStorageHandler"},
        )
    )
    view = thrift_table(db, "v", [("id", "bigint")], ("", "", ""), None, table_type="VIRTUAL_VIEW")
    view.sd.serdeInfo.serializationLib = None
    view.sd.inputFormat = view.sd.outputFormat = None
    view.viewOriginalText = view.viewExpandedText = f"SELECT id FROM {db}.plain"
    client.create_table(view)
    client.create_table(
        thrift_table(
            db,
            "broken",
            [("id", "bigint")],
            PARQUET,
            f"file://{root / 'broken'}",
            params={"table_type": "ICEBERG"},
        )
    )
    metastore.close_clients()
    return db


@pytest.fixture(scope="module")
def unreadable_db(hive_metastore: HiveMetastore) -> str:
    return seed_hms(hive_metastore)


def test_views_unknown_serdes_and_storage_handlers_are_tables_that_cannot_be_read(
    hive_metastore: HiveMetastore, unreadable_db: str, tmp_path: Path
) -> None:
    db = unreadable_db
    loaded = load_manifest(write_project(tmp_path, hive_block("legacy", hive_metastore.uri, [f"{db}.*"])))
    hms = build_metastore(loaded, "legacy")
    tables = {t.name: t for t in hms.scan(TableFilter(include=(f"{db}.*",)))}
    # every table but the one that cannot be described is listed (so it stays an asset)
    assert sorted(tables) == ["hbase", "plain", "seq", "v"]
    assert [p.tags()["operation"] for p in hms.scan_problems] == ["get_tables"]
    assert tables["plain"].readable and tables["plain"].unreadable_reason is None
    assert not tables["seq"].readable and "LazyBinarySerDe" in (tables["seq"].unreadable_reason or "")
    assert "HBaseStorageHandler" in (tables["hbase"].unreadable_reason or "")
    assert "view" in (tables["v"].unreadable_reason or "") and tables["v"].storage.format == "view"
    # reading one is refused with the reason; describing it for a scan says the same
    with pytest.raises(NotSupportedError) as info:
        ScanDescription.from_table(tables["seq"])
    assert "LazyBinarySerDe" in str(info.value) and info.value.retryable is False
    scans = dict(zip(["seq", "v", "plain"], hms.describe_scans(db, ["seq", "v", "plain"]), strict=True))
    assert isinstance(scans["plain"], ScanDescription)
    assert isinstance(scans["v"], NotSupportedError) and "view" in str(scans["v"])

    # a view's data version is what the metastore reports: it changes when its definition does
    first = hms.get_table(db, "v").data_version
    assert hms.get_table(db, "v").data_version == first
    client = hive_metastore.client()
    raw = client.get_table(db, "v")
    raw.viewOriginalText = raw.viewExpandedText = f"SELECT id FROM {db}.plain WHERE id > 1"
    client.alter_table(db, "v", raw)
    hive_metastore.close_clients()
    assert hms.get_table(db, "v").data_version != first


def test_one_table_never_fails_the_observation_of_another_and_floe_observe_lists_every_table(
    hive_metastore: HiveMetastore, unreadable_db: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = unreadable_db
    manifest = write_project(tmp_path, hive_block("legacy", hive_metastore.uri, [f"{db}.*"]))
    loaded = load_manifest(manifest)
    success, observed = observe_in_dagster(loaded, "legacy")
    assert success
    key = {name: AssetKey(["legacy", db, name]) for name in ("plain", "seq", "hbase", "v")}
    assert set(key.values()) <= set(observed)
    assert observed[key["plain"]].metadata["floe/readable"] is True
    assert observed[key["plain"]].data_version
    for name in ("seq", "hbase", "v"):
        found = observed[key[name]]
        assert found.data_version, name  # versioned from the metastore's metadata
        assert found.metadata["floe/readable"] is False
        assert found.metadata["floe/unreadable_reason"]
    assert "LazyBinarySerDe" in observed[key["seq"]].metadata["floe/unreadable_reason"]

    assert main(["observe", str(manifest), "--metastore", "legacy", "--format", "json"]) == 0
    rows = {r["key"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows[f"legacy/{db}/seq"]["readable"] is False and rows[f"legacy/{db}/plain"]["readable"] is True
    assert "LazyBinarySerDe" in rows[f"legacy/{db}/seq"]["unreadable_reason"]


def test_a_table_that_cannot_be_described_fails_only_its_own_observation(
    hive_metastore: HiveMetastore, unreadable_db: str, tmp_path: Path
) -> None:
    """``broken`` is not in the listing (so not in the defs state), but a dbt source names it: it is
    an asset, and its observation reports why it cannot be described while the others succeed."""
    db = unreadable_db
    sources = dbt_sources("legacy", db, "legacy", ["broken", "plain"])
    manifest = write_project(tmp_path, hive_block("legacy", hive_metastore.uri, [f"{db}.*"]), sources)
    loaded = load_manifest(manifest)
    run_dbt(loaded, ["parse"], write_profiles(loaded))
    success, observed = observe_in_dagster(loaded, "legacy")
    assert success
    broken = observed[AssetKey(["legacy", db, "broken"])]
    assert (
        broken.metadata["floe/readable"] is False
        and "metadata_location" in broken.metadata["floe/unreadable_reason"]
    )
    assert observed[AssetKey(["legacy", db, "plain"])].data_version


def test_reading_an_unreadable_table_fails_with_its_reason_in_the_dbt_model(
    hive_metastore: HiveMetastore, unreadable_db: str, tmp_path: Path
) -> None:
    db = unreadable_db
    sources = dbt_sources("legacy", db, "legacy", ["plain", "v", "seq"])
    models = {
        "from_plain": "select count(*) as n from {{ source('legacy', 'plain') }}",
        "from_view": "select * from {{ source('legacy', 'v') }}",
    }
    manifest = write_project(tmp_path, hive_block("legacy", hive_metastore.uri, [f"{db}.*"]), sources, models)
    loaded = load_manifest(manifest)
    run_dbt(loaded, ["parse"], write_profiles(loaded))
    resolved = resolve_source_views(
        loaded, json.loads((loaded.dbt_project_dir / "target" / "manifest.json").read_text())
    )
    con = duckdb.connect()
    con.execute("ATTACH ':memory:' AS warehouse")
    create_source_views(con, resolved)
    assert con.sql(f'SELECT count(*) FROM warehouse."{db}".plain').fetchone() == (3,)
    for name, words in (("v", "view"), ("seq", "LazyBinarySerDe")):
        with pytest.raises(duckdb.Error) as info:
            con.sql(f'SELECT * FROM warehouse."{db}".{name}').fetchall()
        assert words in str(info.value) and "cannot be read" in str(info.value)

    # through dbt: the model over the view fails with the reason, the other one builds
    with pytest.raises(ConfigurationError) as failed:
        run_dbt(loaded, ["build"], write_profiles(loaded))
    assert "from_view" in str(failed.value) and "Hive view" in str(failed.value)
    with duckdb.connect(str(tmp_path / ".floe" / "warehouse.duckdb"), read_only=True) as built:
        assert built.sql("SELECT n FROM main.from_plain").fetchone() == (3,)


def test_glue_views_and_unknown_serdes_stay_observable_assets(
    moto_server: MotoServer, tmp_path: Path
) -> None:
    glue, s3 = moto_server.client("glue"), moto_server.client("s3")
    bucket = moto_server.create_bucket("unreadable")
    db = unique("glue_unreadable")
    glue.create_database(DatabaseInput={"Name": db})
    s3.put_object(Bucket=bucket, Key="plain/part-0.parquet", Body=parquet_bytes(range(4)))
    glue.create_table(
        DatabaseName=db,
        TableInput={
            "Name": "plain",
            "TableType": "EXTERNAL_TABLE",
            "StorageDescriptor": {
                **PARQUET_SD,
                "Columns": [{"Name": "id", "Type": "bigint"}],
                "Location": f"s3://{bucket}/plain",
            },
        },
    )
    glue.create_table(
        DatabaseName=db,
        TableInput={
            "Name": "seq",
            "TableType": "EXTERNAL_TABLE",
            "StorageDescriptor": {
                "Columns": [{"Name": "k", "Type": "string"}],
                "Location": f"s3://{bucket}/seq",
                "InputFormat": SEQUENCE[1],
                "SerdeInfo": {"SerializationLibrary": SEQUENCE[0]},
            },
        },
    )
    glue.create_table(
        DatabaseName=db,
        TableInput={
            "Name": "a_view",
            "TableType": "VIRTUAL_VIEW",
            "ViewOriginalText": "SELECT 1",
            "ViewExpandedText": "SELECT 1",
        },
    )
    glue.create_table(  # cannot be described (an hdfs:// location on Glue): its own error only
        DatabaseName=db,
        TableInput={
            "Name": "on_hdfs",
            "TableType": "EXTERNAL_TABLE",
            "StorageDescriptor": {**PARQUET_SD, "Location": "hdfs://nn:8020/x"},
        },
    )
    sources = dbt_sources("lake", db, "lake", ["on_hdfs"])
    manifest = write_project(tmp_path, glue_block("lake", glue_options(moto_server), [f"{db}.*"]), sources)
    loaded = load_manifest(manifest)
    run_dbt(loaded, ["parse"], write_profiles(loaded))
    success, observed = observe_in_dagster(loaded, "lake")
    assert success
    meta = {key.path[-1]: o for key, o in observed.items()}
    assert meta["plain"].metadata["floe/readable"] is True and meta["plain"].data_version
    assert meta["a_view"].metadata["floe/readable"] is False and meta["a_view"].data_version
    assert "view" in meta["a_view"].metadata["floe/unreadable_reason"]
    assert "LazyBinarySerDe" in meta["seq"].metadata["floe/unreadable_reason"] and meta["seq"].data_version
    assert "hdfs" in meta["on_hdfs"].metadata["floe/unreadable_reason"]
