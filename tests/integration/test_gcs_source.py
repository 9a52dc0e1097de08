"""The object-store source on Google Cloud Storage (``type: gcs``), against gcp-storage-emulator.

As the S3 source's tests: discovery and naming, schema mismatch, incremental ingest with the
crash-safe cursor, batching, concurrency, skip-and-warn; DuckDB reads the tables through a
registered gcsfs filesystem (the emulator has no XML API for DuckDB's httpfs), the HMAC-key
secret DuckDB gets for real GCS, the service-account JSON mode, friendly errors, canaries.
The emulator ignores ``ifGenerationMatch`` and checks no credentials, so "replaced since
listing" and refusals are covered by the error mapping's own test, not by the emulator.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

import pytest

from floe_dagster.catalogs.sql import SqlCatalogPlugin
from floe_dagster.core.errors import (
    AuthenticationError,
    ConfigurationError,
    InvalidFieldError,
    NotFoundError,
    UnavailableError,
)
from floe_dagster.ingest.table import ingest_table
from floe_dagster.metastores.gcs import GcsMetastoreConnector
from floe_dagster.metastores.object_tables import SchemaMismatchError
from floe_dagster.metastores.s3 import S3MetastoreConnector
from floe_dagster.plugins.factory import connect_metastore, metastore_config
from floe_dagster.plugins.table_model import Table, TableFilter
from tests import object_sources
from tests.fixtures.format_tables import delta_append
from tests.fixtures.gcs_emulator import GcsEmulator
from tests.fixtures.hudi_writer import HudiTableWriter
from tests.fixtures.s3rver_server import free_port
from tests.object_source_checks import ObjectSourceChecks, Store
from tests.object_sources import ingest_discovered, parquet_bytes, sql_catalog

pytestmark = pytest.mark.server

CANARY_HMAC = "CANARY-gcs-hmac-secret-Rr40-do-not-leak"

NAMESPACE = "raw_gcs"  # where the tests ingest into


class Bucket:
    def __init__(self, server: GcsEmulator, name: str) -> None:
        self.server, self.name = server, name
        self.bucket = server.client().bucket(name)

    def put(self, key: str, body: bytes) -> None:
        self.bucket.blob(key).upload_from_string(body)

    def delete(self, key: str) -> None:
        self.bucket.blob(key).delete()


@pytest.fixture
def bucket(gcs_emulator: GcsEmulator) -> Bucket:
    return Bucket(gcs_emulator, gcs_emulator.create_bucket())


def connector(where: Bucket, **overrides: Any) -> GcsMetastoreConnector:
    options: dict[str, Any] = {
        "bucket": where.name,
        "endpoint": where.server.endpoint,
        "anonymous": True,
        "project": where.server.project,
        "max_attempts": 2,
        **overrides,
    }
    made = connect_metastore(
        "gcslake", "gcs", {k: v for k, v in options.items() if v is not None}, environ={}
    )
    assert isinstance(made, GcsMetastoreConnector)
    return made


@pytest.fixture
def catalog(tmp_path: Path) -> SqlCatalogPlugin:
    return sql_catalog(tmp_path)


def ingest(
    conn: S3MetastoreConnector, catalog: SqlCatalogPlugin, table: str, commit_bytes: int = 1 << 30
) -> Any:
    return ingest_discovered(conn, catalog, table, NAMESPACE, commit_bytes)


def iceberg_ids(catalog: SqlCatalogPlugin, table: str) -> list[int]:
    return object_sources.iceberg_ids(catalog, NAMESPACE, table)


def service_account_json(token_uri: str) -> str:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    return json.dumps(
        {
            "type": "service_account",
            "project_id": "floe-test",
            "private_key_id": "canary-key-id",
            "private_key": pem,
            "client_email": "floe@floe-test.iam.gserviceaccount.com",
            "client_id": "1",
            "token_uri": token_uri,
        }
    )


def test_tables_schemas_and_data_versions(bucket: Bucket) -> None:
    bucket.put("root-file.v1.parquet", parquet_bytes(range(3)))
    bucket.put("one/a.parquet", parquet_bytes(range(2)))
    bucket.put("one/b.parquet", parquet_bytes(range(2, 7)))
    bucket.put("two/levels/x.parquet", parquet_bytes(range(4)))
    bucket.put("one/notes.txt", b"not a table file")
    conn = connector(bucket)
    tables = {t.name: t for t in conn.scan(TableFilter())}
    assert sorted(tables) == ["one", "root_file_v1", "two_levels"]
    one = tables["one"]
    assert [(c.name, c.type) for c in one.storage.columns] == [("id", "int64"), ("label", "string")]
    assert one.stats.row_count == 7 and one.stats.file_count == 2
    assert one.storage.location == f"gs://{bucket.name}/one/*.parquet"
    assert conn.call_counts["get_object"] == 0 and conn.call_counts["get_object_range"] == 4
    bucket.put("one/a.parquet", parquet_bytes(range(2)))  # same bytes, a new generation
    again = connector(bucket)
    assert again.get_table(again.config.table_namespace, "one").data_version != one.data_version


def test_schema_mismatch_names_both_objects(bucket: Bucket) -> None:
    bucket.put("drift/a.parquet", parquet_bytes(range(2)))
    bucket.put("drift/b.parquet", parquet_bytes(range(2), extra="score"))
    conn = connector(bucket)
    with pytest.raises(SchemaMismatchError) as caught:
        conn.get_table(conn.config.table_namespace, "drift")
    text = str(caught.value)
    assert f"gs://{bucket.name}/drift/a.parquet" in text and "column 'score' only in the second" in text


def test_incremental_ingest_crash_resume_and_a_no_change_run(
    bucket: Bucket, catalog: SqlCatalogPlugin, monkeypatch: pytest.MonkeyPatch
) -> None:
    for part in range(5):
        bucket.put(f"events/part-{part}.parquet", parquet_bytes(range(part * 10, part * 10 + 10)))
    calls = {"n": 0}
    real = S3MetastoreConnector.read_object

    def dies_on_the_third(self: S3MetastoreConnector, obj: Any, *args: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 3:
            raise RuntimeError("injected crash")
        return real(self, obj, *args)

    monkeypatch.setattr(S3MetastoreConnector, "read_object", dies_on_the_third)
    with pytest.raises(RuntimeError, match="injected crash"):
        ingest(connector(bucket, concurrency=1), catalog, "events", commit_bytes=1)
    monkeypatch.setattr(S3MetastoreConnector, "read_object", real)
    assert iceberg_ids(catalog, "events") == list(range(20))
    resumed = ingest(connector(bucket), catalog, "events", commit_bytes=1)
    assert resumed.read == 3 and iceberg_ids(catalog, "events") == list(range(50))
    time.sleep(1.1)
    bucket.put("events/part-5.parquet", parquet_bytes(range(50, 55)))
    conn = connector(bucket)
    assert ingest(conn, catalog, "events").read == 1 and conn.call_counts["get_object"] == 1
    conn = connector(bucket)
    unchanged = ingest(conn, catalog, "events")
    assert (unchanged.new, unchanged.read, unchanged.commits) == (0, 0, 0)
    assert conn.call_counts["get_object"] == 0 and conn.call_counts["get_object_range"] == 0
    assert iceberg_ids(catalog, "events") == list(range(55))


def test_malformed_and_deleted_objects_are_skipped_and_batches_have_rows_per_record(
    bucket: Bucket, catalog: SqlCatalogPlugin, caplog: pytest.LogCaptureFixture
) -> None:
    bucket.put("mixed/0-good.parquet", parquet_bytes(range(0, 5)))
    bucket.put("mixed/1-broken.parquet", b"PAR1 this is not parquet at all PAR1")
    bucket.put("mixed/2-gone.parquet", parquet_bytes(range(100, 105)))
    bucket.put("mixed/3-good.parquet", parquet_bytes(range(5, 10)))
    conn = connector(bucket, rows_per_record=3, concurrency=2)
    listed = conn.discover()["mixed"]
    assert [b.num_rows for b in conn.read_object(listed[0]).batches()] == [3, 2]
    bucket.delete("mixed/2-gone.parquet")
    caplog.set_level(logging.INFO, logger="floe_dagster")
    report = ingest_table(conn, catalog, "mixed", listed, namespace="raw_gcs", commit_bytes=1 << 30)
    assert report.read == 2 and iceberg_ids(catalog, "mixed") == list(range(10))
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("mixed/1-broken.parquet" in w and "malformed Parquet" in w for w in warnings)
    assert any("mixed/2-gone.parquet" in w and "deleted since it was listed" in w for w in warnings)


def test_duckdb_reads_the_tables_through_a_registered_gcsfs_filesystem(bucket: Bucket) -> None:
    from floe_dagster.readers.duckdb_scan import scan_connection, select_sql, storage_secret_sql

    bucket.put("orders/p0.parquet", parquet_bytes(range(0, 4)))
    bucket.put("orders/p1.parquet", parquet_bytes(range(4, 9)))
    conn = connector(bucket)
    scan = conn.describe_scan(conn.config.table_namespace, "orders")
    assert storage_secret_sql(conn.credentials, "s", [scan]) is None  # no HMAC keys: no httpfs secret
    con = scan_connection([scan], conn.credentials)
    assert con.sql(f"SELECT count(*), sum(id) FROM ({select_sql(scan)})").fetchall() == [(9, sum(range(9)))]
    assert "httpfs" not in {
        r[0] for r in con.sql("SELECT extension_name FROM duckdb_extensions() WHERE loaded").fetchall()
    }


def test_hmac_keys_make_a_duckdb_gcs_secret_scoped_to_the_bucket(bucket: Bucket) -> None:
    from floe_dagster.plugins.table_model import ScanDescription
    from floe_dagster.readers.duckdb_scan import scan_connection, storage_secret_sql

    conn = connector(bucket, hmac_access_id="GOOG1EXAMPLE", hmac_secret=CANARY_HMAC)
    scan = ScanDescription(table="t", location=f"gs://{bucket.name}/t/*.parquet", format="parquet")
    sql = storage_secret_sql(conn.credentials, "floe_gcs", [scan])
    assert sql is not None and "TYPE gcs" in sql and f"SCOPE ['gs://{bucket.name}']" in sql
    con = scan_connection([scan], conn.credentials)  # DuckDB accepts the secret
    assert con.sql("SELECT name, type, scope FROM duckdb_secrets()").fetchall() == [
        ("floe_scan", "gcs", [f"gs://{bucket.name}"])
    ]
    assert CANARY_HMAC not in repr(conn.credentials) and CANARY_HMAC not in repr(conn.config)
    assert CANARY_HMAC not in conn.debug_report() and CANARY_HMAC not in str(conn.diagnostics())


def test_service_account_json_is_the_credential_and_its_key_leaks_nowhere(bucket: Bucket) -> None:
    nowhere = f"http://127.0.0.1:{free_port()}/token"
    key_json = service_account_json(nowhere)
    private = json.loads(key_json)["private_key"].splitlines()[1]
    conn = connector(bucket, anonymous=None, key_json=key_json)
    assert conn.auth_strategy() == "service_account (key_json)"
    credentials = conn.credentials.google_auth("gcslake", "gcs")
    assert credentials.service_account_email == "floe@floe-test.iam.gserviceaccount.com"
    with pytest.raises((AuthenticationError, UnavailableError)) as caught:
        conn.discover()  # the token endpoint is not there: a refusal to fetch a token
    texts = [str(caught.value), repr(conn.config), conn.debug_report(), str(conn.diagnostics())]
    assert private not in "\n".join(texts)
    bad = connector(bucket, anonymous=None, key_json='{"type": "service_account"}')
    with pytest.raises(ConfigurationError) as unusable:
        bad.discover()
    assert "check key_json" in str(unusable.value)


def test_missing_bucket_wrong_endpoint_and_bad_config_say_what_to_fix(bucket: Bucket) -> None:
    missing = connector(bucket, bucket="no-such-bucket-floe")
    with pytest.raises(NotFoundError) as caught:
        missing.discover()
    assert "bucket 'no-such-bucket-floe' does not exist" in str(caught.value)
    assert "check metastores.gcslake.config.bucket" in str(caught.value) and caught.value.__cause__ is None
    nowhere = connector(bucket, endpoint=f"http://127.0.0.1:{free_port()}", max_attempts=1)
    with pytest.raises(UnavailableError) as unavailable:
        nowhere.discover()
    assert "check metastores.gcslake.config.endpoint" in str(unavailable.value)
    with pytest.raises(InvalidFieldError) as invalid:
        metastore_config("g", "gcs", {"bucket": "gs://x/y"}, environ={})
    assert invalid.value.field == "bucket" and "path_prefix" in str(invalid.value)
    with pytest.raises(InvalidFieldError) as half:
        metastore_config("g", "gcs", {"bucket": "abc", "hmac_access_id": "GOOG1"}, environ={})
    assert half.value.field == "hmac_secret"


def test_access_denied_and_replaced_objects_map_to_friendly_errors(bucket: Bucket) -> None:
    """The emulator never refuses and ignores ifGenerationMatch: these answers are the
    google-api-core exceptions the real service raises, fed to the connector's mapping."""
    from google.api_core import exceptions as gexc

    conn = connector(bucket)
    denied = conn.map_error(gexc.Forbidden("denied"), "list_tables", "", listing=True)
    assert isinstance(denied, AuthenticationError)
    assert "roles/storage.objectViewer" in str(denied) and "mode: anonymous" in str(denied)
    assert denied.provider == "gcs" and denied.operation == "list_tables"
    busy = conn.map_error(gexc.ServiceUnavailable("busy"), "read_object", "k.parquet")
    assert isinstance(busy, UnavailableError) and busy.retryable


def test_as_many_pooled_connections_as_downloads_in_flight(
    bucket: Bucket, catalog: SqlCatalogPlugin, caplog: pytest.LogCaptureFixture
) -> None:
    """requests pools 10 connections per host; 32 downloads in flight on the default pool each
    past the tenth open a connection and throw it away ("Connection pool is full")."""
    for part in range(48):
        bucket.put(f"wide/part-{part:02d}.parquet", parquet_bytes(range(part * 5, part * 5 + 5)))
    caplog.set_level(logging.WARNING, logger="urllib3.connectionpool")
    report = ingest(connector(bucket, concurrency=32), catalog, "wide")
    assert report.read == 48 and iceberg_ids(catalog, "wide") == list(range(240))
    full = [r.getMessage() for r in caplog.records if "pool is full" in r.getMessage()]
    assert not full, full[:2]


def test_a_delta_table_is_discovered_and_versioned_and_its_read_is_refused_naming_the_store(
    bucket: Bucket, tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """delta-rs cannot write to the emulator (its object_store reads and lists through GCS's XML
    API, which the emulator answers with 501), so the table is written to a local folder by
    delta-rs and its files uploaded as they are, a commit at a time."""
    import duckdb

    from floe_dagster.readers.metastore_views import create_source_views

    monkeypatch.delenv("FLOE_STATE_DIR", raising=False)
    local = tmp_path / "sales"
    uploaded: set[Path] = set()

    def commit(ids: range) -> None:
        delta_append(str(local), ids)
        for path in sorted(p for p in local.rglob("*") if p.is_file() and p not in uploaded):
            bucket.put(f"lake/sales/eu/{path.relative_to(local)}", path.read_bytes())
            uploaded.add(path)

    for start in (0, 10):
        commit(range(start, start + 3))
    bucket.put("lake/loose/a.parquet", parquet_bytes(range(2)))  # no _delta_log/: not a table
    caplog.set_level(logging.WARNING, logger="floe_dagster")
    conn = connector(bucket, file_type="delta", path_prefix="lake/")
    (found,) = conn.scan(TableFilter())
    location = f"gs://{bucket.name}/lake/sales/eu"
    assert (found.name, found.storage.format, found.storage.location) == ("lake_sales_eu", "delta", location)
    assert found.data_version == "1" and conn.call_counts["get_object"] == 0
    assert found.storage.columns == ()  # delta-rs cannot read the emulator: said, not guessed
    assert any("columns of delta table lake_sales_eu unknown" in r.getMessage() for r in caplog.records)

    # what an observation reads: the same version until a commit is added, then the next one
    namespace = conn.config.table_namespace
    (same,) = connector(bucket, file_type="delta", path_prefix="lake/").get_tables_or_errors(
        namespace, ["lake_sales_eu"]
    )
    assert isinstance(same, Table) and same.data_version == "1"
    commit(range(20, 22))
    (after,) = connector(bucket, file_type="delta", path_prefix="lake/").get_tables_or_errors(
        namespace, ["lake_sales_eu"]
    )
    assert isinstance(after, Table) and after.data_version == "2"

    # a dbt source over the table: its view fails with why, naming the table and the store
    config = {
        "bucket": bucket.name,
        "endpoint": bucket.server.endpoint,
        "anonymous": True,
        "project": bucket.server.project,
        "path_prefix": "lake/",
        "file_type": "delta",
    }
    table = "lake_sales_eu"
    resolved = object_sources.source_views(tmp_path / "p", "landing", "gcs", config, namespace, table)
    (error,) = [v.error for v in resolved.views]
    assert error is not None and "is discovered and versioned, but not read on DuckDB" in error
    assert f"table {namespace}.{table}" in error and location in error and "Google Cloud Storage" in error
    con = duckdb.connect()
    con.execute("ATTACH ':memory:' AS warehouse")
    create_source_views(con, resolved)
    with pytest.raises(duckdb.Error) as failed:
        con.sql(f'SELECT * FROM warehouse."{namespace}".lake_sales_eu').fetchall()
    assert "Google Cloud Storage" in str(failed.value) and "lake_sales_eu" in str(failed.value)


def test_a_hudi_table_is_discovered_and_versioned_and_its_read_is_refused_naming_the_store(
    bucket: Bucket, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Written by the tests' Hudi writer (no Hudi writer installs here) to a folder, uploaded."""
    monkeypatch.delenv("FLOE_STATE_DIR", raising=False)
    folder = tmp_path / "orders"
    writer = HudiTableWriter(folder)

    def commit(instant: str, ids: range) -> None:
        writer.commit(instant, [{"id": i, "label": f"a{i}", "ds": "2024-01-01"} for i in ids])
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            bucket.put(f"lake/orders/{path.relative_to(folder)}", path.read_bytes())

    first, second = "20240101000000000", "20240102000000000"
    commit(first, range(3))
    conn = connector(bucket, file_type="hudi", path_prefix="lake/")
    (found,) = conn.scan(TableFilter())
    location = f"gs://{bucket.name}/lake/orders"
    assert (found.name, found.storage.format, found.storage.location) == ("lake_orders", "hudi", location)
    assert found.data_version == first and conn.call_counts["get_object"] == 0
    commit(second, range(3, 5))
    namespace = conn.config.table_namespace
    (after,) = connector(bucket, file_type="hudi", path_prefix="lake/").get_tables_or_errors(
        namespace, ["lake_orders"]
    )
    assert isinstance(after, Table) and after.data_version == second

    config = {
        "bucket": bucket.name,
        "endpoint": bucket.server.endpoint,
        "anonymous": True,
        "project": bucket.server.project,
        "path_prefix": "lake/",
        "file_type": "hudi",
    }
    resolved = object_sources.source_views(tmp_path / "p", "landing", "gcs", config, namespace, "lake_orders")
    (error,) = [v.error for v in resolved.views]
    assert error is not None and "is discovered and versioned, but not read on DuckDB" in error
    assert f"table {namespace}.lake_orders" in error and location in error and "Google Cloud Storage" in error


@pytest.mark.parametrize("file_type", ["parquet", "orc"])
def test_dbt_source_views_read_gcs_tables_through_gcsfs_without_hmac_keys(
    bucket: Bucket, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, file_type: str
) -> None:
    """The views of dbt sources (what the dbt-duckdb plugin creates on its connection): without
    HMAC keys DuckDB's httpfs cannot read gs://, so the metastore's gcsfs filesystem is registered
    on the connection, and DuckDB reads through it even with httpfs loaded (as a dbt run has it);
    ORC goes through the same gcsfs as a PyArrow dataset."""
    # lazy: the DuckDB stage of the readers, only in the tests that read
    from floe_dagster.computes.duckdb_extensions import connect_with_extensions
    from floe_dagster.readers.duckdb_scan import default_extension_dir
    from floe_dagster.readers.formats import register_all
    from floe_dagster.readers.metastore_views import create_source_views
    from tests.fixtures.format_tables import orc_bytes

    monkeypatch.delenv("FLOE_STATE_DIR", raising=False)
    write = parquet_bytes if file_type == "parquet" else orc_bytes
    bucket.put(f"orders/a.{file_type}", write(range(0, 4)))
    bucket.put(f"orders/b.{file_type}", write(range(4, 6)))
    config = {
        "bucket": bucket.name,
        "endpoint": bucket.server.endpoint,
        "anonymous": True,
        "project": bucket.server.project,
        "file_type": file_type,
    }
    namespace = connector(bucket).config.table_namespace
    resolved = object_sources.source_views(tmp_path / "p", "landing", "gcs", config, namespace, "orders")
    assert [v.error for v in resolved.views] == [None] and resolved.secrets == []
    assert [metastore for metastore, _ in resolved.filesystems] == ["landing"]
    con = connect_with_extensions(":memory:", default_extension_dir(), ["httpfs"])
    con.execute("ATTACH ':memory:' AS warehouse")
    create_source_views(con, resolved)
    query = f'SELECT count(*), sum(id) FROM warehouse."{namespace}".orders'
    assert con.sql(query).fetchone() == (6, 15)
    cursor = con.cursor()  # a dbt cursor: the plugin registers the views' Arrow datasets on it
    register_all(cursor, resolved.registered)
    assert cursor.sql(query).fetchone() == (6, 15)  # and it sees the filesystem too
    assert "gs" in con.list_filesystems()


def test_dbt_build_reads_parquet_and_orc_sources_on_gcs_without_hmac_keys(
    bucket: Bucket, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A real ``dbt build`` on DuckDB with floe's plugin: two dbt sources over tables of two gcs
    metastores on the emulator (anonymous: no HMAC keys, so no DuckDB secret can serve them),
    a Parquet one and an ORC one, joined by a model; its rows are read back from the DuckDB file."""
    import duckdb

    # lazy: dbt and the manifest loader, only in the tests that run dbt
    from floe_dagster.manifest.loader import load_manifest
    from floe_dagster.transforms.dbt_manifest import run_dbt
    from floe_dagster.transforms.profiles import write_profiles
    from tests.fixtures.format_tables import orc_bytes

    for name in ("FLOE_STATE_DIR", "FLOE_ENV", "DBT_TARGET_PATH"):
        monkeypatch.delenv(name, raising=False)
    bucket.put("parquet/orders/a.parquet", parquet_bytes(range(0, 4)))
    bucket.put("orc/orders/a.orc", orc_bytes(range(2, 6)))
    namespace = connector(bucket).config.table_namespace
    server = bucket.server
    metastores = "".join(
        f"  {name}:\n    type: gcs\n    config: {{bucket: {bucket.name}, endpoint: '{server.endpoint}',"
        f" anonymous: true, project: {server.project}, path_prefix: {name}/, file_type: {name}}}\n"
        for name in ("parquet", "orc")
    )
    sources = "version: 2\nsources:\n" + "".join(
        f"  - name: {name}\n    schema: {namespace}\n    meta: {{floe: {{metastore: {name}}}}}\n"
        f"    tables:\n      - name: {name}_orders\n"
        for name in ("parquet", "orc")
    )
    (tmp_path / "dbt" / "models").mkdir(parents=True)
    (tmp_path / "dbt" / "dbt_project.yml").write_text(
        "name: gcsread\nversion: '1.0.0'\nconfig-version: 2\nprofile: gcsread\n"
        "model-paths: [models]\nmodels:\n  gcsread:\n    +materialized: table\n"
    )
    (tmp_path / "dbt" / "models" / "_sources.yml").write_text(sources)
    (tmp_path / "dbt" / "models" / "both.sql").write_text(
        "select p.id, p.label, o.label as orc_label from {{ source('parquet', 'parquet_orders') }} p"
        " join {{ source('orc', 'orc_orders') }} o using (id)"
    )
    manifest = tmp_path / "manifest.yaml"
    manifest.write_text(
        "apiVersion: floe.dev/v1\nkind: Manifest\nmetadata: {name: gcsread}\nstate_dir: .floe\n"
        "computes:\n  approved: [duckdb]\n  default: duckdb\n  targets:\n    duckdb:\n      type: duckdb\n"
        "      config: {path: .floe/warehouse.duckdb, extensions: [httpfs]}\n"
        f"metastores:\n{metastores}transforms:\n  dbt_project: dbt\n"
    )
    loaded = load_manifest(manifest)
    run_dbt(loaded, ["build"], write_profiles(loaded))
    with duckdb.connect(str(tmp_path / ".floe" / "warehouse.duckdb"), read_only=True) as con:
        rows = con.sql("SELECT id, label, orc_label FROM main.both ORDER BY id").fetchall()
    assert rows == [(2, "2", "l2"), (3, "3", "l3")]


# --- Dagster: observable sources and ingest assets from a manifest ----------------------------------

GCS_MANIFEST = """\
apiVersion: floe.dev/v1
kind: Manifest
metadata: {{name: gcs-ingest-test}}
state_dir: .floe
catalogs:
  lake: {{type: sql, config: {{uri: "sqlite:///.floe/catalog.db", warehouse: .floe/warehouse}}}}
computes:
  approved: [duckdb]
  default: duckdb
  targets: {{duckdb: {{type: duckdb, config: {{path: ":memory:"}}}}}}
metastores:
  landing:
    type: gcs
    config:
      bucket: {bucket}
      endpoint: {endpoint}
      project: {project}
      key_json: ${{env:FLOE_TEST_GCS_KEY_JSON}}
      hmac_access_id: GOOG1FLOETESTHMAC
      hmac_secret: ${{env:FLOE_TEST_GCS_HMAC}}
      concurrency: 4
      ingest: {{enabled: true, namespace: raw_gcs}}
transforms: {{dbt_project: dbt, catalog: lake}}
"""


def token_endpoint() -> Any:
    """An OAuth2 token endpoint for the service-account key (the emulator checks no token, but
    google-auth fetches one with a JWT signed by the key before every first request)."""
    from tests.fixtures.dataproc_api import FakeMetastoreApi

    api = FakeMetastoreApi()  # its POST /token answers a JWT-bearer grant with an access token
    api.token = "ya29.floe-gcs-test-token"
    return api


def key_secrets(key_json: str) -> list[str]:
    """What of a service-account key must appear nowhere: the JSON, the PEM and each of its lines."""
    pem = json.loads(key_json)["private_key"]
    lines = [line for line in pem.splitlines() if line and not line.startswith("-----")]
    return [key_json, pem, *lines]


def gcs_dagster_defs(bucket: Bucket, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, key_json: str) -> Any:
    """The manifest above on ``bucket``, its state written, and Definitions with the observable
    sources and ingest assets of ``landing`` and jobs ``observe`` and ``ingest``."""
    from dagster import AssetSelection, Definitions, define_asset_job

    # lazy: Dagster-stage modules, imported by the tests that run Dagster only
    from floe_dagster.dagster_stage.definitions import build_resources
    from floe_dagster.dagster_stage.ingest import ingest_assets
    from floe_dagster.dagster_stage.sources import observable_sources
    from floe_dagster.manifest.loader import load_manifest
    from floe_dagster.metastores.state import write_state
    from floe_dagster.plan.dbt_project import profiles_dir

    monkeypatch.setenv("FLOE_TEST_GCS_KEY_JSON", key_json)
    monkeypatch.setenv("FLOE_TEST_GCS_HMAC", CANARY_HMAC)
    (tmp_path / "dbt").mkdir(parents=True)
    (tmp_path / "dbt" / "dbt_project.yml").write_text("name: gcstest\nversion: '1'\nprofile: gcstest\n")
    manifest = tmp_path / "manifest.yaml"
    server = bucket.server
    manifest.write_text(
        GCS_MANIFEST.format(bucket=bucket.name, endpoint=server.endpoint, project=server.project)
    )
    loaded = load_manifest(manifest, check_assignments=False)
    profiles_dir(loaded).mkdir(parents=True)  # build_resources' dbt resource wants one (no dbt runs)
    (profiles_dir(loaded) / "profiles.yml").write_text("gcstest: {target: x, outputs: {}}\n")
    state = write_state(loaded).state
    observe = observable_sources(loaded, "landing", state.tables("landing"))
    ingest_defs = ingest_assets(loaded, "landing", state.tables("landing"), observe.keys if observe else ())
    assert observe is not None and ingest_defs is not None
    namespace = loaded.plugin_config("metastores", "landing").table_namespace
    defs = Definitions(
        assets=[observe, ingest_defs],
        resources=build_resources(loaded),
        jobs=[
            define_asset_job("observe", selection=AssetSelection.assets(observe)),
            define_asset_job("ingest", selection=AssetSelection.assets(ingest_defs)),
        ],
    )
    return defs, observe, ingest_defs, namespace


def test_dagster_observes_gcs_tables_and_ingests_them_incrementally(
    bucket: Bucket, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from dagster import AssetKey, instance_for_test
    from dagster._core.definitions.data_version import extract_data_version_from_entry

    caplog.set_level(logging.INFO)
    tokens = token_endpoint()
    try:
        key_json = service_account_json(f"{tokens.endpoint}/token")
        bucket.put("orders/2026/01/part-0.parquet", parquet_bytes(range(0, 10)))
        bucket.put("orders/2026/01/part-1.parquet", parquet_bytes(range(10, 20)))
        bucket.put("customers.parquet", parquet_bytes(range(0, 5)))
        defs, observe, ingest_defs, namespace = gcs_dagster_defs(bucket, tmp_path, monkeypatch, key_json)
        source = AssetKey(["landing", namespace, "orders_2026_01"])
        orders = AssetKey(["lake", "raw_gcs", "orders_2026_01"])
        assert observe.keys == {source, AssetKey(["landing", namespace, "customers"])}
        assert ingest_defs.keys == {orders, AssetKey(["lake", "raw_gcs", "customers"])}
        assert ingest_defs.asset_deps[orders] == {source}
        with instance_for_test() as instance:
            assert defs.resolve_job_def("observe").execute_in_process(instance=instance).success
            record = instance.get_latest_data_version_record(source, is_source=True)
            observed = extract_data_version_from_entry(record.event_log_entry) if record else None
            listing = connector(bucket)
            expected = listing.get_table(listing.config.table_namespace, "orders_2026_01").data_version
            assert observed is not None and observed.value == expected  # the generations listed
            assert defs.resolve_job_def("ingest").execute_in_process(instance=instance).success
            first = instance.get_latest_materialization_event(orders)
            assert first is not None and first.asset_materialization is not None
            metadata = first.asset_materialization.metadata
            assert metadata["floe/objects_read"].value == 2 and metadata["dagster/row_count"].value == 20
            assert str(metadata["floe/cursor"].value).endswith("000Z")

            time.sleep(1.1)  # a later second than the cursor's
            bucket.put("orders/2026/01/part-2.parquet", parquet_bytes(range(20, 25)))
            assert defs.resolve_job_def("observe").execute_in_process(instance=instance).success
            record = instance.get_latest_data_version_record(source, is_source=True)
            again = extract_data_version_from_entry(record.event_log_entry) if record else None
            assert again is not None and again != observed
            result = defs.resolve_job_def("ingest").execute_in_process(
                instance=instance, asset_selection=[orders]
            )
            assert result.success
            second = instance.get_latest_materialization_event(orders)
            assert second is not None and second.asset_materialization is not None
            metadata = second.asset_materialization.metadata
            assert (metadata["floe/objects_new"].value, metadata["floe/objects_read"].value) == (1, 1)
            assert metadata["dagster/row_count"].value == 25
            assert metadata["floe/cursor"].value > first.asset_materialization.metadata["floe/cursor"].value
            logs = [e.message or "" for e in instance.all_logs(result.run_id)]
            assert any("part-2.parquet size=" in line and "rows=5" in line for line in logs)
        assert [p for m, p, _ in tokens.requests if m == "POST"], "the key was never used for a token"
    finally:
        tokens.close()


# --- canaries -------------------------------------------------------------------------------------


def test_canary_secrets_appear_in_no_output(
    bucket: Bucket,
    catalog: SqlCatalogPlugin,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The HMAC secret and the service-account key in no log record (every logger at DEBUG:
    google-auth, google-cloud-storage, urllib3, floe), error, repr, ingest report, DuckDB secret
    listing, Iceberg property, Dagster event or metadata; while both are really in use."""
    from dagster import instance_for_test

    # lazy: the DuckDB reader, for the HMAC secret it is handed
    from floe_dagster.readers.duckdb_scan import scan_connection

    caplog.set_level(logging.DEBUG)
    # google-auth turns propagation of the "google" logger off at its first request unless that
    # logger was configured (google.auth._helpers.is_logging_enabled): configure it, and undo an
    # earlier test's first request, so its request/response records reach caplog here
    caplog.set_level(logging.DEBUG, logger="google")
    monkeypatch.setattr(logging.getLogger("google"), "propagate", True)
    tokens = token_endpoint()
    try:
        key_json = service_account_json(f"{tokens.endpoint}/token")
        secrets = [CANARY_HMAC, *key_secrets(key_json)]
        bucket.put("secret/a.parquet", parquet_bytes(range(3)))
        bucket.put("secret/b.parquet", b"broken")
        hmac = {"hmac_access_id": "GOOG1FLOETESTHMAC", "hmac_secret": CANARY_HMAC}
        keyed = {"anonymous": None, "key_json": key_json, **hmac}
        texts: list[str] = []
        for options in ({"anonymous": True, **hmac}, keyed):
            conn = connector(bucket, **options)
            texts += [repr(conn), repr(conn.config), repr(conn.credentials), conn.debug_report()]
            texts += [str(conn.diagnostics()), str(conn.describe())]
            assert [t.name for t in conn.scan(TableFilter())] == ["secret"]
            scan = conn.describe_scan(conn.config.table_namespace, "secret")
            con = scan_connection([scan], conn.credentials)
            shown = con.sql("SELECT * FROM duckdb_secrets()").fetchall()
            assert "GOOG1FLOETESTHMAC" in str(shown)  # DuckDB holds the HMAC keys ...
            texts.append(str(shown))  # ... and shows its secret redacted
        report = ingest(connector(bucket, **keyed), catalog, "secret")
        assert report.read == 1 and [key for key, _ in report.skipped] == ["secret/b.parquet"]
        texts += [str(report), repr(report), str(catalog.load_table((NAMESPACE, "secret")).properties)]
        assert [m for m, _, _ in tokens.requests if m == "POST"], "the key was never used for a token"

        # failing calls: a missing bucket, a token endpoint that refuses, none there, a broken key
        info = json.loads(key_json)
        refused = json.dumps({**info, "token_uri": f"{tokens.endpoint}/refuse"})
        nowhere = json.dumps({**info, "token_uri": f"http://127.0.0.1:{free_port()}/token"})
        broken = json.dumps({**info, "private_key": info["private_key"][:-200]})
        failing: list[tuple[dict[str, Any], type[Exception] | tuple[type[Exception], ...]]] = [
            ({**keyed, "bucket": "no-such-bucket-canary"}, NotFoundError),
            ({**keyed, "key_json": refused}, AuthenticationError),
            ({**keyed, "key_json": nowhere, "max_attempts": 1}, (AuthenticationError, UnavailableError)),
            ({**keyed, "key_json": broken}, ConfigurationError),
        ]
        for options, expected in failing:
            with pytest.raises(expected) as caught:
                connector(bucket, **options).discover()
            texts += [str(caught.value), repr(caught.value)]
        with pytest.raises(InvalidFieldError) as invalid:  # a config refused with its secrets in it
            metastore_config("g", "gcs", {"bucket": "Bad/Bucket", **keyed}, environ={})
        texts += [str(invalid.value), repr(invalid.value)]

        # Dagster: observation and materialisation events, their metadata, the run's logs
        bucket.put("orders/part-0.parquet", parquet_bytes(range(0, 4)))
        defs, _, _, _ = gcs_dagster_defs(bucket, tmp_path / "project", monkeypatch, key_json)
        with instance_for_test() as instance:
            for job in ("observe", "ingest"):
                result = defs.resolve_job_def(job).execute_in_process(instance=instance)
                assert result.success
                entries = instance.all_logs(result.run_id)
                texts += [str(e.dagster_event) for e in entries] + [e.message or "" for e in entries]
            materialised = [
                e for e in result.all_events if e.is_step_materialization and e.step_materialization_data
            ]
            assert len(materialised) == 2
            texts += [str(e.step_materialization_data.materialization.metadata) for e in materialised]
    finally:
        tokens.close()
    texts += [r.getMessage() for r in caplog.records] + [caplog.text]
    captured = capsys.readouterr()
    texts += [captured.out, captured.err]
    everything = "\n".join(texts)
    # the output is there (the skip warning, the third-party DEBUG records) ...
    assert "secret/b.parquet" in everything and "floe/objects_read" in everything
    names = {r.name for r in caplog.records if r.levelno == logging.DEBUG}
    assert any(n.startswith("urllib3") for n in names) and any(n.startswith("google") for n in names)
    # ... the secrets are not
    leaked = [i for i, secret in enumerate(secrets) if secret in everything]
    assert not leaked, f"secret(s) #{leaked} of {len(secrets)} appear in the output"


# --- the object-store source's shared cases (tests/object_source_checks.py) -----------------------


@pytest.fixture
def store(bucket: Bucket, catalog: SqlCatalogPlugin) -> Store:
    return Store(
        put=bucket.put,
        delete=bucket.delete,
        connector=lambda **overrides: connector(bucket, **overrides),
        catalog=catalog,
        namespace=NAMESPACE,
        root=f"gs://{bucket.name}",
    )


class TestObjectSourceChecks(ObjectSourceChecks):
    """Every check of tests/object_source_checks.py on GCS."""


def test_a_key_the_token_endpoint_refuses_is_access_denied_saying_what_to_check(bucket: Bucket) -> None:
    tokens = token_endpoint()
    try:
        refused = service_account_json(f"{tokens.endpoint}/refuse")  # answers 400 invalid_grant-like
        conn = connector(bucket, anonymous=None, key_json=refused)
        with pytest.raises(AuthenticationError) as caught:
            conn.discover()
    finally:
        tokens.close()
    text = str(caught.value)
    assert "access denied (RefreshError)" in text and "mode: service_account (key_json)" in text
    assert "roles/storage.objectViewer" in text and caught.value.operation == "list_tables"
    assert caught.value.__cause__ is None and [m for m, p, _ in tokens.requests if p == "/refuse"]
