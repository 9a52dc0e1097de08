"""Data versions that follow the data (issue 18, item 3), on the real Hive Metastore and moto Glue/S3.

An external table appended without statistics (a plain file written beside the others, no
metastore call): ``data_version: auto`` (the default) and ``storage`` see the change, ``metadata``
does not; nothing changes without a change; a table whose parameters carry statistics keeps its
metadata version under ``auto``; a file in a folder no partition registers changes nothing; the
mode can be set per namespace glob. A transactional table is recognised: an asset whose version
moves with its delta folders, which no DuckDB view reads (a clear error).
"""

from __future__ import annotations

import io
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from floe_dagster.core.errors import FloeError, NotSupportedError
from floe_dagster.manifest.loader import load_manifest
from floe_dagster.plan.builders import build_metastore
from tests.contract.contracts import unique
from tests.fixtures.glue_seed import PARQUET_SD, glue_options
from tests.fixtures.hive_metastore import (
    ORC,
    PARQUET,
    HiveMetastore,
    create_database,
    running_hive_metastore,
    thrift_partition,
    thrift_table,
)
from tests.fixtures.metastore_projects import glue_block, hive_block, write_project
from tests.fixtures.moto_server import MotoServer

pytestmark = pytest.mark.server


def parquet(ids: list[int]) -> bytes:
    buffer = io.BytesIO()
    pq.write_table(pa.table({"id": pa.array(ids, pa.int64())}), buffer)
    return buffer.getvalue()


def versions(connectors: dict[str, Any], db: str, table: str) -> dict[str, str]:
    return {mode: c.get_table(db, table).data_version for mode, c in connectors.items()}


def hive_connectors(metastore: HiveMetastore, db: str, root: Path) -> dict[str, Any]:
    """One connector per mode, each built from its manifest (the default is ``auto``)."""
    built = {}
    for mode in ("metadata", "storage", "auto"):
        extra = "" if mode == "auto" else f"    data_version: {mode}\n"
        manifest = write_project(root / mode, hive_block("legacy", metastore.uri, [f"{db}.*"], extra))
        built[mode] = build_metastore(load_manifest(manifest), "legacy")
    return built


@pytest.fixture(scope="module")
def hms_db(hive_metastore: HiveMetastore) -> tuple[str, Path]:
    client = hive_metastore.client()
    db = unique("floe_versions")
    root = create_database(client, db, hive_metastore.warehouse)
    for name, params in (
        ("appended", {}),
        ("with_stats", {"numRows": "2", "numFiles": "1", "totalSize": "1"}),
    ):
        (root / name).mkdir()
        (root / name / "part-0.parquet").write_bytes(parquet([1, 2]))
        table = thrift_table(db, name, [("id", "bigint")], PARQUET, f"file://{root / name}", params=params)
        client.create_table(table)
        if not params:  # the metastore may add fast statistics on create: a writer that does not
            raw = client.get_table(db, name)  # update them leaves a table without any
            for key in ("numFiles", "totalSize", "numRows", "rawDataSize"):
                raw.parameters.pop(key, None)
            raw.parameters["DO_NOT_UPDATE_STATS"] = "true"
            client.alter_table(db, name, raw)
    sales = thrift_table(
        db,
        "sales",
        [("id", "bigint")],
        PARQUET,
        f"file://{root / 'sales'}",
        partition_keys=[("ds", "string")],
    )
    client.create_table(sales)
    (root / "sales" / "ds=a").mkdir(parents=True)
    (root / "sales" / "ds=a" / "part-0.parquet").write_bytes(parquet([1]))
    client.add_partitions([thrift_partition(sales, ["a"], f"file://{root / 'sales' / 'ds=a'}")])
    hive_metastore.close_clients()
    return db, root


def test_an_append_without_statistics_changes_auto_and_storage_versions_not_metadata(
    hive_metastore: HiveMetastore, hms_db: tuple[str, Path], tmp_path: Path
) -> None:
    db, root = hms_db
    connectors = hive_connectors(hive_metastore, db, tmp_path)
    raw = hive_metastore.client().get_table(db, "appended")
    hive_metastore.close_clients()
    assert not any(k in raw.parameters for k in ("numFiles", "totalSize", "numRows"))
    before = versions(connectors, db, "appended")
    assert versions(connectors, db, "appended") == before  # nothing changed: nothing moves
    time.sleep(0.01)
    (root / "appended" / "part-1.parquet").write_bytes(parquet([3]))  # no metastore call at all
    after = versions(connectors, db, "appended")
    assert after["metadata"] == before["metadata"]
    assert after["auto"] != before["auto"] and after["storage"] != before["storage"]
    # hidden files (a writer's _SUCCESS, .crc) are not data: no change
    (root / "appended" / "_SUCCESS").touch()
    assert versions(connectors, db, "appended") == after
    assert connectors["auto"].storage_listing_calls > 0 and connectors["metadata"].storage_listing_calls == 0


def test_auto_keeps_metadata_versions_for_tables_with_statistics_and_storage_follows_registered_folders(
    hive_metastore: HiveMetastore, hms_db: tuple[str, Path], tmp_path: Path
) -> None:
    db, root = hms_db
    connectors = hive_connectors(hive_metastore, db, tmp_path)
    before = versions(connectors, db, "with_stats")
    (root / "with_stats" / "part-1.parquet").write_bytes(parquet([3]))
    after = versions(connectors, db, "with_stats")
    assert after["auto"] == before["auto"] and after["metadata"] == before["metadata"]
    assert after["storage"] != before["storage"]
    assert connectors["auto"].storage_listing_calls == 0  # auto listed nothing for it

    # a partitioned table: a file in a folder no partition registers is not read, so not versioned
    storage = connectors["storage"]
    first = storage.get_table(db, "sales").data_version
    (root / "sales" / "ds=zz").mkdir()
    (root / "sales" / "ds=zz" / "part-0.parquet").write_bytes(parquet([9]))
    assert storage.get_table(db, "sales").data_version == first
    (root / "sales" / "ds=a" / "part-1.parquet").write_bytes(parquet([2]))
    assert storage.get_table(db, "sales").data_version != first


def test_the_mode_is_chosen_per_namespace_glob_and_a_bad_mode_is_a_clear_error(
    hive_metastore: HiveMetastore, hms_db: tuple[str, Path], tmp_path: Path
) -> None:
    db, root = hms_db
    extra = f'    data_version: {{"{db}": metadata, "*": storage}}\n'
    loaded = load_manifest(
        write_project(tmp_path / "globs", hive_block("legacy", hive_metastore.uri, ["*"], extra))
    )
    connector = build_metastore(loaded, "legacy")
    assert connector.data_version_policy.mode_for(db) == "metadata"
    assert connector.data_version_policy.mode_for("other") == "storage"
    connector.get_table(db, "appended")
    assert connector.storage_listing_calls == 0
    extra = f'    data_version: {{default: storage, namespaces: {{"{db}": metadata}}}}\n'
    block = hive_block("legacy", hive_metastore.uri, ["*"], extra)
    policy = build_metastore(
        load_manifest(write_project(tmp_path / "obj", block)), "legacy"
    ).data_version_policy
    assert (policy.mode_for(db), policy.mode_for("other")) == ("metadata", "storage")

    bad = write_project(
        tmp_path / "bad", hive_block("legacy", hive_metastore.uri, ["*"], "    data_version: sometimes\n")
    )
    with pytest.raises(FloeError) as info:
        load_manifest(bad)
    message = str(info.value)
    assert "data_version" in message and "metadata" in message and "storage" in message


@pytest.fixture(scope="module")
def acid_metastore(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HiveMetastore]:
    """A metastore of its own with Hive's ACID formats on its classpath: the real metastore only
    accepts a transactional table whose input format it can load and check."""
    jars = ("hive-exec-", "orc-", "protobuf-java-", "aircompressor-", "kryo", "commons-io-")
    with running_hive_metastore(tmp_path_factory.mktemp("hms_acid"), extra_jars=jars) as metastore:
        yield metastore


def test_a_transactional_table_is_versioned_from_its_writes_and_never_read_as_plain_files(
    acid_metastore: HiveMetastore, tmp_path: Path
) -> None:
    hive_metastore = acid_metastore
    client = hive_metastore.client()
    db = unique("floe_acid")
    root = create_database(client, db, hive_metastore.warehouse)
    folder = root / "acid"
    (folder / "delta_0000001_0000001_0000").mkdir(parents=True)
    (folder / "delta_0000001_0000001_0000" / "bucket_00000").write_bytes(b"orc rows")
    acid = thrift_table(
        db,
        "acid",
        [("id", "bigint")],
        ORC,
        f"file://{folder}",
        params={"transactional": "true", "numRows": "1", "numFiles": "1", "totalSize": "8"},
        table_type="MANAGED_TABLE",
    )
    acid.sd.numBuckets, acid.sd.bucketCols = 1, ["id"]  # the metastore accepts ACID tables bucketed only
    client.create_table(acid)
    hive_metastore.close_clients()
    manifest = write_project(
        tmp_path, hive_block("legacy", hive_metastore.uri, [f"{db}.*"], "    data_version: metadata\n")
    )
    connector = build_metastore(load_manifest(manifest), "legacy")
    table = connector.get_table(db, "acid")
    assert not table.readable and "transactional" in (table.unreadable_reason or "")
    assert connector.get_table(db, "acid").data_version == table.data_version
    # a new write (a delta folder; statistics untouched): the version moves, even under metadata
    (folder / "delta_0000002_0000002_0000").mkdir()
    (folder / "delta_0000002_0000002_0000" / "bucket_00000").write_bytes(b"more rows")
    assert connector.get_table(db, "acid").data_version != table.data_version
    (scan,) = connector.describe_scans(db, ["acid"])
    assert isinstance(scan, NotSupportedError)
    assert "transactional" in str(scan) and "Hive or Spark" in str(scan)


def test_glue_auto_sees_an_append_without_statistics_and_metadata_does_not(
    moto_server: MotoServer, tmp_path: Path
) -> None:
    glue, s3 = moto_server.client("glue"), moto_server.client("s3")
    bucket = moto_server.create_bucket("versions")
    db = unique("glue_versions")
    glue.create_database(DatabaseInput={"Name": db})
    s3.put_object(Bucket=bucket, Key="appended/part-0.parquet", Body=parquet([1, 2]))
    glue.create_table(
        DatabaseName=db,
        TableInput={
            "Name": "appended",
            "TableType": "EXTERNAL_TABLE",
            "StorageDescriptor": {
                **PARQUET_SD,
                "Columns": [{"Name": "id", "Type": "bigint"}],
                "Location": f"s3://{bucket}/appended",
            },
        },
    )
    connectors = {}
    for mode in ("metadata", "storage", "auto"):
        extra = "" if mode == "auto" else f"    data_version: {mode}\n"
        manifest = write_project(
            tmp_path / mode, glue_block("lake", glue_options(moto_server), [f"{db}.*"], extra)
        )
        connectors[mode] = build_metastore(load_manifest(manifest), "lake")
    before = versions(connectors, db, "appended")
    assert versions(connectors, db, "appended") == before
    s3.put_object(Bucket=bucket, Key="appended/part-1.parquet", Body=parquet([3]))
    after = versions(connectors, db, "appended")
    assert after["metadata"] == before["metadata"]
    assert after["auto"] != before["auto"] and after["storage"] != before["storage"]
    assert connectors["auto"].storage_listing_calls == 3  # one ListObjectsV2 page per observation
    scanned = {t.name: t.data_version for t in connectors["auto"].scan(_all(db))}
    assert scanned["appended"] == after["auto"]

    # batched: tables whose folders share a parent are listed through it, in one page here
    for i in range(5):
        s3.put_object(Bucket=bucket, Key=f"warehouse/t{i}/part-0.parquet", Body=parquet([i]))
        glue.create_table(
            DatabaseName=db,
            TableInput={
                "Name": f"t{i}",
                "TableType": "EXTERNAL_TABLE",
                "StorageDescriptor": {**PARQUET_SD, "Location": f"s3://{bucket}/warehouse/t{i}"},
            },
        )
    storage = connectors["storage"]
    calls = storage.storage_listing_calls
    batch = {t.name: t.data_version for t in storage.scan(_all(db))}
    assert storage.storage_listing_calls - calls == 2  # warehouse/ once, appended/ once
    assert batch["t0"] == storage.get_table(db, "t0").data_version  # the same fingerprint alone
    s3.put_object(Bucket=bucket, Key="warehouse/t3/part-1.parquet", Body=parquet([7]))
    again = {t.name: t.data_version for t in storage.scan(_all(db))}
    assert {n for n in batch if batch[n] != again[n]} == {"t3"}


def _all(db: str) -> Any:
    from floe_dagster.plugins.table_model import TableFilter

    return TableFilter(include=(f"{db}.*",))


def test_the_manifest_schema_documents_data_version() -> None:
    from floe_dagster.manifest.schema import MetastoreEntry

    schema = json.dumps(MetastoreEntry.model_json_schema())
    assert "data_version" in schema and "storage" in schema and "auto" in schema


CANARY = "canary-secret-7f3a91"


def test_hive_s3_listings_use_the_io_properties_of_the_chokepoint_and_no_secret_leaks(
    moto_server: MotoServer, caplog: pytest.LogCaptureFixture
) -> None:
    """The Hive metastore of these tests has no S3 filesystem (it refuses s3:// locations), so the
    Hive connector's S3 listing is exercised from its credentials (the chokepoint's
    ``ThriftCredentials.s3_client``, built from ``io_properties``) against moto's S3."""
    from floe_dagster.metastores.hive import HiveMetastoreConfig
    from floe_dagster.metastores.storage_versions import StorageLister, StorageRequest
    from floe_dagster.plugins.metastore_auth import metastore_credentials

    caplog.set_level("DEBUG")
    s3 = moto_server.client("s3")
    bucket = moto_server.create_bucket("hive-s3")
    s3.put_object(Bucket=bucket, Key="t/part-0.parquet", Body=parquet([1]))
    io = {
        "s3.endpoint": moto_server.endpoint,
        "s3.region": moto_server.region,
        "s3.access-key-id": moto_server.access_key_id,
        "s3.secret-access-key": CANARY,  # moto accepts any secret: the canary travels the real path
    }
    config = HiveMetastoreConfig.model_validate({"uri": "thrift://127.0.0.1:9", "io_properties": io})
    credentials = metastore_credentials(config)
    lister = StorageLister(credentials.s3_client)
    requests = [
        StorageRequest("db.on_s3", f"s3a://{bucket}/t"),
        StorageRequest("db.no_bucket", "s3://floe-no-such-bucket-x/t"),
    ]
    first = lister.fingerprints(requests)
    assert isinstance(first["db.on_s3"], str)
    error = first["db.no_bucket"]
    assert (
        isinstance(error, FloeError)
        and "NoSuchBucket" in str(error)
        and "data_version: metadata" in str(error)
    )
    s3.put_object(Bucket=bucket, Key="t/part-1.parquet", Body=parquet([2]))
    assert lister.fingerprints(requests[:1])["db.on_s3"] != first["db.on_s3"]
    assert CANARY not in str(error) and CANARY not in repr(credentials) and CANARY not in caplog.text
