"""The object-store source on Azure Blob Storage (``type: azure``), against Azurite.

The same behaviour as the S3 source's tests (tests/integration/test_s3_sources.py): discovery and
naming, schema mismatch, incremental ingest with the crash-safe cursor, batching, concurrency,
skip-and-warn; the credential modes (account key, SAS token, connection string; the service
principal's settings), the friendly errors Azurite really gives (missing container, wrong key,
wrong account, expired SAS, wrong endpoint), DuckDB reading the tables through its azure
extension with a secret scoped to the container, and canary secrets in no output.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from floe_dagster.catalogs.sql import SqlCatalogPlugin
from floe_dagster.core.errors import AuthenticationError, InvalidFieldError, NotFoundError, UnavailableError
from floe_dagster.ingest.table import ingest_table
from floe_dagster.metastores.azure_blob import AzureBlobMetastoreConnector
from floe_dagster.metastores.object_tables import SchemaMismatchError
from floe_dagster.metastores.s3 import S3MetastoreConnector
from floe_dagster.plugins.factory import connect_metastore, metastore_config
from floe_dagster.plugins.table_model import Table, TableFilter
from tests import object_sources
from tests.fixtures.azurite_server import AzuriteServer
from tests.fixtures.format_tables import delta_append
from tests.fixtures.hudi_writer import HudiTableWriter
from tests.fixtures.s3rver_server import free_port
from tests.object_source_checks import ObjectSourceChecks, Store
from tests.object_sources import ingest_discovered, parquet_bytes, sql_catalog

pytestmark = pytest.mark.server

CANARY_KEY = "Q0FOQVJZLWF6dXJlLWtleS1kby1ub3QtbGVhaw=="  # base64 of CANARY-azure-key-do-not-leak
CANARY_CLIENT_SECRET = "CANARY-azure-client-secret-Yh31"

NAMESPACE = "raw_az"  # where the tests ingest into


class Container:
    def __init__(self, server: AzuriteServer, name: str) -> None:
        self.server, self.name = server, name
        self.client = server.container_client(name)

    def put(self, key: str, body: bytes) -> None:
        self.client.upload_blob(key, body, overwrite=True)

    def delete(self, key: str) -> None:
        self.client.delete_blob(key)


@pytest.fixture
def container(azurite_server: AzuriteServer) -> Container:
    return Container(azurite_server, azurite_server.create_container())


def connector(where: Container, **overrides: Any) -> AzureBlobMetastoreConnector:
    options: dict[str, Any] = {
        "container": where.name,
        "account_name": where.server.account_name,
        "account_key": where.server.account_key,
        "endpoint": where.server.endpoint,
        "max_attempts": 2,
        **overrides,
    }
    made = connect_metastore(
        "azlake", "azure", {k: v for k, v in options.items() if v is not None}, environ={}
    )
    assert isinstance(made, AzureBlobMetastoreConnector)
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


# --- discovery ------------------------------------------------------------------------------------


def test_tables_by_prefix_with_footer_schemas_and_paged_listing(container: Container) -> None:
    container.put("root-file.v1.parquet", parquet_bytes(range(3)))
    container.put("one/a.parquet", parquet_bytes(range(2)))
    container.put("one/b.parquet", parquet_bytes(range(2, 7)))
    container.put("two/levels/x.parquet", parquet_bytes(range(4)))
    container.put("one/notes.txt", b"not a table file")
    conn = connector(container)
    conn.page_size = 2
    tables = {t.name: t for t in conn.scan(TableFilter())}
    assert sorted(tables) == ["one", "root_file_v1", "two_levels"]
    assert conn.call_counts["list_objects"] >= 3  # paged: 5 blobs, 2 per page
    one = tables["one"]
    assert one.namespace == container.name.replace("-", "_")
    assert [(c.name, c.type) for c in one.storage.columns] == [("id", "int64"), ("label", "string")]
    assert one.stats.row_count == 7 and one.stats.file_count == 2
    assert one.storage.location == f"az://{container.name}/one/*.parquet"
    assert conn.call_counts["get_object"] == 0  # footers only, by ranged reads
    before = one.data_version
    container.put("one/c.parquet", parquet_bytes(range(7, 9)))
    again = connector(container)
    assert again.get_table(again.config.table_namespace, "one").data_version != before


def test_schema_mismatch_names_both_blobs_and_the_columns(container: Container) -> None:
    container.put("drift/a.parquet", parquet_bytes(range(2)))
    container.put("drift/b.parquet", parquet_bytes(range(2), extra="score"))
    conn = connector(container)
    with pytest.raises(SchemaMismatchError) as caught:
        conn.get_table(conn.config.table_namespace, "drift")
    text = str(caught.value)
    assert (
        f"az://{container.name}/drift/a.parquet" in text and f"az://{container.name}/drift/b.parquet" in text
    )
    assert "column 'score' only in the second" in text


# --- ingest ---------------------------------------------------------------------------------------


def test_incremental_runs_read_only_new_blobs_and_a_no_change_run_reads_none(
    container: Container, catalog: SqlCatalogPlugin
) -> None:
    for part in range(3):
        container.put(f"events/part-{part}.parquet", parquet_bytes(range(part * 10, part * 10 + 10)))
    first = ingest(connector(container), catalog, "events")
    assert (first.read, first.rows) == (3, 30)
    time.sleep(1.1)  # Last-Modified has one-second resolution
    container.put("events/part-3.parquet", parquet_bytes(range(30, 40)))
    conn = connector(container)
    second = ingest(conn, catalog, "events")
    assert (second.new, second.read, second.total_rows) == (1, 1, 40)
    assert conn.call_counts["get_object"] == 1
    conn = connector(container)
    unchanged = ingest(conn, catalog, "events")
    assert (unchanged.new, unchanged.read, unchanged.commits) == (0, 0, 0)
    assert conn.call_counts["get_object"] == 0 and conn.call_counts["get_object_range"] == 0
    assert iceberg_ids(catalog, "events") == list(range(40))


def test_a_crash_half_way_loses_and_duplicates_nothing(
    container: Container, catalog: SqlCatalogPlugin, monkeypatch: pytest.MonkeyPatch
) -> None:
    for part in range(6):
        container.put(f"crash/part-{part}.parquet", parquet_bytes(range(part * 10, part * 10 + 10)))
    calls = {"n": 0}
    real = S3MetastoreConnector.read_object

    def dies_on_the_fourth(self: S3MetastoreConnector, obj: Any, *args: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 4:
            raise RuntimeError("injected crash")
        return real(self, obj, *args)

    monkeypatch.setattr(S3MetastoreConnector, "read_object", dies_on_the_fourth)
    with pytest.raises(RuntimeError, match="injected crash"):
        ingest(connector(container, concurrency=2), catalog, "crash", commit_bytes=1)
    monkeypatch.setattr(S3MetastoreConnector, "read_object", real)
    partial = iceberg_ids(catalog, "crash")
    assert 0 < len(partial) < 60 and partial == list(range(len(partial)))
    report = ingest(connector(container), catalog, "crash", commit_bytes=1)
    assert report.read == 6 - len(partial) // 10
    assert iceberg_ids(catalog, "crash") == list(range(60))


def test_malformed_deleted_and_replaced_blobs_are_skipped_with_a_warning(
    container: Container, catalog: SqlCatalogPlugin, caplog: pytest.LogCaptureFixture
) -> None:
    container.put("mixed/0-good.parquet", parquet_bytes(range(0, 5)))
    container.put("mixed/1-broken.parquet", b"PAR1 this is not parquet at all PAR1")
    container.put("mixed/2-gone.parquet", parquet_bytes(range(100, 105)))
    container.put("mixed/3-replaced.parquet", parquet_bytes(range(200, 205)))
    container.put("mixed/4-good.parquet", parquet_bytes(range(5, 10)))
    conn = connector(container)
    listed = conn.discover()["mixed"]
    container.delete("mixed/2-gone.parquet")  # between listing and reading
    container.put("mixed/3-replaced.parquet", parquet_bytes(range(300, 305)))  # a new ETag
    caplog.set_level(logging.INFO, logger="floe_dagster")
    report = ingest_table(conn, catalog, "mixed", listed, namespace="raw_az", commit_bytes=1 << 30)
    assert report.read == 2 and iceberg_ids(catalog, "mixed") == list(range(10))
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("mixed/1-broken.parquet" in w and "malformed Parquet" in w for w in warnings)
    assert any("mixed/2-gone.parquet" in w and "deleted since it was listed" in w for w in warnings)
    assert any("mixed/3-replaced.parquet" in w and "replaced since it was listed" in w for w in warnings)


@pytest.mark.parametrize("rows", [7, 500])
def test_rows_per_record_is_the_batch_size_and_concurrency_bounds_reads(
    container: Container, catalog: SqlCatalogPlugin, monkeypatch: pytest.MonkeyPatch, rows: int
) -> None:
    for part in range(6):
        container.put(f"wide/part-{part}.parquet", parquet_bytes(range(part * 20, part * 20 + 20)))
    lock = threading.Lock()
    seen = {"now": 0, "max": 0}
    real = S3MetastoreConnector.read_object

    def counted(self: S3MetastoreConnector, obj: Any, *args: Any) -> Any:
        with lock:
            seen["now"] += 1
            seen["max"] = max(seen["max"], seen["now"])
        try:
            time.sleep(0.05)
            return real(self, obj, *args)
        finally:
            with lock:
                seen["now"] -= 1

    monkeypatch.setattr(S3MetastoreConnector, "read_object", counted)
    conn = connector(container, concurrency=2, rows_per_record=rows)
    data = conn.read_object(conn.discover()["wide"][0])
    sizes = [batch.num_rows for batch in data.batches()]
    assert sizes == ([7, 7, 6] if rows == 7 else [20])
    ingest(conn, catalog, "wide")
    assert seen["max"] == 2
    assert iceberg_ids(catalog, "wide") == list(range(120))


# --- credentials ----------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["account_key", "sas_token", "connection_string"])
def test_each_credential_mode_lists_and_reads(container: Container, mode: str) -> None:
    container.put("modes/a.parquet", parquet_bytes(range(4)))
    server = container.server
    options: dict[str, Any] = {"account_key": None}
    if mode == "account_key":
        options["account_key"] = server.account_key
    elif mode == "sas_token":
        options["sas_token"] = "?" + server.sas_token(container.name)
    else:
        options.update(connection_string=server.connection_string, account_name=None, endpoint=None)
    conn = connector(container, **options)
    assert conn.auth_strategy() == mode
    table = conn.get_table(conn.config.table_namespace, "modes")
    assert table.stats.row_count == 4


def test_a_service_principal_comes_from_the_azure_environment_variables() -> None:
    environ = {
        "AZURE_CLIENT_ID": "00000000-0000-0000-0000-000000000001",
        "AZURE_CLIENT_SECRET": CANARY_CLIENT_SECRET,
        "AZURE_TENANT_ID": "00000000-0000-0000-0000-000000000002",
    }
    _, config = metastore_config(
        "az", "azure", {"container": "raw-data", "account_name": "datalake"}, environ=environ
    )
    assert config.mode == "service_principal"  # type: ignore[attr-defined]
    assert CANARY_CLIENT_SECRET not in repr(config)
    conn = connect_metastore(
        "az", "azure", {"container": "raw-data", "account_name": "datalake"}, environ=environ
    )
    from azure.identity import ClientSecretCredential

    assert isinstance(conn.credentials.token_credential(), ClientSecretCredential)
    sql = conn.credentials.duckdb_secret_sql("s", scopes=["az://raw-data"])
    assert "PROVIDER service_principal" in sql and "ACCOUNT_NAME 'datalake'" in sql
    # an explicit key wins over the environment's service principal
    keyed = connect_metastore(
        "az",
        "azure",
        {"container": "raw-data", "account_name": "datalake", "account_key": "a2V5"},
        environ=environ,
    )
    assert keyed.auth_strategy() == "account_key"
    with pytest.raises(InvalidFieldError) as caught:
        metastore_config(
            "az",
            "azure",
            {"container": "raw-data", "account_name": "datalake"},
            environ={"AZURE_CLIENT_ID": "x"},
        )
    assert caught.value.field == "client_secret" and "AZURE_CLIENT_SECRET" in str(caught.value)


# --- friendly errors ------------------------------------------------------------------------------


def test_a_missing_container_says_which_and_where(container: Container) -> None:
    conn = connector(container, container="no-such-container")
    with pytest.raises(NotFoundError) as caught:
        conn.discover()
    text = str(caught.value)
    assert "container 'no-such-container' does not exist in storage account 'devstoreaccount1'" in text
    assert "check metastores.azlake.config.container" in text
    assert caught.value.provider == "azure" and caught.value.operation == "list_tables"
    assert caught.value.__cause__ is None


def test_a_wrong_key_is_access_denied_naming_the_account(container: Container) -> None:
    conn = connector(container, account_key=CANARY_KEY)
    with pytest.raises(AuthenticationError) as caught:
        conn.discover()
    text = str(caught.value)
    assert "access denied (AuthorizationFailure)" in text or "access denied (AuthenticationFailed)" in text
    assert "check metastores.azlake.config.account_key" in text and "'devstoreaccount1'" in text
    assert CANARY_KEY not in text


def test_an_expired_sas_token_says_to_issue_a_new_one(container: Container) -> None:
    expired = container.server.sas_token(container.name, expires_in=timedelta(minutes=-5))
    conn = connector(container, account_key=None, sas_token=expired)
    with pytest.raises(AuthenticationError) as caught:
        conn.discover()
    text = str(caught.value)
    assert "the SAS token has expired" in text and "set metastores.azlake.config.sas_token" in text
    assert expired not in text


def test_a_sas_token_without_list_permission_is_access_denied(container: Container) -> None:
    read_only = container.server.sas_token(container.name, permission="r")
    conn = connector(container, account_key=None, sas_token=read_only)
    with pytest.raises(AuthenticationError) as caught:
        conn.discover()
    assert "allow list (l) and read (r)" in str(caught.value)


def test_a_wrong_account_and_a_wrong_endpoint(container: Container) -> None:
    server = container.server
    wrong = connector(
        container,
        account_name="nosuchaccount",
        endpoint=server.endpoint.replace(server.account_name, "nosuchaccount"),
    )
    with pytest.raises((NotFoundError, AuthenticationError)) as caught:
        wrong.discover()
    assert "nosuchaccount" in str(caught.value) and "account" in str(caught.value)
    nowhere = connector(
        container, endpoint=f"http://127.0.0.1:{free_port()}/devstoreaccount1", max_attempts=1
    )
    with pytest.raises(UnavailableError) as unavailable:
        nowhere.discover()
    assert "is unavailable during list_tables" in str(unavailable.value)
    assert "check metastores.azlake.config.endpoint" in str(unavailable.value)
    assert unavailable.value.retryable


def test_a_container_name_with_a_path_is_refused_before_any_call() -> None:
    with pytest.raises(InvalidFieldError) as caught:
        metastore_config(
            "az",
            "azure",
            {"container": "raw/data", "account_name": "lake", "account_key": "a2V5"},
            environ={},
        )
    assert caught.value.field == "container" and "put the path in path_prefix" in str(caught.value)


# --- DuckDB ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["account_key", "sas_token"])
def test_duckdb_reads_the_tables_with_a_secret_scoped_to_the_container(
    container: Container, mode: str
) -> None:
    from floe_dagster.readers.duckdb_scan import scan_connection, select_sql

    container.put("orders/p0.parquet", parquet_bytes(range(0, 4)))
    container.put("orders/p1.parquet", parquet_bytes(range(4, 9)))
    options: dict[str, Any] = {}
    if mode == "sas_token":
        options = {"account_key": None, "sas_token": container.server.sas_token(container.name)}
    conn = connector(container, **options)
    scan = conn.describe_scan(conn.config.table_namespace, "orders")
    con = scan_connection([scan], conn.credentials)
    assert con.sql(f"SELECT count(*), sum(id) FROM ({select_sql(scan)})").fetchall() == [(9, sum(range(9)))]
    secrets = con.sql("SELECT name, type, scope FROM duckdb_secrets()").fetchall()
    assert secrets == [("floe_scan", "azure", [f"az://{container.name}"])]


# --- Delta tables ---------------------------------------------------------------------------------


def delta_options(server: AzuriteServer) -> dict[str, str]:
    """delta-rs storage options (the object_store crate's keys) reaching Azurite."""
    return {
        "azure_storage_account_name": server.account_name,
        "azure_storage_account_key": server.account_key,
        "azure_storage_endpoint": server.endpoint,
        "azure_allow_http": "true",
    }


def test_a_delta_table_is_discovered_versioned_by_its_log_and_read_through_the_source_views(
    container: Container, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from floe_dagster.computes.duckdb_extensions import connect_with_extensions
    from floe_dagster.readers.duckdb_scan import default_extension_dir
    from floe_dagster.readers.metastore_views import create_source_views

    caplog.set_level(logging.DEBUG, logger="floe_dagster")
    monkeypatch.delenv("FLOE_STATE_DIR", raising=False)
    # where delta_scan looks for the emulator: floe points it at the metastore's endpoint
    monkeypatch.setenv("AZURITE_BLOB_STORAGE_URL", f"http://127.0.0.1:{free_port()}")
    server = container.server
    uri = f"az://{container.name}/lake/sales/eu"
    for start in (0, 10):
        delta_append(uri, range(start, start + 3), delta_options(server))
    container.put("lake/loose/a.parquet", parquet_bytes(range(2)))  # no _delta_log/: not a table
    conn = connector(container, file_type="delta", path_prefix="lake/")
    (found,) = conn.scan(TableFilter())
    assert (found.name, found.storage.format, found.storage.location) == ("lake_sales_eu", "delta", uri)
    assert found.data_version == "1" and [c.name for c in found.storage.columns] == ["id", "label"]
    assert conn.call_counts["get_object"] == 0  # versioned from the listing alone

    # what an observation reads: the same version until a commit is added, then the next one
    namespace = conn.config.table_namespace
    (same,) = connector(container, file_type="delta", path_prefix="lake/").get_tables_or_errors(
        namespace, ["lake_sales_eu"]
    )
    assert isinstance(same, Table) and same.data_version == "1"
    delta_append(uri, range(20, 22), delta_options(server))
    (after,) = connector(container, file_type="delta", path_prefix="lake/").get_tables_or_errors(
        namespace, ["lake_sales_eu"]
    )
    assert isinstance(after, Table) and after.data_version == "2"

    # a dbt source over the table, read by DuckDB's delta extension with the container's secret
    monkeypatch.setenv("FLOE_TEST_AZURE_KEY", server.account_key)
    config = {
        "container": container.name,
        "account_name": server.account_name,
        "endpoint": server.endpoint,
        "account_key": "${env:FLOE_TEST_AZURE_KEY}",
        "path_prefix": "lake/",
        "file_type": "delta",
    }
    resolved = object_sources.source_views(tmp_path, "landing", "azure", config, namespace, "lake_sales_eu")
    assert [v.error for v in resolved.views] == [None]
    assert list(resolved.versions.values()) == ["2"]  # the view reads the observed version
    assert all(server.account_key not in repr(v) for v in resolved.views)
    con = connect_with_extensions(":memory:", default_extension_dir(), ["azure"])
    con.execute("ATTACH ':memory:' AS warehouse")
    create_source_views(con, resolved)
    rows = con.sql(f'SELECT count(*), sum(id) FROM warehouse."{namespace}".lake_sales_eu').fetchone()
    assert rows == (8, sum(range(0, 3)) + sum(range(10, 13)) + sum(range(20, 22)))
    assert con.sql("SELECT type, scope FROM duckdb_secrets()").fetchall() == [
        ("azure", [f"az://{container.name}"])
    ]
    assert server.account_key not in "\n".join(r.getMessage() for r in caplog.records)


def test_a_hudi_table_is_discovered_versioned_by_its_timeline_and_read_through_the_source_views(
    container: Container, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Written by the tests' Hudi writer (no Hudi writer installs here) to a folder, uploaded."""
    from floe_dagster.computes.duckdb_extensions import connect_with_extensions
    from floe_dagster.readers.duckdb_scan import default_extension_dir
    from floe_dagster.readers.metastore_views import create_source_views

    monkeypatch.delenv("FLOE_STATE_DIR", raising=False)
    server = container.server
    folder = tmp_path / "orders"
    writer = HudiTableWriter(folder)

    def commit(instant: str, rows: list[dict[str, Any]]) -> None:
        writer.commit(instant, rows)
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            container.put(f"lake/orders/{path.relative_to(folder)}", path.read_bytes())

    first, second = "20240101000000000", "20240102000000000"
    commit(first, [{"id": i, "label": f"a{i}", "ds": "2024-01-01"} for i in range(3)])
    conn = connector(container, file_type="hudi", path_prefix="lake/")
    (found,) = conn.scan(TableFilter())
    location = f"az://{container.name}/lake/orders"
    assert (found.name, found.storage.format, found.storage.location) == ("lake_orders", "hudi", location)
    assert found.data_version == first and [c.name for c in found.storage.columns] == ["id", "label", "ds"]
    commit(
        second,
        [{"id": 1, "label": "updated", "ds": "2024-01-01"}, {"id": 10, "label": "b", "ds": "2024-01-02"}],
    )
    namespace = conn.config.table_namespace
    (after,) = connector(container, file_type="hudi", path_prefix="lake/").get_tables_or_errors(
        namespace, ["lake_orders"]
    )
    assert isinstance(after, Table) and after.data_version == second

    monkeypatch.setenv("FLOE_TEST_AZURE_KEY", server.account_key)
    config = {
        "container": container.name,
        "account_name": server.account_name,
        "endpoint": server.endpoint,
        "account_key": "${env:FLOE_TEST_AZURE_KEY}",
        "path_prefix": "lake/",
        "file_type": "hudi",
    }
    resolved = object_sources.source_views(
        tmp_path / "p", "landing", "azure", config, namespace, "lake_orders"
    )
    assert [v.error for v in resolved.views] == [None] and list(resolved.versions.values()) == [second]
    con = connect_with_extensions(":memory:", default_extension_dir(), ["azure"])
    con.execute("ATTACH ':memory:' AS warehouse")
    create_source_views(con, resolved)
    rows = con.sql(f'SELECT id, label FROM warehouse."{namespace}".lake_orders ORDER BY id').fetchall()
    assert rows == [(0, "a0"), (1, "updated"), (2, "a2"), (10, "b")]


# --- canaries -------------------------------------------------------------------------------------


def test_canary_secrets_appear_in_no_output(
    container: Container,
    catalog: SqlCatalogPlugin,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.INFO)
    caplog.set_level(logging.DEBUG, logger="floe_dagster")
    container.put("secret/a.parquet", parquet_bytes(range(3)))
    container.put("secret/b.parquet", b"broken")
    server = container.server
    sas = server.sas_token(container.name)
    texts: list[str] = []
    for options in (
        {"account_key": server.account_key},
        {"account_key": None, "sas_token": sas},
        {
            "account_key": None,
            "connection_string": server.connection_string,
            "account_name": None,
            "endpoint": None,
        },
    ):
        conn = connector(container, **options)
        texts += [conn.debug_report(), repr(conn.config), str(conn.diagnostics()), str(conn.describe())]
        list(conn.scan(TableFilter()))
    report = ingest(connector(container), catalog, "secret")
    assert report.read == 1
    for failing in (
        connector(container, account_key=CANARY_KEY),
        connector(
            container,
            account_key=None,
            sas_token=server.sas_token(container.name, expires_in=timedelta(minutes=-1)),
        ),
    ):
        with pytest.raises(AuthenticationError) as caught:
            failing.discover()
        texts += [str(caught.value), repr(caught.value)]
    texts += [r.getMessage() for r in caplog.records]
    captured = capsys.readouterr()
    texts += [captured.out, captured.err, str(catalog.load_table(("raw_az", "secret")).properties)]
    everything = "\n".join(texts)
    assert "secret/b.parquet" in everything
    signature = sas.split("sig=", 1)[1].split("&", 1)[0]
    for secret in (server.account_key, CANARY_KEY, sas, signature):
        assert secret not in everything


# --- Dagster: observable sources and ingest assets from a manifest ----------------------------------

MANIFEST = """\
apiVersion: floe.dev/v1
kind: Manifest
metadata: {{name: azure-ingest-test}}
state_dir: .floe
catalogs:
  lake: {{type: sql, config: {{uri: "sqlite:///.floe/catalog.db", warehouse: .floe/warehouse}}}}
computes:
  approved: [duckdb]
  default: duckdb
  targets: {{duckdb: {{type: duckdb, config: {{path: ":memory:"}}}}}}
metastores:
  landing:
    type: azure
    config:
      container: {container}
      account_name: {account}
      endpoint: {endpoint}
      account_key: ${{env:FLOE_TEST_AZURE_KEY}}
      ingest: {{enabled: true, namespace: raw_az}}
transforms: {{dbt_project: dbt, catalog: lake}}
"""


def dagster_project(container: Container, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """MANIFEST's project with two blobs under ``orders/``: (Definitions with an ``observe`` and an
    ``ingest`` job, the source's key, the ingested table's key)."""
    from dagster import AssetKey, AssetSelection, Definitions, define_asset_job

    # lazy: Dagster-stage modules, imported by the tests that run Dagster only
    from floe_dagster.dagster_stage.definitions import build_resources
    from floe_dagster.dagster_stage.ingest import ingest_assets
    from floe_dagster.dagster_stage.sources import observable_sources
    from floe_dagster.manifest.loader import load_manifest
    from floe_dagster.metastores.state import write_state
    from floe_dagster.plan.dbt_project import profiles_dir

    server = container.server
    monkeypatch.setenv("FLOE_TEST_AZURE_KEY", server.account_key)
    (tmp_path / "dbt").mkdir()
    (tmp_path / "dbt" / "dbt_project.yml").write_text("name: aztest\nversion: '1'\nprofile: aztest\n")
    manifest = tmp_path / "manifest.yaml"
    manifest.write_text(
        MANIFEST.format(container=container.name, account=server.account_name, endpoint=server.endpoint)
    )
    container.put("orders/part-0.parquet", parquet_bytes(range(0, 10)))
    container.put("orders/part-1.parquet", parquet_bytes(range(10, 20)))
    loaded = load_manifest(manifest, check_assignments=False)
    profiles_dir(loaded).mkdir(parents=True)
    (profiles_dir(loaded) / "profiles.yml").write_text("aztest: {target: x, outputs: {}}\n")
    state = write_state(loaded).state
    namespace = loaded.plugin_config("metastores", "landing").table_namespace  # type: ignore[attr-defined]
    observe = observable_sources(loaded, "landing", state.tables("landing"))
    ingest = ingest_assets(loaded, "landing", state.tables("landing"), observe.keys if observe else ())
    assert observe is not None and ingest is not None
    source = AssetKey(["landing", namespace, "orders"])
    orders = AssetKey(["lake", "raw_az", "orders"])
    assert observe.keys == {source} and ingest.keys == {orders}
    defs = Definitions(
        assets=[observe, ingest],
        resources=build_resources(loaded),
        jobs=[
            define_asset_job("observe", selection=AssetSelection.assets(observe)),
            define_asset_job("ingest", selection=AssetSelection.assets(ingest)),
        ],
    )
    return defs, source, orders


def test_dagster_observes_azure_tables_and_ingests_them(
    container: Container, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from dagster import instance_for_test

    caplog.set_level(logging.INFO)
    server = container.server
    defs, source, orders = dagster_project(container, tmp_path, monkeypatch)
    with instance_for_test() as instance:
        assert defs.resolve_job_def("observe").execute_in_process(instance=instance).success
        assert instance.get_latest_data_version_record(source, is_source=True) is not None
        assert defs.resolve_job_def("ingest").execute_in_process(instance=instance).success
        event = instance.get_latest_materialization_event(orders)
        assert event is not None and event.asset_materialization is not None
        metadata = event.asset_materialization.metadata
        assert metadata["floe/objects_read"].value == 2 and metadata["dagster/row_count"].value == 20
    assert server.account_key not in "\n".join(r.getMessage() for r in caplog.records)


DELTA_MANIFEST = """\
apiVersion: floe.dev/v1
kind: Manifest
metadata: {{name: azure-delta-test}}
state_dir: .floe
computes:
  approved: [duckdb]
  default: duckdb
  targets: {{duckdb: {{type: duckdb, config: {{path: ":memory:"}}}}}}
metastores:
  landing:
    type: azure
    config:
      container: {container}
      account_name: {account}
      endpoint: {endpoint}
      account_key: ${{env:FLOE_TEST_AZURE_KEY}}
      path_prefix: lake/
      file_type: delta
transforms: {{dbt_project: dbt}}
"""


def test_dagster_observes_an_azure_delta_table_at_its_log_version(
    container: Container, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The observation's data version is the Delta log version: the same on a second observation,
    the next one after a commit."""
    from dagster import AssetKey, AssetSelection, Definitions, define_asset_job, instance_for_test

    from floe_dagster.dagster_stage.definitions import build_resources
    from floe_dagster.dagster_stage.sources import observable_sources
    from floe_dagster.manifest.loader import load_manifest
    from floe_dagster.metastores.state import write_state
    from floe_dagster.plan.dbt_project import profiles_dir

    server = container.server
    monkeypatch.setenv("FLOE_TEST_AZURE_KEY", server.account_key)
    uri = f"az://{container.name}/lake/sales/eu"
    for start in (0, 10):
        delta_append(uri, range(start, start + 3), delta_options(server))
    (tmp_path / "dbt").mkdir()
    (tmp_path / "dbt" / "dbt_project.yml").write_text("name: azdelta\nversion: '1'\nprofile: azdelta\n")
    manifest = tmp_path / "manifest.yaml"
    manifest.write_text(
        DELTA_MANIFEST.format(container=container.name, account=server.account_name, endpoint=server.endpoint)
    )
    loaded = load_manifest(manifest, check_assignments=False)
    profiles_dir(loaded).mkdir(parents=True)
    (profiles_dir(loaded) / "profiles.yml").write_text("azdelta: {target: x, outputs: {}}\n")
    state = write_state(loaded).state
    namespace = loaded.plugin_config("metastores", "landing").table_namespace  # type: ignore[attr-defined]
    observe = observable_sources(loaded, "landing", state.tables("landing"))
    assert observe is not None
    source = AssetKey(["landing", namespace, "lake_sales_eu"])
    assert observe.keys == {source}
    defs = Definitions(
        assets=[observe],
        resources=build_resources(loaded),
        jobs=[define_asset_job("observe", selection=AssetSelection.assets(observe))],
    )
    versions = []
    with instance_for_test() as instance:
        for commit in (None, None, range(20, 22)):
            if commit is not None:
                delta_append(uri, commit, delta_options(server))
            assert defs.resolve_job_def("observe").execute_in_process(instance=instance).success
            record = instance.get_latest_data_version_record(source, is_source=True)
            assert record is not None and record.event_log_entry.tags is not None
            versions.append(record.event_log_entry.tags["dagster/data_version"])
    assert versions == ["1", "1", "2"]


# --- the object-store source's shared cases (tests/object_source_checks.py) -----------------------


@pytest.fixture
def store(container: Container, catalog: SqlCatalogPlugin) -> Store:
    return Store(
        put=container.put,
        delete=container.delete,
        connector=lambda **overrides: connector(container, **overrides),
        catalog=catalog,
        namespace=NAMESPACE,
        root=f"az://{container.name}",
    )


class TestObjectSourceChecks(ObjectSourceChecks):
    """Every check of tests/object_source_checks.py on Azure Blob."""


def test_dagster_ingests_azure_tables_incrementally_and_its_events_hold_no_secret(
    container: Container, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The manifest above, materialised twice: the second run reads only the blob added since,
    and no observation, materialisation, metadata or log of either run holds the account key."""
    from dagster import instance_for_test
    from dagster._core.definitions.data_version import extract_data_version_from_entry

    caplog.set_level(logging.DEBUG, logger="floe_dagster")
    server = container.server
    defs, source, orders = dagster_project(container, tmp_path, monkeypatch)
    texts: list[str] = []

    def run(job: str) -> None:
        result = defs.resolve_job_def(job).execute_in_process(instance=instance)
        assert result.success
        entries = instance.all_logs(result.run_id)
        texts.extend([str(e.dagster_event) for e in entries] + [e.message or "" for e in entries])

    def observed() -> Any:
        record = instance.get_latest_data_version_record(source, is_source=True)
        return extract_data_version_from_entry(record.event_log_entry) if record else None

    with instance_for_test() as instance:
        run("observe")
        listing = connector(container)
        first_version = observed()
        assert first_version is not None
        assert first_version.value == listing.get_table(listing.config.table_namespace, "orders").data_version
        run("ingest")
        first = instance.get_latest_materialization_event(orders)
        assert first is not None and first.asset_materialization is not None

        time.sleep(1.1)  # Last-Modified has one-second resolution
        container.put("orders/part-2.parquet", parquet_bytes(range(20, 25)))
        run("observe")
        assert observed() not in (None, first_version)
        run("ingest")
        second = instance.get_latest_materialization_event(orders)
        assert second is not None and second.asset_materialization is not None
        metadata = second.asset_materialization.metadata
        assert (metadata["floe/objects_new"].value, metadata["floe/objects_read"].value) == (1, 1)
        assert metadata["dagster/row_count"].value == 25
        assert metadata["floe/cursor"].value > first.asset_materialization.metadata["floe/cursor"].value
        texts += [str(first.asset_materialization.metadata), str(metadata)]
    texts += [r.getMessage() for r in caplog.records]
    everything = "\n".join(texts)
    assert "part-2.parquet" in everything and server.account_key not in everything


def test_canary_secrets_appear_in_no_output_with_every_logger_at_debug(
    container: Container,
    catalog: SqlCatalogPlugin,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """As the canary test above, with every logger at DEBUG (azure-core's HTTP logging policy,
    urllib3, floe): request headers and URLs are logged, Shared Key signatures and SAS query
    strings must not be; plus DuckDB's secret listing and the service principal's settings."""
    # lazy: the DuckDB reader, for the secret it is handed
    from floe_dagster.readers.duckdb_scan import scan_connection

    caplog.set_level(logging.DEBUG)
    container.put("secret/a.parquet", parquet_bytes(range(3)))
    container.put("secret/b.parquet", b"broken")
    server = container.server
    sas = server.sas_token(container.name)
    expired = server.sas_token(container.name, expires_in=timedelta(minutes=-1))
    signature, expired_signature = (t.split("sig=", 1)[1].split("&", 1)[0] for t in (sas, expired))
    texts: list[str] = []
    for options in (
        {"account_key": server.account_key},
        {"account_key": None, "sas_token": sas},
        {"account_key": None, "connection_string": server.connection_string, "account_name": None},
    ):
        conn = connector(container, **options)
        texts += [repr(conn), repr(conn.config), repr(conn.credentials), conn.debug_report()]
        assert [t.name for t in conn.scan(TableFilter())] == ["secret"]
        scan = conn.describe_scan(conn.config.table_namespace, "secret")
        shown = scan_connection([scan], conn.credentials).sql("SELECT * FROM duckdb_secrets()").fetchall()
        texts.append(str(shown))
        report = ingest_discovered(conn, catalog, "secret", NAMESPACE, 1 << 30)
        texts += [str(report), repr(report)]
    for failing in (
        connector(container, account_key=CANARY_KEY),
        connector(container, account_key=None, sas_token=expired),
    ):
        with pytest.raises(AuthenticationError) as caught:
            failing.discover()
        texts += [str(caught.value), repr(caught.value)]
    environ = {
        "AZURE_CLIENT_ID": "00000000-0000-0000-0000-000000000001",
        "AZURE_CLIENT_SECRET": CANARY_CLIENT_SECRET,
        "AZURE_TENANT_ID": "00000000-0000-0000-0000-000000000002",
    }
    principal = connect_metastore(
        "az", "azure", {"container": "raw-data", "account_name": "datalake"}, environ=environ
    )
    texts += [repr(principal), repr(principal.config), repr(principal.credentials), principal.debug_report()]
    # urllib3 logged the SAS requests' URLs (the canary is live), their signatures masked
    lines = [r.getMessage() for r in caplog.records if r.name == "urllib3.connectionpool"]
    assert any("&sig=**********" in line and "comp=list" in line for line in lines)
    texts += [r.getMessage() for r in caplog.records] + [caplog.text]
    captured = capsys.readouterr()
    texts += [captured.out, captured.err, str(catalog.load_table((NAMESPACE, "secret")).properties)]
    everything = "\n".join(texts)
    assert "secret/b.parquet" in everything
    secrets = [server.account_key, CANARY_KEY, sas, signature, expired_signature, CANARY_CLIENT_SECRET]
    leaked = [i for i, secret in enumerate(secrets) if secret in everything]
    assert not leaked, f"secret(s) #{leaked} appear in the output"
